// The soak (issue 14, reliability suite item 2), shared by `npm run soak` (scripts/soak.ts) and its
// short form in `npm test` (test/soak.test.ts). Real processes on loopback, started by the same
// fixture as the other mesh tests (test/helpers/mesh-fixture.ts): one `tollgate ca serve` on a
// directory store, the web sidecar (outbound to orders) and the orders sidecar (inbound + policy) as
// `tollgate sidecar run`, and an HTTP app behind orders (test/helpers/soak-load.ts).
//
// 1. Warm-up: load until both sidecars have renewed once; stop the load, wait until no proxied
//    connection is open, sample every process: the "start" figures.
// 2. Load for `loadMs` (keep-alive and new connections), with SVIDs of `ttl` (renewed at 40–60 % of
//    it), a policy action every `policyEveryMs` (an equivalent rewrite, a rewrite plus SIGHUP, or a
//    SIGHUP alone; once, a change that still allows web), and the CA killed (SIGKILL) half-way, left
//    down `caDownMs`, and started again on the same ports and store. Every process is sampled every
//    `sampleEveryMs` (the "max" figures).
// 3. Stop the load, wait until no proxied connection is open, sample: the "end" figures.
// The soak fails on any failed request, on a process holding more than FD_SLACK descriptors more at
// the end than at the start, on connections left open, and on a policy write refused or not applied.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../common/files.ts';
import { metricSample, shopId, startWebOrdersMesh, type WebOrdersMesh } from './mesh-fixture.ts';
import { emptyFigures, record, sampleProcess, type ProcFigures } from './proc-sample.ts';
import { addCounts, startLoad, startSoakApp, type LoadCounts, type LoadFailure, type LoadShape, type SoakApp } from './soak-load.ts';
import { waitFor } from './sidecar-fixture.ts';

/**
 * Descriptors a process may hold at the end beyond its start figure, both taken with no proxied
 * connection open: a gRPC channel to the CA being replaced, a /metrics connection still closing,
 * an inotify re-arm. A leak of one descriptor per request, connection, renewal or reload is far above.
 */
export const FD_SLACK = 5;

export interface SoakOptions {
  /** Length of the measured load phase (after the warm-up). */
  readonly loadMs: number;
  /** SVID lifetime (CA default and max, and the sidecars' request); renewal at 40–60 % of it. Default 15s. */
  readonly ttl?: string;
  /** How long the CA stays down in the middle. Default 3 s. */
  readonly caDownMs?: number;
  readonly policyEveryMs?: number;
  readonly sampleEveryMs?: number;
  readonly shape?: LoadShape;
  /** Progress lines. */
  readonly log?: (line: string) => void;
  /** Write each process's log (stderr; the CA's of both runs) and the failed requests here at the end. */
  readonly logDir?: string;
}

export interface SoakResult {
  readonly ttl: string;
  readonly loadMs: number;
  readonly processes: ProcFigures[];
  /** Warm-up and measured phase together. */
  readonly requests: LoadCounts;
  /** Renewals during the measured phase, per sidecar. */
  readonly renewals: Record<string, { ok: number; failed: number }>;
  readonly reloads: {
    /** Policy files written (each with new text, so each must be applied once). */
    writes: number;
    /** Of those, the ones whose rules differ (the allow-list grew; web stays allowed). */
    changes: number;
    sighups: number;
    /** SIGHUPs the orders sidecar logged. */
    sighupsSeen: number;
    /** `policy_reloaded` lines of the orders sidecar (a new policy became active). */
    applied: number;
    /** Reloads refused (log lines and tollgate_config_reload_failures_total, whichever is higher). */
    refused: number;
  };
  readonly caRestarts: Array<{ downMs: number; restartMs: number }>;
  /** Connections the sidecars closed at a peer certificate's notAfter (both directions, both sidecars). */
  readonly certExpiryCloses: number;
  /**
   * Failed requests that fell between a sidecar's first close of connections at a peer certificate's
   * notAfter (or just before it) and NOTAFTER_WINDOW_MS after it logged them. The sidecar closes at a
   * quiet moment, gracefully; what is left is a pooled client (Node's http Agent) sending its next
   * request on a keep-alive connection while the FIN is on its way, which it sees reset (HTTP clients
   * such as Go's retry such a request; Node's Agent does not). Counted apart so that any other
   * failure stands out.
   */
  readonly failedAtNotAfter: number;
  /** Requests the client sent again (a reused keep-alive connection closed before any byte of the answer) that fell just after such a close. */
  readonly retriedAtNotAfter: number;
  /** Whether every proxied connection had closed before the start and end samples. */
  readonly quiet: { start: boolean; end: boolean };
  readonly fdSlack: number;
  /** Why the soak failed; empty when it passed. */
  readonly problems: string[];
}

type Mesh = WebOrdersMesh<SoakApp>;
const SIDECARS = ['web-sidecar', 'orders-sidecar'] as const;
const RENEWED = 'tollgate_svid_renewals_total{result="ok"}';
const RENEW_FAILED = 'tollgate_svid_renewals_total{result="error"}';
const ACTIVE = ['tollgate_active_connections{direction="inbound"}', 'tollgate_active_connections{direction="outbound"}'];
const CERT_CLOSES = ['tollgate_inbound_connections_total{result="closed",reason="cert_expired"}', 'tollgate_outbound_connections_total{result="closed",reason="cert_expired"}'];

/** How long after a sidecar's notAfter sweep a failed request is put down to it (the sweep is logged at once). */
export const NOTAFTER_WINDOW_MS = 2000;
const NOTAFTER_LOG_LAG_MS = 500;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The processes sampled, as they are now (the CA's PID changes when it is restarted). */
function roles(mesh: Mesh): Array<{ name: string; pid: number; adminPort: number }> {
  return [
    { name: 'ca', pid: mesh.ca.proc.proc.pid!, adminPort: mesh.ca.adminPort },
    { name: 'web-sidecar', pid: mesh.web.proc.proc.pid!, adminPort: mesh.web.adminPort },
    { name: 'orders-sidecar', pid: mesh.orders.proc.proc.pid!, adminPort: mesh.orders.adminPort },
  ];
}

async function sidecarMetrics(mesh: Mesh): Promise<Record<(typeof SIDECARS)[number], string>> {
  const [web, orders] = await Promise.all([mesh.web.metrics(), mesh.orders.metrics()]);
  return { 'web-sidecar': web, 'orders-sidecar': orders };
}

/** Wait (bounded) until neither sidecar has a proxied connection open; false if they still do. */
async function quiet(mesh: Mesh): Promise<boolean> {
  try {
    await waitFor(async () => {
      const m = await sidecarMetrics(mesh);
      return SIDECARS.every((s) => ACTIVE.every((a) => metricSample(m[s], a) === 0));
    }, 'no proxied connection open', 15_000);
  } catch {
    return false;
  }
  await sleep(500); // the descriptors of the last closes
  return true;
}

function logEvents(stderr: string, event: string): number {
  let n = 0;
  for (const line of stderr.split('\n')) if (line.includes(`"event":"${event}"`)) n++;
  return n;
}

/**
 * When a sidecar closed connections at a peer certificate's notAfter, from its log: from the first
 * close a line counts (`first_closed_at`; graceful closes are logged together up to a second later)
 * to the line's own time.
 */
function notAfterSweeps(stderr: string): Array<{ from: number; to: number }> {
  const out: Array<{ from: number; to: number }> = [];
  for (const line of stderr.split('\n')) {
    if (!/"event":"(?:inbound|outbound)_deadline"/.test(line) || !line.includes('"cert_expired"')) continue;
    const { time, first_closed_at: first } = JSON.parse(line) as { time?: string; first_closed_at?: string };
    if (time) out.push({ from: Date.parse(first ?? time), to: Date.parse(time) });
  }
  return out;
}

/** Of `events` (failures or retries, with their times), those that fell just after a notAfter close. */
function atNotAfter(events: readonly LoadFailure[], sweeps: Array<{ from: number; to: number }>): number {
  // A client may see the close a little before the sidecar's clock time of it (two processes, two event loops).
  return events.filter((f) => sweeps.some((s) => f.at >= s.from - NOTAFTER_LOG_LAG_MS && f.at - s.to <= NOTAFTER_WINDOW_MS)).length;
}

/** Policy actions, in turn: rewrite; rewrite then SIGHUP at once; SIGHUP alone. */
class PolicyDriver {
  writes = 0;
  changes = 0;
  sighups = 0;
  readonly #mesh: Mesh;
  #allow = [shopId('web')];
  #step = 0;

  constructor(mesh: Mesh) {
    this.#mesh = mesh;
  }

  /** Write the policy with new text: the same rules (`change` false) or one more allowed peer. */
  write(change: boolean): void {
    if (change) {
      this.#allow = [shopId('web'), shopId('batch')];
      this.changes++;
    }
    this.writes++;
    const port = this.#mesh.backend.port;
    // A new comment each time: new text, so the sidecar parses, swaps and re-checks open connections.
    writeFileAtomic(this.#mesh.orders.policyFile, `# soak rewrite ${this.writes}\nports:\n  "${port}":\n    allow: [${this.#allow.join(', ')}]\n`);
  }

  sighup(): void {
    this.sighups++;
    this.#mesh.orders.proc.proc.kill('SIGHUP');
  }

  next(change: boolean): void {
    const kind = change ? 0 : this.#step++ % 3;
    if (kind === 0 || kind === 1) this.write(change);
    if (kind === 1 || kind === 2) this.sighup();
  }
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const say = o.log ?? (() => {});
  const ttl = o.ttl ?? '15s';
  const caDownMs = o.caDownMs ?? 3000;
  const policyEveryMs = o.policyEveryMs ?? 4000;
  const sampleEveryMs = o.sampleEveryMs ?? 1000;
  say(`starting a CA and two sidecars (SVIDs of ${ttl})`);
  const mesh = await startWebOrdersMesh({ caArgs: ['--default-ttl', ttl, '--max-ttl', ttl], ttl, backend: startSoakApp });
  try {
    return await soakMesh(mesh, { ...o, ttl, caDownMs, policyEveryMs, sampleEveryMs, say });
  } finally {
    await mesh.stop();
  }
}

async function soakMesh(
  mesh: Mesh,
  o: SoakOptions & { ttl: string; caDownMs: number; policyEveryMs: number; sampleEveryMs: number; say: (l: string) => void },
): Promise<SoakResult> {
  const figures = new Map(roles(mesh).map((r) => [r.name, emptyFigures(r.name)]));
  const sampleAll = async (at?: 'start' | 'end'): Promise<void> => {
    await Promise.all(roles(mesh).map(async (r) => {
      try {
        record(figures.get(r.name)!, await sampleProcess(r.pid, `http://127.0.0.1:${r.adminPort}/metrics`), at);
      } catch {
        // the CA between its kill and its restart
      }
    }));
  };
  const port = mesh.web.outboundPort;
  const renewals = async (): Promise<Record<string, { ok: number; failed: number }>> => {
    const m = await sidecarMetrics(mesh);
    return Object.fromEntries(SIDECARS.map((s) => [s, { ok: metricSample(m[s], RENEWED), failed: metricSample(m[s], RENEW_FAILED) }]));
  };

  // 1. Warm-up: until both sidecars renewed once (bounded by four lifetimes of their first SVIDs).
  o.say('warm-up: load until both sidecars have renewed once');
  const first = await renewals();
  const warm = startLoad({ port, shape: o.shape, maxMs: 120_000, maxRequests: 1_000_000 });
  let warmed = true;
  try {
    await waitFor(async () => {
      const r = await renewals();
      return SIDECARS.every((s) => r[s]!.ok > first[s]!.ok);
    }, 'a renewal of both sidecars', 100_000);
  } catch {
    warmed = false;
  }
  let requests = await warm.stop();
  const quietStart = await quiet(mesh);
  await sampleAll('start');
  const r0 = await renewals();

  // 2. The measured phase.
  o.say(`load for ${(o.loadMs / 1000).toFixed(0)} s: renewals, policy reloads, one CA restart half-way`);
  const policy = new PolicyDriver(mesh);
  const caRestarts: SoakResult['caRestarts'] = [];
  const caLogs: string[] = [];
  const load = startLoad({ port, shape: o.shape, maxMs: o.loadMs + 60_000, maxRequests: 100_000_000 });
  const t0 = Date.now();
  let nextSample = t0;
  let nextPolicy = t0 + o.policyEveryMs;
  const changeAt = t0 + o.loadMs * 0.7;
  let changed = false;
  let restart: Promise<void> | null = null;
  let lastReport = t0;
  while (Date.now() - t0 < o.loadMs) {
    const now = Date.now();
    if (now >= nextSample) {
      nextSample += o.sampleEveryMs;
      await sampleAll();
    }
    if (now >= nextPolicy) {
      nextPolicy += o.policyEveryMs;
      const change: boolean = !changed && now >= changeAt;
      changed ||= change;
      policy.next(change);
    }
    if (!restart && now - t0 >= o.loadMs / 2) {
      o.say(`CA: SIGKILL, down ${o.caDownMs / 1000} s, start again on the same ports and store`);
      const k = Date.now();
      const before = mesh.ca.proc;
      before.proc.once('close', () => caLogs.push(before.stderr()));
      restart = mesh.restartCa({ signal: 'SIGKILL', downMs: o.caDownMs }).then(() => void caRestarts.push({ downMs: o.caDownMs, restartMs: Date.now() - k }));
    }
    if (now - lastReport >= 60_000) {
      lastReport = now;
      const c = load.counts();
      o.say(`${Math.round((now - t0) / 1000)} s: ${c.ok} requests ok, ${c.failed} failed`);
    }
    await sleep(100);
  }
  await restart;
  requests = addCounts(requests, await load.stop());
  if (!changed) policy.next(true);
  // The last policy action has had its debounce (100 ms) before the end sample.

  // 3. The end.
  const quietEnd = await quiet(mesh);
  await sampleAll('end');
  const r1 = await renewals();
  const m = await sidecarMetrics(mesh);
  const orders = mesh.orders.proc.stderr();
  if (o.logDir) keepLogs(o.logDir, mesh, requests, caLogs);
  const reloads = {
    writes: policy.writes,
    changes: policy.changes,
    sighups: policy.sighups,
    sighupsSeen: logEvents(orders, 'reload'),
    applied: logEvents(orders, 'policy_reloaded'),
    refused: Math.max(logEvents(orders, 'policy_reload_failed'), metricSample(m['orders-sidecar'], 'tollgate_config_reload_failures_total')),
  };
  const sweeps = [...notAfterSweeps(orders), ...notAfterSweeps(mesh.web.proc.stderr())];
  const result: SoakResult = {
    ttl: o.ttl,
    loadMs: o.loadMs,
    processes: [...figures.values()],
    requests,
    renewals: Object.fromEntries(SIDECARS.map((s) => [s, { ok: r1[s]!.ok - r0[s]!.ok, failed: r1[s]!.failed - r0[s]!.failed }])),
    reloads,
    caRestarts,
    certExpiryCloses: SIDECARS.reduce((n, s) => n + CERT_CLOSES.reduce((k, c) => k + metricSample(m[s], c), 0), 0),
    failedAtNotAfter: atNotAfter(requests.failures, sweeps),
    retriedAtNotAfter: atNotAfter(requests.retries, sweeps),
    quiet: { start: quietStart, end: quietEnd },
    fdSlack: FD_SLACK,
    problems: [],
  };
  result.problems.push(...problemsOf(result, warmed));
  return result;
}

function keepLogs(dir: string, mesh: Mesh, requests: LoadCounts, caLogs: string[]): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'ca.log'), [...caLogs, mesh.ca.proc.stderr()].join(''));
  writeFileSync(join(dir, 'web-sidecar.log'), mesh.web.proc.stderr());
  writeFileSync(join(dir, 'orders-sidecar.log'), mesh.orders.proc.stderr());
  writeFileSync(join(dir, 'failures.json'), `${JSON.stringify(requests.failures.map((f) => ({ ...f, time: new Date(f.at).toISOString() })), null, 1)}\n`);
}

/** Why a soak failed: failed requests, descriptors kept, connections left open, refused reloads. */
export function problemsOf(r: SoakResult, warmed = true): string[] {
  const out: string[] = [];
  if (!warmed) out.push('the warm-up ended before both sidecars had renewed once');
  if (r.requests.failed > 0) {
    out.push(`${r.requests.failed} failed requests (${r.failedAtNotAfter} within ${NOTAFTER_WINDOW_MS / 1000} s after a sidecar closed connections at a peer certificate's notAfter): ${JSON.stringify(r.requests.reasons)}`);
  }
  // A retry is fine only where a sidecar closed connections (the close crossed the request), and a
  // close can cross at most the one request on its connection.
  if (r.requests.retried > r.retriedAtNotAfter) out.push(`${r.requests.retried - r.retriedAtNotAfter} requests had to be sent again away from any close at a peer certificate's notAfter`);
  if (r.requests.retried > r.certExpiryCloses) out.push(`${r.requests.retried} requests sent again, more than the ${r.certExpiryCloses} connections the sidecars closed`);
  for (const p of r.processes) {
    if (p.fds.start === null || p.fds.end === null) out.push(`${p.name}: no start or end sample`);
    else if (p.fds.end > p.fds.start + r.fdSlack) out.push(`${p.name}: ${p.fds.end} open descriptors at the end, ${p.fds.start} at the start (slack ${r.fdSlack})`);
  }
  if (!r.quiet.start || !r.quiet.end) out.push(`proxied connections still open ${!r.quiet.start ? 'after the warm-up' : 'after the load stopped'}`);
  if (r.reloads.refused > 0) out.push(`${r.reloads.refused} policy reloads refused`);
  if (r.reloads.applied !== r.reloads.writes) out.push(`${r.reloads.writes} policy files written, ${r.reloads.applied} applied`);
  return out;
}
