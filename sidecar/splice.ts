// Splice: one proxied connection, a TLS leg (`tls`) and a plaintext leg (`plain`: the app's socket
// inbound, the local client's outbound). Both proxies use it unchanged.
// Kept lean on purpose (the proxies are the product's hot loop): plain pipe() both ways, listeners
// shared by all connections (no closures per connection), bytes counted once at close.
import type { Socket } from 'node:net';
import { TollgateError } from '../pki/errors.ts';

/** The one that tracks a Splice hears once, when both legs have closed. */
export interface SpliceOwner {
  spliceClosed(splice: Splice): void;
}

export interface SpliceOptions {
  readonly tls: Socket;
  readonly plain: Socket;
  readonly owner: SpliceOwner;
  /** Until open(): time allowed for the other leg to connect / finish its handshake. */
  readonly setupTimeoutMs: number;
  /** After open(): a connection with no traffic either way for this long is closed. */
  readonly idleTimeoutMs: number;
  /** performance.now() when the first leg was accepted (for the handshake histogram). */
  readonly acceptedAt: number;
}

const kSplice = Symbol('tollgate.splice');
type Leg = Socket & { [kSplice]?: Splice };

export class Splice {
  readonly tls: Socket;
  readonly plain: Socket;
  readonly acceptedAt: number;
  readonly #owner: SpliceOwner;
  readonly #idleTimeoutMs: number;
  /** True once bytes may flow (both legs connected and the peer verified). */
  opened = false;
  /** The verified peer's SPIFFE ID, once known. */
  peerId: string | null = null;
  /** The first error on either leg, or a timeout; null for a clean close. */
  error: Error | null = null;
  /** The leg `error` happened on. */
  failedLeg: Socket | null = null;
  /** Which leg closed first (tells "client went away" from "upstream failed"). */
  firstClosed: Socket | null = null;
  /** Bytes the proxy itself wrote to the plain leg before piping (a PROXY header): not proxied bytes. */
  headerBytes = 0;
  #openLegs = 2;

  constructor(options: SpliceOptions) {
    this.tls = options.tls;
    this.plain = options.plain;
    this.acceptedAt = options.acceptedAt;
    this.#owner = options.owner;
    this.#idleTimeoutMs = options.idleTimeoutMs;
    this.#attach(this.tls, options.setupTimeoutMs);
    this.#attach(this.plain, options.setupTimeoutMs);
  }

  #attach(leg: Leg, setupTimeoutMs: number): void {
    leg[kSplice] = this;
    leg.on('error', onLegError);
    leg.on('close', onLegClose);
    leg.on('timeout', onLegTimeout);
    if (setupTimeoutMs > 0) leg.setTimeout(setupTimeoutMs);
  }

  /** Let bytes flow both ways. pipe() carries backpressure and half-close (end → end). */
  open(): void {
    if (this.opened || this.tls.destroyed || this.plain.destroyed) return;
    this.opened = true;
    this.tls.setTimeout(this.#idleTimeoutMs);
    this.plain.setTimeout(this.#idleTimeoutMs);
    this.tls.pipe(this.plain);
    this.plain.pipe(this.tls);
  }

  /** Close both legs now (no TLS close_notify, no flushing), remembering the first failure. */
  destroy(error?: Error, on?: Socket): void {
    if (error && !this.error) {
      this.error = error;
      this.failedLeg = on ?? null;
    }
    this.tls.destroy();
    this.plain.destroy();
  }

  get closed(): boolean {
    return this.#openLegs === 0;
  }

  /** @internal */
  legClosed(leg: Socket): void {
    this.firstClosed ??= leg;
    const other = leg === this.tls ? this.plain : this.tls;
    // A leg that closed after both of its directions finished has passed its end on through pipe(),
    // and the other leg closes by itself once it has flushed. Any other close (reset, destroy, error
    // before open) takes the other leg down at once.
    if (!other.destroyed && !(this.opened && leg.readableEnded && leg.writableFinished)) other.destroy();
    if (--this.#openLegs === 0) this.#owner.spliceClosed(this);
  }
}

/** The Splice a socket belongs to, if any (lets proxies share one listener across connections). */
export function spliceOf(socket: Socket): Splice | undefined {
  return (socket as Leg)[kSplice];
}

function onLegError(this: Leg, err: Error): void {
  this[kSplice]?.destroy(err, this);
}

function onLegClose(this: Leg): void {
  this[kSplice]?.legClosed(this);
}

function onLegTimeout(this: Leg): void {
  const s = this[kSplice];
  if (!s) return;
  const reason = s.opened ? 'idle_timeout' : 'timeout';
  s.destroy(new TollgateError('TG_UNAVAILABLE', s.opened ? 'connection idle timeout' : 'connection setup timed out', { details: { reason } }), this);
}
