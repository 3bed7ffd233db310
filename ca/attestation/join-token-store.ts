// Where join tokens live: the JoinTokenStore interface and the directory store's implementation.
// Records are keyed by the token's SHA-256 (the token itself is never stored). The directory keeps
// one file per token under <store>/tokens/ (`<hash>.json`, 0600); use is an atomic rename to
// `<hash>.used`, so two CA processes on one directory can never both win a token. The Kubernetes
// store's is ca/attestation/kube-join-tokens.ts.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { TollgateError } from '../../common/errors.ts';
import { writeFileAtomic, writingTo } from '../../common/files.ts';

export const MAX_JOIN_TOKEN_TTL_MS = 7 * 24 * 3600 * 1000;
/** Used records (and unused ones long expired) are kept this long, then pruned. */
export const KEEP_USED_TOKENS_MS = 24 * 3600 * 1000;
/** Pruning runs at most this often per process (creating many tokens must not rescan each time). */
export const PRUNE_EVERY_MS = 60_000;

export interface JoinTokenRecord {
  readonly spiffe_id: string;
  readonly created_at: string;
  readonly expires_at: string;
}

/** What a store holds for one token hash. `handle` is the store's own CAS token for `consume`. */
export type JoinTokenEntry = { readonly state: 'live'; readonly record: JoinTokenRecord; readonly handle?: unknown } | { readonly state: 'used' };

export interface JoinTokenStore {
  /** Where the tokens live, for messages. */
  readonly where: string;
  add(hash: string, record: JoinTokenRecord): Promise<void>;
  /** The entry for `hash`, changing nothing; undefined when this store does not know it. */
  look(hash: string): Promise<JoinTokenEntry | undefined>;
  /**
   * Mark the token used, exactly once across every process sharing the store: resolves for the one
   * caller that wins, TG_TOKEN_REUSED for every other.
   */
  consume(hash: string, seen: JoinTokenEntry & { state: 'live' }): Promise<void>;
  /** Drop used entries older than KEEP_USED_TOKENS_MS and unused ones that long past their expiry. */
  prune(now: number): Promise<void>;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export const reusedToken = (): TollgateError =>
  new TollgateError('TG_TOKEN_REUSED', 'join token was already used; create a new one with `tollgate ca token create`');

export class DirectoryJoinTokens implements JoinTokenStore {
  readonly #dir: string;

  constructor(options: { dir: string }) {
    this.#dir = options.dir;
  }

  get where(): string {
    return this.#dir;
  }

  async add(hash: string, record: JoinTokenRecord): Promise<void> {
    writingTo(this.#dir, () => mkdirSync(this.#dir, { recursive: true, mode: 0o700 }));
    writeFileAtomic(join(this.#dir, `${hash}.json`), JSON.stringify(record), 0o600);
  }

  async look(hash: string): Promise<JoinTokenEntry | undefined> {
    const record = this.#read(join(this.#dir, `${hash}.json`));
    if (record) return { state: 'live', record };
    return existsSync(join(this.#dir, `${hash}.used`)) ? { state: 'used' } : undefined;
  }

  async consume(hash: string): Promise<void> {
    try {
      renameSync(join(this.#dir, `${hash}.json`), join(this.#dir, `${hash}.used`));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw reusedToken();
      throw e;
    }
  }

  // Judged by mtime (no file reads): used records older than a day, unused ones older than the
  // longest TTL and a day.
  async prune(now: number): Promise<void> {
    let names: string[];
    try {
      names = readdirSync(this.#dir);
    } catch {
      return;
    }
    const usedCutoff = now - KEEP_USED_TOKENS_MS;
    const liveCutoff = now - MAX_JOIN_TOKEN_TTL_MS - KEEP_USED_TOKENS_MS;
    for (const name of names) {
      const p = join(this.#dir, name);
      try {
        const mtime = statSync(p).mtimeMs;
        if ((name.endsWith('.used') && mtime < usedCutoff) || (name.endsWith('.json') && mtime < liveCutoff)) unlinkSync(p);
      } catch {
        // A record another process is using or removing; leave it.
      }
    }
  }

  #read(path: string): JoinTokenRecord | undefined {
    try {
      // Written by add() or by hand: anything JSON.parse refuses is TG_STORE_CORRUPT below.
      return JSON.parse(readFileSync(path, 'utf8')) as JoinTokenRecord;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new TollgateError('TG_STORE_CORRUPT', `join token record ${path} is unreadable`, { cause: e });
    }
  }
}
