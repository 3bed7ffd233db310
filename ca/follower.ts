// A running CA follows its store: other `ca serve` processes and the CLI change the records (a
// rotation step, a new bundle), and every process must serve the same state. The store's own watch
// (fs.watch on the directory, a Kubernetes watch on the Secret) reacts within milliseconds; a poll
// of the revision on the injected Clock catches what watching misses (network filesystems, a watch
// that stalls). A new revision is loaded completely, then handed to `apply` in one synchronous
// step; a revision that cannot be loaded is logged and the current state stays.
import type { Clock, TimerHandle } from '../common/clock.ts';
import type { Logger } from '../common/log.ts';
import type { CaSnapshot } from './snapshot.ts';

export interface FollowerOptions {
  readonly initial: CaSnapshot;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The store's current revision, cheaply. */
  readonly revision: () => number | Promise<number>;
  readonly load: () => Promise<CaSnapshot>;
  /** Called with each new snapshot; must not throw for a usable snapshot. */
  readonly apply: (next: CaSnapshot, previous: CaSnapshot) => void;
  readonly pollMs: number;
  /** Subscribe to the store's changes (returns the unsubscribe); none in tests on a ManualClock. */
  readonly watch?: ((changed: () => void) => () => void) | undefined;
}

export class StoreFollower {
  readonly #o: FollowerOptions;
  #current: CaSnapshot;
  #timer: TimerHandle | undefined;
  #unwatch: (() => void) | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #failedRevision = -1;
  #stopped = false;
  readonly #listeners = new Set<(s: CaSnapshot) => void>();

  constructor(options: FollowerOptions) {
    this.#o = options;
    this.#current = options.initial;
  }

  get current(): CaSnapshot {
    return this.#current;
  }

  /** Called after every applied snapshot (the rotator re-plans on it). */
  onChange(listener: (s: CaSnapshot) => void): void {
    this.#listeners.add(listener);
  }

  start(): void {
    this.#schedule();
    this.#unwatch = this.#o.watch?.(() => void this.check());
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#unwatch?.();
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#o.clock.setTimer(this.#o.pollMs, () => {
      void this.check().finally(() => this.#schedule());
    });
  }

  /** Look at the store now; concurrent calls share one check (and one more runs if asked meanwhile). */
  check(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#checkOnce().finally(() => {
      this.#running = undefined;
      if (this.#again && !this.#stopped) {
        this.#again = false;
        void this.check();
      }
    });
    return this.#running;
  }

  /** Resolves once no check is in flight. */
  async settled(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #checkOnce(): Promise<void> {
    let revision: number;
    try {
      revision = await this.#o.revision();
    } catch (e) {
      this.#o.logger.error('cannot read the CA store revision; keeping the current state', { error: (e as Error).message });
      return;
    }
    if (revision === this.#current.revision || revision === this.#failedRevision) return;
    let next: CaSnapshot;
    try {
      next = await this.#o.load();
    } catch (e) {
      // Logged once per bad revision, not on every poll.
      this.#failedRevision = revision;
      this.#o.logger.error('cannot load the new CA store revision; keeping the current state', { revision, error: (e as Error).message });
      return;
    }
    if (next.revision <= this.#current.revision) return;
    const previous = this.#current;
    try {
      this.#o.apply(next, previous);
    } catch (e) {
      this.#failedRevision = next.revision;
      this.#o.logger.error('cannot apply the new CA store revision; keeping the current state', { revision: next.revision, error: (e as Error).message });
      return;
    }
    this.#current = next;
    this.#o.logger.info('CA store revision applied', { revision: next.revision, bundle_version: next.bundle.version, intermediate: next.intermediateRecord.id });
    for (const l of this.#listeners) l(next);
  }
}
