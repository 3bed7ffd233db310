// PKCS#12 (PFX, RFC 7292) export of an SVID and its key, for legacy clients (Java keystores, curl
// --cert-type P12). node-forge's pkcs12.toPkcs12Asn1 takes forge certificate objects, and forge can
// parse only RSA certificates, so the PFX is assembled here from forge's ASN.1 and PBE primitives:
//   PFX { version 3, authSafe ContentInfo(data) { AuthenticatedSafe [
//       ContentInfo(data) SafeContents [ certBag(leaf, localKeyId, friendlyName), certBag(chain)... ],
//       ContentInfo(data) SafeContents [ pkcs8ShroudedKeyBag(PBES2 PBKDF2-HMAC-SHA256 AES-256-CBC) ] ] }
//     macData { HMAC-SHA256, PKCS#12 KDF (Appendix B, id 3) } }
// This is what OpenSSL 3 writes by default (apart from also encrypting the certificates), so
// `openssl pkcs12` reads it without -legacy.
import { createHash, createHmac, createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { TollgateError } from '../common/errors.ts';
import { parseCertificate } from './x509.ts';

const asn1 = forge.asn1;
const { Class, Type } = asn1;

const OID = {
  data: '1.2.840.113549.1.7.1',
  pkcs8ShroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  friendlyName: '1.2.840.113549.1.9.20',
  localKeyId: '1.2.840.113549.1.9.21',
  sha256: '2.16.840.1.101.3.4.2.1',
} as const;

/** Iterations for both the key encryption (PBKDF2) and the MAC key derivation. */
export const PKCS12_ITERATIONS = 2048;
const SALT_BYTES = 16;

export interface Pkcs12Options {
  /** The private key as PKCS#8 PrivateKeyInfo DER. */
  readonly keyPkcs8Der: Buffer;
  /** DER certificates, leaf first, then intermediates (and optionally the root). */
  readonly chainDer: readonly Buffer[];
  readonly password: string;
  /** Shown by keytool as the alias; set on the key bag and the leaf certificate bag. */
  readonly friendlyName?: string;
}

type Asn1 = forge.asn1.Asn1;

function bin(b: Buffer): string {
  return b.toString('binary');
}

function oid(o: string): Asn1 {
  return asn1.create(Class.UNIVERSAL, Type.OID, false, asn1.oidToDer(o).getBytes());
}

function octets(b: Buffer): Asn1 {
  return asn1.create(Class.UNIVERSAL, Type.OCTETSTRING, false, bin(b));
}

function seq(items: Asn1[]): Asn1 {
  return asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, items);
}

function explicit0(inner: Asn1): Asn1 {
  return asn1.create(Class.CONTEXT_SPECIFIC, 0, true, [inner]);
}

function derOf(a: Asn1): Buffer {
  return Buffer.from(asn1.toDer(a).getBytes(), 'binary');
}

/** ContentInfo { contentType data, content [0] EXPLICIT OCTET STRING } */
function dataContentInfo(content: Buffer): Asn1 {
  return seq([oid(OID.data), explicit0(octets(content))]);
}

/** bagAttributes: SET OF Attribute { attrId, attrValues SET }. */
function bagAttributes(localKeyId: Buffer | undefined, friendlyName: string | undefined): Asn1[] {
  const attrs: Asn1[] = [];
  if (friendlyName !== undefined) {
    // forge writes a BMPSTRING value as UTF-16BE itself, so it takes the JS string as is.
    const name = asn1.create(Class.UNIVERSAL, Type.BMPSTRING, false, friendlyName);
    attrs.push(seq([oid(OID.friendlyName), asn1.create(Class.UNIVERSAL, Type.SET, true, [name])]));
  }
  if (localKeyId !== undefined) {
    attrs.push(seq([oid(OID.localKeyId), asn1.create(Class.UNIVERSAL, Type.SET, true, [octets(localKeyId)])]));
  }
  return attrs.length === 0 ? [] : [asn1.create(Class.UNIVERSAL, Type.SET, true, attrs)];
}

function certBag(der: Buffer, localKeyId: Buffer | undefined, friendlyName: string | undefined): Asn1 {
  // CertBag { certId x509Certificate, certValue [0] EXPLICIT OCTET STRING (the DER certificate) }
  const value = seq([oid(OID.x509Certificate), explicit0(octets(der))]);
  return seq([oid(OID.certBag), explicit0(value), ...bagAttributes(localKeyId, friendlyName)]);
}

function readKey(keyPkcs8Der: Buffer): { key: KeyObject; info: Asn1 } {
  let key: KeyObject;
  let info: Asn1;
  try {
    key = createPrivateKey({ key: keyPkcs8Der, format: 'der', type: 'pkcs8' });
    info = asn1.fromDer(forge.util.createBuffer(bin(keyPkcs8Der)));
  } catch (e) {
    throw new TollgateError('TG_CERT_INVALID', `private key is not a readable PKCS#8 key: ${(e as Error).message}`, { cause: e });
  }
  // forge re-encodes what it parsed; it must be byte-identical, or the key in the file is not ours.
  if (!derOf(info).equals(keyPkcs8Der)) throw new TollgateError('TG_CERT_INVALID', 'private key is not DER-encoded PKCS#8');
  return { key, info };
}

/** MacData with HMAC-SHA256 keyed by the PKCS#12 KDF (RFC 7292 Appendix B.2, ID 3 = MAC key). */
function macData(authSafeDer: Buffer, password: string): Asn1 {
  const salt = randomBytes(SALT_BYTES);
  const keyBuf = forge.pkcs12.generateKey(password, forge.util.createBuffer(bin(salt)), 3, PKCS12_ITERATIONS, 32, forge.md.sha256.create());
  const macKey = Buffer.from(keyBuf.getBytes(), 'binary');
  const digest = createHmac('sha256', macKey).update(authSafeDer).digest();
  const digestInfo = seq([seq([oid(OID.sha256), asn1.create(Class.UNIVERSAL, Type.NULL, false, '')]), octets(digest)]);
  const iterations = asn1.create(Class.UNIVERSAL, Type.INTEGER, false, asn1.integerToDer(PKCS12_ITERATIONS).getBytes());
  return seq([digestInfo, octets(salt), iterations]);
}

/** Build a password-protected PKCS#12 file holding the key and the chain (leaf first). */
export function toPkcs12(options: Pkcs12Options): Buffer {
  if (options.password.length === 0) throw new TollgateError('TG_USAGE', '--password is required with --p12');
  if (options.chainDer.length === 0) throw new TollgateError('TG_CERT_INVALID', 'a PKCS#12 file needs at least the leaf certificate; the chain is empty');
  options.chainDer.forEach((der, i) => {
    try {
      parseCertificate(der);
    } catch (e) {
      throw new TollgateError('TG_CERT_INVALID', `certificate ${i} of the chain is not a DER certificate: ${(e as Error).message}`, { cause: e });
    }
  });
  const leaf = options.chainDer[0]!;
  const { key, info } = readKey(options.keyPkcs8Der);
  const leafSpki = parseCertificate(leaf).spki;
  if (!createPublicKey(key).export({ format: 'der', type: 'spki' }).equals(leafSpki)) {
    throw new TollgateError('TG_CERT_INVALID', 'the private key does not match the leaf certificate');
  }

  const localKeyId = createHash('sha1').update(leaf).digest();
  const name = options.friendlyName;
  const certs = seq(options.chainDer.map((der, i) => (i === 0 ? certBag(der, localKeyId, name) : certBag(der, undefined, undefined))));

  // PBKDF2 hashes the password's bytes; forge takes a binary string, so hand it the UTF-8 bytes
  // (what OpenSSL uses for PBES2). The MAC KDF below takes the JS string and encodes it as BMPString.
  const encrypted = forge.pki.encryptPrivateKeyInfo(info, forge.util.encodeUtf8(options.password), {
    algorithm: 'aes256',
    prfAlgorithm: 'sha256',
    count: PKCS12_ITERATIONS,
    saltSize: SALT_BYTES,
  });
  const keyBag = seq([oid(OID.pkcs8ShroudedKeyBag), explicit0(encrypted), ...bagAttributes(localKeyId, name)]);

  const authSafe = seq([dataContentInfo(derOf(certs)), dataContentInfo(derOf(seq([keyBag])))]);
  const authSafeDer = derOf(authSafe);
  const version = asn1.create(Class.UNIVERSAL, Type.INTEGER, false, asn1.integerToDer(3).getBytes());
  return derOf(seq([version, dataContentInfo(authSafeDer), macData(authSafeDer, options.password)]));
}
