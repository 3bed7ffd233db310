import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatRotationEvent, rotationPrinter, type RotationEvent } from './rotation-plan.ts';

const progress = (converged: number, left: number): RotationEvent => ({
  event: 'progress', phase: 'prepared', waiting_for: 'convergence', converged, total: 12, stale: 1, old_leaves: null, time_left_seconds: left, note: null,
});

test('the progress line: phase, sidecars converged/total, stale, time left', () => {
  assert.equal(formatRotationEvent(progress(11, 185)), 'phase prepared · sidecars 11/12 converged, 1 stale · 3m5s left');
  assert.equal(
    formatRotationEvent({ event: 'progress', phase: 'activated', waiting_for: 'leaves', converged: null, total: null, stale: null, old_leaves: 4, time_left_seconds: 7200, note: null }),
    'phase activated · 4 live leaves on the old authority · 2h left',
  );
});

test('printer: rewritten in place on a terminal; elsewhere only when it changes (or each minute); JSON lines with --json', () => {
  const out: string[] = [];
  let now = 0;
  const tty = rotationPrinter({ write: (s) => out.push(s), json: false, tty: true, now: () => now });
  tty(progress(1, 10));
  tty(progress(2, 9));
  tty({ event: 'warning', message: 'x' });
  assert.deepEqual(out, ['\r\x1b[2Kphase prepared · sidecars 1/12 converged, 1 stale · 10s left', '\r\x1b[2Kphase prepared · sidecars 2/12 converged, 1 stale · 9s left', '\n', 'warning: x\n']);
  out.length = 0;
  const log = rotationPrinter({ write: (s) => out.push(s), json: false, tty: false, now: () => now });
  log(progress(1, 10));
  log(progress(1, 9));
  now += 61_000;
  log(progress(1, 8));
  log(progress(2, 7));
  assert.equal(out.length, 3);
  out.length = 0;
  rotationPrinter({ write: (s) => out.push(s), json: true, tty: true, now: () => now })(progress(3, 1));
  assert.deepEqual(JSON.parse(out[0]!), progress(3, 1));
});
