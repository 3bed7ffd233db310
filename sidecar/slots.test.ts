// Connection slots under abuse (issue 14, problem 1), with real sockets on loopback: distinct
// 127.0.0.x source addresses stand for distinct sources. A peer that connects and closes mid-
// handshake gives its slot back at once; a handshake flood from one source fills only that source's
// share; limits.maxConnections is one budget for every listener (inbound and outbound).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mtlsClient, proxyTestbed, roundTrip, startBackend, testPki, waitFor, WORKLOAD_IDS, type TestPki } from '../test/helpers/sidecar-fixture.ts';
import { ConnectionBudget } from './budget.ts';
import { InboundProxy, type InboundProxyOptions } from './inbound.ts';
import { OutboundProxy } from './outbound.ts';
import { parsePolicy } from './policy.ts';
import { resolveLimits } from './tls-context.ts';

const { api: SERVER_ID, web: CLIENT_ID } = WORKLOAD_IDS;

async function startInbound(pki: TestPki, extra: Partial<InboundProxyOptions>) {
  const backend = await startBackend();
  const bed = proxyTestbed(pki, { spiffeId: SERVER_ID, direction: 'inbound' });
  const policy = parsePolicy(`ports:\n  "${backend.port}":\n    allow: ["${CLIENT_ID}"]\n`, { source: 'test-policy.yaml', ownTrustDomain: pki.trustDomain });
  const proxy = new InboundProxy({ ...bed.options, app: { host: '127.0.0.1', port: backend.port }, policy: () => policy, ...extra });
  const { port } = await proxy.start();
  return { ...bed, proxy, port, backend, stop: async () => (proxy.close(), await backend.close()) };
}

/** A plain TCP connection from `localAddress`; resolves once connected. */
function tcp(port: number, localAddress: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress }, () => resolve(s));
    s.once('error', reject);
  });
}

/** A legitimate peer from `localAddress` connects, round-trips, and closes; returns its latency in ms. */
async function legitimatePeer(port: number, pki: TestPki, localAddress: string): Promise<number> {
  const t0 = performance.now();
  const s = await mtlsClient(port, pki, pki.issue(CLIENT_ID), localAddress);
  await roundTrip(s, 'legit\n');
  const ms = performance.now() - t0;
  s.destroy();
  return ms;
}

describe('connection slots', () => {
  test('20 connect-then-close sockets on maxConnections 20 give their slots back: a legitimate peer is served', async () => {
    const pki = testPki({ now: Date.now() });
    // A long handshake timeout: a slot held until the timeout would fail this test, not slow it.
    const h = await startInbound(pki, { limits: { maxConnections: 20, handshakeTimeoutMs: 120_000 } });
    try {
      for (let i = 0; i < 20; i++) (await tcp(h.port, '127.0.0.2')).end();
      // The sidecar sees each close during the handshake (one refusal each), and frees the slot.
      await waitFor(async () => (await h.connections('refused', 'tls_handshake')) === 20, '20 mid-handshake closes seen by the sidecar', 30_000);
      const ms = await legitimatePeer(h.port, pki, '127.0.0.3');
      console.log(`# connect-then-close x20, maxConnections 20: legitimate peer latency ${ms.toFixed(1)} ms`);
      assert.equal(h.backend.connections, 1, 'only the legitimate peer reached the app');
      assert.equal(await h.connections('refused', 'limit'), 0);
      // The refusal lines: rate-limited (10 of 20 written), each with a TG_ code and no OpenSSL internals.
      const refusals = h.logs.filter((l) => l.event === 'inbound_refused' && l.level === 'warn');
      assert.equal(refusals.length, 10);
      for (const l of refusals) {
        assert.match(String(l.code), /^TG_/);
        assert.doesNotMatch(String(l.error), /ERR_SSL|\.c:\d|openssl/);
      }
    } finally {
      await h.stop();
    }
  });

  test('a slowloris handshake flood from one source leaves another source served', async () => {
    const pki = testPki({ now: Date.now() });
    const h = await startInbound(pki, { limits: { maxConnections: 20, maxHandshakesPerSource: 5, handshakeTimeoutMs: 120_000 } });
    const flood: net.Socket[] = [];
    try {
      // 50 connections from 127.0.0.2 that never send a ClientHello.
      for (let i = 0; i < 50; i++) {
        const s = await tcp(h.port, '127.0.0.2');
        s.on('error', () => undefined);
        flood.push(s);
      }
      await waitFor(async () => (await h.connections('refused', 'source_handshake_limit')) === 45, '45 over the per-source share refused');
      const ms = await legitimatePeer(h.port, pki, '127.0.0.3');
      console.log(`# slowloris x50 from one source (5 per source): other source's latency ${ms.toFixed(1)} ms`);
      assert.equal(h.backend.connections, 1, 'the flood never reached the app');
      const line = h.logs.find((l) => l.reason === 'source_handshake_limit');
      assert.equal(line?.code, 'TG_RATE_LIMITED');
      assert.match(String(line?.error), /maxHandshakesPerSource/);
    } finally {
      for (const s of flood) s.destroy();
      await h.stop();
    }
  });

  test('maxConnections is one budget across listeners: outbound and inbound draw from it together', async () => {
    const pki = testPki({ now: Date.now() });
    const limits = { maxConnections: 2 };
    const budget = new ConnectionBudget(resolveLimits(limits));
    const h = await startInbound(pki, { limits, budget });
    const out = proxyTestbed(pki, { spiffeId: CLIENT_ID, direction: 'outbound' });
    const outbound = new OutboundProxy({ ...out.options, limits, budget, upstream: { host: '127.0.0.1', port: h.port, spiffeId: SERVER_ID } });
    const { port } = await outbound.start();
    try {
      // app -> outbound -> inbound -> backend: one slot on each listener, both of the budget's two.
      const first = await tcp(port, '127.0.0.1');
      await roundTrip(first, 'first\n');
      assert.equal(budget.open, 2);
      const second = await tcp(port, '127.0.0.1');
      second.on('error', () => undefined);
      await waitFor(async () => (await out.connections('refused', 'limit')) === 1, 'outbound over the shared budget');
      const direct = mtlsClient(h.port, pki, pki.issue(CLIENT_ID)).then((s) => (s.destroy(), 'connected'), () => 'refused');
      await waitFor(async () => (await h.connections('refused', 'limit')) === 1, 'inbound over the shared budget');
      assert.equal(await direct, 'refused');
      assert.equal(h.backend.connections, 1);
      first.destroy();
      await waitFor(() => budget.open === 0, 'slots given back');
    } finally {
      outbound.close();
      await h.stop();
    }
  });
});
