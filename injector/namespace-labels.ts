// The labels of a namespace, read through the API server for the webhook (the opt-in label
// tollgate.io/inject=enabled lives on the namespace, which an AdmissionReview does not carry) and
// kept for a few seconds, so a Deployment scaling up costs one read, not one per pod. A namespace
// labelled just now is seen within that time.
import type { Clock } from '../common/clock.ts';
import { isTollgateError } from '../common/errors.ts';
import type { KubeClient } from '../common/kube-client.ts';

export const DEFAULT_LABEL_TTL_MS = 5000;

export class NamespaceLabels {
  readonly #client: Pick<KubeClient, 'get'>;
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #cache = new Map<string, { at: number; labels: Promise<Readonly<Record<string, string>>> }>();

  constructor(options: { client: Pick<KubeClient, 'get'>; clock: Clock; ttlMs?: number }) {
    this.#client = options.client;
    this.#clock = options.clock;
    this.#ttlMs = options.ttlMs ?? DEFAULT_LABEL_TTL_MS;
  }

  /** The namespace's labels ({} when it does not exist); rejects when the API server cannot answer. */
  get(namespace: string): Promise<Readonly<Record<string, string>>> {
    const now = this.#clock.now();
    const hit = this.#cache.get(namespace);
    if (hit && now - hit.at < this.#ttlMs) return hit.labels;
    for (const [ns, e] of this.#cache) if (now - e.at >= this.#ttlMs) this.#cache.delete(ns);
    const labels = this.#client
      .get<{ metadata?: { labels?: Record<string, string> } }>(`/api/v1/namespaces/${encodeURIComponent(namespace)}`)
      .then((n) => n.metadata?.labels ?? {}, (e: unknown) => {
        if (isTollgateError(e, 'TG_KUBE_NOT_FOUND')) return {};
        this.#cache.delete(namespace); // a failure is not remembered
        throw e;
      });
    this.#cache.set(namespace, { at: now, labels });
    return labels;
  }
}
