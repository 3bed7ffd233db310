// PKCS#10 requests. The CA reads a CSR only for its public key: the self-signature must verify and the
// key must be ECDSA P-256; subject and SANs are ignored (identity comes from attestation, never here).
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { Tag, children, content, decodeOid, encodeOid, expectTag, readElement, tlv, whole } from './der.ts';
import { TollgateError } from '../common/errors.ts';
import { Oid, P256_SPKI_LENGTH, P256_SPKI_PREFIX, isP256Spki } from './x509.ts';

export const MAX_CSR_BYTES = 4096;

export interface VerifiedCsr {
  /** DER SubjectPublicKeyInfo of the P-256 key in canonical form (uncompressed point), whatever the requester sent. */
  readonly spki: Buffer;
  readonly publicKey: KeyObject;
}

const CODE = 'TG_CSR_INVALID' as const;

// OpenSSL 3's SPKI decoder costs about twice a JWK import of the same point, so the fixed P-256 form
// goes in as X and Y. Both paths check the point is on the curve; any other form takes the decoder.
function importPublicKey(spki: Buffer): KeyObject {
  if (!isP256Spki(spki)) return createPublicKey({ key: spki, format: 'der', type: 'spki' });
  const x = spki.toString('base64url', P256_SPKI_LENGTH - 64, P256_SPKI_LENGTH - 32);
  const y = spki.toString('base64url', P256_SPKI_LENGTH - 32, P256_SPKI_LENGTH);
  return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x, y }, format: 'jwk' });
}

/** The SPKI of a P-256 key with its point uncompressed (a KeyObject keeps the form it was given in). */
function uncompressedSpki(key: KeyObject): Buffer {
  const { x, y } = key.export({ format: 'jwk' });
  return Buffer.concat([P256_SPKI_PREFIX, Buffer.from([0x04]), Buffer.from(x!, 'base64url'), Buffer.from(y!, 'base64url')]);
}

interface UnverifiedCsr extends VerifiedCsr {
  /** CertificationRequestInfo DER, the signed bytes. */
  readonly info: Buffer;
  /** DER ECDSA signature. */
  readonly signature: Buffer;
}

/** Everything but the self-signature check: structure, P-256 key, algorithm. */
function readCsr(der: Uint8Array): UnverifiedCsr {
  const buf = Buffer.isBuffer(der) ? der : Buffer.from(der);
  if (buf.length === 0) throw new TollgateError(CODE, 'CSR is empty');
  if (buf.length > MAX_CSR_BYTES) throw new TollgateError(CODE, `CSR is ${buf.length} bytes; the limit is ${MAX_CSR_BYTES}`);
  const req = expectTag(readElement(buf, 0, buf.length, CODE), Tag.SEQUENCE, 'CertificationRequest SEQUENCE', CODE);
  if (req.end !== buf.length) throw new TollgateError(CODE, 'CSR has trailing bytes after the request');
  const [infoEl, algEl, sigEl] = children(buf, req, CODE);
  expectTag(infoEl, Tag.SEQUENCE, 'CertificationRequestInfo', CODE);
  expectTag(algEl, Tag.SEQUENCE, 'signatureAlgorithm', CODE);
  expectTag(sigEl, Tag.BIT_STRING, 'signature', CODE);
  const info = children(buf, infoEl!, CODE);
  const spkiEl = expectTag(info[2], Tag.SEQUENCE, 'subjectPublicKeyInfo', CODE);
  const spki = Buffer.from(whole(buf, spkiEl));

  const spkiParts = children(buf, spkiEl, CODE);
  const keyAlg = children(buf, expectTag(spkiParts[0], Tag.SEQUENCE, 'public key algorithm', CODE), CODE);
  const keyOid = decodeOid(content(buf, expectTag(keyAlg[0], Tag.OID, 'public key algorithm OID', CODE)));
  if (keyOid !== Oid.ecPublicKey) {
    const name = keyOid === '1.2.840.113549.1.1.1' ? 'RSA' : keyOid === '1.3.101.112' ? 'Ed25519' : keyOid;
    throw new TollgateError('TG_CSR_KEY_UNSUPPORTED', `CSR key is ${name}; Tollgate issues only for ECDSA P-256 keys`);
  }
  const curveEl = keyAlg[1];
  const curve = curveEl?.tag === Tag.OID ? decodeOid(content(buf, curveEl)) : 'unknown';
  if (curve !== Oid.prime256v1) {
    const name = curve === '1.3.132.0.34' ? 'P-384' : curve === '1.3.132.0.35' ? 'P-521' : curve;
    throw new TollgateError('TG_CSR_KEY_UNSUPPORTED', `CSR key is ECDSA ${name}; Tollgate issues only for ECDSA P-256 keys`);
  }
  let publicKey: KeyObject;
  try {
    publicKey = importPublicKey(spki);
  } catch (e) {
    throw new TollgateError(CODE, 'CSR public key is not a valid P-256 point', { cause: e });
  }
  const sigAlg = decodeOid(content(buf, expectTag(children(buf, algEl!, CODE)[0], Tag.OID, 'signature algorithm OID', CODE)));
  if (sigAlg !== Oid.ecdsaWithSha256) throw new TollgateError(CODE, `CSR signature algorithm ${sigAlg} is not ecdsa-with-SHA256`);
  const sig = content(buf, sigEl!);
  if (sig[0] !== 0) throw new TollgateError(CODE, 'CSR signature BIT STRING has unused bits');
  // A compressed point (or any other non-canonical form) is re-encoded uncompressed: the certificate
  // carries the one form every peer parses (Go's crypto/x509 rejects compressed P-256 keys).
  const canonical = isP256Spki(spki) ? spki : uncompressedSpki(publicKey);
  return { spki: canonical, publicKey, info: whole(buf, infoEl!), signature: sig.subarray(1) };
}

/** Parse a CSR and verify its self-signature; throws TG_CSR_INVALID or TG_CSR_KEY_UNSUPPORTED. */
export function parseCsr(der: Uint8Array): VerifiedCsr {
  const csr = readCsr(der);
  // With an EC key, verify() answers false for any signature bytes (malformed DER included); it does not throw.
  if (!verify('sha256', csr.info, csr.publicKey, csr.signature)) throw new TollgateError(CODE, 'CSR self-signature does not verify with its own public key');
  return { spki: csr.spki, publicKey: csr.publicKey };
}

const ECDSA_SHA256 = tlv(Tag.SEQUENCE, encodeOid(Oid.ecdsaWithSha256));

/** Build a minimal CSR (empty subject, no attributes) for an in-memory P-256 key. */
export function createCsr(privateKey: KeyObject): Buffer {
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const info = tlv(Tag.SEQUENCE, Buffer.from([0x02, 0x01, 0x00]), Buffer.from([0x30, 0x00]), spki, Buffer.from([0xa0, 0x00]));
  const sig = sign('sha256', info, privateKey);
  return tlv(Tag.SEQUENCE, info, ECDSA_SHA256, tlv(Tag.BIT_STRING, Buffer.from([0]), sig));
}
