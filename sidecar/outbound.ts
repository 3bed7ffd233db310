// The outbound proxy: plaintext in from the app on 127.0.0.1, mTLS out to one upstream (PRODUCT.md §5).
//
// The app's socket is accepted paused (pauseOnConnect) and is not read from until the upstream has
// proved it is the expected workload: OpenSSL verifies its chain against the current bundle
// (rejectUnauthorized), then checkServerIdentity runs checkPeerLeaf (usage 'server') and requires its
// SPIFFE ID to equal upstream.spiffeId exactly. Any failure destroys the app's socket: the app sees the
// connection closed, its bytes never leave the host, and there is no plaintext fallback. Every failure
// is one log line and one count of tollgate_outbound_connections_total{result,reason}.
//
// Certificate rotation: on every source change a new client context is built; connections already
// open keep the one they were made with. A context that fails to build keeps the previous one.
import net from 'node:net';
import tls from 'node:tls';
import { systemClock, type Clock, type TimerHandle } from '../pki/clock.ts';
import { TollgateError, toTollgateError } from '../pki/errors.ts';
import { silentLogger, type Logger } from '../pki/log.ts';
import { parseWorkloadId } from '../pki/spiffe-id.ts';
import type { SidecarMetrics } from './metrics.ts';
import { checkPeerLeaf } from './peer-identity.ts';
import type { SvidSource } from './svid-source.ts';
import {
  Splice,
  checkMinVersion,
  failureReason,
  resolveLimits,
  secureContextFor,
  spliceOf,
  type ProxyLimits,
  type SpliceOwner,
  type TlsMinVersion,
} from './tls-context.ts';

export interface OutboundProxyOptions {
  /** Where the app connects: a loopback address (plaintext never leaves the host). */
  readonly listen: { readonly host: string; readonly port: number };
  readonly upstream: {
    readonly host: string;
    readonly port: number;
    /** The SPIFFE ID the upstream must present, exactly. */
    readonly spiffeId: string;
  };
  readonly source: SvidSource;
  /** Default TLSv1.3. */
  readonly minVersion?: TlsMinVersion;
  readonly limits?: ProxyLimits;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly metrics?: SidecarMetrics;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (net.isIPv4(host) && host.startsWith('127.'));
}

export class OutboundProxy implements SpliceOwner {
  readonly #o: OutboundProxyOptions;
  readonly #limits: Required<ProxyLimits>;
  readonly #minVersion: TlsMinVersion;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #metrics: SidecarMetrics | undefined;
  readonly #expectedId: string;
  readonly #upstreamText: string;
  #server: net.Server | null = null;
  #unsubscribe: (() => void) | null = null;
  #context: tls.SecureContext | null = null;
  #contextFrom: { svid: unknown; bundle: unknown } = { svid: null, bundle: null };
  readonly #splices = new Set<Splice>();
  #draining: { resolve: () => void; timer: TimerHandle } | null = null;
  #closed = false;
  /** One identity check for every connection (no closure per connection). */
  readonly #checkServerIdentity: (host: string, cert: tls.PeerCertificate) => Error | undefined;
  readonly #onSecureConnect: (this: tls.TLSSocket) => void;

  constructor(options: OutboundProxyOptions) {
    this.#o = options;
    this.#limits = resolveLimits(options.limits);
    this.#minVersion = checkMinVersion(options.minVersion ?? 'TLSv1.3');
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger ?? silentLogger;
    this.#metrics = options.metrics;
    if (!isLoopback(options.listen.host)) {
      throw new TollgateError('TG_CONFIG_INVALID', `outbound listen address ${options.listen.host} is not loopback: the app's plaintext must not leave the host; use 127.0.0.1`);
    }
    this.#expectedId = parseWorkloadId(options.upstream.spiffeId).id;
    this.#upstreamText = `${options.upstream.host}:${options.upstream.port}`;

    // Node has already had OpenSSL verify the chain when it calls this; `cert.raw` is the leaf.
    this.#checkServerIdentity = (_host, cert) => {
      const bundle = this.#o.source.bundle();
      if (!bundle) return new TollgateError('TG_UNAVAILABLE', 'no trust bundle', { details: { reason: 'no_svid' } });
      try {
        const id = checkPeerLeaf(cert.raw, { now: this.#clock.now(), bundle, usage: 'server' });
        if (id.id !== this.#expectedId) {
          return new TollgateError(
            'TG_SVID_UNTRUSTED',
            `upstream ${this.#upstreamText} presented ${id.id}, but ${this.#expectedId} is expected; check the upstream's address and its SPIFFE ID in the sidecar config`,
            { details: { reason: 'wrong_identity', peer_id: id.id } },
          );
        }
        return undefined;
      } catch (e) {
        return toTollgateError(e, 'TG_SVID_INVALID');
      }
    };
    const self = this;
    this.#onSecureConnect = function () {
      const splice = spliceOf(this);
      if (!splice) return;
      splice.open();
      if (!splice.opened) return;
      self.#metrics?.outboundConnections.inc({ result: 'allowed', reason: 'allowed' });
      self.#metrics?.handshakeSeconds.observe({ direction: 'outbound' }, (performance.now() - splice.acceptedAt) / 1000);
      self.#metrics?.activeConnections.inc({ direction: 'outbound' });
    };
  }

  get activeConnections(): number {
    return this.#splices.size;
  }

  /** Listen. Throws if the source has no SVID or bundle yet, or if they do not load. */
  async start(): Promise<{ port: number }> {
    if (this.#server || this.#closed) throw new TollgateError('TG_INTERNAL', 'OutboundProxy.start() called twice or after close()');
    const svid = this.#o.source.svid();
    const bundle = this.#o.source.bundle();
    if (!svid || !bundle) {
      throw new TollgateError('TG_UNAVAILABLE', 'the outbound proxy cannot start before the sidecar holds an SVID and a trust bundle; start the SVID manager first');
    }
    this.#context = secureContextFor(svid, bundle, { minVersion: this.#minVersion });
    this.#contextFrom = { svid, bundle };
    const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true }, (local) => this.#onLocal(local));
    server.maxConnections = this.#limits.maxConnections;
    server.on('drop', (d?: { remoteAddress?: string; remotePort?: number }) => {
      this.#failed('refused', { reason: 'limit', code: 'TG_RATE_LIMITED' }, `${d?.remoteAddress ?? '?'}:${d?.remotePort ?? 0}`, `over limits.maxConnections (${this.#limits.maxConnections})`);
    });
    server.on('error', (e) => this.#log.error('outbound listener error', { event: 'outbound_listener_error', error: e.message }));
    this.#server = server;
    this.#unsubscribe = this.#o.source.onChange(() => this.#reloadContext());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#o.listen.port, this.#o.listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((e: unknown) => {
      this.close();
      throw new TollgateError('TG_UNAVAILABLE', `cannot listen on ${this.#o.listen.host}:${this.#o.listen.port}: ${(e as Error).message}`, { cause: e });
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
      const timer = this.#clock.setTimer(timeoutMs, () => {
        if (this.#splices.size > 0) this.#log.warn('drain timeout: closing the connections still open', { event: 'outbound_drain_timeout', open: this.#splices.size });
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
    for (const s of [...this.#splices]) s.destroy();
    this.#finishDrain();
  }

  #checkDrained(): void {
    if (this.#draining && this.#splices.size === 0) this.#finishDrain();
  }

  #finishDrain(): void {
    const d = this.#draining;
    if (!d) return;
    this.#draining = null;
    d.timer.cancel();
    d.resolve();
  }

  #reloadContext(): void {
    const svid = this.#o.source.svid();
    const bundle = this.#o.source.bundle();
    if (this.#closed || !svid || !bundle) return;
    if (svid === this.#contextFrom.svid && bundle === this.#contextFrom.bundle) return;
    try {
      this.#context = secureContextFor(svid, bundle, { minVersion: this.#minVersion });
      this.#contextFrom = { svid, bundle };
      this.#log.info('outbound certificate updated', { event: 'outbound_context_updated', serial: svid.serial, bundle_version: bundle.version });
    } catch (e) {
      this.#metrics?.configReloadFailures.inc();
      this.#log.error('new SVID or bundle does not load; the outbound proxy keeps the previous one', {
        event: 'outbound_context_failed',
        serial: svid.serial,
        bundle_version: bundle.version,
        error: (e as Error).message,
      });
    }
  }

  #onLocal(local: net.Socket): void {
    const acceptedAt = performance.now();
    const context = this.#context;
    if (!context || !this.#o.source.svid() || !this.#o.source.bundle()) {
      local.destroy();
      return this.#failed('refused', { reason: 'no_svid', code: 'TG_UNAVAILABLE' }, `${local.remoteAddress}:${local.remotePort}`, 'this sidecar holds no SVID yet; it cannot call upstreams');
    }
    // allowHalfOpen is honoured by tls.connect (it reaches the TLSSocket) but missing from its types.
    const connectOptions: tls.ConnectionOptions & { allowHalfOpen: boolean } = {
      host: this.#o.upstream.host,
      port: this.#o.upstream.port,
      secureContext: context,
      rejectUnauthorized: true,
      checkServerIdentity: this.#checkServerIdentity,
      allowHalfOpen: true,
    };
    const upstream = tls.connect(connectOptions);
    upstream.setNoDelay(true); // tls.connect() ignores its noDelay option
    const splice = new Splice({
      tls: upstream,
      plain: local,
      owner: this,
      setupTimeoutMs: this.#limits.handshakeTimeoutMs,
      idleTimeoutMs: this.#limits.idleTimeoutMs,
      acceptedAt,
    });
    upstream.once('secureConnect', this.#onSecureConnect);
    this.#splices.add(splice);
  }

  /** @internal Both legs of a connection closed. */
  spliceClosed(splice: Splice): void {
    this.#splices.delete(splice);
    if (splice.opened) {
      const p = splice.plain;
      this.#metrics?.bytes.inc({ direction: 'outbound' }, p.bytesRead + p.bytesWritten);
      this.#metrics?.activeConnections.dec({ direction: 'outbound' });
    } else if (splice.failedLeg === splice.plain || (splice.firstClosed === splice.plain && !splice.error)) {
      // The app went away before the upstream was verified.
      this.#metrics?.outboundConnections.inc({ result: 'error', reason: 'client_closed' });
    } else {
      const why = failureReason(splice.error);
      const unreachable = why.reason === 'unreachable' || why.reason === 'timeout';
      const peerId = splice.error instanceof TollgateError ? splice.error.details.peer_id : undefined;
      this.#failed(
        unreachable ? 'error' : 'refused',
        unreachable ? { reason: why.reason === 'timeout' ? 'upstream_timeout' : 'upstream_unreachable', code: why.code } : why,
        `${splice.plain.remoteAddress ?? '127.0.0.1'}:${splice.plain.remotePort ?? 0}`,
        splice.error?.message ?? 'upstream closed the connection during the handshake',
        typeof peerId === 'string' ? peerId : undefined,
      );
    }
    this.#checkDrained();
  }

  #failed(result: 'refused' | 'error', why: { reason: string; code: string }, local: string, detail: string, peerId?: string): void {
    this.#metrics?.outboundConnections.inc({ result, reason: why.reason });
    this.#log.warn('outbound connection failed; the app connection was closed', {
      event: 'outbound_refused',
      result,
      reason: why.reason,
      code: why.code,
      upstream: this.#upstreamText,
      expected_id: this.#expectedId,
      ...(peerId === undefined ? {} : { peer_id: peerId }),
      local,
      error: detail,
    });
  }
}
