import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from './clock.ts';

test('ManualClock fires timers in due order as time advances, never early', () => {
  const c = new ManualClock(1000);
  const fired: string[] = [];
  c.setTimer(300, () => fired.push(`b@${c.now()}`));
  c.setTimer(100, () => fired.push(`a@${c.now()}`));
  const cancelled = c.setTimer(200, () => fired.push('never'));
  cancelled.cancel();
  c.advance(99);
  assert.deepEqual(fired, []);
  c.advance(1);
  assert.deepEqual(fired, ['a@1100']);
  c.advance(1000);
  assert.deepEqual(fired, ['a@1100', 'b@1300']);
  assert.equal(c.now(), 2100);
  assert.equal(c.pending, 0);
});

test('timers set by timers fire within the same advance', () => {
  const c = new ManualClock(0);
  const at: number[] = [];
  c.setTimer(10, () => {
    at.push(c.now());
    c.setTimer(10, () => at.push(c.now()));
  });
  c.advance(25);
  assert.deepEqual(at, [10, 20]);
  assert.throws(() => c.set(5), /backwards/);
});
