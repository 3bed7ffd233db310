import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync, sign } from 'node:crypto';
import { Tag, encodeOid, encodeTime, tlv } from './der.ts';
import { TollgateError } from '../common/errors.ts';
import { checkLeafProfile, signedBy, verifySvidChain } from './svid-validate.ts';
import { leafFrom, testChain, buildCert, p256, type KeyPair } from './test-chain.ts';
import { parseCertificate, Oid } from './x509.ts';

const chain = testChain();
const now = chain.now;

test('a well-formed leaf passes profile and chain checks', () => {
  const leaf = leafFrom(chain);
  const v = verifySvidChain({ leaf, intermediates: [chain.intermediate], roots: [chain.root], now, trustDomain: 'example.org' });
  assert.equal(v.spiffeId.id, 'spiffe://example.org/ns/shop/sa/web');
  assert.equal(v.path.length, 3);
});

// Every item of the X.509-SVID leaf profile, each broken on purpose.
const profileRejects: Array<[string, Parameters<typeof leafFrom>[1], RegExp]> = [
  ['cA=true leaf', { ca: true }, /cA=true/],
  ['no keyUsage', { keyUsage: null }, /no keyUsage/],
  ['keyUsage not critical', { keyUsageCritical: false }, /not critical/],
  ['keyUsage without digitalSignature', { keyUsage: [0x05, 0x20] }, /lacks digitalSignature/],
  ['keyUsage with keyCertSign', { keyUsage: [0x01, 0x86] }, /keyCertSign/],
  ['keyUsage with cRLSign', { keyUsage: [0x01, 0x82] }, /cRLSign/],
  ['EKU without clientAuth', { eku: [Oid.serverAuth] }, /clientAuth/],
  ['EKU without serverAuth', { eku: [Oid.clientAuth] }, /serverAuth/],
  ['no URI SAN', { uris: [] }, /no subjectAltName/],
  ['two URI SANs', { uris: ['spiffe://example.org/a', 'spiffe://example.org/b'] }, /2 URI SANs/],
  ['empty subject with non-critical SAN', { sanCritical: false }, /not critical/],
  ['URI SAN not a SPIFFE ID', { uris: ['https://example.org/a'] }, /not a workload SPIFFE ID/],
  ['trust-domain-only SPIFFE ID', { uris: ['spiffe://example.org'] }, /needs a path/],
  ['SPIFFE ID with a dot segment', { uris: ['spiffe://example.org/a/./b'] }, /path segment/],
  ['X.509 v1', { version: 1 }, /v1/],
];

for (const [name, over, why] of profileRejects) {
  test(`profile rejects: ${name}`, () => {
    const cert = parseCertificate(leafFrom(chain, over));
    assert.throws(() => checkLeafProfile(cert, { now }), (e: unknown) => e instanceof TollgateError && e.code === 'TG_SVID_INVALID' && why.test(e.message));
  });
}

test('usage: a client-only leaf is fine where only clientAuth is needed', () => {
  const cert = parseCertificate(leafFrom(chain, { eku: [Oid.clientAuth] }));
  assert.equal(checkLeafProfile(cert, { usage: 'client' }).path, '/ns/shop/sa/web');
});

const chainRejects: Array<[string, () => Parameters<typeof verifySvidChain>[0], string]> = [
  ['expired leaf', () => ({ leaf: leafFrom(chain, { notBefore: now - 7200_000, notAfter: now - 3600_000 }), intermediates: [chain.intermediate], roots: [chain.root], now }), 'TG_SVID_EXPIRED'],
  ['not-yet-valid leaf', () => ({ leaf: leafFrom(chain, { notBefore: now + 3600_000, notAfter: now + 7200_000 }), intermediates: [chain.intermediate], roots: [chain.root], now }), 'TG_SVID_EXPIRED'],
  ['another CA', () => ({ leaf: leafFrom(testChain()), intermediates: [chain.intermediate], roots: [chain.root], now }), 'TG_SVID_UNTRUSTED'],
  ['missing intermediate', () => ({ leaf: leafFrom(chain), intermediates: [], roots: [chain.root], now }), 'TG_SVID_UNTRUSTED'],
  ['foreign trust domain', () => ({ leaf: leafFrom(chain, { uris: ['spiffe://other.org/x'] }), intermediates: [chain.intermediate], roots: [chain.root], now }), 'TG_SVID_UNTRUSTED'],
  ['trust domain other than expected', () => ({ leaf: leafFrom(chain), intermediates: [chain.intermediate], roots: [chain.root], now, trustDomain: 'other.org' }), 'TG_SVID_UNTRUSTED'],
  ['expired intermediate', () => ({ leaf: leafFrom(chain), intermediates: [chain.intermediate], roots: [chain.root], now: now + 40 * 86_400_000 }), 'TG_SVID_EXPIRED'],
];

for (const [name, input, code] of chainRejects) {
  test(`chain rejects: ${name}`, () => {
    assert.throws(() => verifySvidChain(input()), (e: unknown) => e instanceof TollgateError && e.code === code);
  });
}

test('chain rejects a leaf signed by a non-CA certificate', () => {
  const notCa = p256();
  const fakeIssuer = buildCert({ subject: 'Fake', issuerName: 'Test Intermediate', issuerKey: chain.intermediateKey.key, issuerSpki: chain.intermediateKey.spki, spki: notCa.spki, notBefore: now - 1000, notAfter: now + 3600_000, ca: false, uris: ['spiffe://example.org/fake'] });
  const leaf = buildCert({ issuerName: 'Fake', issuerKey: notCa.key, issuerSpki: notCa.spki, spki: p256().spki, notBefore: now - 1000, notAfter: now + 1000_000, ca: false, uris: ['spiffe://example.org/a'] });
  assert.throws(() => verifySvidChain({ leaf, intermediates: [fakeIssuer, chain.intermediate], roots: [chain.root], now }), (e: unknown) => e instanceof TollgateError && /not a CA/.test(e.message));
});

// signedBy checks ECDSA signatures with node:crypto on the TBS bytes; it must agree with OpenSSL's
// X509_verify (X509Certificate.verify), including its algorithm-match rule.
function withOuterAlg(der: Buffer, alg: Buffer): Buffer {
  const p = parseCertificate(der);
  return tlv(Tag.SEQUENCE, p.tbs, alg, tlv(Tag.BIT_STRING, p.signatureBits));
}

test('signedBy agrees with OpenSSL on good, tampered and mislabelled signatures', () => {
  const inter = parseCertificate(chain.intermediate);
  const interKey = new X509Certificate(chain.intermediate).publicKey;
  const good = leafFrom(chain);
  const tampered = Buffer.from(good);
  tampered[tampered.length - 5]! ^= 0x40;
  const sha384Label = withOuterAlg(good, tlv(Tag.SEQUENCE, encodeOid('1.2.840.10045.4.3.3')));
  const unusedBits = (() => {
    const p = parseCertificate(good);
    const bits = Buffer.from(p.signatureBits);
    bits[0] = 1;
    return tlv(Tag.SEQUENCE, p.tbs, p.signatureAlgorithm, tlv(Tag.BIT_STRING, bits));
  })();
  for (const [name, der, want] of [['good', good, true], ['tampered', tampered, false], ['outer algorithm differs', sha384Label, false], ['unused bits', unusedBits, false]] as const) {
    assert.equal(signedBy(parseCertificate(der), inter), want, name);
    let openssl = false;
    try {
      openssl = new X509Certificate(der).verify(interKey);
    } catch {
      openssl = false;
    }
    assert.equal(openssl, want, `openssl: ${name}`);
  }
  assert.equal(signedBy(parseCertificate(good), parseCertificate(chain.root)), false, 'issuer name differs');
});

test('signedBy falls back to OpenSSL for algorithms other than ECDSA (Ed25519 issuer)', () => {
  const ed = generateKeyPairSync('ed25519');
  const edSpki = ed.publicKey.export({ format: 'der', type: 'spki' });
  const issuer = buildCert({ subject: 'Ed Issuer', issuerName: 'Test Root', issuerKey: chain.rootKey.key, issuerSpki: chain.rootKey.spki, spki: edSpki, notBefore: now - 1000, notAfter: now + 3600_000, ca: true, keyUsage: [0x01, 0x06] });
  const ed25519 = tlv(Tag.SEQUENCE, encodeOid('1.3.101.112'));
  const name = tlv(Tag.SEQUENCE, tlv(Tag.SET, tlv(Tag.SEQUENCE, encodeOid('2.5.4.3'), tlv(Tag.UTF8_STRING, Buffer.from('Ed Issuer')))));
  const tbs = tlv(Tag.SEQUENCE, Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]), tlv(Tag.INTEGER, Buffer.from([7])), ed25519, name,
    tlv(Tag.SEQUENCE, encodeTime(now - 1000), encodeTime(now + 1000)), Buffer.from([0x30, 0]), p256().spki);
  const child = tlv(Tag.SEQUENCE, tbs, ed25519, tlv(Tag.BIT_STRING, Buffer.from([0]), sign(null, tbs, ed.privateKey)));
  assert.equal(signedBy(parseCertificate(child), parseCertificate(issuer)), true);
  const bad = Buffer.from(child);
  bad[bad.length - 1]! ^= 1;
  assert.equal(signedBy(parseCertificate(bad), parseCertificate(issuer)), false);
});

// RFC 5280 §4.2.1.9: an issuer with pathLenConstraint n may have at most n CA certificates below it
// in the path. The intermediate here has pathLen 0, so a CA it signs may not issue leaves.
test('chain rejects a CA below an issuer whose pathLen forbids it, and accepts the same depth when pathLen allows it', () => {
  const day = 86_400_000;
  const subKey = p256();
  const subCa = (issuer: { name: string; key: KeyPair }): Buffer => buildCert({
    subject: 'Sub CA', issuerName: issuer.name, issuerKey: issuer.key.key, issuerSpki: issuer.key.spki, spki: subKey.spki,
    notBefore: now - day, notAfter: now + day, ca: true, keyUsage: [0x01, 0x06], uris: ['spiffe://example.org'], sanCritical: false,
  });
  const leaf = buildCert({
    issuerName: 'Sub CA', issuerKey: subKey.key, issuerSpki: subKey.spki, spki: p256().spki,
    notBefore: now - 60_000, notAfter: now + 3600_000, ca: false, eku: [Oid.serverAuth, Oid.clientAuth], uris: ['spiffe://example.org/a'],
  });
  const underPathLen0 = subCa({ name: 'Test Intermediate', key: chain.intermediateKey });
  assert.throws(
    () => verifySvidChain({ leaf, intermediates: [underPathLen0, chain.intermediate], roots: [chain.root], now }),
    (e: unknown) => e instanceof TollgateError && e.code === 'TG_SVID_INVALID' && /pathLenConstraint/.test(e.message),
    'a leaf from a CA below the pathLen 0 intermediate was accepted',
  );
  const midKey = p256();
  const pathLen1 = buildCert({
    subject: 'Test Intermediate', issuerName: 'Test Root', issuerKey: chain.rootKey.key, issuerSpki: chain.rootKey.spki, spki: midKey.spki,
    notBefore: now - day, notAfter: now + 30 * day, ca: true, pathLen: 1, keyUsage: [0x01, 0x06], uris: ['spiffe://example.org'], sanCritical: false,
  });
  const underPathLen1 = subCa({ name: 'Test Intermediate', key: midKey });
  assert.equal(verifySvidChain({ leaf, intermediates: [underPathLen1, pathLen1], roots: [chain.root], now }).path.length, 4);
});
