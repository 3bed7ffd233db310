import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BundleResponse, IssuedSvidResponse } from '../common/ca-client.ts';
import { TollgateError } from '../common/errors.ts';
import { buildCert, leafFrom, p256, testChain } from '../pki/test-chain.ts';
import { Oid } from '../pki/x509.ts';
import { checkBundle, checkIssued, makeKeyMaterial } from './ca-answers.ts';
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
