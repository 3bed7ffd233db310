// RefusalLog: at most `perWindow` lines per reason per window, then one suppressed-count line per reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../common/clock.ts';
import { createLogger } from '../common/log.ts';
import { RefusalLog } from './refusal-log.ts';

function rig() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ out: { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) }, level: 'debug' });
  const clock = new ManualClock(Date.now());
  return { lines, clock, log: new RefusalLog({ logger, clock, direction: 'inbound', perWindow: 10, windowMs: 60_000 }) };
}

test('a flood of one reason writes 10 lines, then one suppressed-count line; another reason keeps its own share', () => {
  const { lines, clock, log } = rig();
  for (let i = 0; i < 1_000; i++) log.warn('inbound connection refused', { event: 'inbound_refused', reason: 'untrusted', code: 'TG_SVID_UNTRUSTED' });
  log.warn('inbound connection refused', { event: 'inbound_refused', reason: 'no_rule', code: 'TG_POLICY_DENIED' });
  assert.equal(lines.filter((l) => l.reason === 'untrusted').length, 10);
  assert.equal(lines.filter((l) => l.reason === 'no_rule').length, 1);
  clock.advance(60_000);
  const summary = lines.filter((l) => l.event === 'inbound_refusals_suppressed');
  assert.deepEqual(summary.map((l) => [l.reason, l.suppressed]), [['untrusted', 990]]);
  // The next window starts fresh.
  log.warn('inbound connection refused', { event: 'inbound_refused', reason: 'untrusted', code: 'TG_SVID_UNTRUSTED' });
  assert.equal(lines.filter((l) => l.event === 'inbound_refused' && l.reason === 'untrusted').length, 11);
  log.close();
  assert.equal(clock.pending, 0);
});
