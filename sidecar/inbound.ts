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
import { toTollgateError } from '../common/errors.ts';
import { budgetAdvice, type BudgetRefusal } from './budget.ts';
import { certificateFailure, failureReason, reasonText, type FailureReason } from './failure-reason.ts';
import { ProxyListener, type ProxyOptions } from './listener.ts';
import { checkPeerLeaf } from './peer-identity.ts';
import { peerLeafDer } from './peer-leaf.ts';
import { authorize, type Policy } from './policy.ts';
import { encodeProxyV2 } from './proxy-protocol.ts';
import type { Svid, TrustBundle } from './svid-source.ts';
import { connectPlainLeg, spliceOf, type Splice } from './splice.ts';
import { secureContextOptions } from './tls-context.ts';

export interface InboundProxyOptions extends ProxyOptions {
  /** Where the app listens; app.port is also the port the policy is looked up for. */
  readonly app: { readonly host: string; readonly port: number };
  /** The policy in force now (read once per connection). */
  readonly policy: () => Policy;
  /** Send a PROXY protocol v2 header (with the peer's SPIFFE ID) before the first byte to the app. */
  readonly proxyProtocol?: boolean;
}

const kAcceptedAt = Symbol('tollgate.acceptedAt');
const kDropped = Symbol('tollgate.dropped');
type RawSocket = net.Socket & { [kAcceptedAt]?: number; [kDropped]?: boolean };

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

export class InboundProxy extends ProxyListener {
  readonly #o: InboundProxyOptions;
  #server: tls.Server | null = null;
  readonly #onAppConnect: (this: net.Socket) => void;

  constructor(options: InboundProxyOptions) {
    super({ ...options, direction: 'inbound' });
    this.#o = options;
    // One listener for every app socket (not a closure per connection).
    const self = this;
    this.#onAppConnect = function (this: net.Socket) {
      const splice = spliceOf(this);
      if (splice) self.#appConnected(splice);
    };
  }

  protected override createServer(svid: Svid, bundle: TrustBundle): tls.Server {
    const server = tls.createServer({
      ...secureContextOptions(svid, bundle, { minVersion: this.minVersion }),
      requestCert: true,
      rejectUnauthorized: true,
      handshakeTimeout: this.limits.handshakeTimeoutMs,
      // Not half-open during the handshake: a peer that closes its side mid-handshake is closed at
      // once (a half-open socket would keep its slot until the handshake timeout). A spliced
      // connection turns half-open (#onSecureConnection), so either side may finish sending first.
      allowHalfOpen: false,
      noDelay: true,
    });
    server.on('connection', (raw: RawSocket) => {
      raw[kAcceptedAt] = performance.now();
      void raw.remoteAddress; // read now, while the socket is open, so refusal logs can name the peer
      if (!this.admit(raw, true)) {
        raw[kDropped] = true; // counted and logged once, by dropped()
        return;
      }
      this.trackAccepted(raw); // drain and close() must reach connections still in their handshake
    });
    server.on('secureConnection', (socket: tls.TLSSocket) => this.#onSecureConnection(socket));
    server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => this.#onTlsClientError(err, socket));
    this.#server = server;
    return server;
  }

  protected override installContext(svid: Svid, bundle: TrustBundle): void {
    // setSecureContext builds the new context first and installs it as its last step, so a throw
    // leaves the current one in place; connections already accepted keep theirs.
    this.#server?.setSecureContext(secureContextOptions(svid, bundle, { minVersion: this.minVersion }));
  }

  protected override dropped(remote: string, reason: BudgetRefusal): void {
    this.metrics?.inboundConnections.inc({ result: 'refused', reason });
    this.refusals.warn('inbound connection refused', {
      event: 'inbound_refused',
      reason,
      code: 'TG_RATE_LIMITED',
      remote,
      error: budgetAdvice(reason, this.budget.limits),
    });
  }

  #onTlsClientError(err: Error, socket: tls.TLSSocket): void {
    const raw = rawOf(socket);
    if (raw) this.budget.handshakeDone(raw);
    if (raw?.[kDropped]) {
      socket.destroy();
      return;
    }
    // A chain OpenSSL rejected shows up as a hang-up with the verdict in authorizationError.
    const verdict = socket.authorizationError;
    const why = verdict ? certificateFailure(String(verdict)) : failureReason(err);
    socket.destroy();
    // OpenSSL's own names and source paths are for debugging, not for the operator's warn line.
    this.log.debug('inbound handshake error', { event: 'inbound_tls_error', reason: why.reason, internal: why.internal, error: err.message, remote: endpoint(raw ?? socket) });
    this.#refused(why, socket, undefined, reasonText(why.reason, 'the TLS handshake failed'));
  }

  #onSecureConnection(socket: tls.TLSSocket): void {
    const raw = rawOf(socket);
    if (raw) this.budget.handshakeDone(raw);
    const acceptedAt = raw?.[kAcceptedAt] ?? performance.now();
    const bundle = this.#o.source.bundle();
    const leaf = peerLeafDer(socket);
    if (!bundle || !leaf) {
      socket.destroy();
      return this.#refused({ reason: 'no_client_cert', code: 'TG_SVID_INVALID' }, socket, undefined, 'the peer presented no certificate');
    }
    let peerId: string;
    let notAfter: number;
    try {
      ({ id: peerId, notAfter } = checkPeerLeaf(leaf, { now: this.clock.now(), bundle, usage: 'client' }));
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
    this.metrics?.handshakeSeconds.observe({ direction: 'inbound' }, (performance.now() - acceptedAt) / 1000);

    socket.allowHalfOpen = true; // spliced from here on: each direction ends on its own
    const app = connectPlainLeg({ host: this.#o.app.host, port: this.#o.app.port, noDelay: true, allowHalfOpen: true });
    const splice = this.splice({ tls: socket, plain: app, acceptedAt });
    splice.peerId = peerId;
    this.closeBy(splice, notAfter, 'cert_expired'); // authorization lasts no longer than the peer's certificate
    app.once('connect', this.#onAppConnect);
  }

  /**
   * The policy changed: close every open connection whose peer it no longer allows on the app port,
   * counted as {result="closed",reason="policy_revoked"} and logged in one line. Returns how many.
   */
  reauthorize(): number {
    let policy: Policy;
    try {
      policy = this.#o.policy();
    } catch {
      return 0; // no policy in force: nothing new to apply (new connections are refused)
    }
    const port = this.#o.app.port;
    const peers = new Map<string, string>();
    let closed = 0;
    for (const splice of this.openSplices()) {
      if (splice.peerId === null) continue;
      const decision = authorize(policy, splice.peerId, port);
      if (decision.allowed) continue;
      peers.set(splice.peerId, decision.reason);
      this.closeConnection(splice, 'policy_revoked');
      closed++;
    }
    if (closed > 0) {
      this.log.warn('policy change: open connections of peers it no longer allows were closed', {
        event: 'inbound_revoked',
        reason: 'policy_revoked',
        code: 'TG_POLICY_DENIED',
        policy: policy.source,
        closed,
        peers: Object.fromEntries([...peers].slice(0, 20)),
        error: policyAdvice(policy.source, port, [...peers.values()][0] ?? 'no_rule'),
      });
    }
    return closed;
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
    this.metrics?.inboundConnections.inc({ result: 'allowed', reason: 'allowed' });
    this.metrics?.activeConnections.inc({ direction: 'inbound' });
  }

  protected override connectionClosed(splice: Splice): void {
    if (splice.opened) {
      const p = splice.plain;
      this.metrics?.bytes.inc({ direction: 'inbound' }, Math.max(0, p.bytesRead + p.bytesWritten - splice.headerBytes));
      this.metrics?.activeConnections.dec({ direction: 'inbound' });
    } else if (splice.failedLeg === splice.tls || (splice.firstClosed === splice.tls && !splice.error)) {
      // The peer went away while the app connection was being made: not a refusal, not the app's fault.
      this.metrics?.inboundConnections.inc({ result: 'error', reason: 'peer_closed' });
    } else {
      const err = splice.error;
      this.metrics?.inboundConnections.inc({ result: 'error', reason: 'app_unreachable' });
      this.log.error('cannot reach the app; the peer was disconnected', {
        event: 'inbound_app_unreachable',
        reason: 'app_unreachable',
        code: 'TG_UNAVAILABLE',
        errno: (err as NodeJS.ErrnoException | null)?.code ?? 'closed', // ECONNREFUSED, ETIMEDOUT... or the app closed it
        peer_id: splice.peerId,
        remote: endpoint(rawOf(splice.tls as tls.TLSSocket) ?? splice.tls),
        error: `${err?.message ?? 'the app closed the connection'}; check that the app listens on ${this.#o.app.host}:${this.#o.app.port}`,
      });
    }
  }

  #refused(why: FailureReason, socket: tls.TLSSocket, peerId: string | undefined, detail: string): void {
    this.metrics?.inboundConnections.inc({ result: 'refused', reason: why.reason });
    this.refusals.warn('inbound connection refused', {
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
