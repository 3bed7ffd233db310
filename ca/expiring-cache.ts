// A bounded map whose entries are valid only inside a time window of the injected clock: used for
// results that stay true until a certificate expires (a verified client chain). Least recently used
// entries go first when it is full; an entry outside its window is a miss and is dropped.
import type { Clock } from '../common/clock.ts';

interface Entry<V> {
  readonly value: V;
  readonly from: number;
  readonly until: number;
}

export interface CacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly size: number;
}

export class ExpiringCache<V> {
  readonly #map = new Map<string, Entry<V>>();
  readonly #max: number;
  readonly #clock: Clock;
  #hits = 0;
  #misses = 0;

  constructor(options: { maxEntries: number; clock: Clock }) {
    if (!(options.maxEntries >= 1)) throw new RangeError('maxEntries must be at least 1');
    this.#max = options.maxEntries;
    this.#clock = options.clock;
  }

  get(key: string): V | undefined {
    const e = this.#map.get(key);
    if (e) {
      const now = this.#clock.now();
      if (now >= e.from && now <= e.until) {
        this.#hits++;
        this.#map.delete(key); // re-insert: Map order is our recency order
        this.#map.set(key, e);
        return e.value;
      }
      this.#map.delete(key);
    }
    this.#misses++;
    return undefined;
  }

  /** Keep `value` for clock times in [from, until] (epoch ms, both inclusive). */
  set(key: string, value: V, window: { from: number; until: number }): void {
    this.#map.delete(key);
    while (this.#map.size >= this.#max) this.#map.delete(this.#map.keys().next().value as string);
    this.#map.set(key, { value, from: window.from, until: window.until });
  }

  clear(): void {
    this.#map.clear();
  }

  stats(): CacheStats {
    return { hits: this.#hits, misses: this.#misses, size: this.#map.size };
  }
}
