// Validation of X.509-SVIDs (SPIFFE X509-SVID spec) and their chains. The CA checks what it issues
// and what renewing clients present with these; the sidecar checks every peer leaf with
// checkLeafProfile after OpenSSL's chain check, because OpenSSL alone accepts e.g. a cA=true leaf.
import { X509Certificate, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { TollgateError } from '../common/errors.ts';
import { parseSpiffeId, parseWorkloadId, type SpiffeId } from './spiffe-id.ts';
import {
  KeyUsage,
  Oid,
  basicConstraints,
  extKeyUsages,
  isEmptyName,
  keyUsageBits,
  parseCertificate,
  subjectAltNames,
  type ParsedCertificate,
} from './x509.ts';

export type Usage = 'client' | 'server' | 'any';

function bad(msg: string): TollgateError {
  return new TollgateError('TG_SVID_INVALID', msg, { details: { reason: msg } });
}

function uriSan(cert: ParsedCertificate): { uri: string; critical: boolean } {
  const ext = cert.extensions.get(Oid.subjectAltName);
  if (!ext) throw bad('certificate has no subjectAltName: an SVID carries its SPIFFE ID as a URI SAN');
  const sans = subjectAltNames(ext);
  if (sans.uris.length !== 1) throw bad(`certificate has ${sans.uris.length} URI SANs; an SVID has exactly one`);
  return { uri: sans.uris[0]!, critical: ext.critical };
}

function checkValidity(cert: ParsedCertificate, now: number, what: string): void {
  if (now < cert.notBefore) {
    throw new TollgateError('TG_SVID_EXPIRED', `${what} is not valid until ${new Date(cert.notBefore).toISOString()}`);
  }
  if (now > cert.notAfter) {
    throw new TollgateError('TG_SVID_EXPIRED', `${what} expired at ${new Date(cert.notAfter).toISOString()}`);
  }
}

export interface LeafCheckOptions {
  /** Epoch ms; validity is not checked when omitted. */
  readonly now?: number;
  /** Which extended key usage the peer's role needs; 'any' requires both. */
  readonly usage?: Usage;
}

/** Check a leaf against the X.509-SVID profile and return its SPIFFE ID. */
export function checkLeafProfile(cert: ParsedCertificate, options: LeafCheckOptions = {}): SpiffeId {
  if (cert.version !== 3) throw bad(`certificate is X.509 v${cert.version}; SVIDs are v3`);
  if (cert.duplicateExtension) throw bad('certificate repeats an extension');
  const bcExt = cert.extensions.get(Oid.basicConstraints);
  if (bcExt && basicConstraints(bcExt).ca) throw bad('leaf certificate has basicConstraints cA=true; a CA certificate cannot be a workload SVID');
  const kuExt = cert.extensions.get(Oid.keyUsage);
  if (!kuExt) throw bad('leaf certificate has no keyUsage; an SVID needs digitalSignature');
  if (!kuExt.critical) throw bad('leaf keyUsage is not critical');
  const ku = keyUsageBits(kuExt);
  if (!ku.has(KeyUsage.digitalSignature)) throw bad('leaf keyUsage lacks digitalSignature');
  if (ku.has(KeyUsage.keyCertSign) || ku.has(KeyUsage.cRLSign)) throw bad('leaf keyUsage has keyCertSign or cRLSign, which only signing certificates may have');
  const ekuExt = cert.extensions.get(Oid.extKeyUsage);
  if (ekuExt) {
    const eku = extKeyUsages(ekuExt);
    const usage = options.usage ?? 'any';
    if ((usage === 'client' || usage === 'any') && !eku.includes(Oid.clientAuth)) throw bad('leaf extKeyUsage lacks clientAuth');
    if ((usage === 'server' || usage === 'any') && !eku.includes(Oid.serverAuth)) throw bad('leaf extKeyUsage lacks serverAuth');
  }
  const san = uriSan(cert);
  if (isEmptyName(cert.subject) && !san.critical) throw bad('subject is empty but the subjectAltName extension is not critical');
  let id: SpiffeId;
  try {
    id = parseWorkloadId(san.uri);
  } catch (e) {
    throw new TollgateError('TG_SVID_INVALID', `URI SAN is not a workload SPIFFE ID: ${(e as Error).message}`);
  }
  if (options.now !== undefined) checkValidity(cert, options.now, 'certificate');
  return id;
}

/** Check a signing (CA) certificate: cA=true, keyCertSign, and a SPIFFE ID with no path if it has one. */
export function checkSigningProfile(cert: ParsedCertificate): { trustDomain: string | undefined; pathLen: number | undefined } {
  const bcExt = cert.extensions.get(Oid.basicConstraints);
  if (!bcExt || !basicConstraints(bcExt).ca) throw bad('issuer certificate is not a CA (basicConstraints cA=false or missing)');
  const kuExt = cert.extensions.get(Oid.keyUsage);
  if (!kuExt || !keyUsageBits(kuExt).has(KeyUsage.keyCertSign)) throw bad('issuer certificate lacks keyUsage keyCertSign');
  let trustDomain: string | undefined;
  const sanExt = cert.extensions.get(Oid.subjectAltName);
  if (sanExt) {
    const uris = subjectAltNames(sanExt).uris;
    if (uris.length > 1) throw bad('signing certificate has more than one URI SAN');
    if (uris.length === 1) {
      const id = parseSpiffeId(uris[0]!);
      if (id.path !== '') throw bad(`signing certificate SPIFFE ID ${id.id} has a path; signing certificates may not`);
      trustDomain = id.trustDomain;
    }
  }
  return { trustDomain, pathLen: basicConstraints(bcExt).pathLen };
}

export interface ChainInput {
  readonly leaf: Buffer;
  /** Intermediates the peer sent (any order). */
  readonly intermediates: readonly Buffer[];
  /** Trusted roots (the current bundle). */
  readonly roots: readonly Buffer[];
  readonly now: number;
  readonly usage?: Usage;
  /** When set, the leaf's trust domain must be this one. */
  readonly trustDomain?: string;
}

export interface VerifiedChain {
  readonly spiffeId: SpiffeId;
  readonly leaf: ParsedCertificate;
  /** leaf, intermediates..., root */
  readonly path: readonly ParsedCertificate[];
}

const MAX_DEPTH = 5;

// ECDSA signature algorithms (RFC 5758: no parameters), checked with node:crypto on the TBS bytes we
// already hold. Anything else goes through X509Certificate, which is ~10x slower per call.
// Without an entry a signature goes to X509Certificate, which answers the same (tested); only speed
// differs. The mutants that only remove fast-path entries are marked equivalent below.
// Stryker disable next-line ArrayDeclaration: no fast path at all, same answers
const ECDSA_HASH = new Map<string, string>([
  // Stryker disable next-line StringLiteral: an empty digest name sends SHA-256 to the fallback, same answers
  ['300a06082a8648ce3d040302', 'sha256'],
  // Stryker disable next-line ArrayDeclaration,StringLiteral: SHA-384 to the fallback, same answers
  ['300a06082a8648ce3d040303', 'sha384'],
  ['300a06082a8648ce3d040304', 'sha512'],
]);

// Issuer public keys by SPKI bytes: importing one costs ~200 µs, and a CA or sidecar sees few issuers.
const issuerKeys = new Map<string, KeyObject>();
const MAX_ISSUER_KEYS = 256;

function issuerKey(spki: Buffer): KeyObject {
  const k = spki.toString('latin1');
  let key = issuerKeys.get(k);
  if (!key) {
    key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    // Stryker disable next-line ConditionalExpression,EqualityOperator: the bound only limits memory; any eviction policy gives the same keys
    if (issuerKeys.size >= MAX_ISSUER_KEYS) issuerKeys.delete(issuerKeys.keys().next().value as string);
    issuerKeys.set(k, key);
  }
  return key;
}

/** True when `issuer`'s key signed `child` (names match, algorithms agree, signature verifies). */
export function signedBy(child: ParsedCertificate, issuer: ParsedCertificate): boolean {
  if (!child.issuer.equals(issuer.subject)) return false;
  // As OpenSSL's X509_verify: the outer algorithm must equal the one the TBS commits to.
  if (!child.signatureAlgorithm.equals(child.tbsSignatureAlgorithm)) return false;
  const hashName = ECDSA_HASH.get(child.signatureAlgorithm.toString('hex'));
  try {
    if (hashName) {
      if (child.signatureBits[0] !== 0) return false; // unused bits in a signature: malformed
      return verify(hashName, child.tbs, issuerKey(issuer.spki), child.signatureBits.subarray(1));
    }
    return new X509Certificate(child.der).verify(new X509Certificate(issuer.der).publicKey);
  } catch {
    return false;
  }
}

/** Verify leaf -> intermediates -> a root of the bundle; profile, validity and path length on every link. */
export function verifySvidChain(input: ChainInput): VerifiedChain {
  const leaf = parseCertificate(input.leaf);
  const spiffeId = checkLeafProfile(leaf, { now: input.now, ...(input.usage ? { usage: input.usage } : {}) });
  if (input.trustDomain !== undefined && spiffeId.trustDomain !== input.trustDomain) {
    throw new TollgateError('TG_SVID_UNTRUSTED', `certificate is for trust domain ${spiffeId.trustDomain}, not ${input.trustDomain}`);
  }
  const roots = input.roots.map((r) => parseCertificate(r));
  const pool = input.intermediates.map((c) => parseCertificate(c));
  const path: ParsedCertificate[] = [leaf];
  let current = leaf;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const root = roots.find((r) => signedBy(current, r));
    if (root) {
      checkIssuerLink(root, path, input.now, spiffeId);
      path.push(root);
      return { spiffeId, leaf, path };
    }
    const next = pool.find((c) => !path.includes(c) && signedBy(current, c));
    if (!next) break;
    checkIssuerLink(next, path, input.now, spiffeId);
    path.push(next);
    current = next;
  }
  throw new TollgateError('TG_SVID_UNTRUSTED', 'certificate does not chain to a root of the current trust bundle');
}

function checkIssuerLink(issuer: ParsedCertificate, below: ParsedCertificate[], now: number, leafId: SpiffeId): void {
  const { trustDomain, pathLen } = checkSigningProfile(issuer);
  if (trustDomain !== undefined && trustDomain !== leafId.trustDomain) {
    throw new TollgateError('TG_SVID_UNTRUSTED', `issuer belongs to trust domain ${trustDomain}, the leaf to ${leafId.trustDomain}`);
  }
  const casBelow = below.length - 1;
  if (casBelow > (pathLen ?? Infinity)) throw bad('chain exceeds an issuer\'s pathLenConstraint');
  checkValidity(issuer, now, 'issuer certificate');
}
