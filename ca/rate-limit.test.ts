import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../common/clock.ts';
import { DEFAULT_MAX_KEYS, RateLimiter, addressKey } from './rate-limit.ts';

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
  for (let i = 0; i < 100; i++) {
    assert.ok(rl.take(`k${i}`));
    assert.equal(rl.size, Math.min(i + 1, 10), `after ${i + 1} keys the table holds ${rl.size}; maxKeys is 10`);
  }
  assert.ok(rl.has('k99') && rl.has('k90') && !rl.has('k89'), 'the newest ten are kept');
});

test('the default key table holds 100 000 keys', () => {
  const rl = new RateLimiter({ limit: { perSecond: 1, burst: 1 }, clock: new ManualClock(0) });
  assert.equal(DEFAULT_MAX_KEYS, 100_000);
  for (let i = 0; i <= DEFAULT_MAX_KEYS; i++) rl.take(`k${i}`);
  assert.equal(rl.size, DEFAULT_MAX_KEYS);
  assert.equal(rl.has('k0'), false);
});

test('refill is proportional to the time since the last take, from any clock origin', () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const rl = new RateLimiter({ limit: { perSecond: 4, burst: 2 }, clock });
  assert.deepEqual([rl.take('a'), rl.take('a'), rl.take('a')], [true, true, false]);
  clock.advance(249); // 0.996 of a token
  assert.equal(rl.take('a'), false);
  clock.advance(1); // 1.0: exactly one token, counted from the first take
  assert.equal(rl.take('a'), true);
  assert.equal(rl.take('a'), false);
  clock.advance(250);
  assert.equal(rl.take('a'), true);
  clock.advance(10_000); // long quiet: burst, not more
  assert.deepEqual([rl.take('a'), rl.take('a'), rl.take('a')], [true, true, false]);
});

test('a full table evicts the least recently used key only', () => {
  const clock = new ManualClock(0);
  const rl = new RateLimiter({ limit: { perSecond: 1, burst: 1 }, clock, maxKeys: 3 });
  assert.ok(rl.take('a'));
  assert.ok(rl.take('b'));
  assert.ok(rl.take('c'));
  assert.equal(rl.take('a'), false, 'a is now the most recently used (and empty)');
  assert.ok(rl.take('d'));
  assert.equal(rl.size, 3);
  assert.equal(rl.has('b'), false, 'b was the least recently used');
  assert.ok(rl.has('a') && rl.has('c') && rl.has('d'));
  assert.equal(rl.take('a'), false, 'an empty bucket that stayed in the table stays empty');
  for (let i = 0; i < 100; i++) rl.take(`k${i}`);
  assert.equal(rl.size, 3);
});

test('address keys: IPv4 as is, IPv6 per /64, IPv4-mapped as IPv4', () => {
  assert.equal(addressKey('127.0.0.1'), '127.0.0.1');
  assert.equal(addressKey('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(addressKey('::1'), '0:0:0:0::/64');
  assert.notEqual(addressKey('2001:db8:1:3::1'), addressKey('2001:db8:1:2::1'));
  const more: Array<[string, string]> = [
    ['::FFFF:10.1.2.3', '10.1.2.3'],
    ['::ffff:10.11.12.13', '10.11.12.13'],
    ['1::ffff:10.1.2.3', '1:0:0:0::/64'], // not IPv4-mapped: only ::ffff:a.b.c.d is
    ['::ffff:10.1.2.3.4', '::ffff:10.1.2.3.4'], // not an address at all: its own key
    ['10.1.2.3', '10.1.2.3'],
    ['1:2::3:4:5:6:7', '1:2:0:3::/64'], // the tail reaches into the first four groups
    ['::a:b:c:d:e:f', '0:0:a:b::/64'],
    ['fe80::', 'fe80:0:0:0::/64'],
    ['2001:DB8:00A1:0002::', '2001:db8:a1:2::/64'], // leading zeros and case do not make a new bucket
    ['::', '0:0:0:0::/64'],
    ['not-an-address', 'not-an-address'],
  ];
  for (const [address, key] of more) assert.equal(addressKey(address), key, address);
});
