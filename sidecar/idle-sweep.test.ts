import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../common/clock.ts';
import { IdleSweep } from './idle-sweep.ts';

function conn() {
  const c = { moved: 0, timedOut: 0, bytesMoved: () => c.moved, idleTimedOut: () => void c.timedOut++ };
  return c;
}

test('a connection on which nothing moves is closed after the idle timeout plus at most a tenth; one that moves is not', () => {
  const clock = new ManualClock();
  const sweep = new IdleSweep({ clock, idleMs: 1000 });
  const quiet = conn();
  const busy = conn();
  sweep.add(quiet);
  sweep.add(busy);
  for (let t = 100; t <= 900; t += 100) {
    busy.moved += 10;
    clock.advance(100);
  }
  assert.equal(quiet.timedOut, 0, 'not before the timeout');
  for (let t = 1000; t <= 1100; t += 100) {
    busy.moved += 10;
    clock.advance(100);
  }
  assert.equal(quiet.timedOut, 1, 'closed by idleMs + idleMs/10');
  assert.equal(sweep.size, 1);
  // The busy one stops moving: closed one timeout after its last movement (at 1,100 ms), not before.
  clock.advance(900);
  assert.equal(busy.timedOut, 0);
  clock.advance(300);
  assert.equal(busy.timedOut, 1);
  assert.equal(quiet.timedOut, 1, 'closed once');
  assert.equal(sweep.size, 0);
  assert.equal(clock.pending, 0, 'no connection, no timer');
});

test('one timer for every connection, none once they are gone, and a tenth of the timeout between sweeps (1 ms to 60 s)', () => {
  const clock = new ManualClock();
  const sweep = new IdleSweep({ clock, idleMs: 3_600_000 });
  const all = Array.from({ length: 100 }, () => conn());
  for (const c of all) sweep.add(c);
  assert.equal(clock.pending, 1);
  for (const c of all) sweep.delete(c);
  assert.equal(clock.pending, 0);
  const c = conn();
  sweep.add(c);
  clock.advance(3_600_000 - 1);
  assert.equal(c.timedOut, 0, 'sweeps every 60 s (a tenth of an hour is more): none yet at the timeout');
  assert.equal(clock.pending, 1);
  clock.advance(1);
  assert.equal(c.timedOut, 1, 'the sweep at 1 h closes it');
  sweep.close();
});
