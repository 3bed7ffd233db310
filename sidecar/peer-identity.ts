// The identity of a TLS peer, decided after OpenSSL has verified its chain against the bundle's roots.
// OpenSSL's chain check alone accepts leaves an SVID may not be (a cA=true leaf, one without
// digitalSignature, two URI SANs), so the leaf also passes the same profile check as what the CA
// issues, its SPIFFE ID must parse strictly, and its trust domain must be the bundle's.
import { TollgateError, isTollgateError } from '../common/errors.ts';
import type { SpiffeId } from '../pki/spiffe-id.ts';
import { checkLeafProfile } from '../pki/svid-validate.ts';
import { parseCertificate, type ParsedCertificate } from '../pki/x509.ts';
import type { TrustBundle } from './svid-source.ts';

export interface PeerLeafCheck {
  /** Epoch ms (clock.now()); the leaf must be valid at this instant. */
  readonly now: number;
  /** The bundle the chain was verified against. */
  readonly bundle: TrustBundle;
  /** The peer's role: 'client' needs clientAuth, 'server' needs serverAuth (when EKU is present). */
  readonly usage: 'client' | 'server';
}

/**
 * The SPIFFE ID of a verified peer's leaf (DER), with the leaf's notAfter (epoch ms). Throws
 * TollgateError: TG_SVID_INVALID (profile or ID), TG_SVID_EXPIRED (outside its validity),
 * TG_SVID_UNTRUSTED (another trust domain), TG_DENIED (its SPIFFE ID or serial is on the bundle's
 * deny-list; reason `denied`).
 */
export function checkPeerLeaf(leafDer: Buffer, options: PeerLeafCheck): SpiffeId & { readonly notAfter: number } {
  let cert: ParsedCertificate;
  try {
    cert = parseCertificate(leafDer);
  } catch (e) {
    throw new TollgateError('TG_SVID_INVALID', `peer certificate is not valid DER: ${(e as Error).message}`, { cause: e });
  }
  let id: SpiffeId;
  try {
    id = checkLeafProfile(cert, { now: options.now, usage: options.usage });
  } catch (e) {
    if (isTollgateError(e, 'TG_SVID_EXPIRED') || isTollgateError(e, 'TG_SVID_INVALID')) throw e;
    throw new TollgateError('TG_SVID_INVALID', `peer certificate is not a valid X.509-SVID: ${(e as Error).message}`, { cause: e });
  }
  if (id.trustDomain !== options.bundle.trustDomain) {
    throw new TollgateError(
      'TG_SVID_UNTRUSTED',
      `peer ${id.id} belongs to trust domain ${id.trustDomain}, but this sidecar's bundle is for ${options.bundle.trustDomain}`,
      { details: { peer_id: id.id } },
    );
  }
  const denied = options.bundle.denied;
  if (denied.ids.has(id.id) || denied.serials.has(cert.serialHex.toLowerCase())) {
    throw new TollgateError('TG_DENIED', `peer ${id.id} (serial ${cert.serialHex.toLowerCase()}) is on the CA's deny-list`, { details: { reason: 'denied', peer_id: id.id } });
  }
  return { ...id, notAfter: cert.notAfter };
}
