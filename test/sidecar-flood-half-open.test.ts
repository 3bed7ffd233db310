// 1,000 simultaneous half-open handshakes against a real sidecar (issue 14, reliability suite: floods):
// from 127.0.0.1, 500 connections that send nothing and 500 that send half a ClientHello, then stay
// silent. A legitimate mTLS peer (web, from 127.0.0.2) sends requests during the flood and after it.
// Run with small limits and with the defaults (100 handshakes per source, 1,000 in all, 10 s timeout).
//  - the peer gets through during and after (its latency is reported, not asserted);
//  - the flood's source holds at most maxHandshakesPerSource handshake slots: the rest are closed at
//    once ({result="refused",reason="source_handshake_limit"}, TG_RATE_LIMITED, logged rate-limited),
//    and the slots it holds are closed at the handshake timeout, after which its source gets through;
//  - the app sees the peer's connections and bytes and nothing else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from './helpers/sidecar-fixture.ts';
import { FLOOD_SOURCE, SMALL_LIMITS, countsDelta, halfOpenFlood, legitimatePeer, startFloodTarget } from './helpers/flood.ts';

for (const [name, limitsYaml, perSource] of [
  ['small limits (5 per source, 2 s timeout)', SMALL_LIMITS, 5],
  ['default limits', undefined, 100],
] as const) {
  test(`1,000 half-open handshakes, ${name}: the legitimate peer gets through during and after`, async (t) => {
    const target = await startFloodTarget(limitsYaml ? { limitsYaml } : {});
    try {
      const { orders, backend, web } = target;
      const before = await target.inboundCounts();
      const app = { connections: backend.connections, bytes: backend.bytes };
      const floods = await Promise.all([
        halfOpenFlood({ port: orders.inboundPort, count: 500 }),
        halfOpenFlood({ port: orders.inboundPort, count: 500, partialHello: true }),
      ]);
      const open = (): number => floods.reduce((n, f) => n + f.open, 0);
      const during = await legitimatePeer({ port: orders.inboundPort, identity: web, busy: () => open() > 0, min: 5, max: 200 });
      await waitFor(() => open() === 0, 'the sidecar to close every flood connection', 60_000);
      const after = await legitimatePeer({ port: orders.inboundPort, identity: web, busy: () => false, min: 5, max: 5 });
      const fromFloodSource = await legitimatePeer({ port: orders.inboundPort, identity: web, busy: () => false, min: 3, max: 3, from: FLOOD_SOURCE });
      const delta = countsDelta(before, await target.inboundCounts());
      const opened = floods.reduce((n, f) => n + f.opened, 0);
      const closed = floods.reduce((n, f) => n + f.closedByPeer, 0);
      const legit = [...during.results, ...after.results, ...fromFloodSource.results];
      const logLines = orders.proc.stderr().split('\n').filter((l) => l.includes('"reason":"source_handshake_limit"'));

      assert.ok(during.allThrough, `during the flood: ${during.summary}`);
      assert.ok(after.allThrough, `after the flood: ${after.summary}`);
      assert.ok(fromFloodSource.allThrough, `from the flood's own source after it: ${fromFloodSource.summary}`);
      assert.equal(opened, 1000, 'every flood connection was accepted by the kernel');
      assert.equal(closed, opened, 'the sidecar closed every flood connection itself');
      // Each flood connection is refused at once over the per-source budget or closed at the handshake
      // timeout; how many of each depends on how long accepting them took (a loaded machine: longer than
      // one timeout, so a second batch of `perSource` is admitted).
      const refused = delta['refused/source_handshake_limit'] ?? 0;
      assert.equal(refused + (delta['refused/handshake_timeout'] ?? 0), opened, `every flood connection refused or timed out: ${JSON.stringify(delta)}`);
      assert.ok(refused >= opened / 2, `most refused at once by the per-source budget: ${JSON.stringify(delta)}`);
      assert.equal(delta['allowed/allowed'], legit.length, 'only the peer was let in');
      assert.equal(backend.connections - app.connections, legit.length, 'the app saw the peer\'s connections only');
      assert.equal(backend.bytes - app.bytes, legit.reduce((n, r) => n + r.received.length, 0), 'the app saw the peer\'s bytes only');
      assert.ok((delta['refused/handshake_timeout'] ?? 0) >= perSource, 'the handshakes it held were closed at the handshake timeout');
      assert.ok(logLines.length >= 1 && logLines.length <= 11, `refusals logged rate-limited (${logLines.length} lines for ${opened - perSource})`);
      assert.match(logLines[0]!, /"code":"TG_RATE_LIMITED"/);
      t.diagnostic(`${name}: flood ${opened} connections (500 silent, 500 half a ClientHello), all ${closed} closed by the sidecar; ` +
        `counts ${JSON.stringify(delta)}; app: ${backend.connections - app.connections} connections, ${backend.bytes - app.bytes} bytes (all the peer's); ` +
        `${logLines.length} log lines for the per-source refusals; legitimate peer from 127.0.0.2 during: ${during.summary}; after: ${after.summary}; from 127.0.0.1 after: ${fromFloodSource.summary}`);
    } finally {
      await target.stop();
    }
  });
}
