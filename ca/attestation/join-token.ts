// Join tokens: for workloads outside Kubernetes and for the local demo. `tollgate ca token create`
// writes one file per token under <store>/tokens/, named by the token's SHA-256 (the token itself is
// never stored). Use is an atomic rename to *.used, so two CA replicas can never both accept it.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, existsSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../../common/clock.ts';
import { TollgateError } from '../../common/errors.ts';
import { writeFileAtomic } from '../../common/files.ts';
import { parseWorkloadId, refuseReservedId } from '../../pki/spiffe-id.ts';
import type { Attestation, AttestationEvidence, Attestor } from './attestor.ts';

export const JOIN_TOKEN_PREFIX = 'tgjoin.';
const TOKEN_FORM = /^tgjoin\.[A-Za-z0-9_-]{43}$/;
export const MAX_JOIN_TOKEN_TTL_MS = 7 * 24 * 3600 * 1000;

interface TokenRecord {
  spiffe_id: string;
  created_at: string;
  expires_at: string;
}

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export class JoinTokenAttestor implements Attestor {
  readonly kind = 'join_token' as const;
  readonly #dir: string;
  readonly #clock: Clock;
  readonly #trustDomain: string;

  constructor(options: { dir: string; clock: Clock; trustDomain: string }) {
    this.#dir = options.dir;
    this.#clock = options.clock;
    this.#trustDomain = options.trustDomain;
  }

  accepts(evidence: AttestationEvidence): boolean {
    return typeof evidence.token === 'string' && evidence.token.startsWith(JOIN_TOKEN_PREFIX);
  }

  /** Create a single-use token for `spiffeId`, valid for `ttlMs`. Returns the token (shown once). */
  create(options: { spiffeId: string; ttlMs: number }): { token: string; expiresAt: number } {
    const id = refuseReservedId(parseWorkloadId(options.spiffeId), 'a join token');
    if (id.trustDomain !== this.#trustDomain) {
      throw new TollgateError('TG_SPIFFE_ID_INVALID', `${id.id} is not in this CA's trust domain ${this.#trustDomain}`);
    }
    if (!(options.ttlMs > 0) || options.ttlMs > MAX_JOIN_TOKEN_TTL_MS) {
      throw new TollgateError('TG_TTL_INVALID', `join token TTL must be between 1s and 7d`);
    }
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    this.#prune();
    const token = `${JOIN_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const now = this.#clock.now();
    const expiresAt = now + options.ttlMs;
    const rec: TokenRecord = { spiffe_id: id.id, created_at: new Date(now).toISOString(), expires_at: new Date(expiresAt).toISOString() };
    writeFileAtomic(join(this.#dir, `${hashToken(token)}.json`), JSON.stringify(rec), 0o600);
    return { token, expiresAt };
  }

  async attest(evidence: AttestationEvidence): Promise<Attestation> {
    const token = evidence.token ?? '';
    if (!TOKEN_FORM.test(token)) throw new TollgateError('TG_TOKEN_INVALID', 'join token is malformed');
    const h = hashToken(token);
    const live = join(this.#dir, `${h}.json`);
    const used = join(this.#dir, `${h}.used`);
    // A record naming a reserved ID (written by hand or by an old version) is refused before the
    // token is consumed, so nothing about it changes.
    const pending = this.#readRecord(live);
    if (pending) refuseReservedId(parseWorkloadId(pending.spiffe_id), 'a join token');
    try {
      renameSync(live, used);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      if (existsSync(used)) throw new TollgateError('TG_TOKEN_REUSED', 'join token was already used; create a new one with `tollgate ca token create`');
      throw new TollgateError('TG_TOKEN_UNKNOWN', 'join token is not known to this CA; create one with `tollgate ca token create`');
    }
    const rec = this.#readRecord(used)!;
    const expiresAt = Date.parse(rec.expires_at);
    const tokenId = h.slice(0, 16);
    if (!(this.#clock.now() < expiresAt)) {
      throw new TollgateError('TG_TOKEN_EXPIRED', `join token expired at ${rec.expires_at}; create a new one`, { details: { token_id: tokenId } });
    }
    return { kind: 'join_token', spiffeId: refuseReservedId(parseWorkloadId(rec.spiffe_id), 'a join token'), details: { token_id: tokenId } };
  }

  #readRecord(path: string): TokenRecord | undefined {
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as TokenRecord;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new TollgateError('TG_STORE_CORRUPT', `join token record ${path} is unreadable`, { cause: e });
    }
  }

  // Used records older than a day, and unused ones older than the longest TTL, carry nothing worth
  // keeping. Judged by mtime (no file reads), and at most once a minute: creating many tokens in a
  // row must not rescan the directory each time.
  #lastPrune = -Infinity;
  #prune(): void {
    const now = this.#clock.now();
    if (now - this.#lastPrune < 60_000) return;
    this.#lastPrune = now;
    const usedCutoff = now - 24 * 3600 * 1000;
    const liveCutoff = now - MAX_JOIN_TOKEN_TTL_MS - 24 * 3600 * 1000;
    for (const name of readdirSync(this.#dir)) {
      const p = join(this.#dir, name);
      try {
        const mtime = statSync(p).mtimeMs;
        if ((name.endsWith('.used') && mtime < usedCutoff) || (name.endsWith('.json') && mtime < liveCutoff)) unlinkSync(p);
      } catch {
        // A record another process is using or removing; leave it.
      }
    }
  }
}
