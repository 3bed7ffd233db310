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

const says = (code: string, m: RegExp) => (e: unknown): boolean => isTollgateError(e) && e.code === code && m.test(e.message);

test('refusals name the versions and what was kept', () => {
  assert.throws(() => checkContinuity(held, { version: 4, roots: [chain.root], endorsements: [] }, now),
    says('TG_BUNDLE_ROLLBACK', /^bundle version 4 is older than the held version 5; kept the current bundle$/));
  assert.throws(() => checkContinuity(held, { version: 5, roots: [r2], endorsements: [good] }, now),
    says('TG_BUNDLE_ROLLBACK', /^bundle version 5 has other roots than the held bundle of the same version; kept the current bundle$/));
  const serial = '0142';
  const subject = buildCertSubjectHex('Root Two');
  assert.throws(() => checkContinuity(held, { version: 6, roots: [chain.root, r2], endorsements: [] }, now),
    says('TG_BUNDLE_UNENDORSED', new RegExp(`^bundle version 6 adds root ${serial} \\(subject ${subject}…\\) that no root this workload trusts has cross-signed; kept the current bundle\\. If every old root was lost, restart the workload with the new bundle as its bootstrap bundle$`)));
});

/** The first 12 bytes of the DER subject "CN=<cn>" as hex, as the refusal shows it. */
function buildCertSubjectHex(cn: string): string {
  const utf8 = Buffer.from(cn);
  const atv = Buffer.concat([Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, utf8.length]), utf8]);
  const seq = Buffer.concat([Buffer.from([0x30, atv.length]), atv]);
  const set = Buffer.concat([Buffer.from([0x31, seq.length]), seq]);
  return Buffer.concat([Buffer.from([0x30, set.length]), set]).toString('hex').slice(0, 24);
}

test('same version: the same roots in another order are a repeat; a subset or a superset is a rollback', () => {
  const two: HeldTrust = { version: 5, roots: [chain.root, r2] };
  assert.deepEqual(checkContinuity(two, { version: 5, roots: [r2, chain.root], endorsements: [] }, now), { accept: false, unchanged: true });
  refusedWith('TG_BUNDLE_ROLLBACK', { version: 5, roots: [chain.root], endorsements: [] }, two);
  refusedWith('TG_BUNDLE_ROLLBACK', { version: 5, roots: [r2], endorsements: [] }, two);
  refusedWith('TG_BUNDLE_ROLLBACK', { version: 5, roots: [chain.root, r2, chain.root], endorsements: [] }, two);
  refusedWith('TG_BUNDLE_ROLLBACK', { version: 5, roots: [chain.root, root('Root Three', p256())], endorsements: [] }, two);
});

test('an endorsement is valid at exactly its notBefore and notAfter, not a millisecond outside', () => {
  const nb = now - DAY;
  const na = now + DAY;
  const e = endorse('Root Two', k2, 'Test Root', chain.rootKey, { notBefore: nb, notAfter: na });
  const offered: OfferedBundle = { version: 6, roots: [chain.root, r2], endorsements: [e] };
  for (const t of [nb, na]) assert.equal(checkContinuity(held, offered, t).accept, true, new Date(t).toISOString());
  for (const t of [nb - 1, na + 1]) assert.throws(() => checkContinuity(held, offered, t), says('TG_BUNDLE_UNENDORSED', /adds root/), new Date(t).toISOString());
});

test('an endorsement must match the new root in subject as well as key', () => {
  refusedWith('TG_BUNDLE_UNENDORSED', { version: 6, roots: [chain.root, r2], endorsements: [endorse('Another Name', k2, 'Test Root', chain.rootKey)] });
});

test('endorsements are searched past useless ones (garbage, a forged signature) and any trusted root may vouch', () => {
  const forged = endorse('Root Two', k2, 'Test Root', p256());
  const v = checkContinuity(held, { version: 6, roots: [chain.root, r2], endorsements: [Buffer.from('junk'), forged, good] }, now);
  assert.ok(v.accept && v.added.length === 1 && v.added[0]!.equals(r2));
  const k3 = p256();
  const r3 = root('Root Three', k3);
  const byTwo = endorse('Root Three', k3, 'Root Two', k2);
  const two: HeldTrust = { version: 6, roots: [chain.root, r2] };
  const w = checkContinuity(two, { version: 7, roots: [r3], endorsements: [byTwo] }, now);
  assert.ok(w.accept);
  assert.deepEqual(w.added, [r3]);
  assert.deepEqual(w.removed, [chain.root, r2]);
});

test('two new roots, each endorsed: both are added, in offered order', () => {
  const k3 = p256();
  const r3 = root('Root Three', k3);
  const v = checkContinuity(held, { version: 6, roots: [r3, chain.root, r2], endorsements: [good, endorse('Root Three', k3, 'Test Root', chain.rootKey)] }, now);
  assert.ok(v.accept);
  assert.deepEqual(v.added, [r3, r2]);
  assert.deepEqual(v.removed, []);
});
