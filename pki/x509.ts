// A small, fast reader for the X.509 fields Tollgate decides on (profile checks run per
// connection in the sidecar and per renewal in the CA). Display and inspection use @peculiar/x509.
import { createHash } from 'node:crypto';
import { Tag, children, content, decodeOid, decodeTime, expectTag, readElement, whole, type Element } from './der.ts';
import { TollgateError } from '../common/errors.ts';

export const Oid = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  nameConstraints: '2.5.29.30',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  ecPublicKey: '1.2.840.10045.2.1',
  prime256v1: '1.2.840.10045.3.1.7',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  /** Tollgate's private, non-critical leaf extension: GeneralizedTime until which the attestation holds (a UUID OID, X.667). */
  tollgateAttestedUntil: '2.25.28947762646321998858398094510211822248',
} as const;

/** keyUsage bit numbers (RFC 5280 4.2.1.3). */
export const KeyUsage = { digitalSignature: 0, keyEncipherment: 2, keyAgreement: 4, keyCertSign: 5, cRLSign: 6 } as const;

export interface Extension {
  readonly critical: boolean;
  readonly value: Buffer;
}

export interface ParsedCertificate {
  readonly der: Buffer;
  readonly tbs: Buffer;
  readonly version: number;
  readonly serialHex: string;
  readonly issuer: Buffer;
  readonly subject: Buffer;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly spki: Buffer;
  readonly extensions: ReadonlyMap<string, Extension>;
  readonly duplicateExtension: boolean;
  /** The outer signatureAlgorithm (whole DER element) and the one inside the TBS, which must match. */
  readonly signatureAlgorithm: Buffer;
  readonly tbsSignatureAlgorithm: Buffer;
  /** Contents of the signature BIT STRING, its unused-bits byte first. */
  readonly signatureBits: Buffer;
}

export function parseCertificate(der: Buffer): ParsedCertificate {
  const cert = expectTag(readElement(der, 0), Tag.SEQUENCE, 'Certificate SEQUENCE');
  if (cert.end !== der.length) throw new TollgateError('TG_CERT_INVALID', 'invalid DER: trailing bytes after the certificate');
  const [tbsEl, algEl, sigEl] = children(der, cert);
  expectTag(tbsEl, Tag.SEQUENCE, 'TBSCertificate');
  expectTag(algEl, Tag.SEQUENCE, 'signatureAlgorithm');
  expectTag(sigEl, Tag.BIT_STRING, 'signature');
  const f = children(der, tbsEl!);
  let i = 0;
  let version = 1;
  if (f[0]?.tag === Tag.CTX0) {
    const v = expectTag(children(der, f[0])[0], Tag.INTEGER, 'version');
    version = der[v.start]! + 1;
    i = 1;
  }
  const serial = expectTag(f[i], Tag.INTEGER, 'serialNumber');
  const tbsAlg = expectTag(f[i + 1], Tag.SEQUENCE, 'signature algorithm');
  const issuer = expectTag(f[i + 2], Tag.SEQUENCE, 'issuer');
  const validity = expectTag(f[i + 3], Tag.SEQUENCE, 'validity');
  const subject = expectTag(f[i + 4], Tag.SEQUENCE, 'subject');
  const spki = expectTag(f[i + 5], Tag.SEQUENCE, 'subjectPublicKeyInfo');
  const [nb, na] = children(der, validity);
  if (!nb || !na) throw new TollgateError('TG_CERT_INVALID', 'invalid DER: validity needs notBefore and notAfter');
  const extensions = new Map<string, Extension>();
  let duplicateExtension = false;
  const extWrap = f.slice(i + 6).find((e) => e.tag === Tag.CTX3);
  if (extWrap) {
    const list = expectTag(children(der, extWrap)[0], Tag.SEQUENCE, 'extensions');
    for (const ext of children(der, list)) {
      const parts = children(der, ext);
      const oid = decodeOid(content(der, expectTag(parts[0], Tag.OID, 'extension OID')));
      let critical = false;
      let valueEl: Element | undefined = parts[1];
      if (valueEl?.tag === Tag.BOOLEAN) {
        critical = der[valueEl.start] !== 0;
        valueEl = parts[2];
      }
      const value = content(der, expectTag(valueEl, Tag.OCTET_STRING, 'extension value'));
      if (extensions.has(oid)) duplicateExtension = true;
      extensions.set(oid, { critical, value });
    }
  }
  let serialBytes = content(der, serial);
  while (serialBytes.length > 1 && serialBytes[0] === 0) serialBytes = serialBytes.subarray(1);
  return {
    der,
    tbs: whole(der, tbsEl!),
    version,
    serialHex: serialBytes.toString('hex'),
    issuer: whole(der, issuer),
    subject: whole(der, subject),
    notBefore: decodeTime(der, nb),
    notAfter: decodeTime(der, na),
    spki: whole(der, spki),
    extensions,
    duplicateExtension,
    signatureAlgorithm: whole(der, algEl!),
    tbsSignatureAlgorithm: whole(der, tbsAlg),
    signatureBits: content(der, sigEl!),
  };
}

export interface BasicConstraints {
  readonly ca: boolean;
  readonly pathLen: number | undefined;
}

export function basicConstraints(ext: Extension): BasicConstraints {
  const seq = expectTag(readElement(ext.value, 0), Tag.SEQUENCE, 'basicConstraints');
  let ca = false;
  let pathLen: number | undefined;
  for (const e of children(ext.value, seq)) {
    if (e.tag === Tag.BOOLEAN) ca = ext.value[e.start] !== 0;
    else if (e.tag === Tag.INTEGER) pathLen = ext.value.readUIntBE(e.start, Math.min(6, e.end - e.start));
  }
  return { ca, pathLen };
}

/** Set of keyUsage bit numbers that are asserted. */
export function keyUsageBits(ext: Extension): Set<number> {
  const bs = expectTag(readElement(ext.value, 0), Tag.BIT_STRING, 'keyUsage');
  const bits = new Set<number>();
  for (let i = bs.start + 1; i < bs.end; i++) {
    const byte = ext.value[i]!;
    for (let b = 0; b < 8; b++) if (byte & (0x80 >> b)) bits.add((i - bs.start - 1) * 8 + b);
  }
  return bits;
}

export function extKeyUsages(ext: Extension): string[] {
  const seq = expectTag(readElement(ext.value, 0), Tag.SEQUENCE, 'extKeyUsage');
  return children(ext.value, seq).map((e) => decodeOid(content(ext.value, e)));
}

export interface SubjectAltNames {
  readonly uris: string[];
  readonly dns: string[];
  readonly other: number;
}

export function subjectAltNames(ext: Extension): SubjectAltNames {
  const seq = expectTag(readElement(ext.value, 0), Tag.SEQUENCE, 'subjectAltName');
  const uris: string[] = [];
  const dns: string[] = [];
  let other = 0;
  for (const e of children(ext.value, seq)) {
    if (e.tag === 0x86) uris.push(ext.value.toString('latin1', e.start, e.end));
    else if (e.tag === 0x82) dns.push(ext.value.toString('latin1', e.start, e.end));
    else other++;
  }
  return { uris, dns, other };
}

/** An uncompressed P-256 SubjectPublicKeyInfo is these 26 bytes, then 0x04 and X, Y (91 bytes in all). */
export const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
export const P256_SPKI_LENGTH = 91;

/** True for the one fixed-shape SPKI Tollgate issues for: P-256, named curve, uncompressed point. */
export function isP256Spki(spki: Buffer): boolean {
  return (
    spki.length === P256_SPKI_LENGTH &&
    spki[P256_SPKI_PREFIX.length] === 0x04 &&
    spki.compare(P256_SPKI_PREFIX, 0, P256_SPKI_PREFIX.length, 0, P256_SPKI_PREFIX.length) === 0
  );
}

/** RFC 5280 method 1 key identifier: SHA-1 of the subjectPublicKey BIT STRING contents. */
export function keyIdentifier(spki: Buffer): Buffer {
  const seq = readElement(spki, 0);
  const parts = children(spki, seq);
  const bits = expectTag(parts[1], Tag.BIT_STRING, 'subjectPublicKey');
  return createHash('sha1').update(spki.subarray(bits.start + 1, bits.end)).digest();
}

export function subjectKeyId(cert: ParsedCertificate): Buffer | undefined {
  const ext = cert.extensions.get(Oid.subjectKeyId);
  if (!ext) return undefined;
  return content(ext.value, expectTag(readElement(ext.value, 0), Tag.OCTET_STRING, 'subjectKeyIdentifier'));
}

export function authorityKeyId(cert: ParsedCertificate): Buffer | undefined {
  const ext = cert.extensions.get(Oid.authorityKeyId);
  if (!ext) return undefined;
  const seq = expectTag(readElement(ext.value, 0), Tag.SEQUENCE, 'authorityKeyIdentifier');
  const kid = children(ext.value, seq).find((e) => e.tag === 0x80);
  return kid ? content(ext.value, kid) : undefined;
}

/** True when a Name is the empty SEQUENCE. */
export function isEmptyName(name: Buffer): boolean {
  return name.length === 2 && name[0] === Tag.SEQUENCE && name[1] === 0;
}
