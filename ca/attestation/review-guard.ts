// What stands between an unauthenticated caller and the API server in TokenReview mode (issue 13,
// problem 7): the checks that need no signature (shape, issuer, audience, expiry, pod-bound claims)
// run locally first, a short negative cache answers a token already refused, and a cap bounds the
// reviews in flight. Garbage costs no API-server call; a flood costs at most `maxInFlight` at once.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Clock } from '../../common/clock.ts';
import { TollgateError, type ErrorCode } from '../../common/errors.ts';

export const REVIEW_MAX_IN_FLIGHT = 16;
/** Callers waiting for a review slot; beyond it a request is refused with TG_RATE_LIMITED. */
export const REVIEW_MAX_WAITING = 64;
export const NEGATIVE_CACHE_MS = 10_000;
const NEGATIVE_CACHE_SIZE = 10_000;
const PROJECTED_HINT = 'use a projected service-account token with audience tollgate-ca';

export interface ClaimsIdentity {
  namespace: string;
  serviceAccount: string;
  pod: string;
  podUid: string;
}

function fail(code: ErrorCode, message: string, details?: Record<string, unknown>): TollgateError {
  return new TollgateError(code, message, { details });
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function nonEmptyString(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0;
}

/** A pre-1.21 secret-based token: signed by the same key but unbound and never expiring. */
export function isLegacySecretToken(p: Record<string, unknown>): boolean {
  return !isRecord(p['kubernetes.io']) && typeof p['kubernetes.io/serviceaccount/namespace'] === 'string';
}

/** The identity in a projected token's `kubernetes.io` claim (verified, or to be verified). */
export function identityFromClaims(p: Record<string, unknown>): ClaimsIdentity {
  const k = p['kubernetes.io'];
  if (!isRecord(k)) {
    if (isLegacySecretToken(p)) throw fail('TG_TOKEN_CLAIMS', `token is a legacy service-account secret token; ${PROJECTED_HINT}`);
    throw fail('TG_TOKEN_CLAIMS', 'token has no "kubernetes.io" claim; it is not a Kubernetes service-account token');
  }
  const namespace = k.namespace;
  const sa = isRecord(k.serviceaccount) ? k.serviceaccount.name : undefined;
  if (!nonEmptyString(namespace)) throw fail('TG_TOKEN_CLAIMS', 'token "kubernetes.io" claim has no namespace');
  if (!nonEmptyString(sa)) throw fail('TG_TOKEN_CLAIMS', 'token "kubernetes.io" claim has no serviceaccount name');
  if (p.sub !== undefined && p.sub !== `system:serviceaccount:${namespace}:${sa}`) {
    throw fail('TG_TOKEN_CLAIMS', 'token "sub" does not agree with its "kubernetes.io" claim', { namespace, service_account: sa });
  }
  const pod = k.pod;
  if (!isRecord(pod) || !nonEmptyString(pod.name) || !nonEmptyString(pod.uid)) {
    throw fail('TG_TOKEN_CLAIMS', `token is not bound to a pod; ${PROJECTED_HINT}`, { namespace, service_account: sa });
  }
  return { namespace, serviceAccount: sa, pod: pod.name, podUid: pod.uid };
}

function decodePart(part: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw fail('TG_TOKEN_INVALID', `token ${what} is not base64url JSON`);
  }
  if (!isRecord(v)) throw fail('TG_TOKEN_INVALID', `token ${what} is not a JSON object`);
  return v;
}

/**
 * The unsigned checks, before any API-server call: a JWT with a JSON header naming an algorithm and
 * a payload that is for `audience`, from `issuer` (when known), within exp/nbf (± toleranceS) and
 * bound to a pod. Passing proves nothing (the signature is the API server's to judge); failing is final.
 */
export function precheckToken(token: string, o: { audience: string; issuer?: string | undefined; nowMs: number; toleranceS: number }): void {
  const [h, p, sig] = token.split('.');
  // Equivalent mutant left alive: split always yields a first part, so this default is never used.
  const header = decodePart(h ?? '', 'header');
  if (!nonEmptyString(header.alg) || header.alg === 'none' || !sig) throw fail('TG_TOKEN_INVALID', 'token is unsigned or names no algorithm');
  // Equivalent mutant left alive: no payload part and any non-JSON stand-in get the same "not base64url JSON" refusal.
  const claims = decodePart(p ?? '', 'payload');
  const now = o.nowMs / 1000;
  if (typeof claims.exp !== 'number') throw fail('TG_TOKEN_CLAIMS', 'token has no "exp" claim');
  if (claims.exp + o.toleranceS <= now) throw fail('TG_TOKEN_EXPIRED', `token has expired (exp ${new Date(claims.exp * 1000).toISOString()}; checked before any TokenReview)`);
  if (typeof claims.nbf === 'number' && claims.nbf - o.toleranceS > now) throw fail('TG_TOKEN_EXPIRED', 'token is not yet valid (nbf is in the future)');
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.includes(o.audience)) throw fail('TG_TOKEN_AUDIENCE', `token audience does not include ${JSON.stringify(o.audience)} (checked before any TokenReview)`);
  if (o.issuer !== undefined && claims.iss !== o.issuer) throw fail('TG_TOKEN_ISSUER', `token issuer must be ${JSON.stringify(o.issuer)}`);
  identityFromClaims(claims);
}

/** Final refusals (the API server answered) are remembered; a transport failure is not. */
const CACHEABLE: ReadonlySet<string> = new Set(['TG_TOKEN_INVALID', 'TG_TOKEN_EXPIRED', 'TG_TOKEN_AUDIENCE', 'TG_TOKEN_CLAIMS', 'TG_TOKEN_ISSUER']);

export class ReviewGuard {
  readonly #clock: Clock;
  readonly #maxInFlight: number;
  readonly #refused = new Map<string, { until: number; error: TollgateError }>();
  readonly #waiting: Array<() => void> = [];
  #inFlight = 0;
  /** The most reviews ever in flight at once (for tests and the curious). */
  peakInFlight = 0;

  constructor(options: { clock: Clock; maxInFlight?: number | undefined }) {
    this.#clock = options.clock;
    this.#maxInFlight = options.maxInFlight ?? REVIEW_MAX_IN_FLIGHT;
  }

  /** Run `review` for `token` unless it was refused in the last NEGATIVE_CACHE_MS; at most maxInFlight at once. */
  async run<T>(token: string, review: () => Promise<T>): Promise<T> {
    const key = createHash('sha256').update(token).digest('base64');
    const hit = this.#refused.get(key);
    if (hit && hit.until > this.#clock.now()) throw hit.error;
    this.#refused.delete(key); // an expired refusal goes; a later one is the newest entry
    await this.#slot();
    try {
      return await review();
    } catch (e) {
      if (e instanceof TollgateError && CACHEABLE.has(e.code)) {
        if (this.#refused.size >= NEGATIVE_CACHE_SIZE) this.#refused.delete(this.#refused.keys().next().value as string);
        this.#refused.set(key, { until: this.#clock.now() + NEGATIVE_CACHE_MS, error: e });
      }
      throw e;
    } finally {
      // A waiter takes this slot over directly, so a newcomer can never squeeze in between.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#inFlight--;
    }
  }

  async #slot(): Promise<void> {
    if (this.#inFlight >= this.#maxInFlight) {
      if (this.#waiting.length >= REVIEW_MAX_WAITING) throw fail('TG_RATE_LIMITED', `${this.#maxInFlight} token reviews in flight and ${REVIEW_MAX_WAITING} waiting; retry with backoff`);
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
      return;
    }
    this.#inFlight++;
    this.peakInFlight = Math.max(this.peakInFlight, this.#inFlight);
  }
}

/** How long the CA's own API-server token is reused before the file is read again (kubelet rotates it hourly at the earliest). */
export const OWN_TOKEN_CACHE_MS = 60_000;

/** The CA's own bearer token, read asynchronously and kept for OWN_TOKEN_CACHE_MS (one read shared by concurrent callers). */
export function cachedTokenFile(path: string, clock: Clock, ttlMs = OWN_TOKEN_CACHE_MS): () => Promise<string> {
  let cached: { at: number; value: Promise<string> } | undefined;
  return () => {
    if (!cached || clock.now() - cached.at >= ttlMs) {
      const value = readFile(path, 'utf8').then((t) => t.trim());
      cached = { at: clock.now(), value };
      value.catch(() => (cached = undefined));
    }
    return cached.value;
  };
}
