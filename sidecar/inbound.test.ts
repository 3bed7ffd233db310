// InboundProxy against the real `openssl s_client` (and node:tls where a test needs a long-lived
// client): allowed peers reach the app; every refused peer leaves the app with zero connections and
// zero bytes, and is counted under its reason.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { p256, type CertSpec } from '../pki/test-chain.ts';
import {
  StaticSvidSource,
  metricValue,
  mtlsClient,
  pemFiles,
  proxyTestbed,
  keepMoving,
  roundTrip,
  sClient,
  startBackend,
  svidFrom,
  testPki,
  waitFor,
  WORKLOAD_IDS,
  type PemFiles,
  type ProxyHarness,
  type TestBackend,
  type TestPki,
} from '../test/helpers/sidecar-fixture.ts';
import { InboundProxy, type InboundProxyOptions } from './inbound.ts';
import { SidecarMetricNames } from './metrics.ts';
import { parsePolicy } from './policy.ts';
import { decodeProxyV2 } from './proxy-protocol.ts';

const { api: SERVER_ID, web: CLIENT_ID, other: OTHER_ID } = WORKLOAD_IDS;

interface Harness extends ProxyHarness<InboundProxy> {
  backend: TestBackend;
  stop(): Promise<void>;
}

async function startInbound(pki: TestPki, extra: Partial<InboundProxyOptions> = {}, backendOptions: Parameters<typeof startBackend>[0] = {}): Promise<Harness> {
  const backend = await startBackend(backendOptions);
  const bed = proxyTestbed(pki, { spiffeId: SERVER_ID, direction: 'inbound' });
  const policy = parsePolicy(`ports:\n  "${backend.port}":\n    allow: ["${CLIENT_ID}"]\n`, { source: 'test-policy.yaml', ownTrustDomain: pki.trustDomain });
  const proxy = new InboundProxy({ ...bed.options, app: { host: '127.0.0.1', port: backend.port }, policy: () => policy, ...extra });
  const { port } = await proxy.start();
  return {
    ...bed,
    proxy,
    port,
    backend,
    async stop() {
      proxy.close();
      await backend.close();
    },
  };
}

describe('InboundProxy with openssl s_client', () => {
  let pki: TestPki;
  let files: PemFiles;
  let h: Harness;
  let clientArgs: string[];
  let root: string;

  before(async () => {
    pki = testPki({ now: Date.now() });
    files = pemFiles();
    root = files.write('root.pem', pki.rootPem);
    clientArgs = files.writeSvid('client', pki.issue(CLIENT_ID)).args;
    h = await startInbound(pki);
  });
  after(async () => {
    await h.stop();
    files.cleanup();
  });

  test('an allowed peer reaches the app and gets its answer back', async () => {
    const before = h.backend.connections;
    const r = await sClient(h.port, [...clientArgs, '-CAfile', root, '-verify_return_error'], {
      input: 'hello tollgate\n',
      until: 'hello tollgate',
    });
    assert.match(r.stdout, /hello tollgate/, r.stderr);
    assert.equal(h.backend.connections, before + 1);
    await waitFor(async () => (await h.connections('allowed', 'allowed')) === 1, 'allowed count');
    await waitFor(async () => (await metricValue(h.registry, SidecarMetricNames.bytes, { direction: 'inbound' })) === 30, 'bytes counted at close');
    assert.equal(await metricValue(h.registry, SidecarMetricNames.activeConnections, { direction: 'inbound' }), 0);
    assert.match(await h.registry.metrics(), /tollgate_handshake_seconds_count\{direction="inbound"\} 1\n/);
  });

  // Each case: what the client presents, the reason it must be counted under.
  // Handshake-level refusals carry an alert; after a completed handshake Node can only close.
  const refusals: Array<{ name: string; reason: string; args: (f: PemFiles) => string[]; alert?: RegExp }> = [
    { name: 'no client certificate', reason: 'no_client_cert', args: () => [], alert: /alert number 116/ },
    {
      name: 'a certificate from another CA',
      reason: 'untrusted',
      args: (f) => {
        const other = testPki({ now: Date.now() });
        return f.writeSvid('foreign', other.issue(CLIENT_ID)).args;
      },
    },
    { name: 'an expired leaf', reason: 'expired', args: (f) => leafArgs(f, 'expired', { notBefore: Date.now() - 7200_000, notAfter: Date.now() - 3600_000 }) },
    { name: 'a leaf not yet valid', reason: 'not_yet_valid', args: (f) => leafArgs(f, 'future', { notBefore: Date.now() + 3600_000, notAfter: Date.now() + 7200_000 }) },
    { name: 'a valid leaf not on the allow-list', reason: 'no_rule', args: (f) => leafArgs(f, 'other', {}, OTHER_ID) },
    { name: 'a leaf with two URI SANs', reason: 'svid_invalid', args: (f) => leafArgs(f, 'two-sans', { uris: [CLIENT_ID, OTHER_ID] }) },
    { name: 'a CA certificate (cA=true) as leaf', reason: 'svid_invalid', args: (f) => leafArgs(f, 'ca-leaf', { ca: true }) },
    { name: 'a leaf without digitalSignature', reason: 'svid_invalid', args: (f) => leafArgs(f, 'no-ds', { keyUsage: [0x03, 0x08] /* keyAgreement only: OpenSSL's client purpose accepts it */ }) },
    { name: 'TLS 1.1 offered', reason: 'protocol_version', args: () => [...clientArgs, '-tls1_1', '-cipher', 'DEFAULT:@SECLEVEL=0'], alert: /alert number 70/ },
    { name: 'TLS 1.2 offered while the minimum is 1.3', reason: 'protocol_version', args: () => [...clientArgs, '-tls1_2'], alert: /alert number 70/ },
  ];
  const leafArgs = (f: PemFiles, name: string, over: Partial<CertSpec>, id = CLIENT_ID): string[] => {
    return f.writeSvid(name, pki.issue(id, over)).args;
  };

  for (const c of refusals) {
    test(`refused: ${c.name} (reason ${c.reason}); the app sees nothing`, async () => {
      const connectionsBefore = h.backend.connections;
      const bytesBefore = h.backend.bytes;
      const countBefore = await h.connections('refused', c.reason);
      const logsBefore = h.logs.length;
      const r = await sClient(h.port, [...c.args(files), '-CAfile', root], { input: 'secret request\n' });
      if (c.alert) assert.match(r.stderr, c.alert, 'refused inside the handshake, with a TLS alert');
      await waitFor(async () => (await h.connections('refused', c.reason)) === countBefore + 1, `refused{reason=${c.reason}}`);
      assert.doesNotMatch(r.stdout, /secret request/);
      assert.equal(h.backend.connections, connectionsBefore, 'the app got no connection');
      assert.equal(h.backend.bytes, bytesBefore, 'the app got no bytes');
      const line = h.logs.slice(logsBefore).find((l) => l.event === 'inbound_refused');
      assert.ok(line, 'one inbound_refused log line');
      assert.equal(line.reason, c.reason);
      assert.equal(typeof line.code, 'string');
      assert.match(String(line.remote), /^127\.0\.0\.1:\d+$/);
      if (c.reason === 'no_rule') assert.equal(line.peer_id, OTHER_ID);
      else assert.equal(line.peer_id, undefined);
    });
  }

  test('with TLS 1.2 allowed, a TLS 1.2 peer gets through', async () => {
    const h12 = await startInbound(pki, { minVersion: 'TLSv1.2' });
    try {
      const r = await sClient(h12.port, [...clientArgs, '-CAfile', root, '-tls1_2'], { input: 'over 1.2\n', until: 'over 1.2' });
      assert.match(r.stdout, /over 1\.2/, r.stderr);
      assert.equal(h12.backend.connections, 1);
    } finally {
      await h12.stop();
    }
  });
});

describe('InboundProxy certificate rotation', () => {
  test('an open connection keeps working across an SVID change; a new connection sees the new certificate', async () => {
    const pki = testPki({ now: Date.now() });
    const h = await startInbound(pki);
    const client = pki.issue(CLIENT_ID);
    try {
      const first = await mtlsClient(h.port, pki, client);
      const oldSerial = h.source.svid()!.serial;
      assert.equal(first.getPeerX509Certificate()!.serialNumber.toLowerCase(), oldSerial);
      await roundTrip(first, 'before swap\n');

      const renewed = pki.issue(SERVER_ID);
      assert.notEqual(renewed.serial, oldSerial);
      h.source.update({ svid: renewed });
      await roundTrip(first, 'during swap\n');

      const second = await mtlsClient(h.port, pki, client);
      assert.equal(second.getPeerX509Certificate()!.serialNumber.toLowerCase(), renewed.serial);
      await roundTrip(second, 'new connection\n');
      await roundTrip(first, 'old connection still up\n');
      first.end();
      second.end();
      await waitFor(() => h.proxy.activeConnections === 0, 'both connections closed');
    } finally {
      await h.stop();
    }
    assert.equal(h.source.listenerCount, 0, 'close() unsubscribes from the source');
  });

  test('an SVID whose key does not match is not installed: the old certificate stays, the failure is counted', async () => {
    const pki = testPki({ now: Date.now() });
    const h = await startInbound(pki);
    try {
      const oldSerial = h.source.svid()!.serial;
      const good = pki.issue(SERVER_ID);
      h.source.update({ svid: svidFrom(SERVER_ID, [...good.certChain], p256()) });
      assert.equal(await metricValue(h.registry, SidecarMetricNames.configReloadFailures), 1);
      assert.ok(h.logs.some((l) => l.event === 'inbound_context_failed'));
      const s = await mtlsClient(h.port, pki, pki.issue(CLIENT_ID));
      assert.equal(s.getPeerX509Certificate()!.serialNumber.toLowerCase(), oldSerial);
      s.destroy();
    } finally {
      await h.stop();
    }
  });
});

describe('InboundProxy app side', () => {
  test('PROXY v2: the app receives the header first, carrying the peer SPIFFE ID', async () => {
    const pki = testPki({ now: Date.now() });
    const h = await startInbound(pki, { proxyProtocol: true }, { echo: false });
    try {
      const s = await mtlsClient(h.port, pki, pki.issue(CLIENT_ID));
      s.write('GET / HTTP/1.0\r\n\r\n');
      await waitFor(() => h.backend.bytes > 0 && Buffer.concat(h.backend.received[0]!).includes('HTTP/1.0\r\n\r\n'), 'request at the app');
      const data = Buffer.concat(h.backend.received[0]!);
      const decoded = decodeProxyV2(data);
      assert.ok(decoded);
      assert.equal(decoded.header.spiffeId, CLIENT_ID);
      assert.equal(decoded.header.family, 'tcp4');
      assert.equal(decoded.header.source?.address, '127.0.0.1');
      assert.equal(decoded.header.source?.port, s.localPort);
      assert.equal(decoded.header.destination?.port, h.port);
      assert.equal(decoded.header.ssl?.verify, 0);
      assert.equal(decoded.header.ssl?.version, 'TLSv1.3');
      assert.equal(data.subarray(decoded.length).toString(), 'GET / HTTP/1.0\r\n\r\n');
      s.destroy();
    } finally {
      await h.stop();
    }
  });

  test('an unreachable app: the peer is disconnected, counted as error/app_unreachable', async () => {
    const pki = testPki({ now: Date.now() });
    const h = await startInbound(pki);
    await h.backend.close(); // nothing listens on the app port any more
    try {
      const s = await mtlsClient(h.port, pki, pki.issue(CLIENT_ID));
      await new Promise<void>((resolve) => {
        s.on('error', () => undefined);
        s.on('close', () => resolve());
      });
      await waitFor(async () => (await h.connections('error', 'app_unreachable')) === 1, 'app_unreachable count');
      assert.ok(h.logs.some((l) => l.event === 'inbound_app_unreachable'));
    } finally {
      h.proxy.close();
    }
  });

  test('half-close: the peer ends its side, the app still answers and the answer arrives', async () => {
    const pki = testPki({ now: Date.now() });
    const h = await startInbound(pki, {}, { echo: false, endWhenPeerEnds: false });
    try {
      const s = await mtlsClient(h.port, pki, pki.issue(CLIENT_ID));
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      const closed = new Promise<void>((resolve) => s.on('close', () => resolve()));
      s.end('request then FIN');
      await waitFor(() => h.backend.sockets[0]?.readableEnded === true, 'FIN at the app');
      h.backend.sockets[0]!.end('late answer');
      await closed;
      assert.equal(got, 'late answer');
      assert.equal(Buffer.concat(h.backend.received[0]!).toString(), 'request then FIN');
    } finally {
      await h.stop();
    }
  });

  test('a policy that cannot be read fails closed: refused with reason no_policy', async () => {
    const pki = testPki({ now: Date.now() });
    const h = await startInbound(pki, {
      policy: () => {
        throw new Error('no policy loaded');
      },
    });
    try {
      const s = await mtlsClient(h.port, pki, pki.issue(CLIENT_ID));
      s.on('error', () => undefined);
      s.write('let me in');
      await waitFor(async () => (await h.connections('refused', 'no_policy')) === 1, 'no_policy count');
      assert.equal(h.backend.connections, 0);
      s.destroy();
    } finally {
      await h.stop();
    }
  });

  test('idle timeout closes both sides', async () => {
    const pki = testPki({ now: Date.now() });
    const h = await startInbound(pki, { limits: { idleTimeoutMs: 100 } });
    try {
      const s = await mtlsClient(h.port, pki, pki.issue(CLIENT_ID));
      await roundTrip(s, 'ping\n');
      await new Promise<void>((resolve) => s.on('close', () => resolve()));
      await waitFor(() => h.proxy.activeConnections === 0 && h.backend.sockets[0]?.destroyed === true, 'both sides closed');
    } finally {
      await h.stop();
    }
  });

  test('a connection that keeps moving outlives the idle timeout several times over (the sweep reads its byte counters)', async () => {
    const pki = testPki({ now: Date.now() });
    const h = await startInbound(pki, { limits: { idleTimeoutMs: 1000 } });
    try {
      const s = await mtlsClient(h.port, pki, pki.issue(CLIENT_ID));
      const moved = await keepMoving(s, 3000);
      assert.equal(moved.closed(), false);
      assert.equal(h.proxy.activeConnections, 1);
      await waitFor(() => moved.closed() && h.proxy.activeConnections === 0, 'closed once idle');
    } finally {
      await h.stop();
    }
  });

  test('maxConnections: a connection over the limit is refused with reason limit', async () => {
    const pki = testPki({ now: Date.now() });
    const h = await startInbound(pki, { limits: { maxConnections: 1 } });
    try {
      const s = await mtlsClient(h.port, pki, pki.issue(CLIENT_ID));
      await roundTrip(s, 'first\n');
      const second = mtlsClient(h.port, pki, pki.issue(CLIENT_ID)).then(
        (x) => (x.destroy(), 'connected'),
        () => 'refused',
      );
      await waitFor(async () => (await h.connections('refused', 'limit')) === 1, 'limit count');
      assert.equal(await second, 'refused');
      assert.equal(h.backend.connections, 1);
      s.destroy();
    } finally {
      await h.stop();
    }
  });
});

describe('InboundProxy drain', () => {
  test('an open connection survives drain() and completes; a new connection is refused', async () => {
    const pki = testPki({ now: Date.now() });
    const h = await startInbound(pki);
    const client = pki.issue(CLIENT_ID);
    try {
      const s = await mtlsClient(h.port, pki, client);
      await roundTrip(s, 'before drain\n');
      let drained = false;
      const draining = h.proxy.drain(30_000).then(() => (drained = true));
      await assert.rejects(mtlsClient(h.port, pki, client), /ECONNREFUSED/);
      await roundTrip(s, 'during drain\n');
      assert.equal(drained, false);
      s.end();
      await draining;
      assert.equal(h.proxy.activeConnections, 0);
    } finally {
      await h.stop();
    }
  });

  test('drain destroys what is still open when its timeout passes', async () => {
    const pki = testPki({ now: Date.now() });
    const h = await startInbound(pki);
    try {
      const s = await mtlsClient(h.port, pki, pki.issue(CLIENT_ID));
      await roundTrip(s, 'hello\n');
      const closed = new Promise<void>((resolve) => s.on('close', () => resolve()));
      await h.proxy.drain(50);
      await closed;
      await waitFor(() => h.proxy.activeConnections === 0, 'the proxied connection closed');
    } finally {
      await h.stop();
    }
  });
});

describe('InboundProxy handshake timeout', () => {
  // Node's tls server runs limits.handshakeTimeout on its own (real) timer, so this test uses a short
  // real timeout; the only time bound is a generous one, far below both defaults (10 s, Node's 120 s).
  test('a peer that starts a handshake and never finishes it is closed at limits.handshakeTimeout and counted', async () => {
    const pki = testPki({ now: Date.now() });
    const h = await startInbound(pki, { limits: { handshakeTimeoutMs: 200 } });
    try {
      const s = net.connect({ host: '127.0.0.1', port: h.port });
      const closed = new Promise<void>((resolve) => s.on('close', () => resolve()));
      s.on('error', () => {});
      // A TLS handshake record header announcing 240 bytes, then silence.
      s.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xf0]));
      let isClosed = false;
      void closed.then(() => (isClosed = true));
      await waitFor(() => isClosed, 'the stalled handshake to be closed by the proxy', 8_000);
      await waitFor(async () => (await h.connections('refused', 'handshake_timeout')) === 1, 'the refusal counted as handshake_timeout');
      assert.equal(h.backend.connections, 0, 'nothing reached the app');
    } finally {
      await h.stop();
    }
  });
});

describe('InboundProxy start', () => {
  test('refuses to start without an SVID', async () => {
    const pki = testPki({ now: Date.now() });
    const proxy = new InboundProxy({
      listen: { host: '127.0.0.1', port: 0 },
      app: { host: '127.0.0.1', port: 1 },
      source: new StaticSvidSource({ svid: null, bundle: pki.bundle }),
      policy: () => parsePolicy('ports: {}\n', { source: 'p', ownTrustDomain: 'example.org' }),
    });
    await assert.rejects(proxy.start(), (e: Error & { code?: string }) => e.code === 'TG_UNAVAILABLE');
  });

  test('never accepts a minimum below TLS 1.2', () => {
    assert.throws(
      () =>
        new InboundProxy({
          listen: { host: '127.0.0.1', port: 0 },
          app: { host: '127.0.0.1', port: 1 },
          source: new StaticSvidSource({ svid: null, bundle: null }),
          policy: () => parsePolicy('ports: {}\n', { source: 'p', ownTrustDomain: 'example.org' }),
          minVersion: 'TLSv1.1' as 'TLSv1.2',
        }),
      /TLSv1\.1/,
    );
  });
});
