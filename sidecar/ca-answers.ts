// The sidecar's key, and the checks every CA answer passes before the SVID manager uses it: a bad
// answer never replaces a good SVID or bundle (PRODUCT.md §10.4). Pure functions over their inputs.
import { createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { BundleResponse, IssuedSvidResponse } from '../common/ca-client.ts';
import { createCsr } from '../pki/csr.ts';
import { TollgateError, toTollgateError } from '../common/errors.ts';
import { checkSigningProfile, verifySvidChain, type VerifiedChain } from '../pki/svid-validate.ts';
import { parseCertificate } from '../pki/x509.ts';
import { svidOf, trustBundleOf, type Svid, type TrustBundle } from './svid-source.ts';

/** The sidecar's one key, made in memory and never written anywhere. */
export interface KeyMaterial {
  readonly key: KeyObject;
  /** The PEM copy exists only to hand to the TLS stack. */
  readonly keyPem: string;
  readonly spki: Buffer;
  /** One CSR for the life of the key: the CA caches verified CSRs by hash. */
  readonly csr: Buffer;
}

export async function makeKeyMaterial(): Promise<KeyMaterial> {
  const { privateKey: key } = await promisify(generateKeyPair)('ec', { namedCurve: 'P-256' });
  return {
    key,
    keyPem: key.export({ format: 'pem', type: 'pkcs8' }) as string,
    spki: createPublicKey(key).export({ format: 'der', type: 'spki' }),
    csr: createCsr(key),
  };
}

export interface IssuedCheck {
  readonly keys: KeyMaterial;
  /** The bundle in force: the chain must lead to one of its roots. */
  readonly bundle: TrustBundle;
  /** Epoch ms. */
  readonly now: number;
  readonly trustDomain: string;
  /** A chain whose notBefore is at most this far in our future is accepted (default SKEW_TOLERANCE_MS). */
  readonly skewToleranceMs?: number | undefined;
}

/** How far ahead of this sidecar the CA's clock may be (issue 13, problem 6). */
export const SKEW_TOLERANCE_MS = 5 * 60 * 1000;

/**
 * An IssueSVID answer as an Svid, with the root its chain leads to, if it is for our key, for the
 * SPIFFE ID it claims, and chains to the bundle. Throws TollgateError (TG_SVID_*) otherwise.
 */
export function checkIssued(res: IssuedSvidResponse, o: IssuedCheck): { svid: Svid; root: Buffer; skewMs: number } {
  const [leaf, ...intermediates] = res.certChain;
  if (!leaf) throw new TollgateError('TG_SVID_INVALID', 'the CA returned an empty certificate chain; check the CA version and logs');
  // A CA whose clock runs ahead of ours issues certificates that start in our future: within the
  // tolerance they are checked as of their latest notBefore (the measured skew is returned to log).
  const skewMs = Math.min(o.skewToleranceMs ?? SKEW_TOLERANCE_MS, Math.max(0, ...res.certChain.map((d) => latestStart(d) - o.now)));
  let verified: VerifiedChain;
  try {
    // Stryker disable next-line StringLiteral: 'any' is also verifySvidChain's default; said here because our SVID serves both roles
    verified = verifySvidChain({ leaf, intermediates, roots: o.bundle.roots, now: o.now + skewMs, usage: 'any', trustDomain: o.trustDomain });
  } catch (e) {
    const err = toTollgateError(e, 'TG_SVID_INVALID');
    throw new TollgateError(err.code === 'TG_CERT_INVALID' ? 'TG_SVID_INVALID' : err.code, `the CA returned an unusable SVID: ${err.message}; kept the current one`, { cause: e });
  }
  if (verified.spiffeId.id !== res.spiffeId) {
    throw new TollgateError('TG_SVID_INVALID', `the CA said it issued ${res.spiffeId} but the certificate is for ${verified.spiffeId.id}; kept the current SVID`);
  }
  if (!verified.leaf.spki.equals(o.keys.spki)) {
    throw new TollgateError('TG_SVID_INVALID', 'the CA returned a certificate for a different public key than ours; kept the current SVID');
  }
  const svid = svidOf({
    spiffeId: verified.spiffeId.id,
    certChain: res.certChain,
    key: o.keys.key,
    notBefore: verified.leaf.notBefore,
    notAfter: verified.leaf.notAfter,
    serial: verified.leaf.serialHex.toLowerCase(),
  });
  return { svid, root: verified.path.at(-1)!.der, skewMs };
}

function latestStart(der: Buffer): number {
  try {
    return parseCertificate(der).notBefore;
  } catch {
    return 0; // unparseable: verifySvidChain says why
  }
}

/** A pushed or fetched bundle as a TrustBundle, if it is for our trust domain and every root is usable. */
export function checkBundle(b: BundleResponse, trustDomain: string): TrustBundle {
  if (b.trustDomain !== trustDomain) {
    throw new TollgateError('TG_SVID_UNTRUSTED', `the CA sent a bundle for trust domain ${JSON.stringify(b.trustDomain)}, expected ${trustDomain}; check --ca-spiffe-id`);
  }
  if (b.roots.length === 0) throw new TollgateError('TG_CERT_INVALID', `bundle version ${b.version} holds no roots; kept the current bundle`);
  for (const [i, der] of b.roots.entries()) {
    try {
      checkSigningProfile(parseCertificate(der));
    } catch (e) {
      throw new TollgateError('TG_CERT_INVALID', `bundle version ${b.version} root #${i + 1} is unusable: ${(e as Error).message}; kept the current bundle`, { cause: e });
    }
  }
  return trustBundleOf(b.version, b.trustDomain, b.roots.map((r) => Buffer.from(r)), { ids: b.deniedIds, serials: b.deniedSerials });
}
