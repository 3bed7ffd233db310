// Test support (imported only by tests): a real root → intermediate chain built with node:crypto and
// our DER template, plus a builder for deliberately broken leaves. Kept in pki/ so unit tests beside
// pki code need nothing from ca/.
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { Tag, encodeOid, encodeTime, tlv } from './der.ts';
import { Oid, keyIdentifier } from './x509.ts';

const ECDSA_SHA256 = tlv(Tag.SEQUENCE, encodeOid(Oid.ecdsaWithSha256));

export interface KeyPair {
  readonly key: KeyObject;
  readonly spki: Buffer;
}

export function p256(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { key: privateKey, spki: publicKey.export({ format: 'der', type: 'spki' }) };
}

function ext(oid: string, critical: boolean, value: Buffer): Buffer {
  return tlv(Tag.SEQUENCE, encodeOid(oid), ...(critical ? [Buffer.from([1, 1, 0xff])] : []), tlv(Tag.OCTET_STRING, value));
}

function name(cn: string): Buffer {
  if (cn === '') return Buffer.from([0x30, 0]);
  return tlv(Tag.SEQUENCE, tlv(Tag.SET, tlv(Tag.SEQUENCE, encodeOid('2.5.4.3'), tlv(Tag.UTF8_STRING, Buffer.from(cn)))));
}

export interface CertSpec {
  subject?: string;
  issuerName: string;
  issuerKey: KeyObject;
  issuerSpki: Buffer;
  spki: Buffer;
  notBefore: number;
  notAfter: number;
  ca?: boolean;
  pathLen?: number;
  /** keyUsage bits as the BIT STRING content bytes, e.g. [0x07, 0x80] for digitalSignature */
  keyUsage?: number[] | null;
  keyUsageCritical?: boolean;
  eku?: string[] | null;
  uris?: string[];
  sanCritical?: boolean;
  version?: 1 | 3;
  serial?: number;
}

/** Build any certificate, including ones that break the SVID profile on purpose. */
export function buildCert(s: CertSpec): Buffer {
  const exts: Buffer[] = [];
  if (s.ca !== undefined) {
    const inner = s.ca ? [tlv(Tag.BOOLEAN, Buffer.from([0xff])), ...(s.pathLen !== undefined ? [tlv(Tag.INTEGER, Buffer.from([s.pathLen]))] : [])] : [];
    exts.push(ext(Oid.basicConstraints, true, tlv(Tag.SEQUENCE, ...(inner.length ? inner : [Buffer.alloc(0)]))));
  }
  if (s.keyUsage !== null) exts.push(ext(Oid.keyUsage, s.keyUsageCritical ?? true, tlv(Tag.BIT_STRING, Buffer.from(s.keyUsage ?? [0x07, 0x80]))));
  if (s.eku !== null && s.eku !== undefined) exts.push(ext(Oid.extKeyUsage, false, tlv(Tag.SEQUENCE, ...s.eku.map(encodeOid))));
  const uris = s.uris ?? [];
  if (uris.length) exts.push(ext(Oid.subjectAltName, s.sanCritical ?? true, tlv(Tag.SEQUENCE, ...uris.map((u) => tlv(0x86, Buffer.from(u))))));
  exts.push(ext(Oid.subjectKeyId, false, tlv(Tag.OCTET_STRING, keyIdentifier(s.spki))));
  exts.push(ext(Oid.authorityKeyId, false, tlv(Tag.SEQUENCE, tlv(0x80, keyIdentifier(s.issuerSpki)))));
  const v3 = (s.version ?? 3) === 3;
  const tbs = tlv(
    Tag.SEQUENCE,
    ...(v3 ? [Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02])] : []),
    tlv(Tag.INTEGER, Buffer.from([0x01, s.serial ?? 0x42])),
    ECDSA_SHA256,
    name(s.issuerName),
    tlv(Tag.SEQUENCE, encodeTime(s.notBefore), encodeTime(s.notAfter)),
    name(s.subject ?? ''),
    s.spki,
    ...(v3 ? [tlv(Tag.CTX3, tlv(Tag.SEQUENCE, ...exts))] : []),
  );
  return tlv(Tag.SEQUENCE, tbs, ECDSA_SHA256, tlv(Tag.BIT_STRING, Buffer.from([0]), sign('sha256', tbs, s.issuerKey)));
}

export interface TestChain {
  readonly root: Buffer;
  readonly rootKey: KeyPair;
  readonly intermediate: Buffer;
  readonly intermediateKey: KeyPair;
  readonly now: number;
}

export function testChain(trustDomain = 'example.org', now = Date.UTC(2026, 5, 1)): TestChain {
  const rootKey = p256();
  const intermediateKey = p256();
  const day = 86_400_000;
  const root = buildCert({
    subject: 'Test Root', issuerName: 'Test Root', issuerKey: rootKey.key, issuerSpki: rootKey.spki, spki: rootKey.spki,
    notBefore: now - day, notAfter: now + 365 * day, ca: true, keyUsage: [0x01, 0x06], uris: [`spiffe://${trustDomain}`], sanCritical: false,
  });
  const intermediate = buildCert({
    subject: 'Test Intermediate', issuerName: 'Test Root', issuerKey: rootKey.key, issuerSpki: rootKey.spki, spki: intermediateKey.spki,
    notBefore: now - day, notAfter: now + 30 * day, ca: true, pathLen: 0, keyUsage: [0x01, 0x06], uris: [`spiffe://${trustDomain}`], sanCritical: false,
  });
  return { root, rootKey, intermediate, intermediateKey, now };
}

/** A leaf signed by the chain's intermediate; override any field to break the profile. */
export function leafFrom(chain: TestChain, over: Partial<CertSpec> = {}): Buffer {
  const k = p256();
  return buildCert({
    issuerName: 'Test Intermediate', issuerKey: chain.intermediateKey.key, issuerSpki: chain.intermediateKey.spki, spki: k.spki,
    notBefore: chain.now - 60_000, notAfter: chain.now + 3600_000, ca: false,
    eku: [Oid.serverAuth, Oid.clientAuth], uris: ['spiffe://example.org/ns/shop/sa/web'], ...over,
  });
}
