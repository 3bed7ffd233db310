// Bounded handshake floods against a real sidecar's inbound listener, and a legitimate mTLS peer
// measured while they run (issue 14, reliability suite: floods). The flood comes from one loopback
// address and the peer from another (all of 127/8 is loopback), so the per-source handshake budget is
// what keeps the peer's way open. Every loop here is bounded by a count and a time.
import { spawn } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import { join } from 'node:path';
import { initCa, startCa, type RunningTestCa } from './ca-fixture.ts';
import { shopId, startSidecar, type RunningSidecar } from './mesh-fixture.ts';
import { issuedIdentity, latencySummary, peerRequest, type PeerIdentity, type PeerResult } from './peer.ts';
import { tempDir } from './procs.ts';
import { startBackend, type TestBackend } from './sidecar-fixture.ts';

export const FLOOD_SOURCE = '127.0.0.1';
export const PEER_SOURCE = '127.0.0.2';

/** Small limits that make floods cheap: 5 handshakes per source, 50 in all, 2 s to finish one. */
export const SMALL_LIMITS = 'limits: { maxConnections: 200, maxHandshakes: 50, maxHandshakesPerSource: 5, handshakeTimeout: 2s }';

/** A CA, an echo app behind the orders sidecar (web allowed), and web's certificate for an outside peer. */
export interface FloodTarget {
  readonly ca: RunningTestCa;
  readonly backend: TestBackend;
  readonly orders: RunningSidecar;
  readonly web: PeerIdentity;
  /** tollgate_inbound_connections_total by "result/reason" now. */
  inboundCounts(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

export async function startFloodTarget(o: { limitsYaml?: string } = {}): Promise<FloodTarget> {
  const tmp = tempDir();
  initCa(join(tmp.dir, 'ca'));
  const ca = await startCa(join(tmp.dir, 'ca'));
  const backend = await startBackend();
  const orders = await startSidecar(tmp.dir, ca, {
    name: 'orders',
    spiffeId: shopId('orders'),
    inbound: { appPort: backend.port },
    policy: `ports:\n  "${backend.port}":\n    allow: [${shopId('web')}]\n`,
    ...(o.limitsYaml ? { extraYaml: o.limitsYaml } : {}),
  });
  const web = issuedIdentity(ca.dir, tmp.dir, shopId('web'));
  return {
    ca,
    backend,
    orders,
    web,
    async inboundCounts() {
      const out: Record<string, number> = {};
      for (const m of (await orders.metrics()).matchAll(/^tollgate_inbound_connections_total\{result="([^"]+)",reason="([^"]+)"\} (\S+)$/gm)) out[`${m[1]}/${m[2]}`] = Number(m[3]);
      return out;
    },
    async stop() {
      await orders.proc.stop();
      await backend.close();
      await ca.stop();
      tmp.cleanup();
    },
  };
}

/** What grew between two inboundCounts() readings. */
export function countsDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}

let helloBytes: Buffer | undefined;

/** The bytes of a real TLS ClientHello (node:tls to a local listener that records and drops it). */
export async function clientHello(): Promise<Buffer> {
  if (helloBytes) return helloBytes;
  helloBytes = await new Promise<Buffer>((resolve) => {
    const server = net.createServer((s) => {
      s.once('data', (d: Buffer) => {
        resolve(d);
        s.destroy();
        server.close();
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const c = tls.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, rejectUnauthorized: false });
      c.on('error', () => undefined);
    });
  });
  return helloBytes;
}

/** The sockets of one flood: how many connected, how many the sidecar closed, how many are still open. */
export class FloodSockets {
  opened = 0;
  closedByPeer = 0;
  readonly #sockets = new Set<net.Socket>();
  #destroying = false;
  #timer: NodeJS.Timeout | null = null;

  /** Still open now. */
  get open(): number {
    return this.#sockets.size;
  }

  /** Connect one more from `from`; `onConnect` runs once it is connected. */
  connect(port: number, from: string, onConnect: (s: net.Socket) => void, onError: () => void = () => undefined): void {
    const s = net.connect({ host: '127.0.0.1', port, localAddress: from });
    this.#sockets.add(s);
    s.on('error', () => undefined);
    s.once('error', onError);
    s.once('connect', () => {
      this.opened++;
      onConnect(s);
    });
    s.on('close', () => {
      this.#sockets.delete(s);
      if (!this.#destroying) this.closedByPeer++;
    });
  }

  /** Run `tick` every `everyMs` until stop() or destroy(). */
  every(everyMs: number, tick: () => void): void {
    this.#timer = setInterval(tick, everyMs).unref(); // a failed test must not be kept alive by it
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Stop and close every socket still open (not counted as closed by the sidecar). */
  destroy(): void {
    this.stop();
    this.#destroying = true;
    for (const s of this.#sockets) s.destroy();
  }
}

/**
 * `count` TCP connections from `from` at once, each sending nothing or (with `partialHello`) the first
 * half of a ClientHello, then silent. Resolves once every connect has finished (or failed).
 */
export async function halfOpenFlood(o: { port: number; count: number; from?: string; partialHello?: boolean }): Promise<FloodSockets> {
  const flood = new FloodSockets();
  const hello = o.partialHello ? (await clientHello()).subarray(0, 100) : null;
  await Promise.all(Array.from({ length: o.count }, () => new Promise<void>((resolve) => {
    flood.connect(o.port, o.from ?? FLOOD_SOURCE, (s) => {
      if (hello) s.write(hello);
      resolve();
    }, resolve);
  })));
  return flood;
}

// The connect-then-close loop, run in a process of its own so that the flood's own work does not
// slow the legitimate peer's client (which runs in the test process) and skew its latency.
const CONNECT_CLOSE = `
const net = require('node:net');
const o = JSON.parse(process.argv[1]);
const started = performance.now();
let made = 0, errors = 0;
const one = () => new Promise((resolve) => {
  const s = net.connect({ host: '127.0.0.1', port: o.port, localAddress: o.from });
  s.once('connect', () => { made++; s.destroy(); resolve(); });
  s.once('error', () => { errors++; resolve(); });
});
Promise.all(Array.from({ length: o.concurrency }, async () => {
  while (made + errors < o.count && performance.now() - started < o.maxMs) await one();
})).then(() => console.log(JSON.stringify({ made, errors, perSecond: Math.round(made / ((performance.now() - started) / 1000)) })));
`;

/**
 * Connect and close at once, `concurrency` at a time, from `from`, until `count` connections or
 * `maxMs` have gone by (in a child process). Returns how many were made and their rate.
 */
export async function connectCloseFlood(o: { port: number; count: number; maxMs: number; concurrency: number; from?: string }): Promise<{ made: number; errors: number; perSecond: number }> {
  const child = spawn(process.execPath, ['-e', CONNECT_CLOSE, JSON.stringify({ ...o, from: o.from ?? FLOOD_SOURCE })], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`the connect-then-close flood exited with ${code}: ${out}`);
  return JSON.parse(out) as { made: number; errors: number; perSecond: number };
}

/** `count` connections from `from` that each send one byte of a ClientHello every `everyMs`, up to `maxBytes`. */
export async function slowlorisFlood(o: { port: number; count: number; everyMs: number; maxBytes: number; from?: string }): Promise<FloodSockets> {
  const hello = await clientHello();
  const flood = new FloodSockets();
  const sent = new Map<net.Socket, number>();
  for (let i = 0; i < o.count; i++) flood.connect(o.port, o.from ?? FLOOD_SOURCE, (s) => sent.set(s, 0));
  flood.every(o.everyMs, () => {
    for (const [s, n] of sent) {
      if (s.destroyed || n >= Math.min(o.maxBytes, hello.length - 1)) continue;
      s.write(hello.subarray(n, n + 1));
      sent.set(s, n + 1);
    }
  });
  return flood;
}

/** The legitimate peer: one request after another from PEER_SOURCE while `busy()` holds (at least `min`, at most `max`). */
export async function legitimatePeer(o: { port: number; identity: PeerIdentity; busy: () => boolean; min: number; max: number; from?: string }): Promise<{ results: PeerResult[]; summary: string; allThrough: boolean }> {
  const results: PeerResult[] = [];
  while (results.length < o.max && (results.length < o.min || o.busy())) {
    results.push(await peerRequest({ port: o.port, identity: o.identity, line: `legit ${results.length}\n`, localAddress: o.from ?? PEER_SOURCE, timeoutMs: 15_000 }));
  }
  const s = latencySummary(results.map((r) => r.ms));
  const failed = results.filter((r) => !r.echoed);
  return {
    results,
    allThrough: failed.length === 0,
    summary: `${results.length} requests, ${results.length - failed.length} through (ends: ${[...new Set(failed.map((r) => r.end))].join(',') || '-'}), latency p50 ${s.p50} ms, max ${s.max} ms`,
  };
}
