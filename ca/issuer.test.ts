import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { ManualClock } from '../common/clock.ts';
import { TollgateError } from '../common/errors.ts';
import { basicConstraints, Oid, parseCertificate } from '../pki/x509.ts';
import { p256 } from '../pki/test-chain.ts';
import { createIntermediate, createRoot } from './authority.ts';
import { DEFAULT_ISSUANCE, SvidIssuer } from './issuer.ts';

const clock = new ManualClock(Date.UTC(2026, 0, 10));
const root = await createRoot({ trustDomain: 'example.org', clock });
const intermediate = await createIntermediate({ trustDomain: 'example.org', root, clock });

test('TTL: default 1h, capped at the maximum, minimum enforced, backdated 5 min', () => {
  const issuer = new SvidIssuer({ intermediate, clock });
  const spki = p256().spki;
  const a = issuer.issue({ spki, spiffeId: 'spiffe://example.org/a' });
  assert.equal(a.notAfter - clock.now(), 3600_000);
  assert.equal(clock.now() - a.notBefore, 5 * 60_000);
  const b = issuer.issue({ spki, spiffeId: 'spiffe://example.org/a', ttlSeconds: 10 * 86400 });
  assert.equal(b.notAfter - clock.now(), 86_400_000);
  assert.throws(() => issuer.issue({ spki, spiffeId: 'spiffe://example.org/a', ttlSeconds: 1 }), (e: unknown) => e instanceof TollgateError && e.code === 'TG_TTL_INVALID');
  assert.equal(a.chain[1], intermediate.certificate);
});

test('near the end of the intermediate, leaves are cut to its notAfter; past it, issuance stops', () => {
  const late = new ManualClock(intermediate.parsed.notAfter - 600_000);
  const issuer = new SvidIssuer({ intermediate, clock: late });
  const leaf = issuer.issue({ spki: p256().spki, spiffeId: 'spiffe://example.org/a' });
  assert.equal(leaf.notAfter, intermediate.parsed.notAfter);
  assert.equal(parseCertificate(leaf.chain[0]!).notAfter, intermediate.parsed.notAfter);
  late.advance(599_000);
  assert.throws(() => issuer.issue({ spki: p256().spki, spiffeId: 'spiffe://example.org/a' }), (e: unknown) => e instanceof TollgateError && e.code === 'TG_AUTHORITY_EXPIRED');
});

test('authorities: root 1 year and name-constrained to the trust domain, intermediate 30 days under it with pathLen 0', () => {
  assert.equal(root.parsed.notAfter - clock.now(), 365 * 86_400_000);
  assert.equal(intermediate.parsed.notAfter - clock.now(), 30 * 86_400_000);
  assert.ok(root.parsed.notBefore < clock.now());
  // The two extensions read by an outside parser (openssl), not by our own DER code.
  const text = (der: Buffer): string => {
    const r = spawnSync('openssl', ['x509', '-inform', 'DER', '-noout', '-text'], { input: der, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const rootText = text(root.certificate);
  assert.match(rootText, /Name Constraints: critical\s+Permitted:\s+URI:example\.org\s/, 'the root is name-constrained to the trust domain');
  assert.doesNotMatch(rootText, /pathlen/, 'the root sets no path length');
  assert.match(text(intermediate.certificate), /Basic Constraints: critical\s+CA:TRUE, pathlen:0\s/, 'the intermediate has pathLen 0');
  assert.equal(basicConstraints(intermediate.parsed.extensions.get(Oid.basicConstraints)!).pathLen, 0);
});

test('bad TTL settings are refused', () => {
  assert.throws(() => new SvidIssuer({ intermediate, clock, policy: { defaultTtlSeconds: 100_000 } }), /min <= default <= max/);
});

const SPKI = p256().spki;
const ID = 'spiffe://example.org/ns/a/sa/b';
const code = (c: string, message?: RegExp) => (e: unknown) => e instanceof TollgateError && e.code === c && (!message || message.test(e.message));

test('TTL settings: min <= default <= max (equal is fine), horizons at least the minimum', () => {
  const ok = [
    { minTtlSeconds: 60, defaultTtlSeconds: 60, maxTtlSeconds: 60 },
    { minTtlSeconds: 5, joinTokenHorizonSeconds: 5, k8sReattestSeconds: 5 },
  ];
  for (const policy of ok) assert.doesNotThrow(() => new SvidIssuer({ intermediate, clock, policy }), JSON.stringify(policy));
  const bad: Array<[Partial<SvidIssuer['policy']>, RegExp]> = [
    [{ minTtlSeconds: 61, defaultTtlSeconds: 60, maxTtlSeconds: 60 }, /^TTL settings must satisfy min <= default <= max$/],
    [{ defaultTtlSeconds: 61, maxTtlSeconds: 60 }, /min <= default <= max/],
    [{ minTtlSeconds: 10, joinTokenHorizonSeconds: 9 }, /^attestation horizons \(--join-token-horizon, --k8s-reattest\) must be at least the minimum TTL$/],
    [{ minTtlSeconds: 10, k8sReattestSeconds: 9 }, /attestation horizons/],
  ];
  for (const [policy, message] of bad) assert.throws(() => new SvidIssuer({ intermediate, clock, policy }), code('TG_CONFIG_INVALID', message), JSON.stringify(policy));
  const issuer = new SvidIssuer({ intermediate, clock, policy: { maxTtlSeconds: 7200 } });
  assert.deepEqual(issuer.policy, { ...DEFAULT_ISSUANCE, maxTtlSeconds: 7200 });
  assert.ok(Object.isFrozen(issuer.policy));
  assert.equal(issuer.intermediate, intermediate);
});

test('ttlFor: unset or 0 is the default; below the minimum is refused; the minimum itself is fine; above the maximum is cut', () => {
  const issuer = new SvidIssuer({ intermediate, clock });
  assert.equal(issuer.ttlFor(undefined), 3600);
  assert.equal(issuer.ttlFor(0), 3600);
  assert.equal(issuer.ttlFor(5), 5);
  assert.equal(issuer.ttlFor(86_400), 86_400);
  assert.equal(issuer.ttlFor(86_401), 86_400);
  assert.throws(() => issuer.ttlFor(4), code('TG_TTL_INVALID', /^requested TTL 4s is below the minimum of 5s$/));
});

test('plan: a renewal is capped at the presented lifetime and at the attestation horizon', () => {
  const issuer = new SvidIssuer({ intermediate, clock });
  const now = clock.now();
  assert.deepEqual(issuer.plan({ spki: SPKI, spiffeId: ID, ttlSeconds: 7200, maxTtlSeconds: 600 }), { spki: SPKI, spiffeId: ID, notBefore: now - 300_000, notAfter: now + 600_000, attestedUntil: undefined });
  assert.equal(issuer.plan({ spki: SPKI, spiffeId: ID, attestedUntil: now + 60_000 }).notAfter, now + 60_000);
  assert.equal(issuer.plan({ spki: SPKI, spiffeId: ID, attestedUntil: now + 60_000 }).attestedUntil, now + 60_000);
  assert.equal(issuer.plan({ spki: SPKI, spiffeId: ID, attestedUntil: now + 5000 }).notAfter, now + 5000, 'exactly the minimum lifetime left');
  assert.throws(() => issuer.plan({ spki: SPKI, spiffeId: ID, attestedUntil: now + 4999 }), code('TG_REATTEST_REQUIRED', /^the attestation of spiffe:\/\/example\.org\/ns\/a\/sa\/b held until 2026-01-10T00:00:04\.999Z: renewal cannot extend it; attest again/));
});

test('plan: the minimum lifetime left before the intermediate ends, and notBefore never before the intermediate', () => {
  const end = intermediate.parsed.notAfter;
  const atEnd = new SvidIssuer({ intermediate, clock: new ManualClock(end - 5000) });
  assert.equal(atEnd.plan({ spki: SPKI, spiffeId: ID }).notAfter, end);
  const past = new SvidIssuer({ intermediate, clock: new ManualClock(end - 4999) });
  assert.throws(() => past.plan({ spki: SPKI, spiffeId: ID }), code('TG_AUTHORITY_EXPIRED', /^the intermediate expires too soon to issue from; rotate it with `tollgate ca rotate intermediate`$/));
  const start = intermediate.parsed.notBefore;
  const early = new SvidIssuer({ intermediate, clock: new ManualClock(start + 60_000) });
  assert.equal(early.plan({ spki: SPKI, spiffeId: ID }).notBefore, start, 'backdating stops at the intermediate notBefore');
});

test('horizonFor: Kubernetes tokens re-attest after 12 h, join tokens hold 24 h (both configurable)', () => {
  const issuer = new SvidIssuer({ intermediate, clock });
  assert.equal(issuer.horizonFor('k8s_token'), clock.now() + 12 * 3600_000);
  assert.equal(issuer.horizonFor('join_token'), clock.now() + 24 * 3600_000);
  const custom = new SvidIssuer({ intermediate, clock, policy: { k8sReattestSeconds: 600, joinTokenHorizonSeconds: 900 } });
  assert.deepEqual([custom.horizonFor('k8s_token'), custom.horizonFor('join_token')], [clock.now() + 600_000, clock.now() + 900_000]);
});

test('issue: the answer names the leaf, its chain and its validity in whole seconds', () => {
  const odd = new ManualClock(clock.now() + 1234);
  const issuer = new SvidIssuer({ intermediate, clock: odd });
  const r = issuer.issue({ spki: SPKI, spiffeId: ID });
  const leaf = parseCertificate(r.chain[0]!);
  assert.equal(r.spiffeId, ID);
  assert.equal(r.chain.length, 2);
  assert.equal(r.serialHex, leaf.serialHex);
  assert.equal(r.notBefore, clock.now() + 1000 - 300_000);
  assert.equal(r.notAfter, clock.now() + 1000 + 3600_000);
  assert.deepEqual([leaf.notBefore, leaf.notAfter], [r.notBefore, r.notAfter]);
});
