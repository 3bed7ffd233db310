// Splice: what the created legs' onread path must keep from pipe() — every byte, in order, under
// backpressure (the read buffer is reused, so a chunk still referenced by a pending write must never
// be overwritten), half-close both ways through both proxies, and nothing passed on before open().
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import {
  metricValue,
  proxyTestbed,
  testPki,
  waitFor,
  WORKLOAD_IDS,
  type ProxyTestbed,
  type TestPki,
} from '../test/helpers/sidecar-fixture.ts';
import { InboundProxy } from './inbound.ts';
import { SidecarMetricNames } from './metrics.ts';
import { OutboundProxy } from './outbound.ts';
import { parsePolicy } from './policy.ts';
import { connectPlainLeg, connectTlsLeg, Splice } from './splice.ts';

const { web: CLIENT_ID, api: SERVER_ID, other: OTHER_ID } = WORKLOAD_IDS;
const MiB = 1024 * 1024;

/** app → OutboundProxy → mTLS → InboundProxy → backend, all in this process. */
interface Pair {
  /** Where the app connects (the outbound proxy). */
  readonly port: number;
  readonly outbound: ProxyTestbed;
  readonly inbound: ProxyTestbed;
  stop(): Promise<void>;
}

async function startPair(pki: TestPki, onBackend: (s: net.Socket) => void): Promise<Pair> {
  const backend = net.createServer({ allowHalfOpen: true }, onBackend);
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const appPort = (backend.address() as net.AddressInfo).port;
  const policy = parsePolicy(`ports:\n  "${appPort}":\n    allow: ["${CLIENT_ID}"]\n`, { source: 'p', ownTrustDomain: pki.trustDomain });
  const inBed = proxyTestbed(pki, { spiffeId: SERVER_ID, direction: 'inbound' });
  const inbound = new InboundProxy({ ...inBed.options, app: { host: '127.0.0.1', port: appPort }, policy: () => policy });
  const { port: mtlsPort } = await inbound.start();
  const outBed = proxyTestbed(pki, { spiffeId: CLIENT_ID, direction: 'outbound' });
  const outbound = new OutboundProxy({ ...outBed.options, upstream: { host: '127.0.0.1', port: mtlsPort, spiffeId: SERVER_ID } });
  const { port } = await outbound.start();
  return {
    port,
    outbound: outBed,
    inbound: inBed,
    async stop() {
      outbound.close();
      inbound.close();
      await new Promise<void>((resolve) => backend.close(() => resolve()));
    },
  };
}

/**
 * Read `s` to its end, hashing, at about `bytesPerMs` on average but in bursts: it pauses whenever it
 * is ahead of that rate, for a random extra while, then catches up at full speed. Slower than the
 * proxies can deliver, so the kernel buffers in front of it stay full: the proxy's writes into it go
 * partial and backpressure reaches back through both proxies.
 */
function readBursty(s: net.Socket, o: { startAfterMs: number; bytesPerMs: number; jitterMs: number }): Promise<{ bytes: number; sha: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  const start = performance.now() + o.startAfterMs;
  s.pause();
  setTimeout(() => s.resume(), o.startAfterMs);
  s.on('data', (d: Buffer) => {
    hash.update(d);
    bytes += d.length;
    const ahead = bytes / o.bytesPerMs - (performance.now() - start);
    if (ahead <= 0) return;
    s.pause();
    setTimeout(() => s.resume(), ahead + Math.random() * o.jitterMs);
  });
  return new Promise((resolve, reject) => {
    s.once('end', () => resolve({ bytes, sha: hash.digest('hex') }));
    s.once('error', reject);
  });
}

/** Write `total` random bytes in chunks of random size (respecting backpressure), then end. */
async function sendRandom(s: net.Socket, total: number): Promise<{ bytes: number; sha: string }> {
  const hash = createHash('sha256');
  let sent = 0;
  while (sent < total) {
    const chunk = randomFillSync(Buffer.allocUnsafe(Math.min(total - sent, 1 + Math.floor(Math.random() * 256 * 1024))));
    hash.update(chunk);
    sent += chunk.length;
    if (!s.write(chunk)) await once(s, 'drain');
  }
  s.end();
  return { bytes: sent, sha: hash.digest('hex') };
}

/**
 * Both directions of one connection: what one side sent, and what the other side read. The reader
 * waits 500 ms, then reads ~5 MB/s, less than the proxies deliver: the ~4 MiB the kernel takes in front
 * of it fill up and stay full, so the outbound proxy's writes into the app's socket go partial (about
 * 150 per run, measured), each one pinning that connection's read buffer. Faster readers gave none.
 */
async function exchange(s: net.Socket, total: number): Promise<{ sent: { bytes: number; sha: string }; got: { bytes: number; sha: string } }> {
  const [sent, got] = await Promise.all([sendRandom(s, total), readBursty(s, { startAfterMs: 500, bytesPerMs: 5000, jitterMs: 20 })]);
  return { sent, got };
}

function deadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

describe('Splice through OutboundProxy → InboundProxy', () => {
  let pki: TestPki;
  before(() => {
    pki = testPki({ now: Date.now() });
  });

  test('8 connections × 32 MiB each way with slow, bursty readers arrive byte-exact (SHA-256)', { timeout: 60_000 }, async () => {
    const CONNS = 8;
    const TOTAL = 32 * MiB;
    const atBackend: Array<Promise<{ sent: { bytes: number; sha: string }; got: { bytes: number; sha: string } }>> = [];
    const pair = await startPair(pki, (s) => {
      s.on('error', () => undefined);
      atBackend.push(exchange(s, TOTAL));
    });
    try {
      const clients = await Promise.all(
        Array.from({ length: CONNS }, async () => {
          const s = net.connect({ host: '127.0.0.1', port: pair.port, allowHalfOpen: true });
          await once(s, 'connect');
          return s;
        }),
      );
      const atClient = await deadline(Promise.all(clients.map((s) => exchange(s, TOTAL))), 45_000, 'the transfers');
      const backendSide = await deadline(Promise.all(atBackend), 5_000, 'the backend side');
      assert.equal(backendSide.length, CONNS);
      // Connections are matched by the hash of what was sent (order of arrival at the backend is not fixed).
      const sentByClients = new Set(atClient.map((c) => c.sent.sha));
      const sentByBackend = new Set(backendSide.map((b) => b.sent.sha));
      for (const b of backendSide) {
        assert.equal(b.got.bytes, TOTAL, 'client → backend: byte count');
        assert.ok(sentByClients.has(b.got.sha), 'client → backend: the bytes differ from every stream sent');
      }
      for (const c of atClient) {
        assert.equal(c.got.bytes, TOTAL, 'backend → client: byte count');
        assert.ok(sentByBackend.has(c.got.sha), 'backend → client: the bytes differ from every stream sent');
      }
      for (const s of clients) s.destroy();
      // Both proxies count the plain leg's bytes at close (the inbound one reads it with onread).
      const both = CONNS * 2 * TOTAL;
      for (const [bed, direction] of [[pair.outbound, 'outbound'], [pair.inbound, 'inbound']] as const) {
        await waitFor(async () => (await metricValue(bed.registry, SidecarMetricNames.bytes, { direction })) === both, `${direction} bytes counted`);
      }
    } finally {
      await pair.stop();
    }
  });

  test('half-close from the app: its FIN reaches the backend, whose late answer still arrives', async () => {
    let backendGot = '';
    const pair = await startPair(pki, (s) => {
      s.on('data', (d: Buffer) => (backendGot += d.toString()));
      s.on('end', () => s.end(`answer to ${backendGot}`));
    });
    try {
      const s = net.connect({ host: '127.0.0.1', port: pair.port, allowHalfOpen: true });
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      s.end('question');
      await deadline(once(s, 'end'), 10_000, 'the answer and FIN');
      assert.equal(got, 'answer to question');
      s.destroy();
    } finally {
      await pair.stop();
    }
  });

  test('half-close from the backend: its FIN reaches the app, which can still send', async () => {
    let backendGot = '';
    let backendEnded!: () => void;
    const backendDone = new Promise<void>((resolve) => (backendEnded = resolve));
    const pair = await startPair(pki, (s) => {
      s.on('data', (d: Buffer) => (backendGot += d.toString()));
      s.on('end', () => backendEnded());
      s.end('banner, then FIN');
    });
    try {
      const s = net.connect({ host: '127.0.0.1', port: pair.port, allowHalfOpen: true });
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      await deadline(once(s, 'end'), 10_000, 'the banner and FIN');
      assert.equal(got, 'banner, then FIN');
      s.end('sent after the FIN');
      await deadline(backendDone, 10_000, 'the late bytes at the backend');
      assert.equal(backendGot, 'sent after the FIN');
    } finally {
      await pair.stop();
    }
  });
});

describe('OutboundProxy: an upstream that speaks first', () => {
  let pki: TestPki;
  before(() => {
    pki = testPki({ now: Date.now() });
  });

  async function speakingUpstream(spiffeId: string): Promise<{ port: number; close(): void }> {
    const svid = pki.issue(spiffeId);
    const server = tls.createServer({ cert: svid.certChainPem, key: svid.keyPem, ca: pki.rootPem, requestCert: true, rejectUnauthorized: true }, (s) => {
      s.on('error', () => undefined);
      s.write('upstream secret banner');
    });
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
  }

  async function callOnce(port: number): Promise<string> {
    const s = net.connect({ host: '127.0.0.1', port });
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.on('error', () => undefined);
    await deadline(once(s, 'close'), 10_000, 'the connection to close');
    return got;
  }

  test('from an upstream with the wrong identity, the app gets none of its bytes', async () => {
    const up = await speakingUpstream(OTHER_ID);
    const bed = proxyTestbed(pki, { spiffeId: CLIENT_ID, direction: 'outbound' });
    const proxy = new OutboundProxy({ ...bed.options, upstream: { host: '127.0.0.1', port: up.port, spiffeId: SERVER_ID } });
    const { port } = await proxy.start();
    try {
      assert.equal(await callOnce(port), '');
      await waitFor(async () => (await bed.connections('refused', 'wrong_identity')) === 1, 'wrong_identity count');
    } finally {
      proxy.close();
      up.close();
    }
  });

  test('from the expected upstream, its banner reaches the app', async () => {
    const up = await speakingUpstream(SERVER_ID);
    const bed = proxyTestbed(pki, { spiffeId: CLIENT_ID, direction: 'outbound' });
    const proxy = new OutboundProxy({ ...bed.options, upstream: { host: '127.0.0.1', port: up.port, spiffeId: SERVER_ID } });
    const { port } = await proxy.start();
    const s = net.connect({ host: '127.0.0.1', port });
    try {
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      await waitFor(() => got === 'upstream secret banner', 'the banner at the app');
    } finally {
      s.destroy();
      proxy.close();
      up.close();
    }
  });
});

/** A Splice built by hand, its created leg (onread) of `kind` and an accepted leg of the other kind. */
interface DirectSplice {
  readonly splice: Splice;
  readonly created: net.Socket;
  /** The far end of the created leg: what the test writes here, the created leg reads. */
  readonly source: net.Socket;
  /** The far end of the accepted leg: where the test reads what the Splice passed on. */
  readonly reader: net.Socket;
  stop(): void;
}

/** A listening server and the first socket it accepts (secureConnection for TLS). */
async function listenOnce(server: net.Server, event: string): Promise<{ port: number; accepted: Promise<net.Socket> }> {
  const accepted = once(server, event).then(([s]) => s as net.Socket);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, accepted };
}

/** kind 'plain' mirrors the inbound proxy (created app leg → accepted TLS), 'tls' the outbound one. */
async function directSplice(pki: TestPki, kind: 'plain' | 'tls'): Promise<DirectSplice> {
  const svid = pki.issue(SERVER_ID);
  const tlsServer = (): net.Server => tls.createServer({ cert: svid.certChainPem, key: svid.keyPem, allowHalfOpen: true });
  const tlsClient = { host: '127.0.0.1', ca: pki.rootPem, checkServerIdentity: () => undefined, allowHalfOpen: true } as const;
  const sourceServer = kind === 'plain' ? net.createServer({ allowHalfOpen: true }) : tlsServer();
  const src = await listenOnce(sourceServer, kind === 'plain' ? 'connection' : 'secureConnection');
  const acceptServer = kind === 'plain' ? tlsServer() : net.createServer({ allowHalfOpen: true });
  const acc = await listenOnce(acceptServer, kind === 'plain' ? 'secureConnection' : 'connection');
  const reader = kind === 'plain' ? tls.connect({ ...tlsClient, port: acc.port }) : net.connect({ host: '127.0.0.1', port: acc.port, allowHalfOpen: true });
  const accepted = await acc.accepted;
  const created =
    kind === 'plain' ? connectPlainLeg({ host: '127.0.0.1', port: src.port, allowHalfOpen: true }) : connectTlsLeg({ ...tlsClient, port: src.port } as tls.ConnectionOptions);
  const legs = kind === 'plain' ? { tls: accepted, plain: created } : { tls: created, plain: accepted };
  const splice = new Splice({ ...legs, owner: { spliceClosed: () => undefined }, setupTimeoutMs: 20_000, acceptedAt: 0 });
  const source = await src.accepted;
  if (kind === 'tls' && !(created as tls.TLSSocket).authorized) await once(created, 'secureConnect');
  for (const s of [source, reader]) s.on('error', () => undefined);
  return {
    splice,
    created,
    source,
    reader,
    stop() {
      splice.destroy();
      for (const s of [source, reader]) s.destroy();
      sourceServer.close();
      acceptServer.close();
    },
  };
}

/** Write `total` random bytes in small pieces, one per event-loop turn, so the Splice reads them one by one. */
async function trickle(s: net.Socket, total: number): Promise<{ bytes: number; sha: string }> {
  const hash = createHash('sha256');
  let sent = 0;
  while (sent < total) {
    const chunk = randomFillSync(Buffer.allocUnsafe(Math.min(total - sent, 1 + Math.floor(Math.random() * 8192))));
    hash.update(chunk);
    sent += chunk.length;
    if (!s.write(chunk)) await once(s, 'drain');
    else await new Promise((r) => setImmediate(r));
  }
  s.end();
  return { bytes: sent, sha: hash.digest('hex') };
}

describe('Splice with a created leg', () => {
  const pki = testPki({ now: Date.now() });
  for (const kind of ['plain', 'tls'] as const) {
    test(`${kind}: behind a congested accepted leg, reads that queue or pin a write arrive byte-exact`, { timeout: 30_000 }, async () => {
      const d = await directSplice(pki, kind);
      try {
        d.splice.open();
        // The reader starts late: the accepted leg's kernel buffers fill, its writes go partial (plain
        // TCP) or stay pending (TLS) while small reads keep coming on the created leg.
        const [sent, received] = await deadline(
          Promise.all([trickle(d.source, 8 * MiB), readBursty(d.reader, { startAfterMs: 300, bytesPerMs: 16_000, jitterMs: 5 })]),
          25_000,
          'the transfer',
        );
        assert.equal(received.bytes, sent.bytes);
        assert.equal(received.sha, sent.sha);
      } finally {
        d.stop();
      }
    });

    // A TLS leg may hand over the banner and its close_notify in one read, so 'end' can come before open().
    test(`${kind}: what the created leg reads before open(), and its FIN, pass on at open(); nothing before`, async () => {
      const d = await directSplice(pki, kind);
      try {
        let got = '';
        d.reader.on('data', (b: Buffer) => (got += b.toString()));
        d.source.end('early bytes');
        await waitFor(() => d.created.bytesRead > 0, 'the bytes read on the created leg');
        await new Promise((r) => setTimeout(r, 50));
        assert.equal(got, '', 'nothing passed on before open()');
        d.splice.open();
        await deadline(once(d.reader, 'end'), 10_000, 'the FIN passed on');
        assert.equal(got, 'early bytes');
      } finally {
        d.stop();
      }
    });
  }
});
