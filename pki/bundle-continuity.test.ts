import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isTollgateError } from '../common/errors.ts';
import { checkContinuity, type HeldTrust, type OfferedBundle } from './bundle-continuity.ts';
import { buildCert, p256, testChain, type KeyPair } from './test-chain.ts';

const DAY = 86_400_000;
const chain = testChain();
const now = chain.now;

function root(cn: string, k: KeyPair): Buffer {
  return buildCert({
    subject: cn, issuerName: cn, issuerKey: k.key, issuerSpki: k.spki, spki: k.spki,
    notBefore: now - DAY, notAfter: now + 365 * DAY, ca: true, keyUsage: [0x01, 0x06], uris: ['spiffe://example.org'], sanCritical: false,
  });
}
/** `subjectCn`'s key `subject` vouched for by `by` (issuer name + key). */
function endorse(subjectCn: string, subject: KeyPair, byCn: string, by: KeyPair, over: Partial<Parameters<typeof buildCert>[0]> = {}): Buffer {
  return buildCert({
    subject: subjectCn, issuerName: byCn, issuerKey: by.key, issuerSpki: by.spki, spki: subject.spki,
    notBefore: now - DAY, notAfter: now + 365 * DAY, ca: true, keyUsage: [0x01, 0x06], uris: ['spiffe://example.org'], sanCritical: false, ...over,
  });
}

const k2 = p256();
const r2 = root('Root Two', k2);
const good = endorse('Root Two', k2, 'Test Root', chain.rootKey);
const held: HeldTrust = { version: 5, roots: [chain.root] };

function refusedWith(code: string, offered: OfferedBundle, h: HeldTrust = held): void {
  assert.throws(() => checkContinuity(h, offered, now), (e: unknown) => isTollgateError(e) && e.code === code && /kept the current bundle/.test(e.message));
}

test('a new root cross-signed by a trusted root is accepted and reported as added', () => {
  const v = checkContinuity(held, { version: 6, roots: [chain.root, r2], endorsements: [good] }, now);
  assert.equal(v.accept, true);
  assert.ok(v.accept && v.added.length === 1 && v.added[0]!.equals(r2) && v.removed.length === 0);
});

test('the same bootstrap rule holds at first contact (held version 0 = bootstrap roots)', () => {
  const boot: HeldTrust = { version: 0, roots: [chain.root] };
  assert.equal(checkContinuity(boot, { version: 1, roots: [chain.root], endorsements: [] }, now).accept, true);
  refusedWith('TG_BUNDLE_UNENDORSED', { version: 1, roots: [r2], endorsements: [] }, boot);
});

test('removing a root needs no endorsement: trust only shrinks', () => {
  const h: HeldTrust = { version: 6, roots: [chain.root, r2] };
  const v = checkContinuity(h, { version: 7, roots: [r2], endorsements: [] }, now);
  assert.ok(v.accept && v.removed.length === 1 && v.removed[0]!.equals(chain.root));
});

test('a repeat of the held bundle changes nothing', () => {
  assert.deepEqual(checkContinuity(held, { version: 5, roots: [chain.root], endorsements: [] }, now), { accept: false, unchanged: true });
});

test('refused: an older version, or the same version with other roots (rollback)', () => {
  refusedWith('TG_BUNDLE_ROLLBACK', { version: 4, roots: [chain.root], endorsements: [] });
  refusedWith('TG_BUNDLE_ROLLBACK', { version: 5, roots: [chain.root, r2], endorsements: [good] });
});

test('refused: a root no trusted root vouches for (the stolen-CA-identity attack)', () => {
  const evilKey = p256();
  const evil = root('Root Two', evilKey);
  const other = p256();
  const otherRoot = root('Other', other);
  const cases: Array<[string, OfferedBundle]> = [
    ['no endorsement at all', { version: 6, roots: [chain.root, evil], endorsements: [] }],
    ['self-endorsed', { version: 6, roots: [chain.root, evil], endorsements: [endorse('Root Two', evilKey, 'Root Two', evilKey)] }],
    ['endorsed by a root that is itself only offered', { version: 6, roots: [chain.root, evil, otherRoot], endorsements: [endorse('Root Two', evilKey, 'Other', other)] }],
    ['the endorsement is for another key (the real new root), not this one', { version: 6, roots: [chain.root, evil], endorsements: [good] }],
    ['endorsement names the trusted root as issuer but is signed by another key', { version: 6, roots: [chain.root, evil], endorsements: [endorse('Root Two', evilKey, 'Test Root', other)] }],
    ['endorsement expired', { version: 6, roots: [chain.root, r2], endorsements: [endorse('Root Two', k2, 'Test Root', chain.rootKey, { notBefore: now - 3 * DAY, notAfter: now - DAY })] }],
    ['endorsement not yet valid', { version: 6, roots: [chain.root, r2], endorsements: [endorse('Root Two', k2, 'Test Root', chain.rootKey, { notBefore: now + DAY })] }],
    ['endorsement is not a CA certificate', { version: 6, roots: [chain.root, r2], endorsements: [endorse('Root Two', k2, 'Test Root', chain.rootKey, { ca: false, keyUsage: [0x07, 0x80] })] }],
    ['endorsement is garbage bytes', { version: 6, roots: [chain.root, r2], endorsements: [Buffer.from('not a certificate')] }],
  ];
  for (const [what, offered] of cases) {
    assert.throws(() => checkContinuity(held, offered, now), (e: unknown) => isTollgateError(e) && e.code === 'TG_BUNDLE_UNENDORSED', what);
  }
});

test('one unendorsed root refuses the whole bundle, even beside an endorsed one', () => {
  const evilKey = p256();
  refusedWith('TG_BUNDLE_UNENDORSED', { version: 6, roots: [chain.root, r2, root('Evil', evilKey)], endorsements: [good] });
});
