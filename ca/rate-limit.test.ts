import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../common/clock.ts';
import { RateLimiter } from './rate-limit.ts';

test('token bucket: burst, then the sustained rate, per key', () => {
  const clock = new ManualClock(0);
  const rl = new RateLimiter({ limit: { perSecond: 2, burst: 3 }, clock });
  assert.deepEqual([rl.take('a'), rl.take('a'), rl.take('a'), rl.take('a')], [true, true, true, false]);
  assert.equal(rl.take('b'), true, 'keys are independent');
  clock.advance(499);
  assert.equal(rl.take('a'), false);
  clock.advance(1);
  assert.equal(rl.take('a'), true);
  clock.advance(60_000);
  assert.deepEqual([rl.take('a'), rl.take('a'), rl.take('a'), rl.take('a')], [true, true, true, false], 'refills up to burst only');
});

test('0 per second means unlimited', () => {
  const rl = new RateLimiter({ limit: { perSecond: 0, burst: 0 }, clock: new ManualClock() });
  for (let i = 0; i < 1000; i++) assert.ok(rl.take('x'));
});

test('the key table stays bounded', () => {
  const clock = new ManualClock(0);
  const rl = new RateLimiter({ limit: { perSecond: 1, burst: 1 }, clock, maxKeys: 10 });
  for (let i = 0; i < 100; i++) assert.ok(rl.take(`k${i}`));
});
