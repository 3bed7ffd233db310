// Follow one named Kubernetes object (the CA's Secret) as informers do: list it by name (the
// fieldSelector metadata.name=NAME that lets RBAC name the object for list and watch), then watch
// from the list's resourceVersion; every event hands the object (undefined once deleted) to
// `onChange`. A watch the server ends (its timeoutSeconds) is resumed from the last resourceVersion
// seen (bookmarks included); a 410 Gone (that version was compacted away) re-lists; any other
// failure waits with jittered backoff on the injected Clock (1 s doubling to 30 s) and re-lists.
// The caller also polls, so a watch that silently stalls costs latency, never correctness.
import type { Clock, TimerHandle } from '../common/clock.ts';
import type { KubeApiError, KubeClient, WatchEvent } from '../common/kube-client.ts';
import type { Logger } from '../common/log.ts';

export interface KubeObjectMeta {
  readonly metadata: { readonly name?: string; readonly resourceVersion?: string; readonly [k: string]: unknown };
}

export interface NamedObjectWatchOptions<T extends KubeObjectMeta> {
  readonly client: KubeClient;
  /** The collection's path, e.g. /api/v1/namespaces/tollgate-system/secrets. */
  readonly collection: string;
  readonly name: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly onChange: (object: T | undefined) => void;
  /** The server ends each watch after this long (default 300 s); it is then resumed. */
  readonly watchSeconds?: number;
  /** [0, 1): jitter of the backoff. */
  readonly random?: () => number;
}

export const WATCH_BACKOFF = { baseMs: 1000, maxMs: 30_000 } as const;

/** Equal jitter: half the doubled delay, plus a random part of the other half. */
export function watchBackoffMs(failures: number, random: number): number {
  const ceiling = Math.min(WATCH_BACKOFF.maxMs, WATCH_BACKOFF.baseMs * 2 ** Math.max(0, failures - 1));
  return ceiling / 2 + (ceiling / 2) * random;
}

export class NamedObjectWatch<T extends KubeObjectMeta> {
  readonly #o: NamedObjectWatchOptions<T>;
  readonly #abort = new AbortController();
  #timer: TimerHandle | undefined;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;

  constructor(options: NamedObjectWatchOptions<T>) {
    this.#o = options;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    this.#timer?.cancel();
    this.#wake?.();
    await this.#loop;
  }

  get #stopped(): boolean {
    return this.#abort.signal.aborted;
  }

  async #run(): Promise<void> {
    const { client, collection, name, logger } = this.#o;
    const selector = `fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`;
    const seconds = this.#o.watchSeconds ?? 300;
    let version: string | undefined;
    let failures = 0;
    while (!this.#stopped) {
      try {
        if (version === undefined) {
          const list = await client.get<{ metadata: { resourceVersion: string }; items: T[] }>(`${collection}?${selector}`);
          version = list.metadata.resourceVersion;
          this.#o.onChange(list.items.find((i) => i.metadata.name === name));
        }
        const path = `${collection}?${selector}&watch=1&allowWatchBookmarks=true&timeoutSeconds=${seconds}&resourceVersion=${encodeURIComponent(version)}`;
        await client.watch<T>(path, (e: WatchEvent<T>) => {
          version = e.object.metadata.resourceVersion ?? version;
          if (e.type === 'BOOKMARK') return;
          this.#o.onChange(e.type === 'DELETED' ? undefined : e.object);
        }, { signal: this.#abort.signal, idleTimeoutMs: (seconds + 30) * 1000 });
        failures = 0;
      } catch (e) {
        version = undefined;
        if ((e as KubeApiError).status === 410) continue;
        failures += 1;
        const waitMs = watchBackoffMs(failures, (this.#o.random ?? Math.random)());
        logger.warn('cannot watch the CA store; polling until the watch is back', { object: `${collection}/${name}`, retry_in_ms: Math.round(waitMs), error: (e as Error).message });
        await this.#sleep(waitMs);
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#timer = this.#o.clock.setTimer(ms, resolve);
    });
  }
}
