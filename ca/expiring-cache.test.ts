import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../common/clock.ts';
import { ExpiringCache } from './expiring-cache.ts';

const T0 = Date.UTC(2026, 0, 1);

test('hit inside the window, miss outside it; an expired entry is dropped', () => {
  const clock = new ManualClock(T0);
  const c = new ExpiringCache<string>({ maxEntries: 10, clock });
  assert.equal(c.get('a'), undefined);
  c.set('a', 'A', { from: T0 - 1000, until: T0 + 5000 });
  assert.equal(c.get('a'), 'A');
  clock.advance(5000);
  assert.equal(c.get('a'), 'A', 'until is inclusive, as a certificate is valid at its notAfter');
  clock.advance(1);
  assert.equal(c.get('a'), undefined);
  assert.deepEqual(c.stats(), { hits: 2, misses: 2, size: 0 });
});

test('an entry is a miss before its window opens (a clock stepped back)', () => {
  const clock = new ManualClock(T0);
  const c = new ExpiringCache<number>({ maxEntries: 10, clock });
  c.set('k', 1, { from: T0 + 1000, until: T0 + 9000 });
  assert.equal(c.get('k'), undefined);
});

test('bounded: the least recently used entry goes first', () => {
  const clock = new ManualClock(T0);
  const c = new ExpiringCache<number>({ maxEntries: 2, clock });
  const w = { from: T0, until: T0 + 60_000 };
  c.set('a', 1, w);
  c.set('b', 2, w);
  assert.equal(c.get('a'), 1); // a is now the most recent
  c.set('c', 3, w);
  assert.equal(c.get('b'), undefined);
  assert.equal(c.get('a'), 1);
  assert.equal(c.get('c'), 3);
  assert.equal(c.stats().size, 2);
  for (let i = 0; i < 100; i++) c.set(`k${i}`, i, w);
  assert.equal(c.stats().size, 2);
});

test('set replaces, clear empties', () => {
  const clock = new ManualClock(T0);
  const c = new ExpiringCache<number>({ maxEntries: 4, clock });
  c.set('a', 1, { from: T0, until: T0 + 1 });
  c.set('a', 2, { from: T0, until: T0 + 100 });
  clock.advance(50);
  assert.equal(c.get('a'), 2);
  c.clear();
  assert.equal(c.get('a'), undefined);
  assert.throws(() => new ExpiringCache({ maxEntries: 0, clock }), RangeError);
});
