// A real TLS server certificate for loopback test servers: a fresh root → intermediate (pki's test
// chain) and a serverAuth leaf from the webhook certificate issuer, valid now.
import { issueServingCertificate, type ServingCertificate } from '../../ca/webhook-cert.ts';
import type { Authority } from '../../ca/authority.ts';
import { certsToPem } from '../../pki/pem.ts';
import { testChain, type TestChain } from '../../pki/test-chain.ts';
import { parseCertificate } from '../../pki/x509.ts';

export interface TestServerCert extends ServingCertificate {
  /** PEM of the root clients trust. */
  readonly caPem: string;
  readonly chain: TestChain;
  readonly intermediate: Authority;
}

/** The chain's intermediate as the CA holds it. */
export function intermediateAuthority(chain: TestChain): Authority {
  const key = chain.intermediateKey.key;
  return { certificate: chain.intermediate, parsed: parseCertificate(chain.intermediate), key, keyPkcs8: key.export({ format: 'der', type: 'pkcs8' }) };
}

export async function testServerCert(o: { dnsNames?: string[]; ipAddresses?: string[]; now?: number } = {}): Promise<TestServerCert> {
  const now = o.now ?? Date.now();
  const chain = testChain('example.org', now);
  const intermediate = intermediateAuthority(chain);
  const cert = await issueServingCertificate({ intermediate, dnsNames: o.dnsNames ?? ['localhost'], ipAddresses: o.ipAddresses ?? ['127.0.0.1'], now, lifetimeMs: 3600_000 });
  return { ...cert, caPem: certsToPem([chain.root]), chain, intermediate };
}
