import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { EVENT_LOOP_LAG, LAG_BUCKETS, collectProcessMetrics, observeDelays } from './process-metrics.ts';

const MS = 1e6;

test('observeDelays: every sample once, at its percentile point\'s value minus the timer period, never below 0', () => {
  const seen: number[] = [];
  // 10 samples: 50 % at 10.2 ms, up to 90 % at 11 ms, the last at 60 ms; the period is 10 ms.
  const n = observeDelays({ count: 10, percentiles: [[0, 10.2 * MS], [50, 10.2 * MS], [90, 11 * MS], [100, 60 * MS]] }, 10 * MS, (s) => seen.push(s));
  assert.equal(n, 10);
  assert.deepEqual(seen.map((s) => Math.round(s * 1e4) / 10), [0.2, 0.2, 0.2, 0.2, 0.2, 1, 1, 1, 1, 50]);
  const early: number[] = [];
  observeDelays({ count: 1, percentiles: [[100, 9 * MS]] }, 10 * MS, (s) => early.push(s));
  assert.deepEqual(early, [0], 'a timer that ran early is no lag');
  assert.equal(observeDelays({ count: 0, percentiles: [[100, 0]] }, 10 * MS, () => assert.fail('no sample')), 0);
});

test(`${EVENT_LOOP_LAG}: a 120 ms stall of this process's event loop shows in the buckets above 50 ms, and a scrape moves samples only once`, async () => {
  const registry = new Registry();
  collectProcessMetrics(registry);
  await registry.getSingleMetricAsString(EVENT_LOOP_LAG); // start from an empty interval
  await new Promise((r) => setTimeout(r, 30));
  const until = performance.now() + 120;
  while (performance.now() < until) {
    // busy: no timer can run
  }
  await new Promise((r) => setTimeout(r, 30));
  const text = await registry.getSingleMetricAsString(EVENT_LOOP_LAG);
  const bucket = (le: number): number => Number(new RegExp(`^${EVENT_LOOP_LAG}_bucket\\{le="${le}"\\} (\\d+)$`, 'm').exec(text)?.[1]);
  const count = Number(new RegExp(`^${EVENT_LOOP_LAG}_count (\\d+)$`, 'm').exec(text)?.[1]);
  assert.ok(count >= 1, text);
  assert.ok(bucket(0.05) < count, `a sample above 50 ms expected:\n${text}`);
  assert.ok(LAG_BUCKETS.includes(0.05));
  // Counts are cumulative: the next scrape adds what was recorded since, not the same samples again.
  const again = await registry.getSingleMetricAsString(EVENT_LOOP_LAG);
  const count2 = Number(new RegExp(`^${EVENT_LOOP_LAG}_count (\\d+)$`, 'm').exec(again)?.[1]);
  assert.ok(count2 >= count && count2 - count < Math.max(3, count / 2), `${count} then ${count2}`);
  assert.match(await registry.metrics(), /^nodejs_heap_space_size_total_bytes/m, "prom-client's default process metrics are there too");
});
