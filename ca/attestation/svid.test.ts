import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock, type Clock } from '../../common/clock.ts';
import { TollgateError } from '../../common/errors.ts';
import { Oid } from '../../pki/x509.ts';
import { buildCert, leafFrom, p256, testChain } from '../../pki/test-chain.ts';
import { SvidAttestor, type TrustSource } from './svid.ts';

const chain = testChain();
const other = testChain();
const isCode = (code: string) => (e: unknown) => e instanceof TollgateError && e.code === code;

function setup(options: { maxCachedLeaves?: number; versioned?: boolean } = {}) {
  const clock = new ManualClock(chain.now);
  const state = { version: 1, roots: [chain.root] as readonly Buffer[], intermediates: [chain.intermediate] as readonly Buffer[] };
  const trust: TrustSource = {
    trustDomain: 'example.org',
    roots: () => state.roots,
    intermediates: () => state.intermediates,
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
    await assert.rejects(
      attestor.attest({ peerChain: [leafFrom(chain, { uris: [id] }), chain.intermediate] }),
      (e: unknown) => isCode('TG_RESERVED_ID')(e) && (e as Error).message.startsWith(`a renewal with the current SVID asks for ${id}`),
      id,
    );
  }
  assert.equal(attestor.cacheStats.size, 0, 'a refusal is not cached');
});

test('accepts() only evidence carrying a client certificate chain', () => {
  const { attestor } = setup();
  assert.equal(attestor.kind, 'svid');
  const cases: Array<[Parameters<SvidAttestor['accepts']>[0], boolean]> = [
    [{ peerChain: [leafFrom(chain)] }, true],
    [{ peerChain: [] }, false],
    [{}, false],
    [{ token: 'tgjoin.x' }, false],
  ];
  for (const [evidence, want] of cases) assert.equal(attestor.accepts(evidence), want, JSON.stringify(Object.keys(evidence)));
});

test('no client certificate: TG_TOKEN_MISSING, saying so', async () => {
  const { attestor } = setup();
  for (const evidence of [{ peerChain: [] }, {}]) {
    await assert.rejects(attestor.attest(evidence), (e: unknown) => isCode('TG_TOKEN_MISSING')(e) && /no client certificate/.test((e as Error).message));
  }
});

test('what a verified certificate says: ID, prior serial, validity, issuer serial (lower-case hex)', async () => {
  const { attestor } = setup();
  const notBefore = chain.now - 60_000;
  const notAfter = chain.now + 3600_000;
  const leaf = leafFrom(chain, { serial: 0xab, notBefore, notAfter });
  const p = await attestor.authenticate([leaf, chain.intermediate]);
  assert.deepEqual(p, {
    attestation: {
      kind: 'svid',
      spiffeId: p.attestation.spiffeId,
      details: { prior_serial: '01ab' },
      attestedUntil: undefined,
      presentedValidity: { notBefore, notAfter },
    },
    serial: '01ab',
    notAfter,
    issuerSerial: '0142', // the test intermediate's serial, not the leaf's
  });
  assert.equal(p.attestation.spiffeId.id, 'spiffe://example.org/ns/shop/sa/web');
  assert.ok(Object.isFrozen(p) && Object.isFrozen(p.attestation) && Object.isFrozen(p.attestation.details) && Object.isFrozen(p.attestation.presentedValidity));
  assert.equal(await attestor.authenticate([leaf]), p, 'a cache hit is the very answer verified before');
});

test('intermediates come from the presented chain as well as from the CA', async () => {
  const { state, attestor } = setup();
  state.intermediates = [];
  const leaf = leafFrom(chain);
  assert.equal((await attestor.attest({ peerChain: [leaf, chain.intermediate] })).spiffeId.id, 'spiffe://example.org/ns/shop/sa/web');
  await assert.rejects(attestor.attest({ peerChain: [leafFrom(chain)] }), isCode('TG_SVID_UNTRUSTED'), 'no path without an intermediate');
});

test('renewal needs a client certificate of this trust domain: serverAuth alone or a foreign ID is refused', async () => {
  const { attestor } = setup();
  const clientOnly = leafFrom(chain, { eku: [Oid.clientAuth] });
  assert.equal((await attestor.attest({ peerChain: [clientOnly] })).spiffeId.id, 'spiffe://example.org/ns/shop/sa/web');
  const serverOnly = leafFrom(chain, { eku: [Oid.serverAuth] });
  await assert.rejects(attestor.attest({ peerChain: [serverOnly] }), (e: unknown) => isCode('TG_SVID_INVALID')(e) && /clientAuth/.test((e as Error).message));
  const foreign = leafFrom(chain, { uris: ['spiffe://other.org/ns/shop/sa/web'] });
  await assert.rejects(attestor.attest({ peerChain: [foreign] }), (e: unknown) => isCode('TG_SVID_UNTRUSTED')(e) && /other\.org/.test((e as Error).message));
});

test('a cached leaf is not valid before its own notBefore (a clock stepped back misses the cache)', async () => {
  // A system clock can step back; ManualClock cannot, so this one is set by hand.
  let at = chain.now;
  const clock: Clock = { now: () => at, setTimer: () => assert.fail('no timers here') };
  const trust: TrustSource = { trustDomain: 'example.org', roots: () => [chain.root], intermediates: () => [chain.intermediate] };
  const attestor = new SvidAttestor({ clock, trust });
  const leaf = leafFrom(chain); // notBefore = now - 60 s; the intermediate's is a day earlier
  await attestor.attest({ peerChain: [leaf] });
  at = chain.now - 60_000;
  await attestor.attest({ peerChain: [leaf] }); // valid from its notBefore
  assert.equal(attestor.cacheStats.hits, 1);
  at = chain.now - 60_001;
  await assert.rejects(attestor.attest({ peerChain: [leaf] }), (e: unknown) => isCode('TG_SVID_EXPIRED')(e) && /not valid until/.test((e as Error).message));
});

test('without a bundle version: equal trust keeps the cache, changed intermediates drop it', async () => {
  const { state, attestor } = setup({ versioned: false });
  const leaf = leafFrom(chain);
  await attestor.attest({ peerChain: [leaf] });
  state.roots = [Buffer.from(chain.root)]; // equal bytes, new Buffers
  state.intermediates = [Buffer.from(chain.intermediate)];
  await attestor.attest({ peerChain: [leaf] });
  assert.deepEqual(attestor.cacheStats, { hits: 1, misses: 1, size: 1 });
  state.intermediates = [Buffer.from(chain.intermediate), other.intermediate]; // one more
  await attestor.attest({ peerChain: [leaf] });
  assert.deepEqual(attestor.cacheStats, { hits: 1, misses: 2, size: 1 });
  state.intermediates = [other.intermediate, Buffer.from(chain.intermediate)]; // same length, other order
  await attestor.attest({ peerChain: [leaf] });
  assert.equal(attestor.cacheStats.misses, 3);
  state.intermediates = [other.intermediate, Buffer.from(chain.intermediate)];
  await attestor.attest({ peerChain: [leaf] });
  state.intermediates = [other.intermediate, testChain().intermediate]; // the first equal, the second not
  await attestor.attest({ peerChain: [leaf, chain.intermediate] });
  assert.equal(attestor.cacheStats.misses, 4, 'any one changed intermediate drops the cache');
  state.intermediates = [other.intermediate]; // the leaf's intermediate is gone: refused though cached
  await assert.rejects(attestor.attest({ peerChain: [leaf] }), isCode('TG_SVID_UNTRUSTED'));
});

test('the issuer serial is the intermediate the leaf chained through, in lower-case hex', async () => {
  const { state, attestor } = setup();
  state.intermediates = [];
  const day = 86_400_000;
  // The same intermediate key, certified again under serial 0x01cd.
  const reissued = buildCert({
    subject: 'Test Intermediate', issuerName: 'Test Root', issuerKey: chain.rootKey.key, issuerSpki: chain.rootKey.spki, spki: chain.intermediateKey.spki,
    notBefore: chain.now - day, notAfter: chain.now + day, ca: true, pathLen: 0, keyUsage: [0x01, 0x06], uris: ['spiffe://example.org'], sanCritical: false, serial: 0xcd,
  });
  assert.equal((await attestor.authenticate([leafFrom(chain), reissued])).issuerSerial, '01cd');
});

test('a self-signed leaf, presented alone, does not chain to the bundle', async () => {
  const { attestor } = setup();
  const k = p256();
  const self = buildCert({ issuerName: '', issuerKey: k.key, issuerSpki: k.spki, spki: k.spki, notBefore: chain.now - 60_000, notAfter: chain.now + 3600_000, ca: false, eku: [Oid.clientAuth], uris: ['spiffe://example.org/ns/shop/sa/web'] });
  await assert.rejects(attestor.attest({ peerChain: [self] }), (e: unknown) => isCode('TG_SVID_UNTRUSTED')(e) && /does not chain to a root/.test((e as Error).message));
});

test('an empty bundle trusts nothing', async () => {
  const { state, attestor } = setup({ versioned: false });
  state.roots = [];
  await assert.rejects(attestor.attest({ peerChain: [leafFrom(chain), chain.intermediate] }), isCode('TG_SVID_UNTRUSTED'));
  await assert.rejects(attestor.attest({ peerChain: [leafFrom(chain)] }), isCode('TG_SVID_UNTRUSTED'));
});
