// Automatic intermediate rotation in `ca serve` (PRODUCT.md §4), when the active root's key is in
// the store: prepare a new intermediate at 1/2 of the active one's life, activate it at 2/3, retire
// the old one once its leaves can no longer be alive. The plan is ca/schedule.ts's autoStep on the
// injected Clock; each step is one compare-and-swap (ca/rotation-steps.ts), so with several `ca
// serve` processes on one store exactly one wins and the others re-read and find nothing to do.
import type { Clock, TimerHandle } from '../common/clock.ts';
import { isTollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { activateStep, prepareIntermediateStep, retireStep, type StepContext } from './rotation-steps.ts';
import { autoStep, type AutoStep } from './schedule.ts';
import type { StoreFollower } from './follower.ts';

/** After a failed step, try again this much later (a full disk, a lock held too long). */
export const RETRY_MS = 60_000;

export interface AutoRotatorOptions {
  readonly step: StepContext;
  readonly follower: StoreFollower;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly maxLeafTtlMs: number;
}

export class AutoRotator {
  readonly #o: AutoRotatorOptions;
  #timer: TimerHandle | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(options: AutoRotatorOptions) {
    this.#o = options;
    options.follower.onChange(() => this.#plan());
  }

  start(): void {
    this.#plan();
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
  }

  async settled(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** What automatic rotation would do now, from the records this process follows. */
  next(): AutoStep {
    return autoStep(this.#o.follower.current.records, this.#o.clock.now(), { maxLeafTtlMs: this.#o.maxLeafTtlMs });
  }

  #plan(): void {
    if (this.#stopped || this.#running) return;
    this.#timer?.cancel();
    const step = this.next();
    if (step.action !== 'none') {
      this.#run(step.action);
      return;
    }
    if (step.at !== undefined) this.#timer = this.#o.clock.setTimer(step.at - this.#o.clock.now(), () => this.#plan());
  }

  #run(action: 'prepare' | 'activate' | 'retire'): void {
    const { step, follower, logger, clock } = this.#o;
    let retry = false;
    this.#running = (async () => {
      try {
        // Decided on the records at hand; the step re-reads and its commit is a compare-and-swap,
        // so a step another process already took fails here with a conflict or a state refusal.
        const done = action === 'prepare' ? await prepareIntermediateStep(step, { automatic: true }) : action === 'activate' ? await activateStep(step) : await retireStep(step);
        logger.info(`automatic intermediate rotation: ${action} done`, { rotation: done.records.rotation, revision: done.revision });
      } catch (e) {
        if (isTollgateError(e, 'TG_STORE_CONFLICT') || isTollgateError(e, 'TG_ROTATION_STATE') || isTollgateError(e, 'TG_ROTATION_IN_PROGRESS')) {
          logger.info(`automatic intermediate rotation: ${action} was taken by another process`, { reason: (e as Error).message });
        } else {
          logger.error(`automatic intermediate rotation: ${action} failed; retrying in ${RETRY_MS / 1000}s`, { error: (e as Error).message });
          retry = true;
        }
      }
      await follower.check();
    })().finally(() => {
      this.#running = undefined;
      if (this.#stopped) return;
      if (retry) this.#timer = clock.setTimer(RETRY_MS, () => this.#plan());
      else this.#plan();
    });
  }
}
