// One sidecar: the SVID manager, the inbound and outbound proxies, the policy watcher and the admin
// server, started in the order that lets each depend on the one before. Used by `tollgate sidecar run`
// and by the demo; holds no decisions of its own (those live in the parts it wires).
import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { startAdminServer, type AdminServer, type Readiness } from '../common/admin-server.ts';
import { systemClock, type Clock } from '../common/clock.ts';
import { isLoopback } from '../common/address.ts';
import { TollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { readCertificates } from '../pki/pem.ts';
import { AppExposureCheck } from './app-exposure.ts';
import { ConnectionBudget } from './budget.ts';
import type { SidecarConfig } from './config.ts';
import type { InboundProxy } from './inbound.ts';
import { SidecarMetrics } from './metrics.ts';
import { OutboundProxy } from './outbound.ts';
import type { PolicyWatcher } from './policy-watcher.ts';
import type { Policy } from './policy.ts';
import type { SvidSource } from './svid-source.ts';
import { resolveLimits } from './tls-context.ts';
import { SvidManager, type CaApi } from './svid-manager.ts';
import type { CaConnectOptions } from '../pki/ca-connect.ts';
import { collectProcessMetrics } from './process-metrics.ts';

export interface SidecarOptions {
  readonly config: SidecarConfig;
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly random?: () => number;
  /** One registry per process; created here when not given. */
  readonly registry?: Registry;
  /** Replaces the gRPC client to the CA (tests only). */
  readonly connect?: (o: CaConnectOptions) => CaApi;
}

export interface ListenerInfo {
  readonly listen: string;
  readonly port: number;
  readonly target: string;
}

export class Sidecar {
  readonly #o: SidecarOptions;
  readonly #clock: Clock;
  readonly registry: Registry;
  readonly metrics: SidecarMetrics;
  readonly manager: SvidManager;
  #policyWatcher: PolicyWatcher | null = null;
  #admin: AdminServer | null = null;
  #exposure: AppExposureCheck | null = null;
  readonly #proxies: ProxySet = emptyProxySet();
  readonly inboundListeners: ListenerInfo[] = this.#proxies.inboundListeners;
  readonly outboundListeners: ListenerInfo[] = this.#proxies.outboundListeners;
  #draining = false;

  private constructor(options: SidecarOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    if (options.registry) {
      this.registry = options.registry;
    } else {
      this.registry = new Registry();
      collectProcessMetrics(this.registry);
    }
    this.metrics = new SidecarMetrics(this.registry);
    this.manager = createSvidManager({
      config: options.config,
      clock: this.#clock,
      logger: options.logger,
      metrics: this.metrics,
      ...(options.random ? { random: options.random } : {}),
      ...(options.connect ? { connect: options.connect } : {}),
    });
  }

  /** Start everything; resolves when the sidecar holds an SVID and every listener is open. */
  static async start(options: SidecarOptions): Promise<Sidecar> {
    const s = new Sidecar(options);
    try {
      await s.#start();
    } catch (e) {
      await s.close();
      throw e;
    }
    return s;
  }

  async #start(): Promise<void> {
    const c = this.#o.config;
    const log = this.#o.logger;
    // Admin first: /healthz answers and /readyz says why not ready while the first SVID is on its way.
    this.#admin = await startAdminServer({ host: c.admin.listen.host, port: c.admin.listen.port, registry: this.registry, readiness: () => this.readiness() });
    warnExposedAdmin(c, log);
    const { watcher, policy } = await startPolicyWatcher({ config: c, clock: this.#clock, logger: log, metrics: this.metrics, proxies: this.#proxies });
    this.#policyWatcher = watcher;
    this.#exposure = appExposureCheck({ config: c, clock: this.#clock, logger: log, metrics: this.metrics });
    // Only now, with every local check passed, the CA: a join token is single use, and a sidecar that
    // fails on its admin port or its policy must not have spent it.
    await this.manager.start();
    await openProxies({ config: c, source: this.manager, policy, clock: this.#clock, logger: log, metrics: this.metrics }, this.#proxies);
    this.#exposure?.startSoon(); // after the ready line: the first read and parse of /proc/net/tcp stay off start-to-ready
  }

  get adminPort(): number {
    return this.#admin?.port ?? 0;
  }

  get spiffeId(): string | null {
    return this.manager.svid()?.spiffeId ?? null;
  }

  readiness(): Readiness {
    if (this.#draining) return { ready: false, detail: 'draining' };
    return withExposureNote(this.manager.readiness(), this.#exposure);
  }

  /** SIGHUP: re-read the policy now (a bad file keeps the old policy). */
  reload(): void {
    this.#policyWatcher?.reload();
  }

  /** SIGTERM: stop accepting, let open connections finish for up to drainTimeout, then close. */
  async drain(): Promise<void> {
    this.#draining = true;
    const ms = this.#o.config.limits.drainTimeoutMs;
    await drainProxies(this.#proxies, ms);
    await this.close();
  }

  async close(): Promise<void> {
    closeProxies(this.#proxies);
    this.#policyWatcher?.close();
    this.#exposure?.close();
    this.manager.close();
    await this.#admin?.close();
    this.#admin = null;
  }
}

/** The SvidManager of a sidecar config (the bootstrap roots from ca.bundleFile or ca.bundlePem). */
export function createSvidManager(o: {
  readonly config: SidecarConfig;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: SidecarMetrics;
  readonly random?: () => number;
  readonly connect?: (o: CaConnectOptions) => CaApi;
}): SvidManager {
  const c = o.config;
  let bootstrapRoots: Buffer[];
  const from = c.ca.bundleFile ?? 'ca.bundlePem';
  try {
    bootstrapRoots = readCertificates(c.ca.bundleFile !== undefined ? readFileSync(c.ca.bundleFile) : Buffer.from(c.ca.bundlePem ?? ''), from);
  } catch (e) {
    throw new TollgateError('TG_CONFIG_INVALID', `cannot read the CA bundle ${from}: ${(e as Error).message}; point ca.bundleFile at the CA's bundle.pem`, { cause: e });
  }
  return new SvidManager({
    ca: { address: `${c.ca.address.host}:${c.ca.address.port}`, spiffeId: c.ca.spiffeId },
    bootstrapRoots,
    attestation: c.attestation,
    ttlSeconds: Math.round(c.svid.ttlMs / 1000),
    skewToleranceMs: c.svid.skewToleranceMs,
    clock: o.clock,
    ...(o.random ? { random: o.random } : {}),
    logger: o.logger.child({ component: 'svid' }),
    metrics: o.metrics,
    ...(o.connect ? { connect: o.connect } : {}),
  });
}

/**
 * Without traffic capture, the check for app ports reachable around the sidecar (Linux, where
 * /proc/net/tcp lists the pod's sockets); null when capture is on or there is no inbound port.
 * Not started: the caller starts it (startSoon) once ready, as a host's /proc/net/tcp with 16,000
 * sockets took 90 ms to read and parse, time that would otherwise delay the first SVID's answer.
 */
export function appExposureCheck(o: { readonly config: SidecarConfig; readonly clock: Clock; readonly logger: Logger; readonly metrics: SidecarMetrics }): AppExposureCheck | null {
  const c = o.config;
  if (c.capture !== 'none' || c.inbound.length === 0 || process.platform !== 'linux') return null;
  const check = new AppExposureCheck({ appPorts: c.inbound.map((i) => i.appPort), clock: o.clock, logger: o.logger.child({ component: 'app-exposure' }), gauge: o.metrics.appPortsExposed });
  return check;
}

/** Readiness with the exposure warning appended: reported, never a reason to be unready. */
export function withExposureNote(r: Readiness, check: AppExposureCheck | null): Readiness {
  const note = check?.readinessNote();
  return note ? { ready: r.ready, detail: `${r.detail}; ${note}` } : r;
}

/**
 * A non-loopback admin listener serves /metrics and /readyz to anyone who can reach the pod: warn at
 * start. In Kubernetes (KUBERNETES_SERVICE_HOST set) the injector's default 0.0.0.0:15020 is there
 * for the kubelet's probes, so it is an info line there, a warning anywhere else.
 */
export function warnExposedAdmin(c: SidecarConfig, log: Logger, env: NodeJS.ProcessEnv = process.env): void {
  const host = c.admin.listen.host;
  if (isLoopback(host)) return;
  const fields = { event: 'admin_not_loopback', listen: `${host}:${c.admin.listen.port}` };
  if (env.KUBERNETES_SERVICE_HOST) {
    log.info('the admin listener is reachable from outside the pod (for the kubelet probes)', fields);
  } else {
    log.warn(`the admin listener on ${host} is reachable from other hosts (/metrics, /readyz); use 127.0.0.1 unless something outside must probe it`, fields);
  }
}

/** Say, at start, that an inbound listener sends its plaintext leg off the pod (allowNonLoopbackApp). */
function warnNonLoopbackApp(c: SidecarConfig, log: Logger): void {
  for (const ib of c.inbound) {
    if (isLoopback(ib.appHost)) continue;
    log.warn(`inbound appHost ${ib.appHost} is not loopback (allowNonLoopbackApp): the decrypted traffic to the app leaves the pod in plaintext`, {
      event: 'app_not_loopback',
      app: `${ib.appHost}:${ib.appPort}`,
    });
  }
}

/** The policy of a config, watched for changes; a policy that does not parse at start is fatal (throws). */
export async function startPolicyWatcher(o: {
  readonly config: SidecarConfig;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: SidecarMetrics;
  /** Its inbound proxies re-check their open connections against every new policy. */
  readonly proxies: ProxySet;
}): Promise<{ watcher: PolicyWatcher | null; policy: () => Policy }> {
  const c = o.config;
  const log = o.logger;
  // A policy that does not parse at start is fatal: there is no good one to keep.
  if (!c.policy) {
    return {
      watcher: null,
      policy: () => {
        throw new TollgateError('TG_CONFIG_INVALID', 'no policy configured');
      },
    };
  }
  // The policy code (with its schema compiler) is loaded only when the config uses it.
  const { PolicyWatcher } = await import('./policy-watcher.ts');
  const watcher = new PolicyWatcher({
    path: c.policy.file,
    ownTrustDomain: c.trustDomain,
    clock: o.clock,
    onChange: (p) => {
      log.info('policy reloaded', { event: 'policy_reloaded', source: p.source });
      // Authorization holds for a connection's whole life: a peer the new policy refuses is cut off now.
      for (const proxy of o.proxies.inbound) proxy.reauthorize();
    },
    onError: (e) => {
      o.metrics.configReloadFailures.inc();
      log.error('policy reload refused; the previous policy stays in force', { event: 'policy_reload_failed', code: e.code, error: e.message });
    },
  });
  watcher.start();
  return { watcher, policy: () => watcher.current };
}

/** The proxies of one process and the addresses they listen on. */
export interface ProxySet {
  readonly inbound: InboundProxy[];
  readonly outbound: OutboundProxy[];
  readonly inboundListeners: ListenerInfo[];
  readonly outboundListeners: ListenerInfo[];
}

export function emptyProxySet(): ProxySet {
  return { inbound: [], outbound: [], inboundListeners: [], outboundListeners: [] };
}

/** Open every inbound and outbound listener of the config into `set` (which keeps those already open if one fails). */
export async function openProxies(
  o: { readonly config: SidecarConfig; readonly source: SvidSource; readonly policy: () => Policy; readonly clock: Clock; readonly logger: Logger; readonly metrics: SidecarMetrics },
  set: ProxySet,
): Promise<void> {
  const c = o.config;
  const log = o.logger;
  // The inbound code is loaded only when the config uses it.
  const Inbound = c.inbound.length > 0 ? (await import('./inbound.ts')).InboundProxy : undefined;
  warnNonLoopbackApp(c, log);
  // One budget for every listener: limits.maxConnections counts all of them together.
  const budget = new ConnectionBudget(resolveLimits(c.limits));
  const common = { source: o.source, minVersion: c.tls.minVersion, limits: c.limits, budget, clock: o.clock, metrics: o.metrics };
  if (Inbound) {
    for (const ib of c.inbound) {
      const proxy = new Inbound({
        ...common,
        listen: ib.listen,
        app: { host: ib.appHost, port: ib.appPort },
        policy: o.policy,
        proxyProtocol: ib.proxyProtocol,
        logger: log.child({ component: 'inbound', app_port: ib.appPort }),
      });
      const { port } = await proxy.start();
      set.inbound.push(proxy);
      set.inboundListeners.push({ listen: `${ib.listen.host}:${port}`, port, target: `${ib.appHost}:${ib.appPort}` });
    }
  }
  for (const ob of c.outbound) {
    const proxy = new OutboundProxy({
      ...common,
      listen: ob.listen,
      upstream: { host: ob.upstream.host, port: ob.upstream.port, spiffeId: ob.spiffeId },
      logger: log.child({ component: 'outbound', upstream: `${ob.upstream.host}:${ob.upstream.port}` }),
    });
    const { port } = await proxy.start();
    set.outbound.push(proxy);
    set.outboundListeners.push({ listen: `${ob.listen.host}:${port}`, port, target: `${ob.upstream.host}:${ob.upstream.port} as ${ob.spiffeId}` });
  }
}

export async function drainProxies(set: ProxySet, timeoutMs: number): Promise<void> {
  await Promise.all([...set.inbound.map((p) => p.drain(timeoutMs)), ...set.outbound.map((p) => p.drain(timeoutMs))]);
}

export function closeProxies(set: ProxySet): void {
  for (const p of [...set.inbound, ...set.outbound]) p.close();
}
