// Leaf X.509-SVIDs written by offsets into one preallocated buffer and signed with node:crypto.
// @peculiar/x509 builds ~580 certs/s here; this path is bounded by one ECDSA signature per leaf, so
// everything else is kept off the heap: constant parts are encoded once per issuer, the variable
// ones (serial, validity, SPKI, SAN, SKI) are written in place, and lengths are computed, not built.
// Building a credential is kept apart from validating one (pki/svid-validate.ts), as SPIRE does.
import { hash, randomFillSync, sign, type KeyObject } from 'node:crypto';
import { Tag, decodeTime, encodeOid, expectTag, headerLength, readElement, timeLength, tlv, writeHeader, writeTime } from './der.ts';
import { TollgateError } from '../common/errors.ts';
import { parseWorkloadId } from './spiffe-id.ts';
import { Oid, P256_SPKI_PREFIX, isP256Spki, keyIdentifier, parseCertificate, subjectKeyId, type ParsedCertificate } from './x509.ts';

const VERSION_3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]);
const ECDSA_SHA256 = tlv(Tag.SEQUENCE, encodeOid(Oid.ecdsaWithSha256));
const EMPTY_NAME = Buffer.from([0x30, 0x00]);
const CRITICAL = Buffer.from([0x01, 0x01, 0xff]);

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return critical ? tlv(Tag.SEQUENCE, encodeOid(oid), CRITICAL, tlv(Tag.OCTET_STRING, value)) : tlv(Tag.SEQUENCE, encodeOid(oid), tlv(Tag.OCTET_STRING, value));
}

// Constant extensions of every leaf: cA=false; keyUsage digitalSignature only (critical);
// extKeyUsage serverAuth + clientAuth.
const FIXED_EXTENSIONS = Buffer.concat([
  extension(Oid.basicConstraints, true, Buffer.from([0x30, 0x00])),
  extension(Oid.keyUsage, true, Buffer.from([0x03, 0x02, 0x07, 0x80])),
  extension(Oid.extKeyUsage, false, tlv(Tag.SEQUENCE, encodeOid(Oid.serverAuth), encodeOid(Oid.clientAuth))),
]);
const SKI_PREFIX = Buffer.concat([Buffer.from([0x30, 0x1d]), encodeOid(Oid.subjectKeyId), Buffer.from([0x04, 0x16, 0x04, 0x14])]);
const SKI_EXT_LENGTH = SKI_PREFIX.length + 20;
// subjectAltName OID then critical=TRUE: the SAN is critical because the subject is empty
// (RFC 5280 4.2.1.6, SPIFFE X509-SVID 4.1).
const SAN_HEAD = Buffer.concat([encodeOid(Oid.subjectAltName), CRITICAL]);
const SERIAL_HEAD = Buffer.from([Tag.INTEGER, 0x11, 0x00]);
// "Attested until": SEQUENCE { OID, OCTET STRING { GeneralizedTime YYYYMMDDHHMMSSZ } }, non-critical,
// so any verifier that does not know it ignores it. Fixed length: only the 15 time digits vary.
const ATTESTED_TIME_LENGTH = 15;
const ATTESTED_OID = encodeOid(Oid.tollgateAttestedUntil);
const ATTESTED_PREFIX = Buffer.concat([
  Buffer.from([Tag.SEQUENCE, ATTESTED_OID.length + 2 + 2 + ATTESTED_TIME_LENGTH]),
  ATTESTED_OID,
  Buffer.from([Tag.OCTET_STRING, 2 + ATTESTED_TIME_LENGTH, Tag.GENERALIZED_TIME, ATTESTED_TIME_LENGTH]),
]);
const ATTESTED_EXT_LENGTH = ATTESTED_PREFIX.length + ATTESTED_TIME_LENGTH;

/** YYYYMMDDHHMMSSZ of `ms` (whole seconds, rounded down). */
function generalizedTime(ms: number): string {
  const iso = new Date(Math.floor(ms / 1000) * 1000).toISOString(); // 2026-12-04T23:05:26.000Z
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}

/** The "attested until" time a leaf carries (epoch ms), or undefined when it has none. */
export function attestedUntilOf(cert: ParsedCertificate): number | undefined {
  const ext = cert.extensions.get(Oid.tollgateAttestedUntil);
  if (!ext) return undefined;
  const outer = readElement(ext.value, 0, ext.value.length, 'TG_SVID_INVALID');
  const t = expectTag(outer, Tag.GENERALIZED_TIME, 'attested-until time', 'TG_SVID_INVALID');
  return decodeTime(ext.value, t, 'TG_SVID_INVALID');
}

export interface LeafRequest {
  /** DER SubjectPublicKeyInfo of the workload key (already verified from its CSR). */
  readonly spki: Buffer;
  readonly spiffeId: string;
  readonly notBefore: number;
  readonly notAfter: number;
  /** 16 bytes; random when omitted. */
  readonly serial?: Buffer;
  /** Epoch ms until which the workload's attestation holds; written as a private extension when set. */
  readonly attestedUntil?: number | undefined;
}

export interface IssuedLeaf {
  readonly der: Buffer;
  readonly serialHex: string;
}

/** 128-bit positive serial: DER INTEGER 0x00 + 16 bytes with the top bit set, so its length is fixed. */
export function newSerial(): Buffer {
  const b = Buffer.allocUnsafe(16);
  randomFillSync(b);
  b[0]! |= 0x80;
  return b;
}

/** RFC 5280 method-1 key identifier, without parsing when the SPKI is the fixed P-256 form. */
function subjectKeyIdentifier(spki: Buffer): Buffer {
  return isP256Spki(spki) ? hash('sha1', spki.subarray(P256_SPKI_PREFIX.length), 'buffer') : keyIdentifier(spki);
}

/** A small map that forgets everything when full: for values that are cheap to recompute. */
class BoundedMemo<V> {
  readonly #map = new Map<string, V>();
  constructor(readonly max: number) {}
  get(key: string, make: () => V): V {
    let v = this.#map.get(key);
    if (v === undefined) {
      v = make();
      // Stryker disable next-line ConditionalExpression,EqualityOperator: when to forget only bounds memory; a forgotten value is recomputed the same
      if (this.#map.size >= this.max) this.#map.clear();
      this.#map.set(key, v);
    }
    return v;
  }
}

const SERIAL_POOL_BYTES = 16 * 256;
const MEMO_ENTRIES = 4096;
const SCRATCH_BYTES = 4096;

export class LeafTemplate {
  readonly #key: KeyObject;
  /** version, serial header: the bytes before the serial. */
  readonly #head = Buffer.concat([VERSION_3, SERIAL_HEAD]);
  /** signature algorithm and issuer name: the bytes between serial and validity. */
  readonly #mid: Buffer;
  /** authorityKeyIdentifier, the last extension. */
  readonly #akiExt: Buffer;
  readonly #fixedExtLength: number;
  #scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  readonly #serials = Buffer.allocUnsafe(SERIAL_POOL_BYTES);
  #serialAt = SERIAL_POOL_BYTES;
  // Renewals repeat the same few thousand IDs and keys: the checked SPIFFE IDs and the SHA-1 key
  // identifiers are remembered (by content), and so is the encoded validity of the current second.
  readonly #validIds = new BoundedMemo<true>(MEMO_ENTRIES);
  readonly #keyIds = new BoundedMemo<Buffer>(MEMO_ENTRIES);
  // Stryker disable next-line ObjectLiteral: the initial value only has to miss the cache, which an empty object does too
  #validity = { notBefore: NaN, notAfter: NaN, der: Buffer.alloc(0) };
  // Stryker disable next-line ObjectLiteral: the initial value only has to miss the cache, which an empty object does too
  #attested = { sec: NaN, der: Buffer.alloc(0) };
  readonly issuerNotAfter: number;
  readonly issuerNotBefore: number;

  constructor(options: { issuerCertificate: Buffer; issuerKey: KeyObject }) {
    const issuer = parseCertificate(options.issuerCertificate);
    const kid = subjectKeyId(issuer) ?? keyIdentifier(issuer.spki);
    this.#akiExt = extension(Oid.authorityKeyId, false, tlv(Tag.SEQUENCE, tlv(0x80, kid)));
    this.#mid = Buffer.concat([ECDSA_SHA256, issuer.subject]);
    this.#fixedExtLength = FIXED_EXTENSIONS.length + SKI_EXT_LENGTH + this.#akiExt.length;
    this.#key = options.issuerKey;
    this.issuerNotAfter = issuer.notAfter;
    this.issuerNotBefore = issuer.notBefore;
  }

  #checkId(id: string): void {
    this.#validIds.get(id, () => {
      parseWorkloadId(id); // throws on anything but a strict workload SPIFFE ID (so ASCII only)
      // Stryker disable next-line BooleanLiteral: any defined value marks the ID as checked
      return true;
    });
  }

  /** Validity ::= SEQUENCE { notBefore, notAfter } at whole seconds, re-encoded when either changes. */
  #validityDer(notBefore: number, notAfter: number): Buffer {
    // Stryker disable next-line ArithmeticOperator: the cache key only has to be the same within a second; a finer key re-encodes the same bytes
    const nb = Math.floor(notBefore / 1000);
    // Stryker disable next-line ArithmeticOperator: as above
    const na = Math.floor(notAfter / 1000);
    const v = this.#validity;
    if (v.notBefore === nb && v.notAfter === na) return v.der;
    const body = timeLength(notBefore) + timeLength(notAfter);
    const der = Buffer.allocUnsafe(headerLength(body) + body);
    writeTime(der, writeTime(der, writeHeader(der, 0, Tag.SEQUENCE, body), notBefore), notAfter);
    // Stryker disable next-line ObjectLiteral: forgetting the cached validity re-encodes the same bytes next time
    this.#validity = { notBefore: nb, notAfter: na, der };
    return der;
  }

  /** The encoded "attested until" time; renewals of one workload repeat it, so the last one is kept. */
  #attestedTime(ms: number): Buffer {
    // Stryker disable next-line ArithmeticOperator: the cache key only has to be the same within a second
    const sec = Math.floor(ms / 1000);
    // Stryker disable next-line StringLiteral: the time is ASCII, which latin1 and the default utf8 encode alike
    if (this.#attested.sec !== sec) this.#attested = { sec, der: Buffer.from(generalizedTime(ms), 'latin1') };
    return this.#attested.der;
  }

  #nextSerial(): Buffer {
    if (this.#serialAt + 16 > SERIAL_POOL_BYTES) {
      // One CSPRNG call per 256 serials; a serial is copied into its leaf before the pool is reused.
      randomFillSync(this.#serials);
      this.#serialAt = 0;
    }
    const s = this.#serials.subarray(this.#serialAt, this.#serialAt + 16);
    this.#serialAt += 16;
    s[0]! |= 0x80;
    return s;
  }

  /** Build and sign a leaf on this thread. */
  issue(req: LeafRequest): IssuedLeaf {
    const { tbs, serialHex } = this.#writeTbs(req);
    return { der: assemble(tbs, sign('sha256', tbs, this.#key)), serialHex };
  }

  /** The TBSCertificate of a leaf, written into the scratch buffer (valid until the next call). */
  #writeTbs(req: LeafRequest): { tbs: Buffer; serialHex: string } {
    this.#checkId(req.spiffeId);
    if (req.notAfter > this.issuerNotAfter) {
      throw new TollgateError('TG_AUTHORITY_EXPIRED', 'a leaf may not outlive its issuer: notAfter is past the intermediate\'s notAfter');
    }
    if (req.notAfter <= req.notBefore) throw new TollgateError('TG_TTL_INVALID', 'notAfter must be after notBefore');
    const serial = req.serial ?? this.#nextSerial();
    if (serial.length !== 16 || (serial[0]! & 0x80) === 0) throw new TollgateError('TG_INTERNAL', 'serial must be 16 bytes with the top bit set');
    const { spki, spiffeId } = req;

    // Lengths, innermost first.
    const uriLen = spiffeId.length; // ASCII: checked by parseWorkloadId
    const gnLen = headerLength(uriLen) + uriLen;
    const sanSeqLen = headerLength(gnLen) + gnLen;
    const sanOctLen = headerLength(sanSeqLen) + sanSeqLen;
    const sanBody = SAN_HEAD.length + sanOctLen;
    const attested = req.attestedUntil === undefined ? undefined : this.#attestedTime(req.attestedUntil);
    const extsBody = this.#fixedExtLength + headerLength(sanBody) + sanBody + (attested ? ATTESTED_EXT_LENGTH : 0);
    const extsLen = headerLength(extsBody) + extsBody;
    const validity = this.#validityDer(req.notBefore, req.notAfter);
    const keyId = this.#keyIds.get(spki.toString('latin1'), () => subjectKeyIdentifier(spki));
    const tbsBody = this.#head.length + 16 + this.#mid.length + validity.length + EMPTY_NAME.length + spki.length + headerLength(extsLen) + extsLen;
    const tbsLen = headerLength(tbsBody) + tbsBody;
    if (this.#scratch.length < tbsLen) this.#scratch = Buffer.allocUnsafe(tbsLen);
    const b = this.#scratch;

    let o = writeHeader(b, 0, Tag.SEQUENCE, tbsBody);
    o += this.#head.copy(b, o);
    o += serial.copy(b, o);
    o += this.#mid.copy(b, o);
    o += validity.copy(b, o);
    o += EMPTY_NAME.copy(b, o);
    o += spki.copy(b, o);
    o = writeHeader(b, o, Tag.CTX3, extsLen);
    o = writeHeader(b, o, Tag.SEQUENCE, extsBody);
    o += FIXED_EXTENSIONS.copy(b, o);
    o = writeHeader(b, o, Tag.SEQUENCE, sanBody);
    o += SAN_HEAD.copy(b, o);
    o = writeHeader(b, o, Tag.OCTET_STRING, sanSeqLen);
    o = writeHeader(b, o, Tag.SEQUENCE, gnLen);
    o = writeHeader(b, o, 0x86, uriLen);
    // Stryker disable next-line StringLiteral: the ID is ASCII (parseWorkloadId), which latin1 and the default utf8 write alike
    o += b.write(spiffeId, o, 'latin1');
    o += SKI_PREFIX.copy(b, o);
    o += keyId.copy(b, o);
    o += this.#akiExt.copy(b, o);
    if (attested) {
      o += ATTESTED_PREFIX.copy(b, o);
      o += attested.copy(b, o);
    }
    // Stryker disable next-line StringLiteral: the words of a self-check of the length arithmetic, unreachable while it is right (the reference test compares every byte)
    if (o !== tbsLen) throw new TollgateError('TG_INTERNAL', `leaf template wrote ${o} bytes, expected ${tbsLen}`);
    return { tbs: b.subarray(0, tbsLen), serialHex: serial.toString('hex') };
  }
}

/** Certificate ::= SEQUENCE { tbs, ecdsa-with-SHA256, BIT STRING signature }, in one allocation. */
function assemble(tbs: Buffer, sig: Buffer): Buffer {
  const bitsLen = sig.length + 1;
  const certBody = tbs.length + ECDSA_SHA256.length + headerLength(bitsLen) + bitsLen;
  const der = Buffer.allocUnsafe(headerLength(certBody) + certBody);
  let d = writeHeader(der, 0, Tag.SEQUENCE, certBody);
  d += tbs.copy(der, d);
  d += ECDSA_SHA256.copy(der, d);
  d = writeHeader(der, d, Tag.BIT_STRING, bitsLen);
  der[d++] = 0;
  sig.copy(der, d);
  return der;
}
