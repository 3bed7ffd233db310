import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { Tag, children, encodeOid, readElement, tlv, whole } from './der.ts';
import { MAX_CSR_BYTES, createCsr, parseCsr } from './csr.ts';
import { Oid } from './x509.ts';
import { TollgateError, type ErrorCode } from '../common/errors.ts';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

function ecKey(namedCurve: string): { key: KeyObject; spki: Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve });
  return { key: privateKey, spki: publicKey.export({ format: 'der', type: 'spki' }) };
}

const p256 = ecKey('P-256');
const other = ecKey('P-256');

interface Parts {
  /** The key whose SPKI goes in (and signs, unless `signer`). */
  key?: KeyObject;
  spki?: Buffer;
  signer?: KeyObject;
  sigAlg?: string;
  attributes?: Buffer;
  unusedBits?: number;
  signature?: Buffer;
}

/** A CSR built field by field, so each can be broken on purpose. */
function csr(p: Parts = {}): Buffer {
  const key = p.key ?? p256.key;
  const spki = p.spki ?? createPublicKey(key).export({ format: 'der', type: 'spki' });
  const info = tlv(Tag.SEQUENCE, Buffer.from([0x02, 0x01, 0x00]), Buffer.from([0x30, 0x00]), spki, p.attributes ?? Buffer.from([0xa0, 0x00]));
  const sig = p.signature ?? sign('sha256', info, p.signer ?? key);
  return tlv(Tag.SEQUENCE, info, tlv(Tag.SEQUENCE, encodeOid(p.sigAlg ?? Oid.ecdsaWithSha256)), tlv(Tag.BIT_STRING, Buffer.from([p.unusedBits ?? 0]), sig));
}

function ecSpki(params: Buffer[], point: Buffer): Buffer {
  return tlv(Tag.SEQUENCE, tlv(Tag.SEQUENCE, encodeOid(Oid.ecPublicKey), ...params), tlv(Tag.BIT_STRING, Buffer.from([0]), point));
}

/** The P-256 key of `key` with its point compressed (02/03 || X), as some clients send it. */
function compressedSpki(key: KeyObject): Buffer {
  const { x, y } = createPublicKey(key).export({ format: 'jwk' });
  const yb = Buffer.from(y!, 'base64url');
  return ecSpki([encodeOid(Oid.prime256v1)], Buffer.concat([Buffer.from([0x02 | (yb[31]! & 1)]), Buffer.from(x!, 'base64url')]));
}

/** A valid CSR of exactly `total` bytes: an attribute of padding, re-signed until the ECDSA signature length fits. */
function csrOfLength(total: number): Buffer {
  const attr = (n: number) => tlv(Tag.CTX0, tlv(Tag.SEQUENCE, encodeOid('1.2.840.113549.1.9.7'), tlv(Tag.SET, tlv(Tag.OCTET_STRING, Buffer.alloc(n, 0x61)))));
  let pad = total - csr().length;
  for (let i = 0; i < 100; i++) {
    const der = csr({ attributes: attr(pad) });
    if (der.length === total) return der;
    pad += total - der.length;
  }
  throw new Error(`could not build a CSR of ${total} bytes`);
}

function refuses(der: Uint8Array, code: ErrorCode, message: RegExp): void {
  assert.throws(
    () => parseCsr(der),
    (e: unknown) => e instanceof TollgateError && e.code === code && message.test(e.message),
    `${code} ${message}`,
  );
}

test('createCsr writes the minimal request (v1, empty subject, no attributes, ecdsa-with-SHA256) and parseCsr returns its key', () => {
  const der = createCsr(p256.key);
  const info = tlv(Tag.SEQUENCE, Buffer.from([0x02, 0x01, 0x00]), Buffer.from([0x30, 0x00]), p256.spki, Buffer.from([0xa0, 0x00]));
  const [infoEl, algEl, sigEl] = children(der, readElement(der, 0));
  assert.deepEqual(whole(der, infoEl!), info);
  assert.deepEqual(whole(der, algEl!), tlv(Tag.SEQUENCE, encodeOid(Oid.ecdsaWithSha256)));
  assert.equal(sigEl!.tag, Tag.BIT_STRING);
  assert.equal(der[sigEl!.start], 0);
  const got = parseCsr(der);
  assert.deepEqual(got.spki, p256.spki);
  assert.equal(got.publicKey.asymmetricKeyType, 'ec');
  assert.deepEqual(got.publicKey.export({ format: 'der', type: 'spki' }), p256.spki);
});

test('parseCsr takes a plain Uint8Array as well as a Buffer', () => {
  const der = createCsr(p256.key);
  assert.deepEqual(parseCsr(new Uint8Array(der)).spki, p256.spki);
});

test('openssl accepts the CSR createCsr writes', { skip: !hasOpenssl && 'no openssl' }, () => {
  const r = spawnSync('openssl', ['req', '-inform', 'DER', '-verify', '-noout'], { input: createCsr(p256.key), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /verify OK/i);
});

test('an openssl CSR with a subject and a SPIFFE URI SAN is read for its key only', { skip: !hasOpenssl && 'no openssl' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-csr-'));
  try {
    const keyFile = join(dir, 'key.pem');
    const r = spawnSync(
      'openssl',
      ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-subj', '/CN=evil', '-addext', 'subjectAltName=URI:spiffe://evil.example/ns/x/sa/y', '-outform', 'DER'],
    );
    assert.equal(r.status, 0, r.stderr.toString());
    const got = parseCsr(r.stdout);
    assert.deepEqual(got.spki, createPublicKey(readFileSync(keyFile)).export({ format: 'der', type: 'spki' }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a compressed P-256 point is accepted and handed back uncompressed (91-byte SPKI, 04 || X || Y)', () => {
  const der = csr({ spki: compressedSpki(p256.key) });
  const got = parseCsr(der);
  assert.equal(got.spki.length, 91);
  assert.deepEqual(got.spki, p256.spki);
  assert.deepEqual(got.publicKey.export({ format: 'jwk' }), createPublicKey(p256.key).export({ format: 'jwk' }));
});

test('size: exactly MAX_CSR_BYTES is read, one byte more is refused before parsing', () => {
  assert.equal(MAX_CSR_BYTES, 4096);
  assert.deepEqual(parseCsr(csrOfLength(MAX_CSR_BYTES)).spki, p256.spki);
  refuses(csrOfLength(MAX_CSR_BYTES + 1), 'TG_CSR_INVALID', /^CSR is 4097 bytes; the limit is 4096$/);
  refuses(Buffer.alloc(0), 'TG_CSR_INVALID', /^CSR is empty$/);
});

// Structure: every field the CA reads, broken on purpose.
const good = csr();
const goodInfo = tlv(Tag.SEQUENCE, Buffer.from([0x02, 0x01, 0x00]), Buffer.from([0x30, 0x00]), p256.spki, Buffer.from([0xa0, 0x00]));
const sha256Alg = tlv(Tag.SEQUENCE, encodeOid(Oid.ecdsaWithSha256));
const sigBits = tlv(Tag.BIT_STRING, Buffer.from([0]), sign('sha256', goodInfo, p256.key));
const structure: Array<[string, Buffer, RegExp]> = [
  ['not a SEQUENCE', Buffer.from([0x31, 0x00]), /expected CertificationRequest SEQUENCE/],
  ['truncated', good.subarray(0, good.length - 1), /truncated DER/],
  ['trailing bytes', Buffer.concat([good, Buffer.from([0x00])]), /^CSR has trailing bytes after the request$/],
  ['info not a SEQUENCE', tlv(Tag.SEQUENCE, tlv(Tag.SET, goodInfo.subarray(2)), sha256Alg, sigBits), /expected CertificationRequestInfo/],
  ['no signatureAlgorithm', tlv(Tag.SEQUENCE, goodInfo), /expected signatureAlgorithm/],
  ['signatureAlgorithm not a SEQUENCE', tlv(Tag.SEQUENCE, goodInfo, encodeOid(Oid.ecdsaWithSha256), sigBits), /expected signatureAlgorithm/],
  ['no signature', tlv(Tag.SEQUENCE, goodInfo, sha256Alg), /expected signature$/],
  ['signature an OCTET STRING', tlv(Tag.SEQUENCE, goodInfo, sha256Alg, tlv(Tag.OCTET_STRING, sigBits.subarray(2))), /expected signature$/],
  ['no subjectPublicKeyInfo', tlv(Tag.SEQUENCE, tlv(Tag.SEQUENCE, Buffer.from([0x02, 0x01, 0x00]), Buffer.from([0x30, 0x00])), sha256Alg, sigBits), /expected subjectPublicKeyInfo/],
  ['key algorithm not a SEQUENCE', csr({ spki: tlv(Tag.SEQUENCE, encodeOid(Oid.ecPublicKey), tlv(Tag.BIT_STRING, Buffer.from([0, 4]))) }), /expected public key algorithm$/],
  ['key algorithm without an OID', csr({ spki: tlv(Tag.SEQUENCE, tlv(Tag.SEQUENCE, Buffer.from([0x05, 0x00])), tlv(Tag.BIT_STRING, Buffer.from([0, 4]))) }), /expected public key algorithm OID/],
  ['signature algorithm without an OID', tlv(Tag.SEQUENCE, goodInfo, tlv(Tag.SEQUENCE, Buffer.from([0x05, 0x00])), sigBits), /expected signature algorithm OID/],
  ['ecdsa-with-SHA384', csr({ sigAlg: '1.2.840.10045.4.3.3' }), /^CSR signature algorithm 1\.2\.840\.10045\.4\.3\.3 is not ecdsa-with-SHA256$/],
  ['signature BIT STRING with unused bits', csr({ unusedBits: 1 }), /^CSR signature BIT STRING has unused bits$/],
];

for (const [name, der, message] of structure) {
  test(`refuses a CSR: ${name} (TG_CSR_INVALID)`, () => refuses(der, 'TG_CSR_INVALID', message));
}

test('the structure table starts from a CSR that parses', () => {
  assert.deepEqual(parseCsr(good).spki, p256.spki);
  assert.deepEqual(parseCsr(tlv(Tag.SEQUENCE, goodInfo, sha256Alg, sigBits)).spki, p256.spki);
});

// Keys: only ECDSA P-256; the message names what was sent.
const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'der', type: 'spki' });
const ed = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' });
const dsaLike = tlv(Tag.SEQUENCE, tlv(Tag.SEQUENCE, encodeOid('1.2.840.10040.4.1')), tlv(Tag.BIT_STRING, Buffer.from([0, 1])));
const point = Buffer.concat([Buffer.from([0x04]), Buffer.alloc(64, 1)]);
const keys: Array<[string, Buffer, RegExp]> = [
  ['RSA', rsa, /^CSR key is RSA; Tollgate issues only for ECDSA P-256 keys$/],
  ['Ed25519', ed, /^CSR key is Ed25519; Tollgate/],
  ['DSA (shown by OID)', dsaLike, /^CSR key is 1\.2\.840\.10040\.4\.1; Tollgate/],
  ['ECDSA P-384', ecKey('P-384').spki, /^CSR key is ECDSA P-384; Tollgate issues only for ECDSA P-256 keys$/],
  ['ECDSA P-521', ecKey('P-521').spki, /^CSR key is ECDSA P-521; Tollgate/],
  ['ECDSA secp256k1 (shown by OID)', ecKey('secp256k1').spki, /^CSR key is ECDSA 1\.3\.132\.0\.10; Tollgate/],
  ['EC without curve parameters', ecSpki([], point), /^CSR key is ECDSA unknown; Tollgate/],
  ['EC with NULL parameters', ecSpki([Buffer.from([0x05, 0x00])], point), /^CSR key is ECDSA unknown; Tollgate/],
];

for (const [name, spki, message] of keys) {
  test(`refuses a CSR key: ${name} (TG_CSR_KEY_UNSUPPORTED)`, () => refuses(csr({ spki, signature: Buffer.from([0x30, 0x00]) }), 'TG_CSR_KEY_UNSUPPORTED', message));
}

test('refuses a P-256 point that is not on the curve, uncompressed or compressed (TG_CSR_INVALID)', () => {
  const offCurve = ecSpki([encodeOid(Oid.prime256v1)], Buffer.concat([Buffer.from([0x04]), Buffer.alloc(64, 0)]));
  refuses(csr({ spki: offCurve, signature: Buffer.from([0x30, 0x00]) }), 'TG_CSR_INVALID', /^CSR public key is not a valid P-256 point$/);
  assert.throws(() => parseCsr(csr({ spki: offCurve, signature: Buffer.from([0x30, 0x00]) })), (e: unknown) => e instanceof TollgateError && e.cause instanceof Error, 'the decoder\'s own error is kept as the cause');
  const badX = ecSpki([encodeOid(Oid.prime256v1)], Buffer.concat([Buffer.from([0x02]), Buffer.alloc(32, 0xff)]));
  refuses(csr({ spki: badX, signature: Buffer.from([0x30, 0x00]) }), 'TG_CSR_INVALID', /^CSR public key is not a valid P-256 point$/);
});

const selfSignature: Array<[string, Buffer]> = [
  ['signed by another key', csr({ signer: other.key })],
  ['another key in, signed by the first', csr({ spki: other.spki })],
  ['signature of other bytes', csr({ signature: sign('sha256', Buffer.from('not the request'), p256.key) })],
  ['signature not DER', csr({ signature: Buffer.from([1, 2, 3]) })],
  ['empty signature', csr({ signature: Buffer.alloc(0) })],
  ['attributes changed after signing', (() => {
    const der = Buffer.from(good);
    const at = der.indexOf(Buffer.from([0xa0, 0x00]));
    der[at + 1] = 0x00;
    der[at] = 0xa1;
    return der;
  })()],
];

for (const [name, der] of selfSignature) {
  test(`refuses a CSR whose self-signature fails: ${name}`, () => refuses(der, 'TG_CSR_INVALID', /^CSR self-signature does not verify with its own public key$/));
}
