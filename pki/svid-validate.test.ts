import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync, sign } from 'node:crypto';
import { Tag, encodeOid, encodeTime, tlv } from './der.ts';
import { TollgateError } from '../common/errors.ts';
import { checkLeafProfile, checkSigningProfile, signedBy, verifySvidChain } from './svid-validate.ts';
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

// --- Chains built link by link: path length, depth, issuer profile, validity boundaries.
const day = 86_400_000;
interface Ca {
  readonly name: string;
  readonly key: ReturnType<typeof p256>;
  readonly der: Buffer;
}
function caCert(name: string, issuer: Ca | null, over: Partial<Parameters<typeof buildCert>[0]> = {}): Ca {
  const key = p256();
  const signer = issuer ?? { name, key };
  const der = buildCert({
    subject: name, issuerName: signer.name, issuerKey: signer.key.key, issuerSpki: signer.key.spki, spki: key.spki,
    notBefore: now - day, notAfter: now + 30 * day, ca: true, keyUsage: [0x01, 0x06], uris: ['spiffe://example.org'], sanCritical: false, ...over,
  });
  return { name, key, der };
}
function leafUnder(issuer: Ca, over: Partial<Parameters<typeof buildCert>[0]> = {}): Buffer {
  return buildCert({
    issuerName: issuer.name, issuerKey: issuer.key.key, issuerSpki: issuer.key.spki, spki: p256().spki,
    notBefore: now - 60_000, notAfter: now + 3600_000, ca: false, eku: [Oid.serverAuth, Oid.clientAuth], uris: ['spiffe://example.org/ns/shop/sa/web'], ...over,
  });
}
/** root -> cas[0] -> cas[1] ... -> leaf; returns the verify call. */
function chainOf(n: number, pathLens: Array<number | undefined> = []): () => ReturnType<typeof verifySvidChain> {
  const root = caCert('Root', null);
  const cas: Ca[] = [];
  let up = root;
  for (let i = 0; i < n; i++) cas.push((up = caCert(`CA ${i}`, up, pathLens[i] === undefined ? {} : { pathLen: pathLens[i]! })));
  const leaf = leafUnder(up);
  return () => verifySvidChain({ leaf, intermediates: cas.map((c) => c.der).reverse(), roots: [root.der], now });
}
const untrusted = (e: unknown): boolean => e instanceof TollgateError && e.code === 'TG_SVID_UNTRUSTED' && /does not chain to a root of the current trust bundle/.test(e.message);

test('pathLenConstraint: an intermediate with pathLen 0 may not sign a CA; pathLen 1 may sign one, not two', () => {
  assert.equal(chainOf(1, [0])().path.length, 3);
  assert.throws(chainOf(2, [0]), (e: unknown) => e instanceof TollgateError && e.code === 'TG_SVID_INVALID' && /^chain exceeds an issuer's pathLenConstraint$/.test(e.message));
  assert.equal(chainOf(2, [1])().path.length, 4);
  assert.throws(chainOf(3, [1]), /pathLenConstraint/);
  assert.equal(chainOf(3, [2, 1, 0])().path.length, 5);
});

test('depth: four intermediates chain, a fifth is one link too many', () => {
  const ok = chainOf(4)();
  assert.deepEqual(ok.path.map((c) => c.subject.length > 2), [false, true, true, true, true, true]);
  assert.equal(ok.path.length, 6);
  assert.throws(chainOf(5), untrusted);
});

test('the chain walk never reuses a certificate: a self-signed copy of an intermediate in the pool does not loop', () => {
  const root = caCert('Root', null);
  const inter = caCert('Inter', root);
  const selfSigned: Ca = {
    name: 'Inter', key: inter.key,
    der: buildCert({ subject: 'Inter', issuerName: 'Inter', issuerKey: inter.key.key, issuerSpki: inter.key.spki, spki: inter.key.spki, notBefore: now - day, notAfter: now + day, ca: true, keyUsage: [0x01, 0x06] }),
  };
  const leaf = leafUnder(inter);
  const v = verifySvidChain({ leaf, intermediates: [selfSigned.der, inter.der], roots: [root.der], now });
  assert.equal(v.path.length, 4);
  assert.deepEqual(v.path[3]!.der, root.der);
});

test('the verified chain is leaf, intermediates in order, root', () => {
  const root = caCert('Root', null);
  const inter = caCert('Inter', root);
  const leaf = leafUnder(inter);
  const v = verifySvidChain({ leaf, intermediates: [inter.der], roots: [caCert('Other', null).der, root.der], now, usage: 'server' });
  assert.deepEqual(v.path.map((c) => c.der), [leaf, inter.der, root.der]);
  assert.deepEqual(v.leaf.der, leaf);
  assert.equal(v.spiffeId.id, 'spiffe://example.org/ns/shop/sa/web');
});

const issuerRejects: Array<[string, Partial<Parameters<typeof buildCert>[0]>, RegExp]> = [
  ['basicConstraints cA=false', { ca: false }, /^issuer certificate is not a CA \(basicConstraints cA=false or missing\)$/],
  ['no basicConstraints', { ca: undefined }, /is not a CA/],
  ['no keyUsage', { keyUsage: null }, /^issuer certificate lacks keyUsage keyCertSign$/],
  ['keyUsage without keyCertSign', { keyUsage: [0x01, 0x82] }, /lacks keyUsage keyCertSign/],
  ['two URI SANs', { uris: ['spiffe://example.org', 'spiffe://example.org'] }, /^signing certificate has more than one URI SAN$/],
  ['a SPIFFE ID with a path', { uris: ['spiffe://example.org/ca'] }, /^signing certificate SPIFFE ID spiffe:\/\/example\.org\/ca has a path; signing certificates may not$/],
];

for (const [name, over, message] of issuerRejects) {
  test(`chain rejects an intermediate: ${name}`, () => {
    const root = caCert('Root', null);
    const inter = caCert('Inter', root, over);
    assert.throws(
      () => verifySvidChain({ leaf: leafUnder(inter), intermediates: [inter.der], roots: [root.der], now }),
      (e: unknown) => e instanceof TollgateError && e.code === 'TG_SVID_INVALID' && message.test(e.message),
    );
  });
}

test('issuer SPIFFE ID: none is fine; another trust domain than the leaf is refused', () => {
  const root = caCert('Root', null);
  const plain = caCert('Inter', root, { uris: [] });
  assert.equal(verifySvidChain({ leaf: leafUnder(plain), intermediates: [plain.der], roots: [root.der], now }).path.length, 3);
  const other = caCert('Inter', root, { uris: ['spiffe://other.org'] });
  assert.throws(
    () => verifySvidChain({ leaf: leafUnder(other), intermediates: [other.der], roots: [root.der], now }),
    (e: unknown) => e instanceof TollgateError && e.code === 'TG_SVID_UNTRUSTED' && /^issuer belongs to trust domain other\.org, the leaf to example\.org$/.test(e.message),
  );
});

test('validity is inclusive at both ends, for the leaf and for each issuer', () => {
  const nb = now - 60_000;
  const na = now + 3600_000;
  const leaf = parseCertificate(leafFrom(chain, { notBefore: nb, notAfter: na }));
  assert.equal(checkLeafProfile(leaf, { now: nb }).id, 'spiffe://example.org/ns/shop/sa/web');
  assert.equal(checkLeafProfile(leaf, { now: na }).id, 'spiffe://example.org/ns/shop/sa/web');
  const expired = (e: unknown, m: RegExp): boolean => e instanceof TollgateError && e.code === 'TG_SVID_EXPIRED' && m.test(e.message);
  assert.throws(() => checkLeafProfile(leaf, { now: nb - 1 }), (e: unknown) => expired(e, new RegExp(`^certificate is not valid until ${new Date(nb).toISOString()}$`)));
  assert.throws(() => checkLeafProfile(leaf, { now: na + 1 }), (e: unknown) => expired(e, new RegExp(`^certificate expired at ${new Date(na).toISOString()}$`)));
  assert.equal(checkLeafProfile(leaf).id, 'spiffe://example.org/ns/shop/sa/web', 'no now: validity not checked');
});

test('issuer validity: an intermediate past notAfter or before notBefore fails the chain', () => {
  const root = caCert('Root', null);
  const inter = caCert('Inter', root, { notBefore: now - day, notAfter: now + day });
  const leaf = leafUnder(inter, { notBefore: now - day, notAfter: now + 2 * day });
  const at = (t: number) => () => verifySvidChain({ leaf, intermediates: [inter.der], roots: [root.der], now: t });
  assert.equal(at(now + day)().path.length, 3);
  assert.throws(at(now + day + 1), (e: unknown) => e instanceof TollgateError && e.code === 'TG_SVID_EXPIRED' && new RegExp(`^issuer certificate expired at ${new Date(now + day).toISOString()}$`).test(e.message));
  const young = caCert('Inter', root, { notBefore: now, notAfter: now + day });
  const leaf2 = leafUnder(young, { notBefore: now - day, notAfter: now + day });
  assert.throws(() => verifySvidChain({ leaf: leaf2, intermediates: [young.der], roots: [root.der], now: now - 1 }), /issuer certificate is not valid until/);
});

test('usage: each role needs its own EKU; no EKU extension at all is fine for every role', () => {
  const clientOnly = parseCertificate(leafFrom(chain, { eku: [Oid.clientAuth] }));
  const serverOnly = parseCertificate(leafFrom(chain, { eku: [Oid.serverAuth] }));
  const none = parseCertificate(leafFrom(chain, { eku: null }));
  const lacks = (m: RegExp) => (e: unknown) => e instanceof TollgateError && e.code === 'TG_SVID_INVALID' && m.test(e.message);
  assert.throws(() => checkLeafProfile(clientOnly, { usage: 'server' }), lacks(/^leaf extKeyUsage lacks serverAuth$/));
  assert.throws(() => checkLeafProfile(clientOnly, { usage: 'any' }), lacks(/lacks serverAuth/));
  assert.throws(() => checkLeafProfile(clientOnly), lacks(/lacks serverAuth/));
  assert.throws(() => checkLeafProfile(serverOnly, { usage: 'client' }), lacks(/^leaf extKeyUsage lacks clientAuth$/));
  assert.throws(() => checkLeafProfile(serverOnly), lacks(/lacks clientAuth/));
  assert.equal(checkLeafProfile(serverOnly, { usage: 'server' }).path, '/ns/shop/sa/web');
  for (const usage of ['client', 'server', 'any'] as const) assert.equal(checkLeafProfile(none, { usage }).path, '/ns/shop/sa/web', usage);
  const ca = verifySvidChain({ leaf: leafFrom(chain, { eku: [Oid.serverAuth] }), intermediates: [chain.intermediate], roots: [chain.root], now, usage: 'server' });
  assert.equal(ca.spiffeId.path, '/ns/shop/sa/web');
  assert.throws(() => verifySvidChain({ leaf: leafFrom(chain, { eku: [Oid.serverAuth] }), intermediates: [chain.intermediate], roots: [chain.root], now }), lacks(/lacks clientAuth/));
});

const says = (m: RegExp) => (e: unknown): boolean => e instanceof TollgateError && e.code === 'TG_SVID_INVALID' && m.test(e.message);

test('profile: exact messages for a repeated extension, a cA=false basicConstraints, a subject with a non-critical SAN', () => {
  const good = parseCertificate(leafFrom(chain));
  assert.throws(() => checkLeafProfile({ ...good, duplicateExtension: true }), (e: unknown) => e instanceof TollgateError && e.code === 'TG_SVID_INVALID' && /^certificate repeats an extension$/.test(e.message));
  assert.throws(() => checkLeafProfile(parseCertificate(leafFrom(chain, { ca: true }))), says(/^leaf certificate has basicConstraints cA=true; a CA certificate cannot be a workload SVID$/));
  assert.equal(checkLeafProfile(parseCertificate(leafFrom(chain, { ca: undefined }))).path, '/ns/shop/sa/web');
  assert.equal(checkLeafProfile(parseCertificate(leafFrom(chain, { subject: 'web', sanCritical: false }))).path, '/ns/shop/sa/web');
  assert.throws(() => checkLeafProfile(parseCertificate(leafFrom(chain, { uris: ['spiffe://example.org'] }))), says(/^URI SAN is not a workload SPIFFE ID: "spiffe:\/\/example\.org" is a trust-domain ID/));
  assert.throws(() => checkLeafProfile(parseCertificate(leafFrom(chain, { uris: [] }))), says(/^certificate has no subjectAltName: an SVID carries its SPIFFE ID as a URI SAN$/));
  assert.throws(() => checkLeafProfile(parseCertificate(leafFrom(chain, { version: 1 }))), says(/^certificate is X\.509 v1; SVIDs are v3$/));
});

test('every TG_SVID_INVALID refusal keeps its words as details.reason', () => {
  assert.throws(() => checkLeafProfile(parseCertificate(leafFrom(chain, { keyUsage: null }))), (e: unknown) =>
    e instanceof TollgateError && e.details['reason'] === 'leaf certificate has no keyUsage; an SVID needs digitalSignature' && e.message === e.details['reason']);
});

test('a signing certificate whose SAN has no URI (a DNS name only) has no trust domain to check', () => {
  const p = parseCertificate(chain.intermediate);
  const dnsOnly = { critical: false, value: tlv(Tag.SEQUENCE, tlv(0x82, Buffer.from('ca.example.org'))) };
  const cert = { ...p, extensions: new Map([...p.extensions, [Oid.subjectAltName, dnsOnly]]) };
  assert.deepEqual(checkSigningProfile(cert), { trustDomain: undefined, pathLen: 0 });
  assert.deepEqual(checkSigningProfile(parseCertificate(chain.root)), { trustDomain: 'example.org', pathLen: undefined });
});

test('signedBy: the issuer name must match even when the key is right; the TBS algorithm must match the outer one', () => {
  const leaf = parseCertificate(leafFrom(chain));
  const sameKeyOtherName = parseCertificate(buildCert({ subject: 'Other Name', issuerName: 'Test Root', issuerKey: chain.rootKey.key, issuerSpki: chain.rootKey.spki, spki: chain.intermediateKey.spki, notBefore: now - day, notAfter: now + day, ca: true, keyUsage: [0x01, 0x06] }));
  assert.equal(signedBy(leaf, sameKeyOtherName), false);
  assert.equal(signedBy(leaf, parseCertificate(chain.intermediate)), true);
  // TBS says ecdsa-with-SHA384, the outer field and the real signature are SHA-256: OpenSSL refuses, so must we.
  const tbs = Buffer.from(leaf.tbs);
  const at = tbs.indexOf(Buffer.from('300a06082a8648ce3d040302', 'hex'));
  tbs[at + 11] = 0x03;
  const relabelled = tlv(Tag.SEQUENCE, tbs, tlv(Tag.SEQUENCE, encodeOid(Oid.ecdsaWithSha256)), tlv(Tag.BIT_STRING, Buffer.from([0]), sign('sha256', tbs, chain.intermediateKey.key)));
  assert.equal(signedBy(parseCertificate(relabelled), parseCertificate(chain.intermediate)), false);
  assert.equal(new X509Certificate(relabelled).verify(new X509Certificate(chain.intermediate).publicKey), false);
});

test('signedBy: an ECDSA label over an issuer key of another type is false, not an exception', () => {
  const ed = generateKeyPairSync('ed25519');
  const edSpki = ed.publicKey.export({ format: 'der', type: 'spki' });
  const issuer = parseCertificate(buildCert({ subject: 'Test Intermediate', issuerName: 'Test Root', issuerKey: chain.rootKey.key, issuerSpki: chain.rootKey.spki, spki: edSpki, notBefore: now - day, notAfter: now + day, ca: true, keyUsage: [0x01, 0x06] }));
  assert.equal(signedBy(parseCertificate(leafFrom(chain)), issuer), false);
});

test('signedBy: an RSA issuer (sha256WithRSAEncryption) is checked by OpenSSL', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const rsaSpki = rsa.publicKey.export({ format: 'der', type: 'spki' });
  const issuer = parseCertificate(buildCert({ subject: 'RSA Issuer', issuerName: 'Test Root', issuerKey: chain.rootKey.key, issuerSpki: chain.rootKey.spki, spki: rsaSpki, notBefore: now - day, notAfter: now + day, ca: true, keyUsage: [0x01, 0x06] }));
  const alg = tlv(Tag.SEQUENCE, encodeOid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00]));
  const name = tlv(Tag.SEQUENCE, tlv(Tag.SET, tlv(Tag.SEQUENCE, encodeOid('2.5.4.3'), tlv(Tag.UTF8_STRING, Buffer.from('RSA Issuer')))));
  const tbs = tlv(Tag.SEQUENCE, Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]), tlv(Tag.INTEGER, Buffer.from([9])), alg, name,
    tlv(Tag.SEQUENCE, encodeTime(now - 1000), encodeTime(now + 1000)), Buffer.from([0x30, 0]), p256().spki);
  const child = tlv(Tag.SEQUENCE, tbs, alg, tlv(Tag.BIT_STRING, Buffer.from([0]), sign('sha256', tbs, rsa.privateKey)));
  assert.equal(signedBy(parseCertificate(child), issuer), true);
  const bad = Buffer.from(child);
  bad[bad.length - 1]! ^= 1;
  assert.equal(signedBy(parseCertificate(bad), issuer), false);
  // sha384WithRSAEncryption: the digest comes from the certificate, not a default
  const alg384 = tlv(Tag.SEQUENCE, encodeOid('1.2.840.113549.1.1.12'), Buffer.from([0x05, 0x00]));
  const tbs384 = tlv(Tag.SEQUENCE, Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]), tlv(Tag.INTEGER, Buffer.from([9])), alg384, name,
    tlv(Tag.SEQUENCE, encodeTime(now - 1000), encodeTime(now + 1000)), Buffer.from([0x30, 0]), p256().spki);
  assert.equal(signedBy(parseCertificate(tlv(Tag.SEQUENCE, tbs384, alg384, tlv(Tag.BIT_STRING, Buffer.from([0]), sign('sha384', tbs384, rsa.privateKey)))), issuer), true);
});

test('a leaf of another trust domain than asked: the message names both', () => {
  assert.throws(() => verifySvidChain({ leaf: leafFrom(chain), intermediates: [chain.intermediate], roots: [chain.root], now, trustDomain: 'other.org' }),
    (e: unknown) => e instanceof TollgateError && e.code === 'TG_SVID_UNTRUSTED' && e.message === 'certificate is for trust domain example.org, not other.org');
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
