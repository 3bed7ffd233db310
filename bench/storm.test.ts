// The storm model itself: queueing at the CA and the jitter's effect, on small fleets with exact answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runStorm } from './storm.ts';

test('first issue queues at the CA: N sidecars at C/s take N/C seconds', () => {
  const r = runStorm({ sidecars: 1000, capacityPerSecond: 100, ttlSeconds: 3600, generations: 1 });
  assert.equal(r.firstIssueSeconds, 10);
  assert.equal(runStorm({ sidecars: 1000, capacityPerSecond: 100, firstIssuePerSecond: 50, ttlSeconds: 3600, generations: 1 }).firstIssueSeconds, 20);
});

test('without jitter the fleet renews in lockstep at the CA rate; with it the peak is a small share', () => {
  const r = runStorm({ sidecars: 10_000, capacityPerSecond: 1000, ttlSeconds: 3600, generations: 3 });
  assert.equal(r.peakWithoutJitter, 1000);
  // 10,000 renewals spread over 20 % of an hour (720 s) average 14/s; the peak stays far below capacity.
  assert.ok(r.peakPerSecond < 100, `peak ${r.peakPerSecond}`);
  assert.ok(r.worstQueueSeconds < 1, `worst queue ${r.worstQueueSeconds} s`);
});
