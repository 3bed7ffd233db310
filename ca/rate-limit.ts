// Token buckets keyed by identity, certificate or peer address, driven by an injected clock.
// The key table is bounded; when full, the least recently used key leaves (never the whole table).
import { isIPv6 } from 'node:net';
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

export const DEFAULT_MAX_KEYS = 100_000;

export class RateLimiter {
  readonly #limit: RateLimit;
  readonly #clock: Clock;
  // A Map iterates in insertion order; a key is re-inserted on every use, so the first key is the
  // least recently used one.
  readonly #buckets = new Map<string, Bucket>();
  readonly #maxKeys: number;

  constructor(options: { limit: RateLimit; clock: Clock; maxKeys?: number }) {
    this.#limit = options.limit;
    this.#clock = options.clock;
    this.#maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS;
  }

  /** Take one token for `key`; false when the bucket is empty. A limit of 0/s means unlimited. */
  take(key: string): boolean {
    if (this.#limit.perSecond <= 0) return true;
    const now = this.#clock.now();
    let b = this.#buckets.get(key);
    if (!b) {
      if (this.#buckets.size >= this.#maxKeys) this.#buckets.delete(this.#buckets.keys().next().value as string);
      b = { tokens: this.#limit.burst, at: now };
    } else {
      this.#buckets.delete(key);
      b.tokens = Math.min(this.#limit.burst, b.tokens + ((now - b.at) / 1000) * this.#limit.perSecond);
      b.at = now;
    }
    this.#buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  get size(): number {
    return this.#buckets.size;
  }

  has(key: string): boolean {
    return this.#buckets.has(key);
  }
}

/**
 * The per-address bucket key: an IPv4 address as is, an IPv6 address by its /64 (one host usually
 * holds a whole /64, so per-address buckets would hand an attacker 2^64 of them). An IPv4-mapped
 * IPv6 address counts as its IPv4 address.
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  // Without "::" the tail is empty and nothing is filled in; parseInt reads hex in either case.
  const [head, tail] = address.split('::');
  const groupsOf = (part = ''): string[] => part.split(':').filter((g) => g !== '');
  const h = groupsOf(head);
  const t = groupsOf(tail);
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return `${groups.slice(0, 4).map((g) => Number.parseInt(g, 16).toString(16)).join(':')}::/64`;
}
