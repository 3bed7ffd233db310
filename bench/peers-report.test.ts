import assert from 'node:assert/strict';
import { test } from 'node:test';
import { missingFigures, type PeersResult, type Trial } from './peers-report.ts';

const wrk = { rps: 1000, p50Ms: 1, p99Ms: 2, requests: 10_000, errors: 0 };
const idle = { serverUssIdleKb: 1, clientUssIdleKb: 1, serverUssHeldKb: 2, opened: 10, failed: 0, kbPerConn: 0.1 };
const full = (run: number): Trial => ({
  run, notes: [], ka: wrk, paced: wrk, close: wrk, gbps: 3, cpuUsPerReq: 80, cpuUsPerReqPaced: 120, cpuUsPerConn: 3000,
  hwmKb: { client: 1, server: 1 }, ussLoadedKb: { client: 1, server: 1 }, idle, readyMs: 400,
});
const result = (contenders: PeersResult['contenders']): PeersResult => ({ contenders, runs: 2, env: [], orders: [] });

test('a run where every contender gave every figure is complete', () => {
  const direct: Trial = { run: 1, notes: [], ka: wrk, paced: wrk, close: wrk, gbps: 12 };
  assert.deepEqual(missingFigures(result([
    { name: 'direct', skipped: null, trials: [direct] },
    { name: 'tollgate', skipped: null, trials: [full(1)] },
    { name: 'haproxy', skipped: null, trials: [full(1)] },
  ])), []);
});

test('one run with the figure is enough; a figure no run produced is named with the notes of the runs', () => {
  const noIperf: Trial = { ...full(1), gbps: undefined, notes: ['iperf3: timeout'] };
  assert.deepEqual(missingFigures(result([{ name: 'haproxy', skipped: null, trials: [noIperf, full(2)] }])), []);
  assert.deepEqual(missingFigures(result([{ name: 'haproxy', skipped: null, trials: [noIperf] }])), ['haproxy: no 1-stream Gbit/s (run 1: iperf3: timeout)']);
});

test('a contender that did not run, failed its first phase or measured NaN is reported', () => {
  const failed: Trial = { run: 1, notes: [], error: 'GET /1k.bin through the pair failed' };
  const lines = missingFigures(result([
    { name: 'stunnel', skipped: 'stunnel4 is not installed', trials: [] },
    { name: 'nginx', skipped: null, trials: [failed] },
    { name: 'tollgate', skipped: null, trials: [{ ...full(1), cpuUsPerReq: Number.NaN, readyMs: undefined }] },
  ]));
  assert.equal(lines[0], 'stunnel: not run: stunnel4 is not installed');
  assert.ok(lines.includes('nginx: no keep-alive req/s (run 1: GET /1k.bin through the pair failed)'));
  assert.ok(lines.includes('nginx: no idle connections (run 1: GET /1k.bin through the pair failed)'));
  assert.ok(lines.includes('tollgate: no CPU µs/req'));
  assert.ok(lines.includes('tollgate: no start-to-ready'));
  assert.equal(lines.filter((l) => l.startsWith('direct')).length, 0);
});
