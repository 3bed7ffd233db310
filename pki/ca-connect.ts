// Connecting to the CA as a SPIFFE peer: the CA must present a valid SVID profile whose single URI
// SAN is the expected CA identity, and its chain must lead to the given DER roots. The gRPC client
// itself (common/ca-client.ts) knows nothing of X.509; this is the one place it is told how.
import { CaClient, type CaClientOptions } from '../common/ca-client.ts';
import { certsToPem } from './pem.ts';
import { checkLeafProfile } from './svid-validate.ts';
import { Oid, parseCertificate, subjectAltNames } from './x509.ts';

export interface CaConnectOptions {
  /** host:port of the CA */
  readonly address: string;
  /** DER roots used to verify the CA's certificate. */
  readonly roots: readonly Buffer[];
  /** The SPIFFE ID the CA must present. */
  readonly serverId: string;
  /** Client identity for renewal over mTLS: PEM chain and PEM key. */
  readonly identity?: { readonly certChainPem: string; readonly keyPem: string } | undefined;
  readonly deadlineMs?: number;
}

/** Accepts the CA's leaf only if it is an SVID naming exactly `serverId`. */
export function caServerCheck(serverId: string): (leafDer: Buffer) => Error | undefined {
  return (leafDer) => {
    try {
      const parsed = parseCertificate(leafDer);
      const id = checkLeafProfile(parsed, { usage: 'server' });
      if (id.id !== serverId) return new Error(`CA presented ${id.id}, expected ${serverId}`);
      const san = parsed.extensions.get(Oid.subjectAltName);
      if (!san || subjectAltNames(san).uris.length !== 1) return new Error('CA certificate must carry exactly one URI SAN');
      return undefined;
    } catch (e) {
      return e as Error;
    }
  };
}

export function caClientOptions(o: CaConnectOptions): CaClientOptions {
  return {
    address: o.address,
    rootsPem: certsToPem(o.roots),
    verifyServer: caServerCheck(o.serverId),
    identity: o.identity,
    ...(o.deadlineMs !== undefined ? { deadlineMs: o.deadlineMs } : {}),
  };
}

export function connectCa(o: CaConnectOptions): CaClient {
  return new CaClient(caClientOptions(o));
}
