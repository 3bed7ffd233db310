// No silent expiry (PRODUCT.md §4): the CA re-judges its trust health (ca/schedule.ts's health())
// whenever the store changes and at each point where it would change by time alone (half life, the
// warning window, expiry of the active authorities), sets tollgate_ca_expiry_warning, and logs a
// line on every change of state and once a day while it is not ok.
import type { Clock, TimerHandle } from '../common/clock.ts';
import type { Logger } from '../common/log.ts';
import type { StoreFollower } from './follower.ts';
import type { CaMetrics } from './metrics.ts';
import { health, HEALTH_LEVEL, type Health } from './schedule.ts';
import { active, lifePoint, ms, PREPARE_AT, WARNING_FRACTION, type StoreRecords } from './slots.ts';

const REPEAT_MS = 24 * 3600 * 1000;

/** The next moment health can change with time alone, after `now`. */
export function nextHealthChange(r: StoreRecords, now: number): number | undefined {
  const act = active(r);
  const points = [act.intermediate, act.root].flatMap((a) => [lifePoint(a, PREPARE_AT), lifePoint(a, 1 - WARNING_FRACTION), ms(a.notAfter)]);
  const future = points.filter((t) => t > now);
  return future.length ? Math.min(...future) : undefined;
}

export class ExpiryWatchdog {
  readonly #follower: StoreFollower;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #metrics: CaMetrics;
  readonly #autoRotate: boolean;
  #timer: TimerHandle | undefined;
  #last: Health | undefined;
  #lastLogged = -Infinity;

  constructor(options: { follower: StoreFollower; clock: Clock; logger: Logger; metrics: CaMetrics; autoRotate: boolean }) {
    this.#follower = options.follower;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#autoRotate = options.autoRotate;
    this.#follower.onChange(() => this.check());
  }

  /** Health now (for /readyz and /status). */
  current(): Health {
    const records = this.#follower.current.records;
    return health(records, this.#clock.now(), { autoRotate: this.#autoRotate && active(records).root.keyInStore });
  }

  start(): void {
    this.check();
  }

  stop(): void {
    this.#timer?.cancel();
  }

  check(): void {
    const now = this.#clock.now();
    const h = this.current();
    this.#metrics.expiryWarning.set(HEALTH_LEVEL[h.state]);
    const changed = h.state !== this.#last?.state;
    if (h.state !== 'ok' && (changed || now - this.#lastLogged >= REPEAT_MS)) {
      this.#logger.log(h.state === 'warning' ? 'warn' : 'error', `CA trust ${h.state}: ${h.detail}`, { health: h.state });
      this.#lastLogged = now;
    } else if (changed && this.#last) {
      this.#logger.info('CA trust ok again', { detail: h.detail });
    }
    this.#last = h;
    this.#timer?.cancel();
    const next = [nextHealthChange(this.#follower.current.records, now), h.state === 'ok' ? undefined : now + REPEAT_MS].filter((t): t is number => t !== undefined);
    if (next.length) this.#timer = this.#clock.setTimer(Math.min(...next) - now, () => this.check());
  }
}
