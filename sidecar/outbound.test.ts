// OutboundProxy: plaintext in on 127.0.0.1, mTLS out. Upstreams are node:tls servers presenting test
// SVIDs, the real `openssl s_server`, and our own InboundProxy. An upstream that is not exactly the
// expected workload never receives a byte of the app's data.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import {
  StaticSvidSource,
  metricValue,
  pemFiles,
  proxyTestbed,
  keepMoving,
  roundTrip,
  startBackend,
  testPki,
  refusingAddress,
  waitFor,
  WORKLOAD_IDS,
  type ProxyHarness,
  type TestPki,
  type TestSvid,
} from '../test/helpers/sidecar-fixture.ts';
import { InboundProxy } from './inbound.ts';
import { SidecarMetricNames } from './metrics.ts';
import { OutboundProxy, type OutboundProxyOptions } from './outbound.ts';
import { parsePolicy } from './policy.ts';

const { web: CLIENT_ID, api: UPSTREAM_ID, other: OTHER_ID } = WORKLOAD_IDS;

interface TlsUpstream {
  port: number;
  /** Bytes the upstream's "app" received. */
  readonly bytes: number;
  readonly connections: number;
  /** Serial (lower-case hex) of the client certificate of each connection. */
  readonly clientSerials: string[];
  close(): Promise<void>;
}

/** An mTLS echo server presenting `svid` and requiring a client certificate from `pki`. */
async function startTlsUpstream(pki: TestPki, svid: TestSvid): Promise<TlsUpstream> {
  let bytes = 0;
  let connections = 0;
  const clientSerials: string[] = [];
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({ cert: svid.certChainPem, key: svid.keyPem, ca: pki.rootPem, requestCert: true, rejectUnauthorized: true }, (s) => {
    connections++;
    sockets.add(s);
    clientSerials.push(s.getPeerX509Certificate()?.serialNumber.toLowerCase() ?? '');
    s.on('data', (d: Buffer) => {
      bytes += d.length;
      s.write(d);
    });
    s.on('error', () => s.destroy());
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get bytes() {
      return bytes;
    },
    get connections() {
      return connections;
    },
    clientSerials,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function startOutbound(pki: TestPki, upstream: { port: number; host?: string; spiffeId?: string }, extra: Partial<OutboundProxyOptions> = {}): Promise<ProxyHarness<OutboundProxy>> {
  const bed = proxyTestbed(pki, { spiffeId: CLIENT_ID, direction: 'outbound' });
  const upstreamTo = { host: upstream.host ?? '127.0.0.1', port: upstream.port, spiffeId: upstream.spiffeId ?? UPSTREAM_ID };
  const proxy = new OutboundProxy({ ...bed.options, upstream: upstreamTo, ...extra });
  const { port } = await proxy.start();
  return { ...bed, proxy, port };
}

/** A plaintext app-side client: connect, send `text` at once, collect until the proxy closes. */
function callThrough(port: number, text: string): Promise<{ received: string; closed: true }> {
  return new Promise((resolve, reject) => {
    let received = '';
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write(text));
    s.on('data', (d: Buffer) => {
      received += d.toString();
      if (received.length >= text.length) s.end();
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve({ received, closed: true }));
    s.setTimeout(10_000, () => {
      s.destroy();
      reject(new Error('no close within 10 s'));
    });
  });
}

/** Connect and keep the socket for several round trips. */
function openLocal(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

test('idle timeout: a connection that keeps moving stays open past it; once quiet, both legs close', async () => {
  const pki = testPki({ now: Date.now() });
  const up = await startTlsUpstream(pki, pki.issue(UPSTREAM_ID));
  const h = await startOutbound(pki, up, { limits: { idleTimeoutMs: 1000 } });
  try {
    const moved = await keepMoving(await openLocal(h.port), 3000);
    assert.equal(moved.closed(), false);
    await waitFor(() => moved.closed() && h.proxy.activeConnections === 0, 'closed once idle');
  } finally {
    h.proxy.close();
    await up.close();
  }
});

describe('OutboundProxy upstream verification', () => {
  let pki: TestPki;
  before(() => {
    pki = testPki({ now: Date.now() });
  });

  test('to the expected SPIFFE ID: data flows both ways, counted as allowed', async () => {
    const up = await startTlsUpstream(pki, pki.issue(UPSTREAM_ID));
    const h = await startOutbound(pki, up);
    try {
      const r = await callThrough(h.port, 'hello upstream');
      assert.equal(r.received, 'hello upstream');
      assert.equal(up.bytes, 14);
      assert.equal(up.clientSerials[0], h.source.svid()!.serial, 'the upstream saw our SVID');
      await waitFor(async () => (await h.connections('allowed', 'allowed')) === 1, 'allowed count');
      await waitFor(async () => (await metricValue(h.registry, SidecarMetricNames.bytes, { direction: 'outbound' })) === 28, 'bytes counted');
    } finally {
      h.proxy.close();
      await up.close();
    }
  });

  const refusals: Array<{ name: string; reason: string; result: string; upstream: () => TestSvid }> = [
    { name: 'a valid SVID with a different SPIFFE ID', reason: 'wrong_identity', result: 'refused', upstream: () => pki.issue(OTHER_ID) },
    { name: 'an SVID from another CA', reason: 'untrusted', result: 'refused', upstream: () => testPki({ now: Date.now() }).issue(UPSTREAM_ID) },
    { name: 'a CA certificate (cA=true) as leaf', reason: 'svid_invalid', result: 'refused', upstream: () => pki.issue(UPSTREAM_ID, { ca: true }) },
    { name: 'a leaf without serverAuth', reason: 'svid_invalid', result: 'refused', upstream: () => pki.issue(UPSTREAM_ID, { eku: ['1.3.6.1.5.5.7.3.2'] }) },
  ];
  for (const c of refusals) {
    test(`refused: an upstream presenting ${c.name} (reason ${c.reason}) gets none of the app's bytes`, async () => {
      const up = await startTlsUpstream(pki, c.upstream());
      const h = await startOutbound(pki, up);
      try {
        const r = await callThrough(h.port, 'secret request');
        assert.equal(r.received, '', 'the app sees the connection closed');
        await waitFor(async () => (await h.connections(c.result, c.reason)) === 1, `${c.result}{reason=${c.reason}}`);
        assert.equal(up.bytes, 0, "none of the app's bytes reached the upstream");
        const line = h.logs.find((l) => l.event === 'outbound_refused');
        assert.equal(line?.reason, c.reason);
        assert.equal(line?.expected_id, UPSTREAM_ID);
        if (c.reason === 'wrong_identity') assert.equal(line?.peer_id, OTHER_ID);
        assert.equal(await h.connections('allowed', 'allowed'), 0);
      } finally {
        h.proxy.close();
        await up.close();
      }
    });
  }

  test('an unreachable upstream: the app sees the connection closed, counted as upstream_unreachable', async () => {
    const nobody = await refusingAddress();
    const h = await startOutbound(pki, nobody);
    try {
      const r = await callThrough(h.port, 'anyone there?');
      assert.equal(r.received, '');
      await waitFor(async () => (await h.connections('error', 'upstream_unreachable')) === 1, 'upstream_unreachable count');
    } finally {
      h.proxy.close();
      await nobody.close();
    }
  });

  test('refuses a listen address that is not loopback', () => {
    assert.throws(
      () => new OutboundProxy({ listen: { host: '0.0.0.0', port: 0 }, upstream: { host: '127.0.0.1', port: 1, spiffeId: UPSTREAM_ID }, source: new StaticSvidSource({ svid: null, bundle: null }) }),
      (e: Error & { code?: string }) => e.code === 'TG_CONFIG_INVALID',
    );
  });
});

describe('OutboundProxy against openssl s_server', () => {
  test('negotiates TLS 1.3 and presents the SVID with its SPIFFE ID', async () => {
    const pki = testPki({ now: Date.now() });
    const files = pemFiles();
    const root = files.write('root.pem', pki.rootPem);
    const server = files.writeSvid('server', pki.issue(UPSTREAM_ID));
    // s_server binds port 0 itself and prints the port it got ("ACCEPT 127.0.0.1:PORT").
    const p = spawn('openssl', ['s_server', '-accept', '127.0.0.1:0', ...server.args, '-CAfile', root, '-Verify', '2', '-verify_return_error', '-www', '-naccept', '1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(() => /ACCEPT 127\.0\.0\.1:\d+/.test(out), 's_server listening').catch((e: Error) => {
      p.kill('SIGKILL');
      files.cleanup();
      throw e;
    });
    const port = Number(/ACCEPT 127\.0\.0\.1:(\d+)/.exec(out)![1]);
    const h = await startOutbound(pki, { port });
    try {
      const r = await callThrough(h.port, 'GET / HTTP/1.0\r\n\r\n');
      assert.match(r.received, /New, TLSv1\.3/);
      assert.match(r.received, new RegExp(`URI:${CLIENT_ID}`));
    } finally {
      h.proxy.close();
      p.kill('SIGKILL');
      files.cleanup();
    }
  });
});

describe('OutboundProxy certificate rotation and drain', () => {
  let pki: TestPki;
  let up: TlsUpstream;
  before(async () => {
    pki = testPki({ now: Date.now() });
    up = await startTlsUpstream(pki, pki.issue(UPSTREAM_ID));
  });
  after(() => up.close());

  test('an open connection keeps working across an SVID change; a new one presents the new SVID', async () => {
    const h = await startOutbound(pki, up);
    try {
      const first = await openLocal(h.port);
      await roundTrip(first, 'before\n');
      const oldSerial = h.source.svid()!.serial;
      const renewed = pki.issue(CLIENT_ID);
      h.source.update({ svid: renewed });
      await roundTrip(first, 'after\n');
      const second = await openLocal(h.port);
      await roundTrip(second, 'new\n');
      assert.deepEqual(up.clientSerials.slice(-2), [oldSerial, renewed.serial]);
      first.destroy();
      second.destroy();
      await waitFor(() => h.proxy.activeConnections === 0, 'connections closed');
    } finally {
      h.proxy.close();
    }
  });

  test('drain: an open connection survives and completes; a new connection is refused', async () => {
    const h = await startOutbound(pki, up);
    const s = await openLocal(h.port);
    await roundTrip(s, 'before drain\n');
    let drained = false;
    const draining = h.proxy.drain(30_000).then(() => (drained = true));
    await assert.rejects(openLocal(h.port), /ECONNREFUSED/);
    await roundTrip(s, 'during drain\n');
    assert.equal(drained, false);
    s.end();
    await draining;
    assert.equal(h.proxy.activeConnections, 0);
    h.proxy.close();
  });
});

describe('OutboundProxy to InboundProxy', () => {
  test('app → outbound → mTLS → inbound → backend and back', async () => {
    const pki = testPki({ now: Date.now() });
    const backend = await startBackend();
    const policy = parsePolicy(`ports:\n  "${backend.port}":\n    allow: ["${CLIENT_ID}"]\n`, { source: 'p', ownTrustDomain: 'example.org' });
    const inbound = new InboundProxy({
      listen: { host: '127.0.0.1', port: 0 },
      app: { host: '127.0.0.1', port: backend.port },
      source: new StaticSvidSource({ svid: pki.issue(UPSTREAM_ID), bundle: pki.bundle }),
      policy: () => policy,
    });
    const { port } = await inbound.start();
    const h = await startOutbound(pki, { port });
    try {
      const payload = 'x'.repeat(256 * 1024);
      const r = await callThrough(h.port, payload);
      assert.equal(r.received.length, payload.length);
      assert.equal(backend.bytes, payload.length);
    } finally {
      h.proxy.close();
      inbound.close();
      await backend.close();
    }
  });
});
