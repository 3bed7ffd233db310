// Issue 13 problem 2: a flood of unauthenticated and rate-limited requests against a real
// `ca serve` writes a few aggregated audit lines (one per address per interval, with a count and the
// codes), not one per request; every refusal is still counted in metrics; every issuance keeps its
// own line; SIGTERM flushes what is pending.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { createJoinToken, initCa, newKey, startCa } from './helpers/ca-fixture.ts';
import { tempDir } from './helpers/procs.ts';

const WEB = 'spiffe://example.org/ns/shop/sa/web';
const FLOOD = 2000;
const BATCH = 50;

async function flood(aggregate: string): Promise<{ auditBytes: number; floodMs: number; refused: number; issued: number; aggregateLines: Array<Record<string, unknown>>; refusedMetric: number }> {
  const tmp = tempDir();
  const dir = join(tmp.dir, 'ca');
  initCa(dir);
  const ca = await startCa(dir, ['--audit-aggregate', aggregate, '--rate-per-address', '20']);
  try {
    const client = ca.client();
    for (let i = 0; i < 3; i++) await client.issue({ csr: newKey().csr, token: createJoinToken(dir, WEB) });
    const csr = newKey().csr;
    const sizeBefore = statSync(join(dir, 'audit-serve.log')).size;
    const started = performance.now();
    let refused = 0;
    for (let i = 0; i < FLOOD; i += BATCH) {
      const r = await Promise.allSettled(Array.from({ length: BATCH }, () => client.issue({ csr })));
      refused += r.filter((x) => x.status === 'rejected').length;
    }
    const floodMs = performance.now() - started;
    const metrics = await (await fetch(`http://127.0.0.1:${ca.adminPort}/metrics`)).text();
    const refusedMetric = [...metrics.matchAll(/^tollgate_ca_refused_total\{code="[A-Z_]+"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    await ca.proc.stop('SIGTERM');
    const auditBytes = statSync(join(dir, 'audit-serve.log')).size - sizeBefore;
    const lines = ca.auditLines();
    return {
      auditBytes,
      floodMs,
      refused,
      issued: lines.filter((l) => l.event === 'svid_issued').length,
      aggregateLines: lines.filter((l) => l.event === 'svid_refused_aggregate'),
      refusedMetric,
    };
  } finally {
    await ca.stop();
    tmp.cleanup();
  }
}

test(`${FLOOD} unauthenticated requests: a few aggregated audit lines, every refusal counted, issuances each on their own line`, async (t) => {
  const r = await flood('10s');
  assert.equal(r.refused, FLOOD, 'every flood request is refused');
  assert.equal(r.issued, 3, 'each issuance keeps its own line');
  assert.equal(r.refusedMetric, FLOOD, 'every refusal counted in tollgate_ca_refused_total');
  // One address: one line per 10 s interval (plus the one SIGTERM flushes).
  assert.ok(r.aggregateLines.length >= 1 && r.aggregateLines.length <= Math.ceil(r.floodMs / 10_000) + 1, `${r.aggregateLines.length} aggregate lines`);
  assert.equal(r.aggregateLines.reduce((n, l) => n + (l.count as number), 0), FLOOD, 'the counts add up to the refusals');
  const codes = Object.keys(Object.assign({}, ...r.aggregateLines.map((l) => l.codes as object)) as object).sort();
  assert.deepEqual(codes, ['TG_RATE_LIMITED', 'TG_TOKEN_MISSING']);
  assert.ok(r.auditBytes < 1000 * r.aggregateLines.length, `${r.auditBytes} audit bytes for ${FLOOD} refusals`);
  const rate = (FLOOD / r.floodMs) * 1000;
  t.diagnostic(`aggregated: ${r.auditBytes} audit bytes for ${FLOOD} refusals in ${r.floodMs.toFixed(0)} ms (${rate.toFixed(0)} req/s); one address at any rate writes at most ${(r.auditBytes / r.aggregateLines.length).toFixed(0)} B per 10 s = ${((r.auditBytes / r.aggregateLines.length) * 360 / 1024).toFixed(0)} KiB/hour`);
});

test('the same flood with --audit-aggregate 0 writes one line per refusal (the behaviour before aggregation)', async (t) => {
  const r = await flood('0');
  assert.equal(r.refused, FLOOD);
  assert.equal(r.aggregateLines.length, 0);
  const perRefusal = r.auditBytes / FLOOD;
  assert.ok(perRefusal > 100, `${perRefusal} bytes per refusal`);
  t.diagnostic(`one line each: ${r.auditBytes} audit bytes for ${FLOOD} refusals (${perRefusal.toFixed(0)} B each); at 1.7k req/s that is ${((perRefusal * 1700 * 3600) / 1e9).toFixed(2)} GB/hour`);
});
