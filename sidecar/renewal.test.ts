import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { backoffDelay, earlyRenewalDelay, heldLifetime, renewAt, retryBeforeExpiry, seededRandom } from './renewal.ts';

const HOUR = 3600_000;
const T0 = Date.UTC(2026, 0, 1);
const ALMOST_ONE = 1 - Number.EPSILON;
const fixed = (r: number) => () => r;

describe('renewAt', () => {
  const svid = { notBefore: T0, notAfter: T0 + HOUR };
  const table: Array<[string, number, number]> = [
    ['random 0 → 40 % of the lifetime', 0, T0 + 0.4 * HOUR],
    ['random 0.5 → 50 %', 0.5, T0 + 0.5 * HOUR],
    ['random 0.25 → 45 %', 0.25, T0 + 0.45 * HOUR],
    ['random → 1 stays below 60 %', ALMOST_ONE, T0 + 0.6 * HOUR - 1],
    ['random 1 (broken source) is clamped below 60 %', 1, T0 + 0.6 * HOUR - 1],
    ['random < 0 (broken source) is clamped to 40 %', -3, T0 + 0.4 * HOUR],
    ['random NaN (broken source) is clamped to 40 %', Number.NaN, T0 + 0.4 * HOUR],
  ];
  for (const [name, r, want] of table) {
    test(name, () => assert.equal(renewAt(svid, fixed(r)), want));
  }

  test('property: always within [40 %, 60 %) of the lifetime, an integer, before expiry', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4_000_000_000_000 }),
        fc.integer({ min: 2, max: 30 * 24 * HOUR }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (notBefore, lifetime, r) => {
          const at = renewAt({ notBefore, notAfter: notBefore + lifetime }, fixed(r));
          assert.ok(Number.isInteger(at));
          assert.ok(at >= notBefore + Math.floor(0.4 * lifetime), `${at} before 40 %`);
          assert.ok(at <= notBefore + Math.ceil(0.6 * lifetime), `${at} after 60 %`);
          assert.ok(at < notBefore + lifetime);
        },
      ),
    );
  });

  test('property: monotone in random (more random, later renewal)', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        assert.ok(renewAt(svid, fixed(lo)) <= renewAt(svid, fixed(hi)));
      }),
    );
  });

  test('a seeded fleet of 10,000 spreads over the whole window, not in lockstep', () => {
    const random = seededRandom(42);
    const buckets = new Array<number>(10).fill(0);
    for (let i = 0; i < 10_000; i++) {
      const share = (renewAt(svid, random) - T0) / HOUR; // [0.4, 0.6)
      buckets[Math.floor((share - 0.4) * 50)]! += 1;
    }
    for (const n of buckets) assert.ok(n > 800 && n < 1200, `each tenth of the window gets ~1000 renewals, got ${buckets.join(',')}`);
  });
});

describe('heldLifetime', () => {
  test('counts from receipt when the CA backdated notBefore, so a short TTL does not renew at once', () => {
    const svid = { notBefore: T0 - 30_000, notAfter: T0 + 6_000 };
    assert.deepEqual(heldLifetime(svid, T0), { notBefore: T0, notAfter: T0 + 6_000 });
    assert.equal(renewAt(heldLifetime(svid, T0), fixed(0.5)), T0 + 3_000);
    // Without it, 50 % of the backdated lifetime lies in the past.
    assert.ok(renewAt(svid, fixed(0.5)) < T0);
  });
  test('keeps notBefore when it is later than receipt, and never passes notAfter', () => {
    assert.deepEqual(heldLifetime({ notBefore: T0 + 5, notAfter: T0 + 10 }, T0), { notBefore: T0 + 5, notAfter: T0 + 10 });
    assert.deepEqual(heldLifetime({ notBefore: T0, notAfter: T0 + 10 }, T0 + 99), { notBefore: T0 + 10, notAfter: T0 + 10 });
  });
});

describe('backoffDelay', () => {
  test('grows by doubling from the base and stops at the cap (defaults 1 s, 60 s)', () => {
    const ceilings = [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000];
    ceilings.forEach((ceiling, attempt) => {
      assert.equal(backoffDelay(attempt, fixed(0)), ceiling / 2, `attempt ${attempt} lower bound`);
      assert.equal(backoffDelay(attempt, fixed(ALMOST_ONE)), ceiling - 1, `attempt ${attempt} upper bound`);
    });
  });

  test('custom base and cap', () => {
    assert.equal(backoffDelay(0, fixed(0.5), { baseMs: 200, maxMs: 1000 }), 150);
    assert.equal(backoffDelay(3, fixed(0), { baseMs: 200, maxMs: 1000 }), 500);
    assert.equal(backoffDelay(50, fixed(0), { baseMs: 200, maxMs: 1000 }), 500);
  });

  test('huge, negative or non-finite attempts stay finite and within bounds', () => {
    assert.equal(backoffDelay(1e9, fixed(0)), 30_000);
    assert.equal(backoffDelay(Number.POSITIVE_INFINITY, fixed(0)), 30_000);
    assert.equal(backoffDelay(-5, fixed(0)), 500);
    assert.equal(backoffDelay(Number.NaN, fixed(0)), 30_000);
  });

  test('property: jitter bounds [ceiling/2, ceiling) and never above maxMs', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 600_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, baseMs, maxExtra, r) => {
          const maxMs = baseMs + maxExtra;
          const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 40));
          const d = backoffDelay(attempt, fixed(r), { baseMs, maxMs });
          assert.ok(d >= Math.floor(ceiling / 2) && d <= ceiling && d <= maxMs, `${d} outside [${ceiling / 2}, ${ceiling}]`);
        },
      ),
    );
  });

  test('property: the jitter-free floor never shrinks as attempts grow', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100 }), (attempt) => {
        assert.ok(backoffDelay(attempt + 1, fixed(0)) >= backoffDelay(attempt, fixed(0)));
      }),
    );
  });
});

describe('retryBeforeExpiry', () => {
  const notAfter = T0 + 60_000;
  test('a retry that would sleep past the expiry is pulled in to 1 s before it', () => {
    assert.equal(retryBeforeExpiry({ now: T0, delayMs: 120_000, notAfter }), 59_000);
  });
  test('a retry that lands before the last chance is unchanged', () => {
    assert.equal(retryBeforeExpiry({ now: T0, delayMs: 30_000, notAfter }), 30_000);
  });
  test('at or past the last chance the backoff is unchanged (no busy loop at the edge)', () => {
    assert.equal(retryBeforeExpiry({ now: notAfter - 1000, delayMs: 8_000, notAfter }), 8_000);
    assert.equal(retryBeforeExpiry({ now: notAfter + 5, delayMs: 8_000, notAfter }), 8_000);
  });
  test('property: result is positive and never later than the original delay', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 * HOUR }), fc.integer({ min: 1, max: HOUR }), fc.integer({ min: -HOUR, max: 10 * HOUR }), (now, delayMs, life) => {
        const d = retryBeforeExpiry({ now, delayMs, notAfter: now + life });
        assert.ok(d > 0 && d <= delayMs);
      }),
    );
  });
});

describe('earlyRenewalDelay', () => {
  test('uniform in [0, spread)', () => {
    assert.equal(earlyRenewalDelay(fixed(0)), 0);
    assert.equal(earlyRenewalDelay(fixed(ALMOST_ONE)), 9_999);
    assert.equal(earlyRenewalDelay(fixed(0.5), 2_000), 1_000);
  });
});

describe('seededRandom', () => {
  test('deterministic per seed, in [0, 1)', () => {
    const a = seededRandom(7);
    const b = seededRandom(7);
    for (let i = 0; i < 1000; i++) {
      const x = a();
      assert.equal(x, b());
      assert.ok(x >= 0 && x < 1);
    }
  });
});
