// Slowloris handshakes (issue 14, reliability suite: floods): from 127.0.0.1, 100 connections that each
// drip one byte of a real ClientHello every 200 ms, against a sidecar with 5 handshake slots per
// source and a 2 s handshake timeout. A legitimate mTLS peer (web, from 127.0.0.2) sends requests
// while any of them is open, and after.
//  - the peer gets through during and after (latency reported, not asserted);
//  - 95 are refused at once by the per-source budget; the 5 admitted are closed at the handshake
//    timeout although they keep sending (the timeout bounds the whole handshake, not the silence);
//  - the app sees the peer's connections and bytes and nothing else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from './helpers/sidecar-fixture.ts';
import { FLOOD_SOURCE, SMALL_LIMITS, clientHello, type FloodSockets, countsDelta, legitimatePeer, slowlorisFlood, startFloodTarget } from './helpers/flood.ts';

const PER_SOURCE = 5;

test('slowloris handshakes: closed at the handshake timeout while still dripping; the legitimate peer gets through', async (t) => {
  const target = await startFloodTarget({ limitsYaml: SMALL_LIMITS });
  let flood: FloodSockets | undefined;
  try {
    const { orders, backend, web } = target;
    const before = await target.inboundCounts();
    const app = { connections: backend.connections, bytes: backend.bytes };
    const helloLength = (await clientHello()).length;
    const f = (flood = await slowlorisFlood({ port: orders.inboundPort, count: 100, everyMs: 200, maxBytes: helloLength - 1 }));
    await waitFor(() => f.opened === 100, 'the flood to connect');
    const during = await legitimatePeer({ port: orders.inboundPort, identity: web, busy: () => f.open > 0, min: 5, max: 400 });
    await waitFor(() => f.open === 0, 'the sidecar to close every slowloris connection', 30_000);
    f.destroy();
    const after = await legitimatePeer({ port: orders.inboundPort, identity: web, busy: () => false, min: 5, max: 5 });
    const fromFloodSource = await legitimatePeer({ port: orders.inboundPort, identity: web, busy: () => false, min: 3, max: 3, from: FLOOD_SOURCE });
    const delta = countsDelta(before, await target.inboundCounts());
    const legit = [...during.results, ...after.results, ...fromFloodSource.results];

    assert.ok(during.allThrough, `during the flood: ${during.summary}`);
    assert.ok(after.allThrough, `after the flood: ${after.summary}`);
    assert.ok(fromFloodSource.allThrough, `from the flood's own source after it: ${fromFloodSource.summary}`);
    assert.equal(f.closedByPeer, 100, 'the sidecar closed every slowloris connection itself');
    // Refused at once over the per-source budget, or admitted and closed at the handshake timeout still
    // dripping; on a loaded machine accepting them can take longer than one timeout (a second batch).
    const refused = delta['refused/source_handshake_limit'] ?? 0;
    assert.equal(refused + (delta['refused/handshake_timeout'] ?? 0), 100, `every one refused or timed out: ${JSON.stringify(delta)}`);
    assert.ok(refused >= 50, `most refused at once beyond the per-source budget: ${JSON.stringify(delta)}`);
    assert.ok((delta['refused/handshake_timeout'] ?? 0) >= PER_SOURCE, 'the admitted ones closed at the handshake timeout, still dripping');
    assert.equal(delta['allowed/allowed'], legit.length, 'only the peer was let in');
    assert.equal(backend.connections - app.connections, legit.length, 'the app saw the peer\'s connections only');
    assert.equal(backend.bytes - app.bytes, legit.reduce((n, r) => n + r.received.length, 0), 'the app saw the peer\'s bytes only');
    t.diagnostic(`slowloris: 100 connections dripping 1 byte / 200 ms of a ${helloLength}-byte ClientHello, all closed by the sidecar; counts ${JSON.stringify(delta)}; ` +
      `app: ${backend.connections - app.connections} connections, ${backend.bytes - app.bytes} bytes (all the peer's); ` +
      `legitimate peer from 127.0.0.2 during: ${during.summary}; after: ${after.summary}; from 127.0.0.1 after: ${fromFloodSource.summary}`);
  } finally {
    flood?.destroy();
    await target.stop();
  }
});
