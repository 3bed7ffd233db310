import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { ManualClock } from '../common/clock.ts';
import { createLogger } from '../common/log.ts';
import { AUDIT_AGGREGATE_ADDRESSES, AuditLog } from './audit.ts';
import { caReadiness } from './server.ts';

function memory() {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, out: { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) } };
}

test('refusals aggregate per address and flush on the clock: one line per address per interval with count and codes', () => {
  const clock = new ManualClock();
  const m = memory();
  const audit = new AuditLog({ out: m.out, clock });
  for (let i = 0; i < 1000; i++) audit.refusedAggregate('10.0.0.1', i % 4 === 0 ? 'TG_TOKEN_MISSING' : 'TG_RATE_LIMITED');
  audit.refusedAggregate('10.0.0.2', 'TG_TOKEN_INVALID');
  assert.equal(m.lines.length, 0);
  clock.advance(9_999);
  assert.equal(m.lines.length, 0);
  clock.advance(1);
  assert.deepEqual(m.lines.map((l) => [l.event, l.peer, l.count, l.codes]), [
    ['svid_refused_aggregate', '10.0.0.1', 1000, { TG_TOKEN_MISSING: 250, TG_RATE_LIMITED: 750 }],
    ['svid_refused_aggregate', '10.0.0.2', 1, { TG_TOKEN_INVALID: 1 }],
  ]);
  // The next interval starts afresh; nothing is written while nothing is refused.
  clock.advance(60_000);
  assert.equal(m.lines.length, 2);
});

test('addresses beyond the table size are counted under "*", never dropped', () => {
  const clock = new ManualClock();
  const m = memory();
  const audit = new AuditLog({ out: m.out, clock });
  for (let i = 0; i < AUDIT_AGGREGATE_ADDRESSES + 10; i++) audit.refusedAggregate(`fd00::${i.toString(16)}`, 'TG_RATE_LIMITED');
  audit.flush();
  assert.equal(m.lines.length, AUDIT_AGGREGATE_ADDRESSES + 1);
  assert.equal(m.lines.reduce((n, l) => n + (l.count as number), 0), AUDIT_AGGREGATE_ADDRESSES + 10);
  assert.equal(m.lines.at(-1)!.peer, '*');
});

test('close flushes the pending aggregates and waits for the stream', async () => {
  const clock = new ManualClock();
  const chunks: string[] = [];
  const out = new Writable({ highWaterMark: 16, write: (c: Buffer, _e, cb) => setImmediate(() => (chunks.push(c.toString()), cb())) });
  const audit = new AuditLog({ out, clock });
  audit.refusedAggregate('10.0.0.1', 'TG_TOKEN_MISSING');
  await audit.record({ event: 'svid_issued', spiffe_id: 'spiffe://example.org/a' });
  assert.equal(chunks.length, 1, 'an issuance resolves once its line is written');
  await audit.close();
  assert.deepEqual(chunks.map((c) => (JSON.parse(c) as { event: string }).event), ['svid_issued', 'svid_refused_aggregate']);
});

test('a write failure is loud: callback (metric), error log, failure for readiness (503)', async () => {
  const clock = new ManualClock();
  const logged: string[] = [];
  let errors = 0;
  const out = new Writable({ write: (_c, _e, cb) => cb(new Error('ENOSPC: no space left on device')) });
  const audit = new AuditLog({ out, clock, logger: createLogger({ out: { write: (s: string) => logged.push(s) } }), onWriteError: () => errors++ });
  assert.equal(audit.failure, undefined);
  await audit.record({ event: 'svid_issued' });
  assert.ok(errors >= 1);
  assert.match(audit.failure ?? '', /audit log write failed: ENOSPC/);
  assert.equal(logged.filter((l) => l.includes('audit log write failed')).length, 1, 'logged once');
  const r = caReadiness({ state: 'ok', detail: 'fine' }, 'x', audit.failure);
  assert.equal(r.ready, false);
  assert.match(r.detail, /ENOSPC/);
});
