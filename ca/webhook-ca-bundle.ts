// Keeps the MutatingWebhookConfiguration's caBundle equal to the CA's current bundle, so the API
// server always trusts the webhook's serving certificate (issued from that bundle's roots), also
// across a root rotation. Every CA replica runs one (no leader: the field's classic failure is a
// rotation only the leader performs, linkerd #5888, spire-controller-manager #450). It reads the
// object and patches only the webhooks whose caBundle differs, with a JSON Patch that first tests
// each webhook's name at its index (a concurrent edit that reorders them fails the patch, which is
// retried on a fresh read). On start, on every bundle change, and every resync period (someone may
// have reset the field, e.g. a GitOps tool without ignoreDifferences); failures back off with jitter.
import { Counter, type Registry } from 'prom-client';
import type { Clock, TimerHandle } from '../common/clock.ts';
import type { KubeClient } from '../common/kube-client.ts';
import type { Logger } from '../common/log.ts';

export const CA_BUNDLE_SYNCS_METRIC = 'tollgate_webhook_cabundle_syncs_total';
export const DEFAULT_RESYNC_MS = 60_000;
const RETRY = { firstMs: 1000, maxMs: 60_000 };

export interface CaBundleKeeperOptions {
  /** Only get and patch are used. */
  readonly client: Pick<KubeClient, 'get' | 'patch'>;
  /** The MutatingWebhookConfiguration's name (CONTRACT.md: tollgate-sidecar-injector). */
  readonly name: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly registry?: Registry;
  readonly resyncMs?: number;
  /** [0, 1) for backoff jitter; default Math.random. */
  readonly random?: () => number;
}

interface Mwc {
  metadata?: { resourceVersion?: string };
  webhooks?: { name?: string; clientConfig?: { caBundle?: string } }[];
}

export type SyncResult = 'updated' | 'unchanged' | 'failed';

export class CaBundleKeeper {
  readonly #o: CaBundleKeeperOptions;
  readonly #path: string;
  readonly #syncs: Counter | null;
  #pem: string | null = null;
  #timer: TimerHandle | undefined;
  #running: Promise<SyncResult> | null = null;
  #again = false;
  #retryMs = RETRY.firstMs;
  #stopped = false;
  #waiters: ((r: SyncResult) => void)[] = [];

  constructor(options: CaBundleKeeperOptions) {
    this.#o = options;
    this.#path = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${encodeURIComponent(options.name)}`;
    this.#syncs = options.registry
      ? new Counter({ name: CA_BUNDLE_SYNCS_METRIC, help: "Checks of the webhook configuration's caBundle, by result", labelNames: ['result'], registers: [options.registry] })
      : null;
    for (const r of ['updated', 'unchanged', 'failed'] satisfies SyncResult[]) this.#syncs?.inc({ result: r }, 0);
  }

  /** The bundle (PEM) caBundle must hold; checks now. Call on start and on every bundle change. */
  setBundle(pem: string): void {
    this.#pem = pem;
    void this.sync();
  }

  /** Resolves with the result of the next sync that finishes (for tests and start-up logs). */
  nextSync(): Promise<SyncResult> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Read the configuration and patch what differs. One sync at a time; a call during one runs another after it. */
  sync(): Promise<SyncResult> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#timer?.cancel();
    this.#running = this.#syncOnce().then((result) => {
      this.#running = null;
      this.#syncs?.inc({ result });
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const w of waiters) w(result);
      if (this.#again) {
        this.#again = false;
        void this.sync();
      } else if (!this.#stopped) {
        this.#timer = this.#o.clock.setTimer(result === 'failed' ? this.#backoff() : this.#o.resyncMs ?? DEFAULT_RESYNC_MS, () => void this.sync());
      }
      return result;
    });
    return this.#running;
  }

  #backoff(): number {
    const base = this.#retryMs;
    this.#retryMs = Math.min(this.#retryMs * 2, RETRY.maxMs);
    // Equal jitter: half fixed, half random, so replicas that failed together do not retry together.
    return base / 2 + (this.#o.random ?? Math.random)() * (base / 2);
  }

  async #syncOnce(): Promise<SyncResult> {
    const pem = this.#pem;
    if (pem === null) return 'unchanged';
    const { logger, name } = this.#o;
    try {
      const mwc = await this.#o.client.get<Mwc>(this.#path);
      const want = Buffer.from(pem);
      const hooks = mwc.webhooks ?? [];
      const stale = hooks.map((w, i) => ({ w, i })).filter(({ w }) => !Buffer.from(w.clientConfig?.caBundle ?? '', 'base64').equals(want));
      if (hooks.length === 0) logger.warn('the webhook configuration has no webhooks; nothing to keep', { event: 'cabundle', configuration: name });
      if (stale.length === 0) {
        this.#retryMs = RETRY.firstMs;
        return 'unchanged';
      }
      const value = want.toString('base64');
      const ops = stale.flatMap(({ w, i }) => [
        { op: 'test', path: `/webhooks/${i}/name`, value: w.name },
        { op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value },
      ]);
      await this.#o.client.patch(this.#path, ops, 'json');
      this.#retryMs = RETRY.firstMs;
      logger.info('webhook caBundle updated to the current bundle', { event: 'cabundle', configuration: name, webhooks: stale.map(({ w }) => w.name) });
      return 'updated';
    } catch (e) {
      logger.warn('cannot update the webhook caBundle; will retry', { event: 'cabundle', configuration: name, error: (e as Error).message });
      return 'failed';
    }
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
  }
}
