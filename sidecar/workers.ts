// `tollgate sidecar run --workers N` (N ≥ 2): one primary process and N worker processes (node:cluster).
// The primary owns what must exist once per pod: the SvidManager (one SVID, one use of a join token),
// the admin server (/readyz from the manager, /metrics summed over every process) and the signals.
// Each worker runs the config's inbound and outbound proxies with its own policy watcher and metrics;
// its SvidSource is fed over the cluster IPC channel by the primary on start and on every change.
//
// Scheduling: SCHED_NONE (workers accept on the shared listening socket; the kernel picks). The
// primary is then off the data path entirely: no per-connection accept + handle transfer over IPC
// through one more process, which under SCHED_RR costs CPU on every new mTLS connection (a figure
// of PRODUCT.md §9) and serialises all accepts through the primary's event loop. The price is that
// the spread across workers is the kernel's, not strictly even. TOLLGATE_SCHED=rr selects round-robin
// to compare (README, `tollgate sidecar run`).
import cluster, { type Worker } from 'node:cluster';
import { createPrivateKey } from 'node:crypto';
import { AggregatorRegistry, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { startAdminServer, type AdminServer, type Readiness } from '../common/admin-server.ts';
import { systemClock, type Clock, type TimerHandle } from '../common/clock.ts';
import { TollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import type { SidecarConfig } from './config.ts';
import { SidecarMetrics } from './metrics.ts';
import { closeProxies, createSvidManager, drainProxies, emptyProxySet, openProxies, appExposureCheck, startPolicyWatcher, warnExposedAdmin, withExposureNote, type ListenerInfo } from './sidecar.ts';
import type { AppExposureCheck } from './app-exposure.ts';
import type { SvidManager } from './svid-manager.ts';
import { SvidHolder, svidOf, trustBundleOf, type Svid, type TrustBundle } from './svid-source.ts';
import { collectProcessMetrics } from './process-metrics.ts';

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** The SVID as it crosses the IPC pipe: chain DER as base64, key as PKCS#8 PEM. */
interface WireSvid {
  readonly spiffeId: string;
  readonly certChain: string[];
  readonly keyPem: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly serial: string;
}
interface WireBundle {
  readonly version: number;
  readonly trustDomain: string;
  readonly roots: string[];
  readonly deniedIds: string[];
  readonly deniedSerials: string[];
}
export interface StateMessage {
  readonly tg: 'state';
  readonly svid: WireSvid | null;
  readonly bundle: WireBundle | null;
}
type ToWorker = StateMessage | { tg: 'drain' } | { tg: 'reload' } | { tg: 'metrics'; id: number };
type ToPrimary =
  | { tg: 'hello' }
  | { tg: 'listening'; inbound: ListenerInfo[]; outbound: ListenerInfo[] }
  | { tg: 'metrics'; id: number; json: MetricsJson }
  | { tg: 'failed'; error: string };

/** True in a process forked by the primary. */
export function isWorkerProcess(): boolean {
  return cluster.isWorker;
}

// The private key crosses to the workers only in memory, over the IPC pipe (a socketpair) between the
// primary and its own children; it is never written to disk (PRODUCT.md §5).
export function encodeState(svid: Svid | null, bundle: TrustBundle | null): StateMessage {
  return {
    tg: 'state',
    svid: svid && {
      spiffeId: svid.spiffeId,
      certChain: svid.certChain.map((d) => d.toString('base64')),
      keyPem: svid.key.export({ format: 'pem', type: 'pkcs8' }).toString(),
      notBefore: svid.notBefore,
      notAfter: svid.notAfter,
      serial: svid.serial,
    },
    bundle: bundle && {
      version: bundle.version,
      trustDomain: bundle.trustDomain,
      roots: bundle.roots.map((d) => d.toString('base64')),
      deniedIds: [...bundle.denied.ids],
      deniedSerials: [...bundle.denied.serials],
    },
  };
}

/** A worker's SvidSource: the latest state the primary sent. */
export class IpcSvidSource extends SvidHolder {
  update(m: StateMessage): void {
    const svid = m.svid && svidOf({
      spiffeId: m.svid.spiffeId,
      certChain: m.svid.certChain.map((b) => Buffer.from(b, 'base64')),
      key: createPrivateKey(m.svid.keyPem),
      notBefore: m.svid.notBefore,
      notAfter: m.svid.notAfter,
      serial: m.svid.serial,
    });
    const bundle = m.bundle && trustBundleOf(m.bundle.version, m.bundle.trustDomain, m.bundle.roots.map((b) => Buffer.from(b, 'base64')), { ids: m.bundle.deniedIds, serials: m.bundle.deniedSerials });
    // A message without one of them keeps what this worker already holds.
    this.replace({ svid: svid || undefined, bundle: bundle || undefined });
    this.notify();
  }
}

/** Delay before re-forking a worker that died, after `failures` deaths in a row: 0.5 s doubling, at most 30 s. */
export function restartDelayMs(failures: number): number {
  return Math.min(30_000, 500 * 2 ** Math.max(0, Math.min(failures - 1, 16)));
}

/** A worker that stayed up this long before dying resets the backoff. */
const STABLE_MS = 10_000;
/** How long /metrics waits for a worker's answer before leaving it out. */
const METRICS_TIMEOUT_MS = 2_000;

export interface SidecarPrimaryOptions {
  readonly config: SidecarConfig;
  readonly workers: number;
  readonly logger: Logger;
  readonly clock?: Clock;
}

export class SidecarPrimary {
  readonly #o: SidecarPrimaryOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly registry: Registry;
  readonly metrics: SidecarMetrics;
  readonly manager: SvidManager;
  #admin: AdminServer | null = null;
  #exposure: AppExposureCheck | null = null;
  readonly #live = new Map<Worker, { startedAt: number; listening: boolean }>();
  #state: StateMessage = encodeState(null, null);
  #failures = 0;
  #restartTimer: TimerHandle | null = null;
  #ready = false;
  #draining = false;
  #startFailed: ((e: Error) => void) | null = null;
  #metricsSeq = 0;
  readonly #metricsWaiters = new Map<number, (json: MetricsJson) => void>();
  inboundListeners: ListenerInfo[] = [];
  outboundListeners: ListenerInfo[] = [];

  private constructor(o: SidecarPrimaryOptions) {
    this.#o = o;
    this.#clock = o.clock ?? systemClock;
    this.#log = o.logger;
    // /metrics: the primary's own metrics (SVID expiry, renewals, bundle version; the workers' copies
    // of those stay 0) summed with every worker's (AggregatorRegistry.aggregate, the merge that
    // AggregatorRegistry.clusterMetrics() uses), so each family appears once with the pod's totals.
    const gather = (): Promise<MetricsJson[]> => this.#gatherWorkerMetrics();
    this.registry = new (class extends Registry {
      override async metrics(): Promise<string> {
        const all = [await this.getMetricsAsJSON(), ...(await gather())];
        return AggregatorRegistry.aggregate(all as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics();
      }
    })();
    collectProcessMetrics(this.registry);
    this.metrics = new SidecarMetrics(this.registry);
    this.manager = createSvidManager({ config: o.config, clock: this.#clock, logger: o.logger, metrics: this.metrics });
  }

  /** Resolves once the SVID is held and every worker has opened every listener. */
  static async start(o: SidecarPrimaryOptions): Promise<SidecarPrimary> {
    const p = new SidecarPrimary(o);
    try {
      await p.#start();
    } catch (e) {
      await p.drain();
      throw e;
    }
    return p;
  }

  async #start(): Promise<void> {
    const c = this.#o.config;
    this.#admin = await startAdminServer({ host: c.admin.listen.host, port: c.admin.listen.port, registry: this.registry, readiness: () => this.readiness() });
    warnExposedAdmin(c, this.#log);
    // Check the policy here too, before the CA: a join token is single use and must not be spent
    // by a sidecar whose workers would all refuse to start.
    const { watcher } = await startPolicyWatcher({ config: c, clock: this.#clock, logger: this.#log, metrics: this.metrics, proxies: emptyProxySet() }); // the workers hold the proxies
    watcher?.close();
    this.#exposure = appExposureCheck({ config: c, clock: this.#clock, logger: this.#log, metrics: this.metrics });
    await this.manager.start();
    this.#state = encodeState(this.manager.svid(), this.manager.bundle());
    this.manager.onChange(() => {
      this.#state = encodeState(this.manager.svid(), this.manager.bundle());
      for (const w of this.#live.keys()) send(w, this.#state);
    });
    if (!process.env.NODE_CLUSTER_SCHED_POLICY) {
      cluster.schedulingPolicy = process.env.TOLLGATE_SCHED === 'rr' ? cluster.SCHED_RR : cluster.SCHED_NONE;
    }
    await new Promise<void>((resolve, reject) => {
      this.#startFailed = reject;
      const check = (): void => {
        if ([...this.#live.values()].filter((s) => s.listening).length === this.#o.workers) {
          this.#startFailed = null;
          resolve();
        }
      };
      for (let i = 0; i < this.#o.workers; i++) this.#fork(check);
    });
    this.#ready = true;
    this.#exposure?.startSoon(); // after the ready line, as in sidecar.ts
  }

  #fork(onListening: () => void = () => {}): void {
    // A join token never reaches a worker's argv (/proc/<pid>/cmdline is world-readable): the
    // primary's --join-token is dropped from the workers' arguments and passed in the environment.
    const a = this.#o.config.attestation;
    cluster.setupPrimary({ args: withoutSecretArgs(process.argv.slice(2)) });
    const w = cluster.fork(a.kind === 'join' ? { TOLLGATE_JOIN_TOKEN: a.token } : {});
    this.#live.set(w, { startedAt: this.#clock.now(), listening: false });
    w.on('message', (m: ToPrimary) => {
      if (m.tg === 'hello') {
        send(w, this.#state); // the current SVID and bundle first, before it opens its listeners
      } else if (m.tg === 'listening') {
        if (!this.#checkListeners(m)) {
          this.#startFailed?.(new TollgateError('TG_INTERNAL', 'workers listen on different ports; set explicit ports in the config'));
          return;
        }
        const s = this.#live.get(w);
        if (s) s.listening = true;
        this.#log.info('worker listening', { event: 'worker_listening', worker: w.id, pid: w.process.pid });
        onListening();
      } else if (m.tg === 'metrics') {
        this.#metricsWaiters.get(m.id)?.(m.json);
      } else if (m.tg === 'failed') {
        this.#startFailed?.(new TollgateError('TG_UNAVAILABLE', `a sidecar worker failed to start: ${m.error}`));
      }
    });
    w.on('exit', (code, signal) => this.#onExit(w, code, signal));
  }

  /** The first worker's listeners are the sidecar's; every other worker must have the same ports (port 0 included). */
  #checkListeners(m: { inbound: ListenerInfo[]; outbound: ListenerInfo[] }): boolean {
    if (this.inboundListeners.length + this.outboundListeners.length === 0) {
      this.inboundListeners = m.inbound;
      this.outboundListeners = m.outbound;
      return true;
    }
    const ports = (l: ListenerInfo[]): string => l.map((x) => x.port).join(',');
    return ports(m.inbound) === ports(this.inboundListeners) && ports(m.outbound) === ports(this.outboundListeners);
  }

  #onExit(w: Worker, code: number | null, signal: string | null): void {
    const s = this.#live.get(w);
    this.#live.delete(w);
    if (this.#draining) return;
    if (!this.#ready) {
      this.#startFailed?.(new TollgateError('TG_UNAVAILABLE', `a sidecar worker exited during start (code ${code}, signal ${signal}); see its log lines above`));
      return;
    }
    this.#failures = s && this.#clock.now() - s.startedAt >= STABLE_MS ? 1 : this.#failures + 1;
    const delay = restartDelayMs(this.#failures);
    this.#log.error('sidecar worker died; restarting it', { event: 'worker_restart', worker: w.id, code, signal, delay_ms: delay, failures: this.#failures });
    this.#restartTimer = this.#clock.setTimer(delay, () => {
      this.#restartTimer = null;
      if (!this.#draining) this.#fork();
    });
  }

  async #gatherWorkerMetrics(): Promise<MetricsJson[]> {
    const answers = [...this.#live.keys()].filter((w) => w.isConnected()).map(
      (w) =>
        new Promise<MetricsJson | null>((resolve) => {
          const id = ++this.#metricsSeq;
          const timer = this.#clock.setTimer(METRICS_TIMEOUT_MS, () => {
            this.#metricsWaiters.delete(id);
            resolve(null);
          });
          this.#metricsWaiters.set(id, (json) => {
            timer.cancel();
            this.#metricsWaiters.delete(id);
            resolve(json);
          });
          send(w, { tg: 'metrics', id });
        }),
    );
    return (await Promise.all(answers)).filter((j): j is MetricsJson => j !== null);
  }

  get adminPort(): number {
    return this.#admin?.port ?? 0;
  }

  get spiffeId(): string | null {
    return this.manager.svid()?.spiffeId ?? null;
  }

  readiness(): Readiness {
    if (this.#draining) return { ready: false, detail: 'draining' };
    if (!this.#ready) return { ready: false, detail: 'workers starting' };
    return withExposureNote(this.manager.readiness(), this.#exposure);
  }

  /** SIGHUP: every worker re-reads the policy. */
  reload(): void {
    for (const w of this.#live.keys()) send(w, { tg: 'reload' });
  }

  /** SIGTERM: every worker drains its proxies and exits; then the manager and the admin server close. */
  async drain(): Promise<void> {
    this.#draining = true;
    this.#restartTimer?.cancel();
    const exited = [...this.#live.keys()].map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))));
    for (const w of this.#live.keys()) send(w, { tg: 'drain' });
    // A worker that does not finish in time (drain timeout plus a margin) is killed.
    const deadline = this.#clock.setTimer(this.#o.config.limits.drainTimeoutMs + 5_000, () => {
      for (const w of this.#live.keys()) w.process.kill('SIGKILL');
    });
    await Promise.all(exited);
    deadline.cancel();
    this.#exposure?.close();
    this.manager.close();
    await this.#admin?.close();
    this.#admin = null;
  }
}

function send(w: Worker, m: ToWorker): void {
  if (w.isConnected()) w.send(m);
}

function sendToPrimary(m: ToPrimary): void {
  process.send?.(m);
}

/** The worker side: wait for the primary's SVID and bundle, open the listeners, follow the primary. */
export async function runSidecarWorker(o: { readonly config: SidecarConfig; readonly logger: Logger; readonly clock?: Clock }): Promise<void> {
  const clock = o.clock ?? systemClock;
  const log = o.logger.child({ worker: cluster.worker?.id ?? 0 });
  const c = o.config;
  // Signals are the primary's to handle: it forwards SIGHUP and turns SIGTERM/SIGINT into 'drain'.
  // Ignore them here so a terminal's Ctrl-C (sent to the whole process group) drains in order.
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, () => {});
  const registry = new Registry();
  collectProcessMetrics(registry);
  const metrics = new SidecarMetrics(registry);
  const source = new IpcSvidSource();
  const set = emptyProxySet();
  let reload = (): void => {};
  let draining = false;
  let gotState: () => void = () => {};
  const firstState = new Promise<void>((resolve) => (gotState = resolve));
  process.on('message', (m: ToWorker) => {
    if (m.tg === 'state') {
      source.update(m);
      if (source.svid() && source.bundle()) gotState();
    } else if (m.tg === 'reload') {
      reload();
    } else if (m.tg === 'metrics') {
      registry.getMetricsAsJSON().then((json) => sendToPrimary({ tg: 'metrics', id: m.id, json: json as MetricsJson }), () => sendToPrimary({ tg: 'metrics', id: m.id, json: [] }));
    } else if (m.tg === 'drain' && !draining) {
      draining = true;
      drainProxies(set, c.limits.drainTimeoutMs).then(() => {
        closeProxies(set);
        process.exit(0);
      }, () => process.exit(1));
    }
  });
  try {
    const { watcher, policy } = await startPolicyWatcher({ config: c, clock, logger: log, metrics, proxies: set });
    reload = () => watcher?.reload();
    sendToPrimary({ tg: 'hello' });
    await firstState;
    await openProxies({ config: c, source, policy, clock, logger: log, metrics }, set);
    sendToPrimary({ tg: 'listening', inbound: set.inboundListeners, outbound: set.outboundListeners });
  } catch (e) {
    closeProxies(set);
    log.error('sidecar worker failed to start', { event: 'worker_failed', error: (e as Error).message });
    if (process.send) process.send({ tg: 'failed', error: (e as Error).message } satisfies ToPrimary, undefined, {}, () => process.exit(1));
    else process.exit(1);
  }
}

/** argv without `--join-token X` / `--join-token=X`. */
export function withoutSecretArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--join-token') i++;
    else if (!args[i]!.startsWith('--join-token=')) out.push(args[i]!);
  }
  return out;
}
