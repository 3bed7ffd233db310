// What the inbound and outbound proxies share around their data path: the options every proxy takes,
// the listening server's life (start, drain, close), the connections it must wait for or destroy,
// and installing a new TLS context when the SVID or bundle changes (a context that does not load
// keeps the previous one). Each proxy extends ProxyListener and keeps only what is its own: how it
// builds its server and context, how it verifies the peer, and how it counts and logs a connection.
import type net from 'node:net';
import { systemClock, type Clock, type TimerHandle } from '../common/clock.ts';
import { TollgateError } from '../common/errors.ts';
import { silentLogger, type Logger } from '../common/log.ts';
import { ConnectionBudget, type BudgetRefusal } from './budget.ts';
import { ConnectionDeadlines, type DeadlineReason } from './deadlines.ts';
import type { Direction, SidecarMetrics } from './metrics.ts';
import { RefusalLog } from './refusal-log.ts';
import { Splice, type SpliceOwner } from './splice.ts';
import type { Svid, SvidSource, TrustBundle } from './svid-source.ts';
import { checkMinVersion, resolveLimits, type ProxyLimits, type TlsMinVersion } from './tls-context.ts';
import { IdleSweep } from './idle-sweep.ts';

/** Options both proxies take (InboundProxyOptions and OutboundProxyOptions extend these). */
export interface ProxyOptions {
  readonly listen: { readonly host: string; readonly port: number };
  readonly source: SvidSource;
  /** Default TLSv1.3. */
  readonly minVersion?: TlsMinVersion;
  readonly limits?: ProxyLimits;
  /** The slots shared by all listeners of one sidecar; default a budget of this listener's own from `limits`. */
  readonly budget?: ConnectionBudget;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly metrics?: SidecarMetrics;
}

export interface ProxyListenerOptions extends ProxyOptions {
  /** Names the proxy in events ("inbound_drain_timeout") and messages. */
  readonly direction: Direction;
}

export type { DeadlineReason } from './deadlines.ts';

const PROXY_NAME: Record<Direction, string> = { inbound: 'InboundProxy', outbound: 'OutboundProxy' };

export abstract class ProxyListener implements SpliceOwner {
  protected readonly limits: Required<ProxyLimits>;
  protected readonly minVersion: TlsMinVersion;
  /** Decides SVID validity of peers and runs the drain timeout. */
  protected readonly clock: Clock;
  protected readonly log: Logger;
  protected readonly metrics: SidecarMetrics | undefined;
  protected readonly budget: ConnectionBudget;
  /** Refusal and drop lines, rate-limited per reason (metrics still count every one). */
  protected readonly refusals: RefusalLog;
  readonly #direction: Direction;
  readonly #listen: ProxyOptions['listen'];
  readonly #source: SvidSource;
  #server: net.Server | null = null;
  #unsubscribe: (() => void) | null = null;
  /** The SVID and bundle the installed context was built from. */
  #contextFrom: { svid: unknown; bundle: unknown } = { svid: null, bundle: null };
  /** Sockets accepted but not (yet) part of a Splice, which drain must wait for and close() must reach. */
  readonly #accepted = new Set<net.Socket>();
  readonly #splices = new Set<Splice>();
  #draining: { resolve: () => void; timer: TimerHandle } | null = null;
  /** When each open connection must close at the latest (clock time), and why; closed at a quiet moment before. */
  readonly #deadlines: ConnectionDeadlines;
  /** Closes connections on which nothing moved for limits.idleTimeout: one timer for all (idle-sweep.ts). */
  readonly #idle: IdleSweep<Splice>;
  #closed = false;
  readonly #onAcceptedClose: (this: net.Socket) => void;

  constructor(options: ProxyListenerOptions) {
    this.limits = resolveLimits(options.limits);
    this.minVersion = checkMinVersion(options.minVersion ?? 'TLSv1.3');
    this.clock = options.clock ?? systemClock;
    this.log = options.logger ?? silentLogger;
    this.metrics = options.metrics;
    this.budget = options.budget ?? new ConnectionBudget(this.limits);
    this.refusals = new RefusalLog({ logger: this.log, clock: this.clock, direction: options.direction });
    this.#direction = options.direction;
    this.#listen = options.listen;
    this.#source = options.source;
    this.#idle = new IdleSweep({ clock: this.clock, idleMs: this.limits.idleTimeoutMs });
    this.#deadlines = new ConnectionDeadlines({
      clock: this.clock,
      cut: (splice, reason) => this.closeConnection(splice, reason),
      endedQuietly: (_splice, reason) => this.#countClosed(reason),
      closed: (closed, how, firstAt) =>
        this.log.info(
          how === 'quiet'
            ? 'open connections closed gracefully at a quiet moment just before their deadline (peer certificate notAfter or limits.maxConnectionAge)'
            : 'open connections closed at their deadline (peer certificate notAfter or limits.maxConnectionAge)',
          { event: `${this.#direction}_deadline`, closed, how, first_closed_at: new Date(firstAt).toISOString() },
        ),
    });
    // One listener for every accepted socket (not a closure per connection).
    const self = this;
    this.#onAcceptedClose = function (this: net.Socket) {
      self.#accepted.delete(this);
      self.#checkDrained();
    };
  }

  /** The server to listen with, presenting `svid` and trusting `bundle`. Throws if they do not load. */
  protected abstract createServer(svid: Svid, bundle: TrustBundle): net.Server;
  /** Use a new SVID and bundle for connections from now on; throw to keep the current ones. */
  protected abstract installContext(svid: Svid, bundle: TrustBundle): void;
  /** A connection over the budget was dropped; `remote` is "address:port". */
  protected abstract dropped(remote: string, reason: BudgetRefusal): void;
  /** Both legs of a connection closed: count and log it (it is no longer tracked). */
  protected abstract connectionClosed(splice: Splice): void;

  /** Proxied connections open now. */
  get activeConnections(): number {
    return this.#splices.size;
  }

  /** Listen. Throws if the source has no SVID or bundle yet, if they do not load, or if the address is taken. */
  async start(): Promise<{ port: number }> {
    const direction = this.#direction;
    const { host, port } = this.#listen;
    if (this.#server || this.#closed) throw new TollgateError('TG_INTERNAL', `${PROXY_NAME[direction]}.start() called twice or after close()`);
    const svid = this.#source.svid();
    const bundle = this.#source.bundle();
    if (!svid || !bundle) {
      throw new TollgateError('TG_UNAVAILABLE', `the ${direction} proxy cannot start before the sidecar holds an SVID and a trust bundle; start the SVID manager first`);
    }
    const server = this.createServer(svid, bundle);
    this.#contextFrom = { svid, bundle };
    server.on('error', (e) => this.log.error(`${direction} listener error`, { event: `${direction}_listener_error`, error: e.message }));
    this.#server = server;
    this.#unsubscribe = this.#source.onChange(() => this.#reloadContext());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((e: unknown) => {
      this.close();
      throw new TollgateError('TG_UNAVAILABLE', `cannot listen on ${host}:${port}: ${(e as Error).message}`, { cause: e });
    });
    return { port: (server.address() as net.AddressInfo).port };
  }

  /** Stop accepting; let open connections finish; after timeoutMs destroy what is left. */
  drain(timeoutMs: number): Promise<void> {
    const server = this.#server;
    if (!server || this.#closed) return Promise.resolve();
    server.close();
    return new Promise<void>((resolve) => {
      if (this.#draining) {
        const prev = this.#draining.resolve;
        this.#draining.resolve = () => (prev(), resolve());
        return;
      }
      const timer = this.clock.setTimer(timeoutMs, () => {
        const open = this.#accepted.size + this.#splices.size;
        if (open > 0) this.log.warn('drain timeout: closing the connections still open', { event: `${this.#direction}_drain_timeout`, open });
        this.close();
      });
      this.#draining = { resolve, timer };
      this.#checkDrained();
    });
  }

  /** Destroy every connection and stop listening, now. */
  close(): void {
    this.#closed = true;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    this.#server?.close();
    for (const s of [...this.#accepted]) s.destroy();
    for (const s of [...this.#splices]) s.destroy();
    this.#deadlines.close();
    this.#idle.close();
    this.refusals.close();
    this.#finishDrain();
  }

  /** Connections spliced now (for a subclass that re-checks them, e.g. on a policy change). */
  protected openSplices(): Splice[] {
    return [...this.#splices];
  }

  /** Close an open connection the sidecar no longer lets live; counted as result "closed" with `reason`. */
  protected closeConnection(splice: Splice, reason: DeadlineReason): void {
    this.#deadlines.delete(splice);
    this.#countClosed(reason);
    splice.destroy();
  }

  #countClosed(reason: DeadlineReason): void {
    const counter = this.#direction === 'inbound' ? this.metrics?.inboundConnections : this.metrics?.outboundConnections;
    counter?.inc({ result: 'closed', reason });
  }

  /** `splice` must close by `at` (clock ms) at the latest; the earliest deadline set wins. See deadlines.ts. */
  protected closeBy(splice: Splice, at: number, reason: DeadlineReason): void {
    this.#deadlines.set(splice, at, reason);
  }

  /**
   * Take a slot of the budget for a socket just accepted (and a handshake slot if `handshake`).
   * Without one the socket is destroyed, counted and logged (dropped()), and false is returned.
   */
  protected admit(socket: net.Socket, handshake: boolean): boolean {
    const refusal = this.budget.admit(socket, { handshake });
    if (refusal === null) return true;
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    socket.destroy();
    this.dropped(remote, refusal);
    return false;
  }

  /** Keep `socket` (accepted, still in its handshake) open through a drain; close() destroys it. */
  protected trackAccepted(socket: net.Socket): void {
    this.#accepted.add(socket);
    socket.on('close', this.#onAcceptedClose);
  }

  /** Join the two legs of a new connection under this proxy's limits; tracked until both close. */
  protected splice(legs: { tls: net.Socket; plain: net.Socket; acceptedAt: number }): Splice {
    const splice = new Splice({
      tls: legs.tls,
      plain: legs.plain,
      owner: this,
      setupTimeoutMs: this.limits.handshakeTimeoutMs,
      acceptedAt: legs.acceptedAt,
    });
    this.#splices.add(splice);
    this.#idle.add(splice);
    this.closeBy(splice, this.clock.now() + this.limits.maxConnectionAgeMs, 'max_age');
    return splice;
  }

  /** @internal Both legs of a connection closed. */
  spliceClosed(splice: Splice): void {
    this.#splices.delete(splice);
    this.#idle.delete(splice);
    this.#deadlines.delete(splice);
    this.connectionClosed(splice);
    this.#checkDrained();
  }

  #checkDrained(): void {
    if (this.#draining && this.#accepted.size === 0 && this.#splices.size === 0) this.#finishDrain();
  }

  #finishDrain(): void {
    const d = this.#draining;
    if (!d) return;
    this.#draining = null;
    d.timer.cancel();
    d.resolve();
  }

  #reloadContext(): void {
    const direction = this.#direction;
    const svid = this.#source.svid();
    const bundle = this.#source.bundle();
    if (!this.#server || this.#closed || !svid || !bundle) return;
    if (svid === this.#contextFrom.svid && bundle === this.#contextFrom.bundle) return;
    try {
      this.installContext(svid, bundle);
      this.#contextFrom = { svid, bundle };
      this.log.info(`${direction} certificate updated`, { event: `${direction}_context_updated`, serial: svid.serial, bundle_version: bundle.version });
    } catch (e) {
      this.metrics?.configReloadFailures.inc();
      this.log.error(`new SVID or bundle does not load; the ${direction} proxy keeps the previous one`, {
        event: `${direction}_context_failed`,
        serial: svid.serial,
        bundle_version: bundle.version,
        error: (e as Error).message,
      });
    }
  }
}
