// Connect-then-close as fast as this machine allows, bounded (issue 14, reliability suite: floods): from
// 127.0.0.1, 50 at a time, up to 20,000 connections or 5 s, each closed the moment it is connected. A
// legitimate mTLS peer (web, from 127.0.0.2) sends requests throughout. The sidecar runs with 5
// handshake slots per source and a 60 s handshake timeout, so a slot held by a closed connection
// (the CLOSE-WAIT of issue 14, problem 1) would lock the flood's source out for a minute.
//  - the peer gets through during and after (latency reported, not asserted);
//  - right after the flood its own source gets through again: closed connections gave their slots back;
//  - the app sees the peer's connections and bytes and nothing else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from './helpers/sidecar-fixture.ts';
import { peerRequest } from './helpers/peer.ts';
import { FLOOD_SOURCE, countsDelta, connectCloseFlood, legitimatePeer, startFloodTarget } from './helpers/flood.ts';

const LIMITS = 'limits: { maxConnections: 200, maxHandshakes: 50, maxHandshakesPerSource: 5, handshakeTimeout: 60s }';

test('connect-then-close flood: the legitimate peer gets through, and the flood\'s source is not locked out after it', async (t) => {
  const target = await startFloodTarget({ limitsYaml: LIMITS });
  try {
    const { orders, backend, web } = target;
    const before = await target.inboundCounts();
    const app = { connections: backend.connections, bytes: backend.bytes };
    let flooding = true;
    const flood = connectCloseFlood({ port: orders.inboundPort, count: 20_000, maxMs: 5000, concurrency: 50 }).finally(() => (flooding = false));
    const during = await legitimatePeer({ port: orders.inboundPort, identity: web, busy: () => flooding, min: 5, max: 1000 });
    const made = await flood;
    // The flood's own source: through again well within the 60 s handshake timeout.
    let fromFloodSource = 0;
    await waitFor(async () => {
      fromFloodSource++;
      return (await peerRequest({ port: orders.inboundPort, identity: web, line: 'from the flood source\n', localAddress: FLOOD_SOURCE, timeoutMs: 5000 })).echoed;
    }, 'a request from the flood\'s source to get through', 20_000);
    const after = await legitimatePeer({ port: orders.inboundPort, identity: web, busy: () => false, min: 5, max: 5 });
    const delta = countsDelta(before, await target.inboundCounts());
    const legitBytes = [...during.results, ...after.results].reduce((n, r) => n + r.received.length, 0) + 'from the flood source\n'.length;
    const legitConnections = during.results.length + after.results.length + 1;

    assert.ok(made.made > 0);
    assert.ok(during.allThrough, `during the flood: ${during.summary}`);
    assert.ok(after.allThrough, `after the flood: ${after.summary}`);
    assert.equal(delta['allowed/allowed'], legitConnections, 'only the peer was let in');
    assert.equal(backend.connections - app.connections, legitConnections, 'the app saw the peer\'s connections only');
    assert.equal(backend.bytes - app.bytes, legitBytes, 'the app saw the peer\'s bytes only');
    t.diagnostic(`connect-then-close: ${made.made} connections at ${made.perSecond}/s (${made.errors} connect errors), counts ${JSON.stringify(delta)}; ` +
      `app: ${backend.connections - app.connections} connections, ${backend.bytes - app.bytes} bytes (all the peer's); ` +
      `legitimate peer from 127.0.0.2 during: ${during.summary}; after: ${after.summary}; from 127.0.0.1 through on attempt ${fromFloodSource}`);
  } finally {
    await target.stop();
  }
});
