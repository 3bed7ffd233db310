// Join tokens of the Kubernetes store: 16 Secrets, tollgate-join-tokens-0 ... -f, the shard chosen
// by the first hex digit of the token's SHA-256; in it one data key per token, that hash in hex,
// whose value is the record as JSON (the token itself is never stored). The API server rewrites a
// whole Secret on every write (measured on v1.20: a test-and-replace patch takes 3 ms on a Secret
// of 50 tokens, 26 ms at 1,000 and 64 ms at 2,000), so sharding keeps each write small when many
// tokens are outstanding. Every write names only its own key, so tokens never contend:
// - add: a JSON merge patch adding the key (the Secret is created on first use);
// - consume: a JSON patch that tests the key still holds the unused record it was read with and
//   replaces it with a small "used" marker. The API server applies a patch to the latest object
//   inside its own compare-and-swap on resourceVersion, re-applying it (the test included) when
//   another write won, so of any number of replicas consuming one token exactly one succeeds and
//   the others see the test fail (422) and get TG_TOKEN_REUSED. (A whole-object PUT with the read
//   resourceVersion would also be exactly-once, but would make every consumption conflict with
//   every other one in flight: with 1,000 tokens used at once, most attempts would be retries.)
// - prune: the same test-then-remove, per key, for markers and records a day past their time, in
//   every shard, at most once a minute per process (when a token is created).
import type { Clock } from '../../common/clock.ts';
import { isTollgateError, TollgateError } from '../../common/errors.ts';
import type { KubeClient } from '../../common/kube-client.ts';
import { KEEP_USED_TOKENS_MS, reusedToken, type JoinTokenEntry, type JoinTokenRecord, type JoinTokenStore } from './join-token-store.ts';

/** Prefix of the 16 shard Secrets' names: tollgate-join-tokens-0 ... tollgate-join-tokens-f. */
export const JOIN_TOKENS_SECRET = 'tollgate-join-tokens';
export const JOIN_TOKEN_SHARDS = [...'0123456789abcdef'].map((d) => `${JOIN_TOKENS_SECRET}-${d}`);
/** At most this many entries are pruned in one patch. */
const PRUNE_BATCH = 200;

interface Secret {
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  data?: Record<string, string>;
}

interface Stored extends Partial<JoinTokenRecord> {
  readonly used_at?: string;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

export class KubernetesJoinTokens implements JoinTokenStore {
  readonly #client: KubeClient;
  readonly #clock: Clock;
  readonly #namespace: string;
  readonly #name: string;

  constructor(options: { client: KubeClient; clock: Clock; namespace: string; secretName?: string }) {
    this.#client = options.client;
    this.#clock = options.clock;
    this.#namespace = options.namespace;
    this.#name = options.secretName ?? JOIN_TOKENS_SECRET;
  }

  get where(): string {
    return `Secrets ${this.#namespace}/${this.#name}-[0-f]`;
  }

  get #collection(): string {
    return `/api/v1/namespaces/${encodeURIComponent(this.#namespace)}/secrets`;
  }

  #shard(hash: string): string {
    return `${this.#name}-${hash[0]}`;
  }

  #path(shard: string): string {
    return `${this.#collection}/${encodeURIComponent(shard)}`;
  }

  async add(hash: string, record: JoinTokenRecord): Promise<void> {
    const shard = this.#shard(hash);
    const data = { [hash]: b64(JSON.stringify(record)) };
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.#client.patch(this.#path(shard), { data }, 'merge');
          return;
        } catch (e) {
          if (!isTollgateError(e, 'TG_KUBE_NOT_FOUND') || attempt > 0) throw e;
        }
        try {
          await this.#client.post(this.#collection, {
            apiVersion: 'v1', kind: 'Secret', type: 'Opaque',
            metadata: { name: shard, namespace: this.#namespace, labels: { 'app.kubernetes.io/part-of': 'tollgate', 'app.kubernetes.io/managed-by': 'tollgate' } },
            data,
          });
          return;
        } catch (e) {
          // Created by someone else meanwhile: add our key to theirs.
          if (!isTollgateError(e, 'TG_KUBE_CONFLICT')) throw e;
        }
      }
    } catch (e) {
      throw new TollgateError(isTollgateError(e, 'TG_UNAVAILABLE') ? 'TG_UNAVAILABLE' : 'TG_KUBE_API',
        `cannot store the join token in Secret ${this.#namespace}/${shard}: ${(e as Error).message}; a full shard (1 MiB, some 4,000 tokens) empties as tokens are used or expire`, { cause: e });
    }
  }

  async #secret(shard: string): Promise<Secret | undefined> {
    try {
      return await this.#client.get<Secret>(this.#path(shard));
    } catch (e) {
      if (isTollgateError(e, 'TG_KUBE_NOT_FOUND')) return undefined;
      throw e;
    }
  }

  async look(hash: string): Promise<JoinTokenEntry | undefined> {
    const value = (await this.#secret(this.#shard(hash)))?.data?.[hash];
    if (value === undefined) return undefined;
    const stored = this.#parse(hash, value);
    if (stored.used_at !== undefined) return { state: 'used' };
    return { state: 'live', record: stored as JoinTokenRecord, handle: value };
  }

  async consume(hash: string, seen: JoinTokenEntry & { state: 'live' }): Promise<void> {
    const marker = b64(JSON.stringify({ used_at: new Date(this.#clock.now()).toISOString() }));
    const shard = this.#shard(hash);
    try {
      await this.#client.patch(this.#path(shard), [
        { op: 'test', path: `/data/${hash}`, value: seen.handle },
        { op: 'replace', path: `/data/${hash}`, value: marker },
      ], 'json');
    } catch (e) {
      if (!isTollgateError(e, 'TG_KUBE_API') && !isTollgateError(e, 'TG_KUBE_NOT_FOUND')) throw e;
      // The test failed (or the Secret is gone): unless the record is still there unchanged, which
      // a failed test cannot leave, someone else used the token first.
      const now = (await this.#secret(shard))?.data?.[hash];
      if (now === seen.handle) throw e;
      throw reusedToken();
    }
  }

  async prune(now: number): Promise<void> {
    for (const d of '0123456789abcdef') await this.#pruneShard(`${this.#name}-${d}`, now);
  }

  async #pruneShard(shard: string, now: number): Promise<void> {
    const secret = await this.#secret(shard);
    const ops: object[] = [];
    for (const [hash, value] of Object.entries(secret?.data ?? {})) {
      if (ops.length >= PRUNE_BATCH * 2) break;
      let stored: Stored;
      try {
        stored = this.#parse(hash, value);
      } catch {
        continue;
      }
      const since = Date.parse(stored.used_at ?? stored.expires_at ?? '');
      if (since + KEEP_USED_TOKENS_MS < now) ops.push({ op: 'test', path: `/data/${hash}`, value }, { op: 'remove', path: `/data/${hash}` });
    }
    if (ops.length === 0) return;
    try {
      await this.#client.patch(this.#path(shard), ops, 'json');
    } catch (e) {
      // One of them changed meanwhile: prune again next time.
      if (!isTollgateError(e, 'TG_KUBE_API') && !isTollgateError(e, 'TG_KUBE_NOT_FOUND')) throw e;
    }
  }

  #parse(hash: string, value: string): Stored {
    try {
      return JSON.parse(Buffer.from(value, 'base64').toString('utf8')) as Stored;
    } catch (e) {
      throw new TollgateError('TG_STORE_CORRUPT', `the join token record ${hash.slice(0, 16)} in Secret ${this.#namespace}/${this.#shard(hash)} is not JSON`, { cause: e });
    }
  }
}
