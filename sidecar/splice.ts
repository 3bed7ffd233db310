// Splice: one proxied connection, a TLS leg (`tls`) and a plaintext leg (`plain`: the app's socket
// inbound, the local client's outbound). Both proxies use it unchanged.
// Kept lean on purpose (the proxies are the product's hot loop): listeners shared by all connections
// (no closures per connection), bytes counted once at close. An accepted leg is read with pipe(). The
// leg the proxy creates itself (connectPlainLeg, connectTlsLeg) is read with Node's `onread`: into a
// reused buffer, without 'data' events or a Buffer per read (accepted sockets cannot take `onread`).
//
// Reusing the read buffer is safe only if nothing still points into it when the next read lands
// there. So a chunk is passed on as a view of the buffer only when the other leg is done with it by
// the time write() returns, and copied otherwise:
// - Anything already queued on the other leg (writableLength > 0, corked): Writable would queue the
//   view by reference. Copy (only under backpressure).
// - Into TLS: SSL_write encrypts, i.e. copies, the cleartext inside write() (TLSWrap::DoWrite; what it
//   cannot take yet it copies aside), even though the write completes later. The view is free.
// - Into plain TCP: libuv writes what the kernel takes now and keeps a pointer to the rest, no copy,
//   until the write completes (writableLength > 0 after write() tells). That buffer then belongs to
//   the write, and the connection reads into a fresh one from its next read on (onread.buffer is a
//   function, asked after every read). Pausing instead would not do: a TLS leg hands over all the
//   records one TCP read brought (TLSWrap::ClearOut), each copied into the same buffer, whatever the
//   callback returned.
// Reads land in one buffer shared by the whole process, which therefore must never stay pinned: into
// plain TCP a chunk in it is always copied, and a connection writing into plain TCP (outbound) reads
// into its own 16 KiB buffer once it has passed one chunk on (not before: a connection that carries a
// single response, then closes, would leave 16 KiB of garbage each). Stopping reads is for
// backpressure only, never for safety, so a read started early (resume(), read(0), a TLS leg's next
// record) cannot corrupt.
import net from 'node:net';
import tls from 'node:tls';
import { TollgateError } from '../common/errors.ts';

/** Told of a chunk passed on while a connection is watched: from the responder (true) or the initiator. */
export type ActivityWatch = (splice: Splice, fromResponder: boolean) => void;

/** The one that tracks a Splice hears once, when both legs have closed. */
export interface SpliceOwner {
  spliceClosed(splice: Splice): void;
}

export interface SpliceOptions {
  readonly tls: net.Socket;
  readonly plain: net.Socket;
  readonly owner: SpliceOwner;
  /** Until open(): time allowed for the other leg to connect / finish its handshake. */
  readonly setupTimeoutMs: number;
  /** performance.now() when the first leg was accepted (for the handshake histogram). */
  readonly acceptedAt: number;
}

const kSplice = Symbol('tollgate.splice');
/** Set on a leg made by connectPlainLeg / connectTlsLeg: the Splice reads it with onread. */
const kCreated = Symbol('tollgate.createdLeg');
type Leg = net.Socket & { [kSplice]?: Splice; [kCreated]?: true };

/** One TCP read's worth (libuv asks for 64 KiB); shared by every connection of the process. */
const shared = Buffer.allocUnsafe(64 * 1024);
/** A TLS leg delivers at most 16 KiB per read (one record), so a connection's own buffer needs no more. */
const OWN_BUFFER_BYTES = 16 * 1024;
/** Where the read that just ran wants its socket's next read; nextReadBuffer() hands it to Node. */
let chosen: Buffer = shared;

/** onread.buffer: Node calls it when the handle is set up and right after every callback. */
function nextReadBuffer(): Buffer {
  const b = chosen;
  chosen = shared;
  return b;
}

const ONREAD = { buffer: nextReadBuffer, callback: onCreatedLegRead };

/** net.connect for a leg the proxy creates in plain TCP (inbound: the app); read with onread. */
export function connectPlainLeg(options: net.TcpNetConnectOpts): net.Socket {
  const leg: Leg = net.connect({ ...options, onread: ONREAD });
  leg[kCreated] = true;
  return leg;
}

/** tls.connect for a leg the proxy creates in TLS (outbound: the upstream); read with onread. */
export function connectTlsLeg(options: tls.ConnectionOptions): tls.TLSSocket {
  // TLSSocket passes onread on to the net.Socket it creates when given no socket; @types/node omits it.
  const leg: tls.TLSSocket & Leg = tls.connect({ ...options, onread: ONREAD } as tls.ConnectionOptions);
  leg[kCreated] = true;
  return leg;
}

export class Splice {
  readonly tls: net.Socket;
  readonly plain: net.Socket;
  readonly acceptedAt: number;
  readonly #owner: SpliceOwner;
  /** True once bytes may flow (both legs connected and the peer verified). */
  opened = false;
  /** The verified peer's SPIFFE ID, once known. */
  peerId: string | null = null;
  /** The first error on either leg, or a timeout; null for a clean close. */
  error: Error | null = null;
  /** The leg `error` happened on. */
  failedLeg: net.Socket | null = null;
  /** Which leg closed first (tells "client went away" from "upstream failed"). */
  firstClosed: net.Socket | null = null;
  /** Bytes the proxy itself wrote to the plain leg before piping (a PROXY header): not proxied bytes. */
  headerBytes = 0;
  #openLegs = 2;
  /** The leg read with onread, if one was made by connectPlainLeg / connectTlsLeg, and where its bytes go. */
  readonly #created: Leg | null;
  readonly #to: net.Socket;
  /** #to is plain TCP (whatever its role), where a written view can stay referenced after write(). */
  readonly #intoPlain: boolean;
  /** This connection's read buffer, once it writes into plain TCP and has passed a chunk on. */
  #own: Buffer | null = null;
  #passedOne = false;
  /** Copies of what the created leg read before open(), and whether it ended; open() passes them on. */
  #early: Buffer[] | null = null;
  #earlyEnd = false;
  /** The created leg stopped reading until the other leg drains. */
  #awaitingDrain = false;
  /** Told of every chunk either way while the connection waits for a quiet moment to close (deadlines.ts). */
  #watch: ActivityWatch | null = null;

  constructor(options: SpliceOptions) {
    this.tls = options.tls;
    this.plain = options.plain;
    this.acceptedAt = options.acceptedAt;
    this.#owner = options.owner;
    this.#attach(this.tls, options.setupTimeoutMs);
    this.#attach(this.plain, options.setupTimeoutMs);
    const created = (this.tls as Leg)[kCreated] ? this.tls : (this.plain as Leg)[kCreated] ? this.plain : null;
    this.#created = created;
    this.#to = created === this.tls ? this.plain : this.tls;
    this.#intoPlain = !(this.#to as tls.TLSSocket).encrypted;
    // With onread, Node still emits 'end' at EOF, but possibly before open(): listen from the start.
    created?.on('end', onCreatedLegEnd);
  }

  #attach(leg: Leg, setupTimeoutMs: number): void {
    leg[kSplice] = this;
    leg.on('error', onLegError);
    leg.on('close', onLegClose);
    leg.on('timeout', onLegTimeout);
    if (setupTimeoutMs > 0) leg.setTimeout(setupTimeoutMs);
  }

  /**
   * Let bytes flow both ways, with backpressure and half-close (end → end): pipe() from an accepted
   * leg, onread (forward) from a created one. The created leg is not paused before this: a TLS leg
   * must read to finish its handshake, and an app leg only starts reading after 'connect', whose
   * listener calls open(). What it reads before is held (forward) and passed on here, first.
   */
  open(): void {
    if (this.opened || this.tls.destroyed || this.plain.destroyed) return;
    this.opened = true;
    // The setup timeout ends here; idleness is the owner's sweep (idle-sweep.ts), not a timer per leg.
    this.tls.setTimeout(0);
    this.plain.setTimeout(0);
    const created = this.#created;
    if (created !== this.tls) this.tls.pipe(this.plain);
    if (created !== this.plain) this.plain.pipe(this.tls);
    if (!created) return;
    const to = this.#to;
    to.on('drain', onOtherLegDrain);
    let more = true;
    for (const chunk of this.#early ?? []) more = to.write(chunk);
    this.#early = null;
    if (this.#earlyEnd) to.end();
    else if (more) created.resume();
    else this.#awaitingDrain = true;
  }

  /** Close both legs now (no TLS close_notify, no flushing), remembering the first failure. */
  destroy(error?: Error, on?: net.Socket): void {
    if (error && !this.error) {
      this.error = error;
      this.failedLeg = on ?? null;
    }
    this.tls.destroy();
    this.plain.destroy();
  }

  /** Bytes read and written on both legs so far (the idle sweep's measure of activity). */
  bytesMoved(): number {
    return this.tls.bytesRead + this.tls.bytesWritten + this.plain.bytesRead + this.plain.bytesWritten;
  }

  /** Nothing moved for limits.idleTimeout (idle-sweep.ts): close both legs now. */
  idleTimedOut(): void {
    if (!this.opened) return; // still in its set-up: the set-up timeout decides
    this.destroy(new TollgateError('TG_UNAVAILABLE', 'connection idle timeout', { details: { reason: 'idle_timeout' } }));
  }

  get closed(): boolean {
    return this.#openLegs === 0;
  }

  /** Nothing is waiting to be written on either leg. */
  get flushed(): boolean {
    return this.tls.writableLength === 0 && this.plain.writableLength === 0;
  }

  /** Close gracefully: FIN (and TLS close_notify) on both legs, after what each still has to write. */
  end(): void {
    this.tls.end();
    this.plain.end();
  }

  /**
   * Report every chunk to `watch` (null: stop): from the responder (the created leg, read by forward())
   * or from the initiator (the accepted leg, which the proxy reads with pipe()). A connection with no
   * created leg cannot tell the two apart and reports nothing.
   */
  watchActivity(watch: ActivityWatch | null): void {
    const created = this.#created;
    if (!created) return;
    const accepted = created === this.tls ? this.plain : this.tls;
    if (watch && !this.#watch) accepted.on('data', onWatchedInitiatorData);
    if (!watch && this.#watch) accepted.off('data', onWatchedInitiatorData);
    this.#watch = watch;
  }

  /** @internal The accepted leg (the initiator's side) read a chunk while watched. */
  initiatorSpoke(): void {
    this.#watch?.(this, false);
  }

  /**
   * @internal The created leg read `n` bytes into `buf` (`shared` or this connection's own buffer).
   * Returns false to stop reading (Node calls readStop), until open() or the other leg's 'drain'.
   */
  forward(buf: Buffer, n: number): boolean {
    const to = this.#to;
    const intoPlain = this.#intoPlain;
    let more = false;
    if (!this.opened) {
      (this.#early ??= []).push(Buffer.copyBytesFrom(buf, 0, n));
    } else if (!to.destroyed) {
      if (to.writableLength !== 0 || to.writableCorked !== 0 || (intoPlain && buf === shared)) {
        more = to.write(Buffer.copyBytesFrom(buf, 0, n));
      } else {
        more = to.write(buf.subarray(0, n));
        // libuv still holds part of `buf`: it is that write's until it completes.
        if (intoPlain && to.writableLength !== 0) this.#own = null;
      }
      if (intoPlain && this.#passedOne) this.#own ??= Buffer.allocUnsafe(OWN_BUFFER_BYTES);
      this.#passedOne = true;
      this.#awaitingDrain = !more;
      if (this.#watch) this.#watch(this, true);
    }
    chosen = this.#own ?? shared;
    return more;
  }

  /** @internal The other leg drained: the created leg may read again. */
  otherLegDrained(): void {
    if (!this.#awaitingDrain) return;
    this.#awaitingDrain = false;
    this.#created?.resume();
  }

  /** @internal The created leg reached EOF: pass it on (half-close), after what open() still holds. */
  createdLegEnded(): void {
    if (!this.opened) this.#earlyEnd = true;
    else this.#to.end();
  }

  /** @internal */
  legClosed(leg: net.Socket): void {
    this.firstClosed ??= leg;
    const other = leg === this.tls ? this.plain : this.tls;
    // A leg that closed after both of its directions finished has passed its end on (pipe() or
    // createdLegEnded), and the other leg closes by itself once it has flushed. Any other close (reset,
    // destroy, error before open) takes the other leg down at once.
    if (!other.destroyed && !(this.opened && leg.readableEnded && leg.writableFinished)) other.destroy();
    if (--this.#openLegs === 0) this.#owner.spliceClosed(this);
  }
}

/** The Splice a socket belongs to, if any (lets proxies share one listener across connections). */
export function spliceOf(socket: net.Socket): Splice | undefined {
  return (socket as Leg)[kSplice];
}

function onCreatedLegRead(this: Leg, nread: number, buf: Buffer): boolean {
  const s = this[kSplice];
  if (s) return s.forward(buf, nread);
  // Not spliced (yet): nothing may consume these bytes, and the connection cannot go on without them.
  chosen = shared;
  this.destroy();
  return false;
}

function onCreatedLegEnd(this: Leg): void {
  this[kSplice]?.createdLegEnded();
}

function onOtherLegDrain(this: Leg): void {
  this[kSplice]?.otherLegDrained();
}

function onWatchedInitiatorData(this: Leg): void {
  this[kSplice]?.initiatorSpoke();
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
  // Only before open(): open() clears the set-up timeout, and idleness is the owner's sweep.
  s.destroy(new TollgateError('TG_UNAVAILABLE', 'connection setup timed out', { details: { reason: 'timeout' } }), this);
}
