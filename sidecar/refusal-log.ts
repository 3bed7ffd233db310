// Refusal log lines, rate-limited per reason (issue 14, problem 4): a flood of refused or dropped
// connections must not flood the log. In each window (default 60 s) the first `perWindow` (default 10)
// lines of a reason are written; the rest are counted, and when the window ends one line per reason
// says how many were suppressed. Metrics are not touched here: callers count every refusal.
import type { Clock, TimerHandle } from '../common/clock.ts';
import type { Logger } from '../common/log.ts';

export interface RefusalLogOptions {
  readonly logger: Logger;
  readonly clock: Clock;
  /** Names the suppressed-count event: `${direction}_refusals_suppressed`. */
  readonly direction: string;
  readonly perWindow?: number;
  readonly windowMs?: number;
}

export class RefusalLog {
  readonly #o: RefusalLogOptions;
  readonly #perWindow: number;
  readonly #windowMs: number;
  /** Lines written and suppressed per reason in the current window. */
  #window = new Map<string, { written: number; suppressed: number }>();
  #timer: TimerHandle | null = null;

  constructor(options: RefusalLogOptions) {
    this.#o = options;
    this.#perWindow = options.perWindow ?? 10;
    this.#windowMs = options.windowMs ?? 60_000;
  }

  /** Write a warn line for a refusal of `fields.reason`, unless this reason's share of the window is used up. */
  warn(message: string, fields: Record<string, unknown> & { readonly reason: string }): void {
    let w = this.#window.get(fields.reason);
    if (!w) this.#window.set(fields.reason, (w = { written: 0, suppressed: 0 }));
    this.#timer ??= this.#o.clock.setTimer(this.#windowMs, () => this.#endWindow());
    if (w.written < this.#perWindow) {
      w.written++;
      this.#o.logger.warn(message, fields);
    } else {
      w.suppressed++;
    }
  }

  /** Stop the window timer (the listener closed). */
  close(): void {
    this.#timer?.cancel();
    this.#timer = null;
  }

  #endWindow(): void {
    this.#timer = null;
    const window = this.#window;
    this.#window = new Map();
    for (const [reason, w] of window) {
      if (w.suppressed === 0) continue;
      this.#o.logger.warn(`${w.suppressed} more refusals with reason ${reason} were not logged (at most ${this.#perWindow} lines per reason per ${this.#windowMs / 1000} s; the metrics count all)`, {
        event: `${this.#o.direction}_refusals_suppressed`,
        reason,
        suppressed: w.suppressed,
      });
    }
  }
}
