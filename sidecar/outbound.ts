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
import { TollgateError, toTollgateError } from '../common/errors.ts';
import { parseWorkloadId } from '../pki/spiffe-id.ts';
import { budgetAdvice, type BudgetRefusal } from './budget.ts';
import { failureReason, reasonText, type FailureReason } from './failure-reason.ts';
import { ProxyListener, type ProxyOptions } from './listener.ts';
import { checkPeerLeaf } from './peer-identity.ts';
import { peerLeafDer } from './peer-leaf.ts';
import { connectTlsLeg, spliceOf, type Splice } from './splice.ts';
import type { Svid, TrustBundle } from './svid-source.ts';
import { secureContextFor } from './tls-context.ts';

export interface OutboundProxyOptions extends ProxyOptions {
  /** Where the app connects: a loopback address (plaintext never leaves the host). */
  readonly listen: { readonly host: string; readonly port: number };
  readonly upstream: {
    readonly host: string;
    readonly port: number;
    /** The SPIFFE ID the upstream must present, exactly. */
    readonly spiffeId: string;
  };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (net.isIPv4(host) && host.startsWith('127.'));
}

export class OutboundProxy extends ProxyListener {
  readonly #o: OutboundProxyOptions;
  readonly #expectedId: string;
  readonly #upstreamText: string;
  #context: tls.SecureContext | null = null;
  /** One identity check for every connection (no closure per connection). */
  readonly #checkServerIdentity: (host: string, cert: tls.PeerCertificate) => Error | undefined;
  readonly #onSecureConnect: (this: tls.TLSSocket) => void;

  constructor(options: OutboundProxyOptions) {
    super({ ...options, direction: 'outbound' });
    this.#o = options;
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
        const id = checkPeerLeaf(cert.raw, { now: this.clock.now(), bundle, usage: 'server' });
        const socket = (cert as unknown as Partial<LeafOnly>)[kSocket];
        const splice = socket && spliceOf(socket);
        // The connection lasts no longer than the upstream's certificate.
        if (splice) this.closeBy(splice, id.notAfter, 'cert_expired');
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
      self.metrics?.outboundConnections.inc({ result: 'allowed', reason: 'allowed' });
      self.metrics?.handshakeSeconds.observe({ direction: 'outbound' }, (performance.now() - splice.acceptedAt) / 1000);
      self.metrics?.activeConnections.inc({ direction: 'outbound' });
    };
  }

  protected override createServer(svid: Svid, bundle: TrustBundle): net.Server {
    this.#context = secureContextFor(svid, bundle, { minVersion: this.minVersion });
    return net.createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true }, (local) => this.#onLocal(local));
  }

  protected override installContext(svid: Svid, bundle: TrustBundle): void {
    // A context that fails to build throws before the assignment: the previous one stays.
    this.#context = secureContextFor(svid, bundle, { minVersion: this.minVersion });
  }

  protected override dropped(remote: string, reason: BudgetRefusal): void {
    this.#failed('refused', { reason, code: 'TG_RATE_LIMITED' }, remote, budgetAdvice(reason, this.budget.limits));
  }

  #onLocal(local: net.Socket): void {
    // The app on loopback is not a handshake source to budget: only its connection slot counts.
    if (!this.admit(local, false)) return;
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
    const upstream = connectTlsLeg(connectOptions);
    upstream.setNoDelay(true); // tls.connect() ignores its noDelay option
    upstream.getPeerCertificate = leafOnly;
    this.splice({ tls: upstream, plain: local, acceptedAt });
    upstream.once('secureConnect', this.#onSecureConnect);
  }

  protected override connectionClosed(splice: Splice): void {
    if (splice.opened) {
      const p = splice.plain;
      this.metrics?.bytes.inc({ direction: 'outbound' }, p.bytesRead + p.bytesWritten);
      this.metrics?.activeConnections.dec({ direction: 'outbound' });
    } else if (splice.failedLeg === splice.plain || (splice.firstClosed === splice.plain && !splice.error)) {
      // The app went away before the upstream was verified.
      this.metrics?.outboundConnections.inc({ result: 'error', reason: 'client_closed' });
    } else {
      const why = failureReason(splice.error);
      const unreachable = why.reason === 'unreachable' || why.reason === 'timeout';
      const peerId = splice.error instanceof TollgateError ? splice.error.details.peer_id : undefined;
      this.#failed(
        unreachable ? 'error' : 'refused',
        unreachable ? { reason: why.reason === 'timeout' ? 'upstream_timeout' : 'upstream_unreachable', code: why.code } : why,
        `${splice.plain.remoteAddress ?? '127.0.0.1'}:${splice.plain.remotePort ?? 0}`,
        this.#failureText(splice.error, why),
        typeof peerId === 'string' ? peerId : undefined,
      );
    }
  }

  /** The operator's text for a failure: ours and socket errors as they are; OpenSSL's only at debug. */
  #failureText(err: Error | null, why: FailureReason): string {
    if (!err) return 'upstream closed the connection during the handshake';
    if (err instanceof TollgateError || why.reason === 'unreachable') return err.message;
    this.log.debug('outbound handshake error', { event: 'outbound_tls_error', reason: why.reason, internal: why.internal, error: err.message });
    return reasonText(why.reason, 'the TLS handshake with the upstream failed');
  }

  #failed(result: 'refused' | 'error', why: { reason: string; code: string }, local: string, detail: string, peerId?: string): void {
    this.metrics?.outboundConnections.inc({ result, reason: why.reason });
    this.refusals.warn('outbound connection failed; the app connection was closed', {
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

/**
 * Node's tls.connect calls getPeerCertificate(true) once per handshake only to hand the result to
 * checkServerIdentity: it turns the whole peer chain into JS objects (~10 % of CPU under connection
 * churn). Ours reads nothing but the leaf's DER, so each upstream socket answers with just that
 * (peer-leaf.ts says why not through getPeerX509Certificate()).
 */
function leafOnly(this: tls.TLSSocket): tls.DetailedPeerCertificate {
  const cert: LeafOnly = { raw: peerLeafDer(this) ?? Buffer.alloc(0), [kSocket]: this };
  return cert as unknown as tls.DetailedPeerCertificate;
}

/** What leafOnly answers: the leaf and its socket (so checkServerIdentity finds the connection). */
const kSocket = Symbol('tollgate.socket');
interface LeafOnly {
  readonly raw: Buffer;
  readonly [kSocket]: tls.TLSSocket;
}

