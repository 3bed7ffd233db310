// ProxyListener's shared lifecycle (start, drain, close, context reload) through a minimal plain-TCP
// proxy, so each case is about the lifecycle alone. The drain timeout runs on a ManualClock.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ManualClock } from '../common/clock.ts';
import { isTollgateError } from '../common/errors.ts';
import { metricValue, proxyTestbed, roundTrip, startBackend, testPki, waitFor, WORKLOAD_IDS, type ProxyTestbed } from '../test/helpers/sidecar-fixture.ts';
import type { BudgetRefusal } from './budget.ts';
import { ProxyListener, type ProxyOptions } from './listener.ts';
import { SidecarMetricNames } from './metrics.ts';
import type { Splice } from './splice.ts';
import type { Svid, TrustBundle } from './svid-source.ts';

/**
 * Accepted sockets are spliced to `backend` in plain TCP, except in `hold` mode, where they stay
 * tracked as "still in their handshake" and are never spliced.
 */
class PlainProxy extends ProxyListener {
  readonly installed: Svid[] = [];
  readonly closedSplices: Splice[] = [];
  readonly drops: string[] = [];
  failInstall = false;
  hold = false;
  /** Sockets accepted in hold mode. */
  held = 0;
  readonly #backendPort: number;

  constructor(options: ProxyOptions & { backendPort: number }) {
    super({ ...options, direction: 'inbound' });
    this.#backendPort = options.backendPort;
  }

  protected override createServer(svid: Svid): net.Server {
    this.installed.push(svid);
    return net.createServer({ allowHalfOpen: true }, (client) => {
      if (!this.admit(client, false)) return;
      if (this.hold) {
        this.held++;
        this.trackAccepted(client);
        return;
      }
      const app = net.connect({ host: '127.0.0.1', port: this.#backendPort, allowHalfOpen: true });
      const splice = this.splice({ tls: client, plain: app, acceptedAt: performance.now() });
      app.once('connect', () => splice.open());
    });
  }

  protected override installContext(svid: Svid, _bundle: TrustBundle): void {
    if (this.failInstall) throw new Error('key does not match certificate');
    this.installed.push(svid);
  }

  protected override dropped(remote: string, _reason: BudgetRefusal): void {
    this.drops.push(remote);
  }

  protected override connectionClosed(splice: Splice): void {
    this.closedSplices.push(splice);
  }
}

interface Rig {
  bed: ProxyTestbed;
  proxy: PlainProxy;
  clock: ManualClock;
  backendPort: number;
  connect(): Promise<net.Socket>;
}

/** A started PlainProxy in front of an echo backend; both are closed when the test ends. */
async function startRig(t: TestContext, limits?: ProxyOptions['limits']): Promise<Rig> {
  const pki = testPki({ now: Date.now() });
  const bed = proxyTestbed(pki, { spiffeId: WORKLOAD_IDS.api, direction: 'inbound' });
  const backend = await startBackend();
  const clock = new ManualClock(Date.now());
  const proxy = new PlainProxy({ ...bed.options, clock, limits, backendPort: backend.port });
  t.after(() => (proxy.close(), backend.close()));
  const { port } = await proxy.start();
  const connect = (): Promise<net.Socket> =>
    new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
      s.once('error', reject);
    });
  return { bed, proxy, clock, backendPort: backend.port, connect };
}

describe('ProxyListener start', () => {
  test('refuses a second start() and a start() after close()', async (t) => {
    const r = await startRig(t);
    await assert.rejects(r.proxy.start(), (e: unknown) => isTollgateError(e, 'TG_INTERNAL') && /InboundProxy\.start\(\) called twice/.test(e.message));
    r.proxy.close();
    await assert.rejects(r.proxy.start(), (e: unknown) => isTollgateError(e, 'TG_INTERNAL'));
  });

  test('an address in use: TG_UNAVAILABLE naming it, and nothing left subscribed', async (t) => {
    const r = await startRig(t);
    const blocker = net.createServer();
    t.after(() => blocker.close());
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    const second = new PlainProxy({ ...r.bed.options, listen: { host: '127.0.0.1', port }, backendPort: r.backendPort });
    const listenersBefore = r.bed.source.listenerCount;
    await assert.rejects(second.start(), (e: unknown) => isTollgateError(e, 'TG_UNAVAILABLE') && e.message.includes(`cannot listen on 127.0.0.1:${port}`));
    assert.equal(r.bed.source.listenerCount, listenersBefore, 'the failed proxy unsubscribed again');
  });
});

describe('ProxyListener drain', () => {
  test('with nothing open, drain resolves at once and leaves no timer', async (t) => {
    const r = await startRig(t);
    await r.proxy.drain(30_000);
    assert.equal(r.clock.pending, 0);
  });

  test('waits for an open connection; two drains resolve together when it closes', async (t) => {
    const r = await startRig(t);
    const s = await r.connect();
    await roundTrip(s, 'hello\n');
    let drained = 0;
    const both = Promise.all([r.proxy.drain(30_000), r.proxy.drain(30_000)]).then(() => (drained = 2));
    await roundTrip(s, 'still open\n');
    assert.equal(drained, 0);
    s.end();
    await both;
    assert.equal(r.proxy.activeConnections, 0);
    assert.equal(r.proxy.closedSplices.length, 1);
    assert.equal(r.clock.pending, 0, 'the drain timer was cancelled');
  });

  test('at the timeout, destroys what is left (including a connection still in its handshake) and logs it', async (t) => {
    const r = await startRig(t);
    const spliced = await r.connect();
    await roundTrip(spliced, 'x\n');
    r.proxy.hold = true;
    const held = await r.connect();
    await waitFor(() => r.proxy.held === 1, 'the held connection accepted');
    const closed = Promise.all([spliced, held].map((s) => new Promise<void>((resolve) => s.on('close', () => resolve()))));
    const draining = r.proxy.drain(5_000);
    r.clock.advance(4_999);
    assert.equal(r.bed.logs.filter((l) => l.event === 'inbound_drain_timeout').length, 0);
    r.clock.advance(1);
    await draining;
    await closed;
    assert.equal(r.bed.logs.find((l) => l.event === 'inbound_drain_timeout')?.open, 2);
  });
});

describe('ProxyListener context reload and limits', () => {
  test('installs a new SVID once; a failing one is counted and logged and the next good one still installs', async (t) => {
    const pki = testPki({ now: Date.now() });
    const r = await startRig(t);
    const first = r.bed.source.svid()!;
    r.bed.source.update({ bundle: r.bed.source.bundle() }); // nothing changed: nothing installed
    assert.deepEqual(r.proxy.installed, [first]);

    const renewed = pki.issue(WORKLOAD_IDS.api);
    r.bed.source.update({ svid: renewed });
    assert.deepEqual(r.proxy.installed, [first, renewed]);
    assert.ok(r.bed.logs.some((l) => l.event === 'inbound_context_updated' && l.serial === renewed.serial));

    r.proxy.failInstall = true;
    r.bed.source.update({ svid: pki.issue(WORKLOAD_IDS.api) });
    assert.equal(await metricValue(r.bed.registry, SidecarMetricNames.configReloadFailures), 1);
    assert.ok(r.bed.logs.some((l) => l.event === 'inbound_context_failed'));

    r.proxy.failInstall = false;
    const next = pki.issue(WORKLOAD_IDS.api);
    r.bed.source.update({ svid: next });
    assert.equal(r.proxy.installed.at(-1), next);
    r.proxy.close();
    assert.equal(r.bed.source.listenerCount, 0, 'close() unsubscribes');
  });

  test('maxConnections: a connection over the limit is dropped and reported with its address', async (t) => {
    const r = await startRig(t, { maxConnections: 1 });
    const s = await r.connect();
    await roundTrip(s, 'first\n');
    const second = await r.connect();
    await new Promise<void>((resolve) => second.on('close', () => resolve()));
    await waitFor(() => r.proxy.drops.length === 1, 'one drop');
    assert.match(r.proxy.drops[0]!, /^127\.0\.0\.1:\d+$/);
  });
});
