// When each open connection must close, and closing it at a quiet moment before that.
//
// A connection lives no longer than its peer's certificate and limits.maxConnectionAge (issue 14).
// Cutting it exactly at the deadline fails whatever request is in flight at that instant; under
// steady load (the rotation bench: ~100 requests/s per keep-alive connection) that is about one
// connection in ten. So in a window before the deadline (a tenth of the time the connection had
// left when the deadline was set, at most a minute) the connection is watched, and closed gracefully
// (FIN and TLS close_notify on both legs, nothing cut) at its first quiet moment: the responder's
// bytes have been passed on and flushed, and nothing moved either way for QUIET_MS. A protocol where
// the initiator speaks and the responder answers (HTTP/1.1, gRPC unary, most RPC) then loses nothing;
// a client that sees the FIN before reusing the connection opens a new one. A connection that never
// quiets down (a stream, an upload) is destroyed at the deadline, as before. A revoked peer
// (policy_revoked) gets no window.
//
// Quiet is short on purpose (QUIET_MS): a client that pauses between requests (10 ms in the
// rotation bench) then sees the FIN well before it sends again. A longer quiet, or one that shrinks
// towards the deadline, fires when it matches the client's pause, i.e. just as the next request goes
// out; a shrinking one did, in the soak. And the close waits for one more turn of the event loop
// (setImmediate, after the poll phase), so that bytes which arrived while the process was busy are
// seen before the decision, not after the FIN.
//
// One clock timer serves every deadline and window start (as before); the per-connection quiet
// timers exist only for connections inside their window.
import type { Clock, TimerHandle } from '../common/clock.ts';
import type { Splice } from './splice.ts';

/** Why an open connection was closed by the sidecar (metric reason, with result "closed"). */
export type DeadlineReason = 'cert_expired' | 'max_age' | 'policy_revoked';

/** Nothing moved either way for this long after an answer: the connection is quiet. */
export const QUIET_MS = 5;
/** The watch window before a deadline: this share of the time left when the deadline was set... */
export const QUIET_WINDOW_SHARE = 0.1;
/** ...but never longer than this. */
export const QUIET_WINDOW_MAX_MS = 60_000;
/** Graceful closes are logged together, one line per this interval at most. */
export const QUIET_LOG_MS = 1_000;

interface Deadline {
  at: number;
  reason: DeadlineReason;
  /** From this clock time on the connection is watched for a quiet moment. */
  quietFrom: number;
  watching: boolean;
  /** Closed gracefully already; destroyed at `at` if the peer has not closed its side by then. */
  ended: boolean;
  quietTimer: TimerHandle | null;
  /** Chunks seen while watched (either way). */
  activity: number;
}

export interface ConnectionDeadlinesOptions {
  readonly clock: Clock;
  /** Destroy the connection now: its deadline passed. Counted and logged by the caller. */
  readonly cut: (splice: Splice, reason: DeadlineReason) => void;
  /** The connection was closed gracefully at a quiet moment inside its window. */
  readonly endedQuietly: (splice: Splice, reason: DeadlineReason) => void;
  /**
   * How many connections were closed, by reason: `cut` after a sweep that destroyed some at their
   * deadline; `quiet` at most once a second (QUIET_LOG_MS) for those closed gracefully in between.
   * `firstAt`: clock time of the first close counted.
   */
  readonly closed: (counts: Record<string, number>, how: 'cut' | 'quiet', firstAt: number) => void;
}

export class ConnectionDeadlines {
  readonly #o: ConnectionDeadlinesOptions;
  readonly #all = new Map<Splice, Deadline>();
  #timer: { at: number; handle: TimerHandle } | null = null;
  #quietClosed: Record<string, number> = {};
  #quietFirstAt = 0;
  #quietLog: TimerHandle | null = null;
  readonly #onActivity = (splice: Splice, fromResponder: boolean): void => this.#activity(splice, fromResponder);

  constructor(options: ConnectionDeadlinesOptions) {
    this.#o = options;
  }

  get size(): number {
    return this.#all.size;
  }

  /** `splice` must close by `at` (clock ms) at the latest; the earliest deadline set wins. */
  set(splice: Splice, at: number, reason: DeadlineReason): void {
    const have = this.#all.get(splice);
    if (have && have.at <= at) return;
    if (have) this.#stopWatching(splice, have);
    const now = this.#o.clock.now();
    const window = reason === 'policy_revoked' ? 0 : Math.min(QUIET_WINDOW_MAX_MS, Math.max(0, at - now) * QUIET_WINDOW_SHARE);
    const d: Deadline = { at, reason, quietFrom: at - window, watching: false, ended: false, quietTimer: null, activity: 0 };
    this.#all.set(splice, d);
    this.#arm(Math.min(this.#timer?.at ?? Infinity, d.quietFrom));
  }

  /** The connection closed (or is being destroyed by its owner): forget it. */
  delete(splice: Splice): void {
    const d = this.#all.get(splice);
    if (!d) return;
    this.#stopWatching(splice, d);
    this.#all.delete(splice);
    if (this.#all.size === 0) this.#disarm(); // nothing left to close: no timer waits
  }

  /** Stop every timer (the listener closed). */
  close(): void {
    for (const [splice, d] of this.#all) this.#stopWatching(splice, d);
    this.#all.clear();
    this.#disarm();
    this.#quietLog?.cancel();
    this.#flushQuietLog();
  }

  #arm(at: number): void {
    if (this.#timer?.at === at) return;
    this.#timer?.handle.cancel();
    this.#timer = at === Infinity ? null : { at, handle: this.#o.clock.setTimer(at - this.#o.clock.now(), () => this.#sweep()) };
  }

  #disarm(): void {
    this.#timer?.handle.cancel();
    this.#timer = null;
  }

  /** Cut what is past its deadline, start watching what entered its window, wait for the next of either. */
  #sweep(): void {
    this.#timer = null;
    const now = this.#o.clock.now();
    const cut: Record<string, number> = {};
    let next = Infinity;
    for (const [splice, d] of [...this.#all]) {
      if (d.at <= now) {
        this.delete(splice);
        if (d.ended) splice.destroy(); // ended gracefully already and counted; the peer kept its side open
        else {
          this.#o.cut(splice, d.reason);
          cut[d.reason] = (cut[d.reason] ?? 0) + 1;
        }
        continue;
      }
      if (!d.watching && d.quietFrom <= now) {
        d.watching = true;
        splice.watchActivity(this.#onActivity);
      }
      next = Math.min(next, d.watching ? d.at : d.quietFrom);
    }
    if (Object.keys(cut).length > 0) this.#o.closed(cut, 'cut', now);
    this.#arm(next);
  }

  #activity(splice: Splice, fromResponder: boolean): void {
    const d = this.#all.get(splice);
    if (!d || d.ended) return;
    d.quietTimer?.cancel();
    d.activity++;
    // The initiator spoke: a request is in flight until the responder answers.
    d.quietTimer = fromResponder ? this.#armQuiet(splice) : null;
  }

  #armQuiet(splice: Splice): TimerHandle {
    return this.#o.clock.setTimer(QUIET_MS, () => this.#quietCheck(splice));
  }

  #quietCheck(splice: Splice): void {
    const d = this.#all.get(splice);
    if (!d || d.ended) return;
    d.quietTimer = null;
    if (!splice.flushed) {
      d.quietTimer = this.#armQuiet(splice);
      return;
    }
    // Whatever arrived while this process was busy is read in the poll phase, before setImmediate;
    // any chunk either way bumps `activity` (and re-arms or drops the quiet timer).
    const seen = d.activity;
    setImmediate(() => {
      if (this.#all.get(splice) === d && !d.ended && d.activity === seen) this.#endQuietly(splice, d);
    });
  }

  #endQuietly(splice: Splice, d: Deadline): void {
    this.#stopWatching(splice, d);
    d.ended = true;
    splice.end();
    this.#o.endedQuietly(splice, d.reason);
    if (Object.keys(this.#quietClosed).length === 0) this.#quietFirstAt = this.#o.clock.now();
    this.#quietClosed[d.reason] = (this.#quietClosed[d.reason] ?? 0) + 1;
    this.#quietLog ??= this.#o.clock.setTimer(QUIET_LOG_MS, () => this.#flushQuietLog());
  }

  #flushQuietLog(): void {
    this.#quietLog = null;
    const counts = this.#quietClosed;
    this.#quietClosed = {};
    if (Object.keys(counts).length > 0) this.#o.closed(counts, 'quiet', this.#quietFirstAt);
  }

  #stopWatching(splice: Splice, d: Deadline): void {
    d.quietTimer?.cancel();
    d.quietTimer = null;
    if (d.watching) splice.watchActivity(null);
    d.watching = false;
  }
}
