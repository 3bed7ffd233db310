import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { test } from 'node:test';
import type { BundleResponse, IssuedSvidResponse } from '../common/ca-client.ts';
import { TollgateError } from '../common/errors.ts';
import { parseCsr } from '../pki/csr.ts';
import { Tag, encodeOid, encodeTime, tlv } from '../pki/der.ts';
import { buildCert, leafFrom, p256, testChain } from '../pki/test-chain.ts';
import { Oid } from '../pki/x509.ts';
import { SKEW_TOLERANCE_MS, checkBundle, checkIssued, makeKeyMaterial } from './ca-answers.ts';
import { trustBundleOf } from './svid-source.ts';

const TD = 'example.org';
const WEB = 'spiffe://example.org/ns/shop/sa/web';
const chain = testChain(TD);
const bundle = trustBundleOf(1, TD, [chain.root]);
const keys = await makeKeyMaterial();
const leafFor = (spki: Buffer, uri = WEB): Buffer =>
  buildCert({
    issuerName: 'Test Intermediate', issuerKey: chain.intermediateKey.key, issuerSpki: chain.intermediateKey.spki, spki,
    notBefore: chain.now - 60_000, notAfter: chain.now + 3600_000, ca: false, eku: [Oid.serverAuth, Oid.clientAuth], uris: [uri],
  });
const good: IssuedSvidResponse = { spiffeId: WEB, certChain: [leafFor(keys.spki), chain.intermediate], bundleVersion: 1, expiresAt: chain.now + 3600_000 };
const check = (res: IssuedSvidResponse) => checkIssued(res, { keys, bundle, now: chain.now, trustDomain: TD });

test('checkIssued: a chain to the bundle, for our key and the ID it claims, becomes the Svid', () => {
  const { svid, root } = check(good);
  assert.equal(svid.spiffeId, WEB);
  assert.equal(svid.key, keys.key);
  assert.deepEqual(svid.certChain, good.certChain);
  assert.equal(svid.notAfter, Math.floor((chain.now + 3600_000) / 1000) * 1000);
  assert.deepEqual(root, chain.root);
});

test('checkIssued refuses every answer it cannot trust, saying why', () => {
  const foreign = testChain(TD);
  const cases: Array<[string, IssuedSvidResponse, string, RegExp]> = [
    ['garbage DER', { ...good, certChain: [Buffer.from('not a certificate'), chain.intermediate] }, 'TG_SVID_INVALID', /unusable SVID/],
    ['empty chain', { ...good, certChain: [] }, 'TG_SVID_INVALID', /empty certificate chain/],
    ['chain to a foreign CA', { ...good, certChain: [leafFrom(foreign, { uris: [WEB] }), foreign.intermediate] }, 'TG_SVID_UNTRUSTED', /does not chain/],
    ['spiffe_id differs from the leaf', { ...good, spiffeId: 'spiffe://example.org/ns/shop/sa/admin' }, 'TG_SVID_INVALID', /said it issued .*admin/],
    ['a certificate for another key', { ...good, certChain: [leafFor(p256().spki), chain.intermediate] }, 'TG_SVID_INVALID', /different public key/],
    ['a leaf of another trust domain', { ...good, spiffeId: 'spiffe://other.org/ns/shop/sa/web', certChain: [leafFor(keys.spki, 'spiffe://other.org/ns/shop/sa/web'), chain.intermediate] }, 'TG_SVID_UNTRUSTED', /./],
  ];
  for (const [name, res, code, message] of cases) {
    assert.throws(() => check(res), (e: unknown) => e instanceof TollgateError && e.code === code && message.test(e.message), name);
  }
});

test('checkBundle: our trust domain with usable roots only', () => {
  const b: BundleResponse = { version: 3, trustDomain: TD, roots: [chain.root], refreshHintSeconds: 300, endorsements: [] };
  assert.deepEqual(checkBundle(b, TD).roots, [chain.root]);
  const refused: Array<[BundleResponse, RegExp]> = [
    [{ ...b, trustDomain: 'evil.org' }, /trust domain "evil.org"/],
    [{ ...b, roots: [] }, /holds no roots/],
    [{ ...b, roots: [Buffer.from('junk')] }, /root #1 is unusable/],
    [{ ...b, roots: [chain.root, leafFrom(chain)] }, /root #2 is unusable: .*not a CA/],
  ];
  for (const [bad, message] of refused) assert.throws(() => checkBundle(bad, TD), message);
});

test('makeKeyMaterial: a P-256 key, its PEM and SPKI, and a CSR the CA parser accepts for that key', () => {
  assert.equal(keys.key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.match(keys.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  assert.deepEqual(createPublicKey(keys.keyPem).export({ format: 'der', type: 'spki' }), keys.spki);
  assert.deepEqual(parseCsr(keys.csr).spki, keys.spki);
});

test('checkIssued: the Svid carries notBefore, notAfter and the lower-case serial of the leaf', () => {
  const leaf = buildCert({
    issuerName: 'Test Intermediate', issuerKey: chain.intermediateKey.key, issuerSpki: chain.intermediateKey.spki, spki: keys.spki, serial: 0xab,
    notBefore: chain.now - 60_000, notAfter: chain.now + 3600_000, ca: false, eku: [Oid.serverAuth, Oid.clientAuth], uris: [WEB],
  });
  const { svid, skewMs } = check({ ...good, certChain: [leaf, chain.intermediate] });
  assert.equal(svid.serial, '01ab');
  assert.equal(svid.notBefore, chain.now - 60_000);
  assert.equal(svid.notAfter, chain.now + 3600_000);
  assert.equal(skewMs, 0);
});

test('checkIssued: a CA clock ahead by up to the tolerance is absorbed and measured; beyond it the leaf is not yet valid', () => {
  assert.equal(SKEW_TOLERANCE_MS, 300_000);
  const ahead = (ms: number): IssuedSvidResponse => ({
    ...good,
    certChain: [buildCert({
      issuerName: 'Test Intermediate', issuerKey: chain.intermediateKey.key, issuerSpki: chain.intermediateKey.spki, spki: keys.spki,
      notBefore: chain.now + ms, notAfter: chain.now + 3600_000, ca: false, eku: [Oid.serverAuth, Oid.clientAuth], uris: [WEB],
    }), chain.intermediate],
  });
  assert.equal(check(ahead(120_000)).skewMs, 120_000);
  assert.equal(check(ahead(SKEW_TOLERANCE_MS)).skewMs, SKEW_TOLERANCE_MS);
  assert.throws(() => check(ahead(SKEW_TOLERANCE_MS + 1000)), (e: unknown) => e instanceof TollgateError && e.code === 'TG_SVID_EXPIRED' && /^the CA returned an unusable SVID: certificate is not valid until .*; kept the current one$/.test(e.message));
  const strict = (res: IssuedSvidResponse) => checkIssued(res, { keys, bundle, now: chain.now, trustDomain: TD, skewToleranceMs: 60_000 });
  assert.equal(strict(ahead(60_000)).skewMs, 60_000);
  assert.throws(() => strict(ahead(120_000)), (e: unknown) => e instanceof TollgateError && e.code === 'TG_SVID_EXPIRED');
});

test('checkIssued: exact words of each refusal, and a DER error reported as TG_SVID_INVALID with its cause', () => {
  const says = (code: string, m: RegExp) => (e: unknown): boolean => e instanceof TollgateError && e.code === code && m.test(e.message);
  assert.throws(() => check({ ...good, certChain: [] }), says('TG_SVID_INVALID', /^the CA returned an empty certificate chain; check the CA version and logs$/));
  assert.throws(() => check({ ...good, certChain: [Buffer.from([0x30, 0x05, 0x02])] }), (e: unknown) =>
    says('TG_SVID_INVALID', /^the CA returned an unusable SVID: truncated DER.*; kept the current one$/)(e) && (e as Error).cause instanceof TollgateError && ((e as Error).cause as TollgateError).code === 'TG_CERT_INVALID');
  assert.throws(() => check({ ...good, spiffeId: 'spiffe://example.org/ns/shop/sa/admin' }),
    says('TG_SVID_INVALID', /^the CA said it issued spiffe:\/\/example\.org\/ns\/shop\/sa\/admin but the certificate is for spiffe:\/\/example\.org\/ns\/shop\/sa\/web; kept the current SVID$/));
  assert.throws(() => check({ ...good, certChain: [leafFor(p256().spki), chain.intermediate] }),
    says('TG_SVID_INVALID', /^the CA returned a certificate for a different public key than ours; kept the current SVID$/));
  assert.throws(() => check({ ...good, certChain: [leafFor(keys.spki, 'spiffe://other.org/ns/shop/sa/web'), chain.intermediate], spiffeId: 'spiffe://other.org/ns/shop/sa/web' }),
    says('TG_SVID_UNTRUSTED', /^the CA returned an unusable SVID: certificate is for trust domain other\.org, not example\.org; kept the current one$/));
});

test('checkBundle: version, deny-list and a copy of each root; refusals say what was kept', () => {
  const src = Buffer.from(chain.root);
  const b: BundleResponse = { version: 4, trustDomain: TD, roots: [src], refreshHintSeconds: 300, endorsements: [], deniedIds: [WEB], deniedSerials: ['01ab'] };
  const t = checkBundle(b, TD);
  assert.equal(t.version, 4);
  assert.equal(t.trustDomain, TD);
  assert.deepEqual([...t.denied.ids], [WEB]);
  assert.deepEqual([...t.denied.serials], ['01ab']);
  src.fill(0);
  assert.deepEqual(t.roots, [chain.root], 'the bundle keeps its own copy of the roots');
  const says = (code: string, m: RegExp) => (e: unknown): boolean => e instanceof TollgateError && e.code === code && m.test(e.message);
  assert.throws(() => checkBundle({ ...b, trustDomain: 'evil.org' }, TD), says('TG_SVID_UNTRUSTED', /^the CA sent a bundle for trust domain "evil\.org", expected example\.org; check --ca-spiffe-id$/));
  assert.throws(() => checkBundle({ ...b, roots: [] }, TD), says('TG_CERT_INVALID', /^bundle version 4 holds no roots; kept the current bundle$/));
  assert.throws(() => checkBundle({ ...b, roots: [chain.root, leafFrom(chain)] }, TD), says('TG_CERT_INVALID', /^bundle version 4 root #2 is unusable: issuer certificate is not a CA \(basicConstraints cA=false or missing\); kept the current bundle$/));
});

test('checkIssued: an error that is not a TollgateError (a zero-length pathLen INTEGER) still comes out as TG_SVID_INVALID', () => {
  const sha256 = tlv(Tag.SEQUENCE, encodeOid(Oid.ecdsaWithSha256));
  const name = tlv(Tag.SEQUENCE, tlv(Tag.SET, tlv(Tag.SEQUENCE, encodeOid('2.5.4.3'), tlv(Tag.UTF8_STRING, Buffer.from('Test Intermediate')))));
  const bc = tlv(Tag.SEQUENCE, encodeOid(Oid.basicConstraints), Buffer.from([0x01, 0x01, 0xff]), tlv(Tag.OCTET_STRING, Buffer.from([0x30, 0x02, 0x02, 0x00])));
  const tbs = tlv(Tag.SEQUENCE, Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]), tlv(Tag.INTEGER, Buffer.from([1])), sha256, name,
    tlv(Tag.SEQUENCE, encodeTime(chain.now - 1000), encodeTime(chain.now + 1000)), Buffer.from([0x30, 0x00]), keys.spki, tlv(Tag.CTX3, tlv(Tag.SEQUENCE, bc)));
  const leaf = tlv(Tag.SEQUENCE, tbs, sha256, tlv(Tag.BIT_STRING, Buffer.from([0, 0x30, 0x00])));
  assert.throws(() => check({ ...good, certChain: [leaf, chain.intermediate] }), (e: unknown) =>
    e instanceof TollgateError && e.code === 'TG_SVID_INVALID' && /^the CA returned an unusable SVID: .*; kept the current one$/.test(e.message) && !((e as Error).cause instanceof TollgateError));
});

test('checkBundle: an unusable root keeps the parser\'s error as the cause', () => {
  const b: BundleResponse = { version: 3, trustDomain: TD, roots: [Buffer.from('junk')], refreshHintSeconds: 300, endorsements: [] };
  assert.throws(() => checkBundle(b, TD), (e: unknown) => e instanceof TollgateError && (e as Error).cause instanceof TollgateError && ((e as Error).cause as TollgateError).code === 'TG_CERT_INVALID');
});
