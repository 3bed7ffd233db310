import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../common/clock.ts';
import { TollgateError } from '../../common/errors.ts';
import { leafFrom, testChain } from '../../pki/test-chain.ts';
import { SvidAttestor, type TrustSource } from './svid.ts';

const chain = testChain();
const other = testChain();
const isCode = (code: string) => (e: unknown) => e instanceof TollgateError && e.code === code;

function setup(options: { maxCachedLeaves?: number; versioned?: boolean } = {}) {
  const clock = new ManualClock(chain.now);
  const state = { version: 1, roots: [chain.root] as readonly Buffer[] };
  const trust: TrustSource = {
    trustDomain: 'example.org',
    roots: () => state.roots,
    intermediates: () => [chain.intermediate],
    ...(options.versioned === false ? {} : { bundleVersion: () => state.version }),
  };
  const attestor = new SvidAttestor({ clock, trust, ...(options.maxCachedLeaves ? { maxCachedLeaves: options.maxCachedLeaves } : {}) });
  return { clock, state, attestor };
}

test('a renewing leaf is verified once, then served from the cache', async () => {
  const { attestor } = setup();
  const leaf = leafFrom(chain);
  const a = await attestor.attest({ peerChain: [leaf, chain.intermediate] });
  const b = await attestor.attest({ peerChain: [Buffer.from(leaf), chain.intermediate] }); // same bytes, new Buffer
  assert.equal(a.spiffeId.id, 'spiffe://example.org/ns/shop/sa/web');
  assert.deepEqual(b, a);
  assert.deepEqual(attestor.cacheStats, { hits: 1, misses: 1, size: 1 });
});

test('a cached leaf expires with the leaf, and with its intermediate when that ends first', async () => {
  const { clock, attestor } = setup();
  const leaf = leafFrom(chain);
  await attestor.attest({ peerChain: [leaf] });
  clock.advance(3600_000);
  await attestor.attest({ peerChain: [leaf] }); // valid at its notAfter
  clock.advance(1);
  await assert.rejects(attestor.attest({ peerChain: [leaf] }), isCode('TG_SVID_EXPIRED'));

  const s = setup();
  const long = leafFrom(chain, { notAfter: chain.now + 40 * 86_400_000 }); // outlives the intermediate
  await s.attestor.attest({ peerChain: [long] });
  s.clock.advance(31 * 86_400_000);
  await assert.rejects(s.attestor.attest({ peerChain: [long] }), isCode('TG_SVID_EXPIRED'));
});

test('a new bundle version drops every cached verification', async () => {
  const { state, attestor } = setup();
  const leaf = leafFrom(chain);
  await attestor.attest({ peerChain: [leaf] });
  state.version = 2; // same roots: verified again, still fine
  await attestor.attest({ peerChain: [leaf] });
  assert.equal(attestor.cacheStats.misses, 2);
  state.version = 3;
  state.roots = [other.root]; // the leaf's root is gone: refused, even though it was cached
  await assert.rejects(attestor.attest({ peerChain: [leaf] }), isCode('TG_SVID_UNTRUSTED'));
});

test('without a bundle version, changed roots drop the cache', async () => {
  const { state, attestor } = setup({ versioned: false });
  const leaf = leafFrom(chain);
  await attestor.attest({ peerChain: [leaf] });
  state.roots = [other.root];
  await assert.rejects(attestor.attest({ peerChain: [leaf] }), isCode('TG_SVID_UNTRUSTED'));
});

test('the cache is bounded', async () => {
  const { attestor } = setup({ maxCachedLeaves: 2 });
  for (let i = 0; i < 5; i++) await attestor.attest({ peerChain: [leafFrom(chain)] });
  assert.equal(attestor.cacheStats.size, 2);
});

test('a hit needs the very bytes that were verified; refusals are not cached', async () => {
  const { attestor } = setup();
  const leaf = leafFrom(chain);
  await attestor.attest({ peerChain: [leaf] });
  leaf[leaf.length - 3]! ^= 1; // same Buffer object, now with a broken signature
  await assert.rejects(attestor.attest({ peerChain: [leaf] }), isCode('TG_SVID_UNTRUSTED'));
  await assert.rejects(attestor.attest({ peerChain: [leaf] }), isCode('TG_SVID_UNTRUSTED'));
  const foreign = leafFrom(other);
  await assert.rejects(attestor.attest({ peerChain: [foreign] }), isCode('TG_SVID_UNTRUSTED'));
  assert.equal(attestor.cacheStats.size, 1);
});

test('a current SVID with a reserved ID is never renewed (the CA issues its own, never through an attestor)', async () => {
  const { attestor } = setup();
  for (const id of ['spiffe://example.org/tollgate/ca', 'spiffe://example.org/tollgate/other']) {
    await assert.rejects(attestor.attest({ peerChain: [leafFrom(chain, { uris: [id] }), chain.intermediate] }), isCode('TG_RESERVED_ID'), id);
  }
  assert.equal(attestor.cacheStats.size, 0, 'a refusal is not cached');
});
