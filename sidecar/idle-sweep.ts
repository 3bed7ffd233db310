// Closes connections on which nothing moved for limits.idleTimeout, with one clock timer for all of
// them instead of a timer per socket: Node's socket.setTimeout() keeps a Timeout object per leg and
// re-arms it on every read and write, work done for every proxied chunk to catch an event that
// happens, at the default of an hour, almost never. A sweep every tenth of the timeout (1 ms to 60 s)
// compares each connection's byte counters with the last sweep's; one that has not moved for the
// whole timeout is closed. So a connection closes between idleTimeout and idleTimeout plus a tenth.
import type { Clock, TimerHandle } from '../common/clock.ts';

export interface IdleTracked {
  /** Bytes read and written on both legs so far: any change is activity. */
  bytesMoved(): number;
  /** Nothing moved for the idle timeout: close. */
  idleTimedOut(): void;
}

interface Seen {
  moved: number;
  since: number;
}

export class IdleSweep<T extends IdleTracked> {
  readonly #clock: Clock;
  readonly #idleMs: number;
  readonly #everyMs: number;
  readonly #all = new Map<T, Seen>();
  #timer: TimerHandle | null = null;

  constructor(o: { readonly clock: Clock; readonly idleMs: number }) {
    this.#clock = o.clock;
    this.#idleMs = o.idleMs;
    this.#everyMs = Math.min(60_000, Math.max(1, Math.round(o.idleMs / 10)));
  }

  get size(): number {
    return this.#all.size;
  }

  add(x: T): void {
    this.#all.set(x, { moved: x.bytesMoved(), since: this.#clock.now() });
    this.#timer ??= this.#clock.setTimer(this.#everyMs, () => this.#sweep());
  }

  delete(x: T): void {
    this.#all.delete(x);
    if (this.#all.size === 0) this.close(); // no connection: no timer
  }

  close(): void {
    this.#timer?.cancel();
    this.#timer = null;
  }

  #sweep(): void {
    this.#timer = null;
    const now = this.#clock.now();
    const idle: T[] = [];
    for (const [x, seen] of this.#all) {
      const moved = x.bytesMoved();
      if (moved !== seen.moved) {
        seen.moved = moved;
        seen.since = now;
      } else if (now - seen.since >= this.#idleMs) {
        idle.push(x);
      }
    }
    for (const x of idle) {
      this.#all.delete(x);
      x.idleTimedOut();
    }
    if (this.#all.size > 0) this.#timer = this.#clock.setTimer(this.#everyMs, () => this.#sweep());
  }
}
