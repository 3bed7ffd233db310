// Token buckets keyed by identity or peer address, driven by an injected clock.
import type { Clock } from '../common/clock.ts';

export interface RateLimit {
  /** Sustained requests per second. */
  readonly perSecond: number;
  /** Requests allowed at once after a quiet period. */
  readonly burst: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  readonly #limit: RateLimit;
  readonly #clock: Clock;
  readonly #buckets = new Map<string, Bucket>();
  readonly #maxKeys: number;

  constructor(options: { limit: RateLimit; clock: Clock; maxKeys?: number }) {
    this.#limit = options.limit;
    this.#clock = options.clock;
    this.#maxKeys = options.maxKeys ?? 100_000;
  }

  /** Take one token for `key`; false when the bucket is empty. A limit of 0/s means unlimited. */
  take(key: string): boolean {
    if (this.#limit.perSecond <= 0) return true;
    const now = this.#clock.now();
    let b = this.#buckets.get(key);
    if (!b) {
      if (this.#buckets.size >= this.#maxKeys) this.#evictFull(now);
      b = { tokens: this.#limit.burst, at: now };
      this.#buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.#limit.burst, b.tokens + ((now - b.at) / 1000) * this.#limit.perSecond);
      b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  // Buckets that have refilled completely carry no state worth keeping.
  #evictFull(now: number): void {
    for (const [k, b] of this.#buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.#limit.perSecond >= this.#limit.burst) this.#buckets.delete(k);
    }
    if (this.#buckets.size >= this.#maxKeys) this.#buckets.clear();
  }
}
