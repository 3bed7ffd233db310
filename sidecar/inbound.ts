// The inbound proxy: mTLS in from peers, plaintext out to the app on localhost (PRODUCT.md §5).
//
// A peer's bytes reach the app only after all of: OpenSSL verified its chain against the current
// bundle (TLS >= minVersion, client certificate required), its leaf passed the SVID profile check
// (checkPeerLeaf), and the policy allows its SPIFFE ID on the app port. Until then nothing consumes
// the TLS socket's data and no connection to the app exists, so a refused peer gives the app zero
// bytes and no connection. Every refusal is one log line and one count of
// tollgate_inbound_connections_total{result="refused",reason}.
//
// Handshake-level refusals (no client certificate, TLS version below the minimum) end with an
// OpenSSL alert. A chain OpenSSL cannot verify (unknown CA, expired) is also refused by OpenSSL's
// verdict, but Node reads that verdict only after the handshake and then closes the socket without
// an alert; our own checks (profile, trust domain, policy) close it the same way.
//
// Certificate rotation: on every source change a new context is installed with
// server.setSecureContext(); open connections keep the context they were accepted with.
import net from 'node:net';
import tls from 'node:tls';
import { systemClock, type Clock, type TimerHandle } from '../pki/clock.ts';
import { TollgateError, toTollgateError } from '../pki/errors.ts';
import { silentLogger, type Logger } from '../pki/log.ts';
import type { SidecarMetrics } from './metrics.ts';
import { checkPeerLeaf } from './peer-identity.ts';
import { authorize, type Policy } from './policy.ts';
import { encodeProxyV2 } from './proxy-protocol.ts';
import type { SvidSource } from './svid-source.ts';
import {
  Splice,
  certificateFailure,
  checkMinVersion,
  failureReason,
  resolveLimits,
  secureContextOptions,
  spliceOf,
  type FailureReason,
  type ProxyLimits,
  type SpliceOwner,
  type TlsMinVersion,
} from './tls-context.ts';

export interface InboundProxyOptions {
  readonly listen: { readonly host: string; readonly port: number };
  /** Where the app listens; app.port is also the port the policy is looked up for. */
  readonly app: { readonly host: string; readonly port: number };
  readonly source: SvidSource;
  /** The policy in force now (read once per connection). */
  readonly policy: () => Policy;
  /** Send a PROXY protocol v2 header (with the peer's SPIFFE ID) before the first byte to the app. */
  readonly proxyProtocol?: boolean;
  /** Default TLSv1.3. */
  readonly minVersion?: TlsMinVersion;
  readonly limits?: ProxyLimits;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly metrics?: SidecarMetrics;
}

const kAcceptedAt = Symbol('tollgate.acceptedAt');
type RawSocket = net.Socket & { [kAcceptedAt]?: number };

/**
 * The accepted TCP socket under a server-side TLS socket. Node keeps it as `_parent` (not documented,
 * stable since the first tls.Server); without it the handshake histogram starts at 'secureConnection'
 * and refusals after a closed handshake log the remote address as "?".
 */
function rawOf(socket: tls.TLSSocket): RawSocket | undefined {
  const parent = (socket as { _parent?: unknown })._parent;
  return parent instanceof net.Socket ? parent : undefined;
}

/** Peer endpoint as text, for logs (net.Socket caches it once read, so it outlives the connection). */
function endpoint(s: net.Socket | undefined): string {
  return `${s?.remoteAddress ?? '?'}:${s?.remotePort ?? 0}`;
}

export class InboundProxy implements SpliceOwner {
  readonly #o: InboundProxyOptions;
  readonly #limits: Required<ProxyLimits>;
  readonly #minVersion: TlsMinVersion;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #metrics: SidecarMetrics | undefined;
  #server: tls.Server | null = null;
  #unsubscribe: (() => void) | null = null;
  /** The SVID and bundle the installed context was built from. */
  #contextFrom: { svid: unknown; bundle: unknown } = { svid: null, bundle: null };
  /** Accepted TCP sockets until they close (drain and close() must reach those still in their handshake). */
  readonly #raw = new Set<RawSocket>();
  readonly #splices = new Set<Splice>();
  #draining: { resolve: () => void; timer: TimerHandle } | null = null;
  #closed = false;
  readonly #onRawClose: (this: RawSocket) => void;
  readonly #onAppConnect: (this: net.Socket) => void;

  constructor(options: InboundProxyOptions) {
    this.#o = options;
    this.#limits = resolveLimits(options.limits);
    this.#minVersion = checkMinVersion(options.minVersion ?? 'TLSv1.3');
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger ?? silentLogger;
    this.#metrics = options.metrics;
    // One listener for every raw socket (not a closure per connection).
    const self = this;
    this.#onRawClose = function (this: RawSocket) {
      self.#raw.delete(this);
      self.#checkDrained();
    };
    this.#onAppConnect = function (this: net.Socket) {
      const splice = spliceOf(this);
      if (splice) self.#appConnected(splice);
    };
  }

  /** Proxied connections open now (the app side connected or connecting). */
  get activeConnections(): number {
    return this.#splices.size;
  }

  /** Listen. Throws if the source has no SVID or bundle yet, or if they do not load. */
  async start(): Promise<{ port: number }> {
    if (this.#server || this.#closed) throw new TollgateError('TG_INTERNAL', 'InboundProxy.start() called twice or after close()');
    const svid = this.#o.source.svid();
    const bundle = this.#o.source.bundle();
    if (!svid || !bundle) {
      throw new TollgateError('TG_UNAVAILABLE', 'the inbound proxy cannot start before the sidecar holds an SVID and a trust bundle; start the SVID manager first');
    }
    const server = tls.createServer({
      ...secureContextOptions(svid, bundle, { minVersion: this.#minVersion }),
      requestCert: true,
      rejectUnauthorized: true,
      handshakeTimeout: this.#limits.handshakeTimeoutMs,
      allowHalfOpen: true,
      noDelay: true,
    });
    this.#contextFrom = { svid, bundle };
    server.maxConnections = this.#limits.maxConnections;
    server.on('connection', (raw: RawSocket) => {
      raw[kAcceptedAt] = performance.now();
      void raw.remoteAddress; // read now, while the socket is open, so refusal logs can name the peer
      this.#raw.add(raw);
      raw.on('close', this.#onRawClose);
    });
    server.on('secureConnection', (socket: tls.TLSSocket) => this.#onSecureConnection(socket));
    server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => this.#onTlsClientError(err, socket));
    server.on('drop', (d?: { remoteAddress?: string; remotePort?: number }) => {
      this.#metrics?.inboundConnections.inc({ result: 'refused', reason: 'limit' });
      this.#log.warn('inbound connection refused', {
        event: 'inbound_refused',
        reason: 'limit',
        code: 'TG_RATE_LIMITED',
        remote: `${d?.remoteAddress ?? '?'}:${d?.remotePort ?? 0}`,
        error: `${this.#limits.maxConnections} connections are open (limits.maxConnections); raise the limit or add replicas`,
      });
    });
    server.on('error', (e) => this.#log.error('inbound listener error', { event: 'inbound_listener_error', error: e.message }));
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
        if (this.#raw.size + this.#splices.size > 0) {
          this.#log.warn('drain timeout: closing the connections still open', { event: 'inbound_drain_timeout', open: this.#raw.size + this.#splices.size });
        }
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
    for (const raw of [...this.#raw]) raw.destroy();
    for (const s of [...this.#splices]) s.destroy();
    this.#finishDrain();
  }

  #checkDrained(): void {
    if (this.#draining && this.#raw.size === 0 && this.#splices.size === 0) this.#finishDrain();
  }

  #finishDrain(): void {
    const d = this.#draining;
    if (!d) return;
    this.#draining = null;
    d.timer.cancel();
    d.resolve();
  }

  #reloadContext(): void {
    const server = this.#server;
    const svid = this.#o.source.svid();
    const bundle = this.#o.source.bundle();
    if (!server || this.#closed || !svid || !bundle) return;
    if (svid === this.#contextFrom.svid && bundle === this.#contextFrom.bundle) return;
    try {
      // setSecureContext builds the new context first and installs it as its last step, so a
      // throw leaves the current one in place; connections already accepted keep theirs.
      server.setSecureContext(secureContextOptions(svid, bundle, { minVersion: this.#minVersion }));
      this.#contextFrom = { svid, bundle };
      this.#log.info('inbound certificate updated', { event: 'inbound_context_updated', serial: svid.serial, bundle_version: bundle.version });
    } catch (e) {
      this.#metrics?.configReloadFailures.inc();
      this.#log.error('new SVID or bundle does not load; the inbound proxy keeps the previous one', {
        event: 'inbound_context_failed',
        serial: svid.serial,
        bundle_version: bundle.version,
        error: (e as Error).message,
      });
    }
  }

  #onTlsClientError(err: Error, socket: tls.TLSSocket): void {
    // A chain OpenSSL rejected shows up as a hang-up with the verdict in authorizationError.
    const verdict = socket.authorizationError;
    const why = verdict ? certificateFailure(String(verdict)) : failureReason(err);
    const detail = verdict ? `${String(verdict)}: the peer's certificate does not verify against this sidecar's trust bundle` : err.message;
    socket.destroy();
    this.#refused(why, socket, undefined, detail);
  }

  #onSecureConnection(socket: tls.TLSSocket): void {
    const acceptedAt = rawOf(socket)?.[kAcceptedAt] ?? performance.now();
    const bundle = this.#o.source.bundle();
    const leaf = socket.getPeerX509Certificate();
    if (!bundle || !leaf) {
      socket.destroy();
      return this.#refused({ reason: 'no_client_cert', code: 'TG_SVID_INVALID' }, socket, undefined, 'the peer presented no certificate');
    }
    let peerId: string;
    try {
      peerId = checkPeerLeaf(leaf.raw, { now: this.#clock.now(), bundle, usage: 'client' }).id;
    } catch (e) {
      socket.destroy();
      const err = toTollgateError(e, 'TG_SVID_INVALID');
      return this.#refused(failureReason(err), socket, undefined, err.message);
    }
    let policy: Policy;
    try {
      policy = this.#o.policy();
    } catch (e) {
      socket.destroy();
      return this.#refused({ reason: 'no_policy', code: 'TG_CONFIG_INVALID' }, socket, peerId, `no policy in force: ${(e as Error).message}`);
    }
    const port = this.#o.app.port;
    const decision = authorize(policy, peerId, port);
    if (!decision.allowed) {
      socket.destroy();
      return this.#refused({ reason: decision.reason, code: 'TG_POLICY_DENIED' }, socket, peerId, policyAdvice(policy.source, port, decision.reason));
    }
    this.#metrics?.handshakeSeconds.observe({ direction: 'inbound' }, (performance.now() - acceptedAt) / 1000);

    const app = net.connect({ host: this.#o.app.host, port: this.#o.app.port, noDelay: true, allowHalfOpen: true });
    const splice = new Splice({
      tls: socket,
      plain: app,
      owner: this,
      setupTimeoutMs: this.#limits.handshakeTimeoutMs,
      idleTimeoutMs: this.#limits.idleTimeoutMs,
      acceptedAt,
    });
    splice.peerId = peerId;
    this.#splices.add(splice);
    app.once('connect', this.#onAppConnect);
  }

  #appConnected(splice: Splice): void {
    if (this.#o.proxyProtocol) {
      const socket = splice.tls as tls.TLSSocket;
      const header = encodeProxyV2({
        source: { address: socket.remoteAddress ?? '0.0.0.0', port: socket.remotePort ?? 0 },
        destination: { address: socket.localAddress ?? '0.0.0.0', port: socket.localPort ?? 0 },
        spiffeId: splice.peerId ?? '',
        tlsVersion: socket.getProtocol() ?? 'unknown',
      });
      splice.headerBytes = header.length;
      splice.plain.write(header); // before pipe(), so it is the app's first byte
    }
    splice.open();
    if (!splice.opened) return;
    this.#metrics?.inboundConnections.inc({ result: 'allowed', reason: 'allowed' });
    this.#metrics?.activeConnections.inc({ direction: 'inbound' });
  }

  /** @internal Both legs of a connection closed. */
  spliceClosed(splice: Splice): void {
    this.#splices.delete(splice);
    if (splice.opened) {
      const p = splice.plain;
      this.#metrics?.bytes.inc({ direction: 'inbound' }, Math.max(0, p.bytesRead + p.bytesWritten - splice.headerBytes));
      this.#metrics?.activeConnections.dec({ direction: 'inbound' });
    } else if (splice.failedLeg === splice.tls || (splice.firstClosed === splice.tls && !splice.error)) {
      // The peer went away while the app connection was being made: not a refusal, not the app's fault.
      this.#metrics?.inboundConnections.inc({ result: 'error', reason: 'peer_closed' });
    } else {
      const err = splice.error;
      this.#metrics?.inboundConnections.inc({ result: 'error', reason: 'app_unreachable' });
      this.#log.error('cannot reach the app; the peer was disconnected', {
        event: 'inbound_app_unreachable',
        reason: 'app_unreachable',
        code: (err as NodeJS.ErrnoException | null)?.code ?? 'TG_UNAVAILABLE',
        peer_id: splice.peerId,
        remote: endpoint(rawOf(splice.tls as tls.TLSSocket) ?? splice.tls),
        error: `${err?.message ?? 'the app closed the connection'}; check that the app listens on ${this.#o.app.host}:${this.#o.app.port}`,
      });
    }
    this.#checkDrained();
  }

  #refused(why: FailureReason, socket: tls.TLSSocket, peerId: string | undefined, detail: string): void {
    this.#metrics?.inboundConnections.inc({ result: 'refused', reason: why.reason });
    this.#log.warn('inbound connection refused', {
      event: 'inbound_refused',
      reason: why.reason,
      code: why.code,
      ...(peerId === undefined ? {} : { peer_id: peerId }),
      remote: endpoint(rawOf(socket) ?? socket),
      error: detail,
    });
  }
}

/** What the operator can do about a policy refusal. */
function policyAdvice(source: string, port: number, reason: string): string {
  if (reason === 'trust_domain') return `policy ${source} does not accept the peer's trust domain; add it to trustDomains if the peer should be let in`;
  if (reason === 'invalid_id') return `the peer's SPIFFE ID does not parse, so policy ${source} cannot allow it`;
  return `policy ${source} allows no rule for this peer on port ${port}; add it to ports."${port}".allow if it should be let in`;
}
