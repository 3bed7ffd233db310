// When the sidecar renews and how long it waits after a failure: pure functions of the certificate,
// the attempt number and an injected random source, so a fleet's schedule can be tested exactly and
// a 10,000-sidecar renewal storm spreads by jitter instead of arriving in lockstep.

export interface Lifetime {
  readonly notBefore: number;
  readonly notAfter: number;
}

export interface BackoffOptions {
  readonly baseMs?: number;
  readonly maxMs?: number;
}

export const DEFAULT_BACKOFF = Object.freeze({ baseMs: 1000, maxMs: 60_000 });

/** Renewal happens at 50 % of the lifetime ± this share of the lifetime. */
export const RENEWAL_JITTER = 0.1;

/** A random() result forced into [0, 1): a broken source must not schedule outside the window. */
function unit(random: () => number): number {
  const r = random();
  if (!(r >= 0)) return 0;
  return r < 1 ? r : 1 - Number.EPSILON;
}

/**
 * Epoch ms at which to renew: uniformly in [40 %, 60 %) of the lifetime, driven by `random`.
 * Never before notBefore, always before notAfter for any lifetime of 2 ms or more.
 */
export function renewAt(svid: Lifetime, random: () => number): number {
  const lifetime = Math.max(0, svid.notAfter - svid.notBefore);
  // Integer window [start, start + width): floating-point 0.4 + 0.2·r can round up to exactly 60 %.
  const start = Math.floor(lifetime * (0.5 - RENEWAL_JITTER));
  const width = Math.floor(lifetime * (0.5 + RENEWAL_JITTER)) - start;
  const offset = width > 0 ? Math.min(width - 1, Math.floor(width * unit(random))) : 0;
  return svid.notBefore + start + offset;
}

/**
 * Delay before retry number `attempt` (0 = the first retry), "equal jitter":
 *   ceiling = min(maxMs, baseMs · 2^attempt)
 *   delay   = ceiling / 2 + random · ceiling / 2        ∈ [ceiling/2, ceiling)
 * Half the ceiling guarantees growth; the random half spreads a fleet that failed at the same moment
 * (a CA restart) over a window as wide as the wait itself. The delay never exceeds maxMs.
 */
export function backoffDelay(attempt: number, random: () => number, options: BackoffOptions = {}): number {
  const baseMs = Math.max(1, options.baseMs ?? DEFAULT_BACKOFF.baseMs);
  const maxMs = Math.max(baseMs, options.maxMs ?? DEFAULT_BACKOFF.maxMs);
  // 2^40 · 1 ms already exceeds any sensible maxMs; bounding the exponent keeps the product finite.
  const exponent = Number.isFinite(attempt) ? Math.min(Math.max(0, Math.floor(attempt)), 40) : 40;
  const ceiling = Math.min(maxMs, baseMs * 2 ** exponent);
  return Math.floor(ceiling / 2 + (unit(random) * ceiling) / 2);
}

/**
 * Shorten a retry delay so one last attempt happens `marginMs` before the SVID expires, instead of the
 * backoff sleeping through the expiry. Past that point the delay is returned unchanged: the next
 * attempt is the expired-SVID path (token attestation), which backs off normally.
 */
export function retryBeforeExpiry(options: { now: number; delayMs: number; notAfter: number; marginMs?: number }): number {
  const lastChance = options.notAfter - (options.marginMs ?? 1000);
  if (options.now >= lastChance || options.now + options.delayMs <= lastChance) return options.delayMs;
  return lastChance - options.now;
}

/**
 * Delay before an early renewal after a bundle push dropped the root our SVID chains to: uniformly in
 * [0, spreadMs), so every sidecar of the fleet does not call the CA in the same millisecond.
 */
export function earlyRenewalDelay(random: () => number, spreadMs = 10_000): number {
  return Math.floor(unit(random) * Math.max(0, spreadMs));
}

/**
 * The lifetime to schedule renewal from. The CA backdates notBefore (clock-skew allowance, 30 s); with
 * a short TTL that backdating would put 50 % of the lifetime in the past and renew at once, in a loop.
 * Counting from the moment we received the SVID (when that is later) keeps the 50 % meaning "half of
 * the time we will hold it".
 */
export function heldLifetime(svid: Lifetime, receivedAt: number): Lifetime {
  return { notBefore: Math.min(Math.max(svid.notBefore, receivedAt), svid.notAfter), notAfter: svid.notAfter };
}

/** A deterministic random source in [0, 1) (mulberry32), for tests and simulations. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
