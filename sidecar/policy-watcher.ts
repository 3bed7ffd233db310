// Keeps the active inbound Policy in step with its file.
//
// The *directory* holding the file is watched, not the file: Kubernetes mounts a ConfigMap as
//   policy.yaml -> ..data/policy.yaml,  ..data -> ..2026_xx_yy/
// and updates it by renaming a new `..data` symlink over the old one, so the file's inode never
// changes while its content does. Any event in the directory schedules a debounced re-read; content
// equal to the last text read is skipped. A bad file is reported through onError (and counted in
// reloadFailures) and the old policy stays; nothing thrown escapes the watcher. `reload()` (the
// sidecar calls it on SIGHUP) re-reads at once.
import { watch, readFileSync, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { TollgateError, toTollgateError } from '../common/errors.ts';
import { parseTrustDomain } from '../pki/spiffe-id.ts';
import { systemClock, type Clock, type TimerHandle } from '../common/clock.ts';
import { parsePolicy, type Policy } from './policy.ts';

export interface PolicyWatcherOptions {
  /** The policy file; may be a symlink (ConfigMap mount). */
  path: string;
  /** The sidecar's own trust domain (the default for `trustDomains`). */
  ownTrustDomain: string;
  /** Called after a *different* valid policy became active (not for the initial load in start()). */
  onChange?: (p: Policy) => void;
  /** Called for every failed reload; the old policy stays active. */
  onError?: (err: TollgateError) => void;
  /** Quiet time after the last directory event before re-reading. Default 100 ms. */
  debounceMs?: number;
  /** Timers for the debounce; default the system clock. */
  clock?: Clock;
}

export type ReloadResult =
  | { ok: true; policy: Policy; /** false when the text was unchanged */ changed: boolean }
  | { ok: false; error: TollgateError };

/** How long to wait before re-arming the directory watch after fs.watch reports an error. */
const REWATCH_MS = 1000;

export class PolicyWatcher {
  readonly #path: string;
  readonly #dir: string;
  readonly #ownTrustDomain: string;
  readonly #onChange: ((p: Policy) => void) | undefined;
  readonly #onError: ((err: TollgateError) => void) | undefined;
  readonly #debounceMs: number;
  readonly #clock: Clock;
  #policy: Policy | null = null;
  /** Text of the active policy. */
  #activeText: string | null = null;
  /** Text of the last read, good or bad: the watcher skips events that did not change it. */
  #lastText: string | null = null;
  #watcher: FSWatcher | null = null;
  #timer: TimerHandle | null = null;
  #closed = false;
  #failures = 0;

  constructor(options: PolicyWatcherOptions) {
    this.#path = options.path;
    this.#dir = dirname(options.path);
    this.#ownTrustDomain = parseTrustDomain(options.ownTrustDomain);
    this.#onChange = options.onChange;
    this.#onError = options.onError;
    this.#debounceMs = options.debounceMs ?? 100;
    this.#clock = options.clock ?? systemClock;
    if (!Number.isFinite(this.#debounceMs) || this.#debounceMs < 0) {
      throw new TollgateError('TG_CONFIG_INVALID', `debounceMs must be a number >= 0, got ${String(options.debounceMs)}`);
    }
  }

  /** Failed reloads (watcher-triggered or explicit) since construction. */
  get reloadFailures(): number {
    return this.#failures;
  }

  /** The active policy. Throws if start() has not succeeded. */
  get current(): Policy {
    if (!this.#policy) throw new TollgateError('TG_INTERNAL', 'PolicyWatcher.current read before start()');
    return this.#policy;
  }

  /**
   * Load the file synchronously (throws TG_CONFIG_INVALID on a bad or unreadable file: a sidecar must
   * not start with a broken policy), then start watching its directory. Returns the loaded policy.
   */
  start(): Policy {
    if (this.#closed) throw new TollgateError('TG_INTERNAL', 'PolicyWatcher.start() after close()');
    if (this.#policy) throw new TollgateError('TG_INTERNAL', 'PolicyWatcher.start() called twice');
    const text = this.#read();
    const policy = this.#parse(text);
    this.#policy = policy;
    this.#activeText = text;
    this.#lastText = text;
    this.#watch();
    return policy;
  }

  /** Re-read now. A bad file keeps the old policy, counts a failure and calls onError. Never throws. */
  reload(): ReloadResult {
    if (!this.#policy) {
      return { ok: false, error: new TollgateError('TG_INTERNAL', 'PolicyWatcher.reload() called before start()') };
    }
    this.#cancelTimer();
    return this.#reloadNow(false);
  }

  /** Stop watching. The last active policy stays readable through `current`. */
  close(): void {
    this.#closed = true;
    this.#cancelTimer();
    this.#watcher?.close();
    this.#watcher = null;
  }

  #read(): string {
    try {
      return readFileSync(this.#path, 'utf8');
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'the file does not exist' : (e as Error).message;
      throw new TollgateError('TG_CONFIG_INVALID', `cannot read policy ${this.#path}: ${why}`, {
        cause: e,
        details: { source: this.#path },
      });
    }
  }

  #parse(text: string): Policy {
    return parsePolicy(text, { source: this.#path, ownTrustDomain: this.#ownTrustDomain });
  }

  #reloadNow(skipIfSeen: boolean): ReloadResult {
    const policy = this.#policy!;
    let text: string;
    try {
      text = this.#read();
    } catch (e) {
      const error = toTollgateError(e, 'TG_CONFIG_INVALID');
      // An unreadable file is reported once per state change when watching.
      if (skipIfSeen && this.#lastText === null) return { ok: false, error };
      this.#lastText = null;
      return this.#fail(error);
    }
    if (skipIfSeen && text === this.#lastText) return { ok: true, policy, changed: false };
    this.#lastText = text;
    if (text === this.#activeText) return { ok: true, policy, changed: false };
    let next: Policy;
    try {
      next = this.#parse(text);
    } catch (e) {
      return this.#fail(toTollgateError(e, 'TG_CONFIG_INVALID'));
    }
    this.#policy = next;
    this.#activeText = text;
    this.#notify(() => this.#onChange?.(next));
    return { ok: true, policy: next, changed: true };
  }

  #fail(error: TollgateError): ReloadResult {
    this.#failures++;
    this.#notify(() => this.#onError?.(error), false);
    return { ok: false, error };
  }

  /** Run a user callback; a throw is reported to onError (once), never propagated. */
  #notify(fn: () => void, reportToOnError = true): void {
    try {
      fn();
    } catch (e) {
      if (!reportToOnError) return;
      try {
        this.#onError?.(toTollgateError(e));
      } catch {
        // A failing error handler has nowhere left to report to.
      }
    }
  }

  #watch(): void {
    if (this.#closed) return;
    try {
      const w = watch(this.#dir, { persistent: false }, () => this.#schedule());
      w.on('error', (e) => {
        w.close();
        if (this.#watcher === w) this.#watcher = null;
        this.#notify(() => this.#onError?.(toTollgateError(e, 'TG_UNAVAILABLE')), false);
        this.#rewatchLater();
      });
      this.#watcher = w;
    } catch (e) {
      this.#notify(() => this.#onError?.(new TollgateError('TG_UNAVAILABLE', `cannot watch ${this.#dir} for policy changes: ${(e as Error).message}; reload() still works`, { cause: e })), false);
      this.#rewatchLater();
    }
  }

  #rewatchLater(): void {
    if (this.#closed) return;
    this.#clock.setTimer(REWATCH_MS, () => {
      if (this.#closed || this.#watcher) return;
      this.#watch();
      this.#schedule(); // the file may have changed while nobody was watching
    });
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#cancelTimer();
    this.#timer = this.#clock.setTimer(this.#debounceMs, () => {
      this.#timer = null;
      if (!this.#closed) this.#reloadNow(true);
    });
  }

  #cancelTimer(): void {
    this.#timer?.cancel();
    this.#timer = null;
  }
}
