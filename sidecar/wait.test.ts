import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ManualClock, systemClock } from '../common/clock.ts';
import { waitUntilReady, type WaitResult } from './wait.ts';

async function admin(answer: (n: number) => number): Promise<{ server: Server; addr: string; asked: () => number }> {
  let n = 0;
  const server = createServer((req, res) => {
    assert.equal(req.url, '/readyz');
    const status = answer(++n);
    res.writeHead(status).end(status === 200 ? 'ready: svid held\n' : 'not ready: no SVID yet\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, addr: `127.0.0.1:${(server.address() as AddressInfo).port}`, asked: () => n };
}

test('waitUntilReady returns once /readyz answers 200, asking again after each refusal', async () => {
  const a = await admin((n) => (n < 3 ? 503 : 200));
  try {
    const r = await waitUntilReady({ admin: a.addr, timeoutMs: 60_000, intervalMs: 5, clock: systemClock });
    assert.deepEqual(r, { ready: true, detail: 'ready: svid held', attempts: 3 });
  } finally {
    a.server.close();
  }
});

/** Run a wait on a ManualClock, advancing it by `step` whenever the wait sleeps, until it ends. */
async function onManualClock(admin: string, timeoutMs: number, step: number): Promise<WaitResult> {
  const clock = new ManualClock();
  let result: WaitResult | null = null;
  const done = waitUntilReady({ admin, timeoutMs, intervalMs: step, clock }).then((r) => (result = r));
  for (let i = 0; i < 1000 && result === null; i++) {
    await new Promise((r) => setImmediate(r));
    if (clock.pending > 0) clock.advance(step);
  }
  await done;
  return result!;
}

test('waitUntilReady gives up at the timeout with the last answer', async () => {
  const a = await admin(() => 503);
  try {
    const r = await onManualClock(a.addr, 1000, 200);
    assert.equal(r.ready, false);
    assert.equal(r.detail, '503 not ready: no SVID yet');
    // Asked at 0, 200, ..., 1000 ms of the clock, then no time was left for another pause.
    assert.equal(r.attempts, 6);
    assert.equal(a.asked(), 6);
  } finally {
    a.server.close();
  }
});

test('waitUntilReady: nothing listening is an answer too (connection refused), not a crash', async () => {
  const a = await admin(() => 200);
  const addr = a.addr;
  await new Promise((r) => a.server.close(r));
  const r = await onManualClock(addr, 400, 200);
  assert.equal(r.ready, false);
  assert.match(r.detail, /ECONNREFUSED/);
});
