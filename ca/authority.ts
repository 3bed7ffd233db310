// Root and intermediate authorities (PRODUCT.md §3), created with @peculiar/x509.
// root: P-256, 1 year, self-signed, cA, keyCertSign+cRLSign, URI SAN spiffe://<td>, name-constrained
// to the trust domain; intermediate: 30 days (never past the root), pathLen 0, same SAN.
import { createPrivateKey, createPublicKey, randomBytes, webcrypto, type KeyObject } from 'node:crypto';
import { tlv } from '../pki/der.ts';
import type { Clock } from '../common/clock.ts';
import { TollgateError } from '../common/errors.ts';
import { parseTrustDomain, trustDomainId } from '../pki/spiffe-id.ts';
import { Oid, parseCertificate, type ParsedCertificate } from '../pki/x509.ts';
import { bytes, x509 } from '../pki/x509-lib.ts';

import { INTERMEDIATE_LIFETIME_MS, ROOT_LIFETIME_MS, type AuthorityKind, type AuthorityRecord, type SlotName } from './slots.ts';

export { DAY_MS, INTERMEDIATE_LIFETIME_MS, ROOT_LIFETIME_MS } from './slots.ts';
/** CA certificates are backdated by this much so peers with slightly slow clocks accept them. */
export const CA_BACKDATE_MS = 5 * 60 * 1000;

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** A signing authority as held in memory: certificate (DER) and its private key. */
export interface Authority {
  readonly certificate: Buffer;
  readonly parsed: ParsedCertificate;
  readonly key: KeyObject;
  /** PKCS#8 DER of the key, for the store. */
  readonly keyPkcs8: Buffer;
}

function caSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x40; // positive, fixed length
  return b.toString('hex');
}

/** RFC 5280 nameConstraints with one permitted URI subtree: the trust domain host. */
function nameConstraints(trustDomain: string): x509.Extension {
  const value = tlv(0x30, tlv(0xa0, tlv(0x30, tlv(0x86, Buffer.from(trustDomain, 'ascii')))));
  return new x509.Extension(Oid.nameConstraints, true, bytes(value));
}

async function exportAuthority(cert: x509.X509Certificate, keys: CryptoKeyPair): Promise<Authority> {
  const keyPkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as webcrypto.CryptoKey));
  const certificate = Buffer.from(cert.rawData);
  return { certificate, parsed: parseCertificate(certificate), key: createPrivateKey({ key: keyPkcs8, format: 'der', type: 'pkcs8' }), keyPkcs8 };
}

function shortId(): string {
  return randomBytes(4).toString('hex');
}

export async function createRoot(options: { trustDomain: string; clock: Clock; lifetimeMs?: number | undefined }): Promise<Authority> {
  const td = parseTrustDomain(options.trustDomain);
  const now = options.clock.now();
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: caSerial(),
    name: `O=Tollgate, OU=${td}, CN=Tollgate Root CA ${shortId()}`,
    notBefore: new Date(now - CA_BACKDATE_MS),
    notAfter: new Date(now + (options.lifetimeMs ?? ROOT_LIFETIME_MS)),
    signingAlgorithm: SIGN,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: trustDomainId(td) }], false),
      nameConstraints(td),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return exportAuthority(cert, keys);
}

async function toCryptoKey(a: Authority): Promise<CryptoKey> {
  return (await webcrypto.subtle.importKey('pkcs8', bytes(a.keyPkcs8), EC, false, ['sign'])) as unknown as CryptoKey;
}

export async function createIntermediate(options: {
  trustDomain: string;
  root: Authority;
  clock: Clock;
  lifetimeMs?: number | undefined;
}): Promise<Authority> {
  const td = parseTrustDomain(options.trustDomain);
  const now = options.clock.now();
  const root = options.root;
  const notAfter = Math.min(now + (options.lifetimeMs ?? INTERMEDIATE_LIFETIME_MS), root.parsed.notAfter);
  if (notAfter <= now) throw new TollgateError('TG_AUTHORITY_EXPIRED', 'the root has expired: rotate the root before creating an intermediate');
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const rootCert = new x509.X509Certificate(bytes(root.certificate));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: caSerial(),
    subject: `O=Tollgate, OU=${td}, CN=Tollgate Intermediate CA ${shortId()}`,
    issuer: rootCert.subject,
    notBefore: new Date(Math.max(now - CA_BACKDATE_MS, root.parsed.notBefore)),
    notAfter: new Date(notAfter),
    signingAlgorithm: SIGN,
    publicKey: keys.publicKey,
    signingKey: await toCryptoKey(root),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: trustDomainId(td) }], false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(rootCert),
    ],
  });
  return exportAuthority(cert, keys);
}

/**
 * A cross-certificate for trust continuity (PRODUCT.md §4): the new root's subject and public key,
 * signed by the root it succeeds, with a root's extensions (cA, keyCertSign+cRLSign, the trust
 * domain's URI SAN and name constraint, the new root's SKI) and the signer's AKI. Valid while both
 * roots are. A client that trusts `signer` can verify it and so accept `root` (see the proto's
 * Bundle.endorsements).
 */
export async function crossSign(options: { root: Buffer; signer: Authority; trustDomain: string }): Promise<Buffer> {
  const td = parseTrustDomain(options.trustDomain);
  const subject = new x509.X509Certificate(bytes(options.root));
  const signerCert = new x509.X509Certificate(bytes(options.signer.certificate));
  const spki = bytes(parseCertificate(options.root).spki);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: caSerial(),
    subject: subject.subjectName,
    issuer: signerCert.subjectName,
    notBefore: new Date(Math.max(subject.notBefore.getTime(), signerCert.notBefore.getTime())),
    notAfter: new Date(Math.min(subject.notAfter.getTime(), signerCert.notAfter.getTime())),
    signingAlgorithm: SIGN,
    publicKey: spki,
    signingKey: await toCryptoKey(options.signer),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: trustDomainId(td) }], false),
      nameConstraints(td),
      await x509.SubjectKeyIdentifierExtension.create(spki),
      await x509.AuthorityKeyIdentifierExtension.create(signerCert),
    ],
  });
  return Buffer.from(cert.rawData);
}

/** Rebuild an Authority from stored DER certificate and PKCS#8 key, checking they belong together. */
export function loadAuthority(options: { certificate: Buffer; keyPkcs8: Buffer; what: string }): Authority {
  let parsed: ParsedCertificate;
  let key: KeyObject;
  try {
    parsed = parseCertificate(options.certificate);
    key = createPrivateKey({ key: options.keyPkcs8, format: 'der', type: 'pkcs8' });
  } catch (e) {
    throw new TollgateError('TG_STORE_CORRUPT', `${options.what}: ${(e as Error).message}`, { cause: e });
  }
  const derived = createPublicKey(key).export({ format: 'der', type: 'spki' });
  if (!derived.equals(parsed.spki)) {
    throw new TollgateError('TG_STORE_CORRUPT', `${options.what}: the private key does not match the certificate`);
  }
  return { certificate: options.certificate, parsed, key, keyPkcs8: options.keyPkcs8 };
}


/** The slot record of a certificate: id from its kind and serial, validity from the certificate. */
export function authorityRecord(certificate: Buffer, o: {
  kind: AuthorityKind;
  slot: SlotName;
  parent?: string | undefined;
  now: number;
  keyInStore: boolean;
  endorsement?: AuthorityRecord['endorsement'];
}): AuthorityRecord {
  const c = parseCertificate(certificate);
  const serial = c.serialHex.toLowerCase();
  const t = new Date(o.now).toISOString();
  return {
    id: `${o.kind === 'root' ? 'root' : 'int'}-${serial.slice(-10)}`,
    kind: o.kind,
    slot: o.slot,
    ...(o.parent ? { parent: o.parent } : {}),
    serial,
    notBefore: new Date(c.notBefore).toISOString(),
    notAfter: new Date(c.notAfter).toISOString(),
    createdAt: t,
    ...(o.slot === 'active' ? { activatedAt: t } : {}),
    keyInStore: o.keyInStore,
    ...(o.endorsement ? { endorsement: o.endorsement } : {}),
  };
}
