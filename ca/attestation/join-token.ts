// Join tokens: for workloads outside Kubernetes and for the local demo. `tollgate ca token create`
// stores one record per token, keyed by the token's SHA-256 (the token itself is never stored), in a
// JoinTokenStore: files under <store>/tokens/ (ca/attestation/join-token-store.ts) or a Secret
// (ca/attestation/kube-join-tokens.ts). Use is two-phase: `attest` only looks (format, record,
// reserved ID, expiry) and hands back `consume`, which the CA calls once everything else that can
// refuse the request has passed, so a refused request never uses up a token; `consume` is a
// compare-and-swap on the store, so across CA replicas exactly one caller ever wins a token.
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../common/clock.ts';
import { TollgateError } from '../../common/errors.ts';
import { parseWorkloadId, refuseReservedId } from '../../pki/spiffe-id.ts';
import type { Attestation, AttestationEvidence, Attestor } from './attestor.ts';
import { DirectoryJoinTokens, hashToken, MAX_JOIN_TOKEN_TTL_MS, PRUNE_EVERY_MS, reusedToken, type JoinTokenStore } from './join-token-store.ts';

export const JOIN_TOKEN_PREFIX = 'tgjoin.';
const TOKEN_FORM = /^tgjoin\.[A-Za-z0-9_-]{43}$/;

export class JoinTokenAttestor implements Attestor {
  readonly kind = 'join_token' as const;
  readonly tokens: JoinTokenStore;
  readonly #clock: Clock;
  readonly #trustDomain: string;
  #lastPrune = -Infinity;

  /** `dir`: the directory store's tokens/ directory (shorthand for `tokens: new DirectoryJoinTokens(...)`). */
  constructor(options: { tokens?: JoinTokenStore; dir?: string; clock: Clock; trustDomain: string }) {
    if (!options.tokens && options.dir === undefined) throw new TollgateError('TG_INTERNAL', 'a join token attestor needs a token store');
    this.tokens = options.tokens ?? new DirectoryJoinTokens({ dir: options.dir! });
    this.#clock = options.clock;
    this.#trustDomain = options.trustDomain;
  }

  accepts(evidence: AttestationEvidence): boolean {
    return typeof evidence.token === 'string' && evidence.token.startsWith(JOIN_TOKEN_PREFIX);
  }

  /** Create a single-use token for `spiffeId`, valid for `ttlMs`. Returns the token (shown once). */
  async create(options: { spiffeId: string; ttlMs: number }): Promise<{ token: string; expiresAt: number; tokenId: string }> {
    const id = refuseReservedId(parseWorkloadId(options.spiffeId), 'a join token');
    if (id.trustDomain !== this.#trustDomain) {
      throw new TollgateError('TG_SPIFFE_ID_INVALID', `${id.id} is not in this CA's trust domain ${this.#trustDomain}`);
    }
    if (!(options.ttlMs > 0) || options.ttlMs > MAX_JOIN_TOKEN_TTL_MS) {
      throw new TollgateError('TG_TTL_INVALID', `join token TTL must be between 1s and 7d`);
    }
    const now = this.#clock.now();
    if (now - this.#lastPrune >= PRUNE_EVERY_MS) {
      this.#lastPrune = now;
      await this.tokens.prune(now);
    }
    const token = `${JOIN_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const expiresAt = now + options.ttlMs;
    const h = hashToken(token);
    await this.tokens.add(h, { spiffe_id: id.id, created_at: new Date(now).toISOString(), expires_at: new Date(expiresAt).toISOString() });
    return { token, expiresAt, tokenId: h.slice(0, 16) };
  }

  async attest(evidence: AttestationEvidence): Promise<Attestation> {
    // Stryker disable next-line StringLiteral: no token and any stand-in text fail TOKEN_FORM with the same refusal
    const token = evidence.token ?? '';
    if (!TOKEN_FORM.test(token)) throw new TollgateError('TG_TOKEN_INVALID', 'join token is malformed');
    const h = hashToken(token);
    const tokenId = h.slice(0, 16);
    const entry = await this.tokens.look(h);
    if (!entry) throw new TollgateError('TG_TOKEN_UNKNOWN', 'join token is not known to this CA; create one with `tollgate ca token create`');
    if (entry.state === 'used') throw reusedToken();
    // A record naming a reserved ID (written by hand or by an old version) is refused, and an
    // expired token too, before anything about the token changes.
    const spiffeId = refuseReservedId(parseWorkloadId(entry.record.spiffe_id), 'a join token');
    if (!(this.#clock.now() < Date.parse(entry.record.expires_at))) {
      throw new TollgateError('TG_TOKEN_EXPIRED', `join token expired at ${entry.record.expires_at}; create a new one`, { details: { token_id: tokenId } });
    }
    return { kind: 'join_token', spiffeId, details: { token_id: tokenId }, consume: () => this.tokens.consume(h, entry) };
  }
}
