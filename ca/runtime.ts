// The CA without its network: the store's current snapshot, the issuer, the service, the CA's own
// serving identity, and the follower that moves all of them to each new store revision at once.
// ca/server.ts puts gRPC and the admin endpoints around it; tests drive it on a ManualClock.
import type { Registry } from 'prom-client';
import type { Clock, TimerHandle } from '../common/clock.ts';
import { TollgateError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { caSpiffeId, isReservedId, parseSpiffeId } from '../pki/spiffe-id.ts';
import type { Attestor } from './attestation/attestor.ts';
import { JoinTokenAttestor } from './attestation/join-token.ts';
import { SvidAttestor } from './attestation/svid.ts';
import { AuditLog, type AuditSink } from './audit.ts';
import { AutoRotator } from './auto-rotate.ts';
import { Convergence } from './convergence.ts';
import { caStatus, type CaStatus } from './status.ts';
import { StoreFollower } from './follower.ts';
import type { Health } from './schedule.ts';
import { active, type StoreRecords } from './slots.ts';
import { ExpiryWatchdog } from './watchdog.ts';
import { SvidIssuer, type IssuancePolicy } from './issuer.ts';
import { CaMetrics } from './metrics.ts';
import { CaServerIdentity } from './server-identity.ts';
import { CaService, type Bundle, type CaServiceOptions } from './service.ts';
import { loadSnapshot, type CaSnapshot } from './snapshot.ts';
import { DirectoryStore, type CaStore } from './store.ts';

export interface CaRuntimeOptions {
  /** The store to serve (a directory, or the Kubernetes store of ca/kube-store.ts)... */
  readonly store?: CaStore | undefined;
  /** ...or a directory store by its path. */
  readonly dir?: string | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly audit: AuditSink;
  /** Interval of aggregated refusal lines (default 10 s); 0: one line per refusal. */
  readonly auditAggregateMs?: number | undefined;
  readonly registry: Registry;
  /** The CA's own SPIFFE ID, reserved (under /tollgate/); default spiffe://<td>/tollgate/ca. */
  readonly spiffeId?: string | undefined;
  readonly issuance?: Partial<IssuancePolicy> | undefined;
  readonly limits?: CaServiceOptions['limits'];
  /** Extra attestors (e.g. Kubernetes tokens), tried after join tokens. */
  readonly attestors?: ((trustDomain: string) => Attestor[]) | undefined;
  readonly refreshHintSeconds?: number | undefined;
  /**
   * How often the store's revision is polled (default 5 s), and a published bundle (the Kubernetes
   * store's ConfigMap) checked; the store's watch reacts sooner unless `watch` is false.
   */
  readonly pollMs?: number | undefined;
  readonly watch?: boolean | undefined;
  /**
   * Rotate intermediates automatically (prepare at 1/2, activate at 2/3). Default: when the active
   * root's key is in the store. true with an offline root is refused; false never rotates.
   */
  readonly autoRotate?: boolean | undefined;
  /** A client not seen for this long is stale for convergence (default: 3/4 of the longest leaf lifetime). */
  readonly staleAfterMs?: number | undefined;
}

export interface CaRuntime {
  readonly trustDomain: string;
  readonly store: CaStore;
  readonly service: CaService;
  readonly identity: CaServerIdentity;
  readonly metrics: CaMetrics;
  readonly follower: StoreFollower;
  readonly policy: IssuancePolicy;
  /** Present when this process rotates intermediates automatically. */
  readonly rotator: AutoRotator | undefined;
  readonly watchdog: ExpiryWatchdog;
  readonly audit: AuditLog;
  snapshot(): CaSnapshot;
  health(): Health;
  /** What GET /status shows. */
  status(): CaStatus;
  /** Resolves once no store check is in flight. */
  settled(): Promise<void>;
  stop(): void;
}

export const DEFAULT_POLL_MS = 5000;

/**
 * Keeps a store's published bundle (the ConfigMap non-mesh clients mount) equal to the records this
 * process serves: at start, after every new revision, and every `everyMs`, so a copy that a dead
 * writer left stale, or that someone edited, is put right by whichever replica looks next.
 */
interface BundlePublisherOptions {
  readonly publish: (r: StoreRecords) => Promise<void>;
  readonly records: () => StoreRecords;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly everyMs: number;
}

class BundlePublisher {
  readonly #o: BundlePublisherOptions;
  #timer: TimerHandle | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(options: BundlePublisherOptions) {
    this.#o = options;
  }

  start(): void {
    this.run();
  }

  run(): void {
    if (this.#stopped || this.#running) return;
    this.#timer?.cancel();
    this.#running = this.#o.publish(this.#o.records())
      .catch((e: Error) => this.#o.logger.warn('cannot publish the trust bundle; retrying', { error: e.message }))
      .finally(() => {
        this.#running = undefined;
        if (!this.#stopped) this.#timer = this.#o.clock.setTimer(this.#o.everyMs, () => this.run());
      });
  }

  async settled(): Promise<void> {
    while (this.#running) await this.#running;
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
  }
}

function sameBundle(a: Bundle, b: Bundle): boolean {
  const eq = (x: readonly Buffer[], y: readonly Buffer[]) => x.length === y.length && x.every((d, i) => d.equals(y[i]!));
  const same = (x: readonly string[] = [], y: readonly string[] = []) => x.join('\n') === y.join('\n');
  return a.version === b.version && eq(a.roots, b.roots) && eq(a.endorsements ?? [], b.endorsements ?? []) && same(a.deniedIds, b.deniedIds) && same(a.deniedSerials, b.deniedSerials);
}

export async function startCaRuntime(o: CaRuntimeOptions): Promise<CaRuntime> {
  const { clock, logger } = o;
  if (o.spiffeId !== undefined && !isReservedId(parseSpiffeId(o.spiffeId))) {
    throw new TollgateError('TG_USAGE', `--spiffe-id ${o.spiffeId} is not under /tollgate/: the CA's identity must be one no workload can be issued`);
  }
  if (!o.store === (o.dir === undefined)) throw new TollgateError('TG_INTERNAL', 'the CA runtime takes a store or a directory');
  const store: CaStore = o.store ?? new DirectoryStore({ dir: o.dir! });
  const refreshHintSeconds = o.refreshHintSeconds ?? 300;
  const load = () => loadSnapshot(store, { withRootKey: false, refreshHintSeconds });
  const initial = await load();
  const td = initial.trustDomain;
  const rootKeyInStore = active(initial.records).root.keyInStore;
  if (o.autoRotate === true && !rootKeyInStore) {
    throw new TollgateError('TG_ROOT_KEY_MISSING', 'automatic rotation needs the root key in the store, and this store keeps it offline; rotate with `tollgate ca rotate intermediate --root-key FILE`');
  }
  const pollMs = o.pollMs ?? DEFAULT_POLL_MS;
  const metrics = new CaMetrics(o.registry);
  const issuer = new SvidIssuer({ intermediate: initial.intermediate, clock, ...(o.issuance ? { policy: o.issuance } : {}) });
  const policy = issuer.policy;
  let follower: StoreFollower | undefined;
  const current = (): CaSnapshot => follower?.current ?? initial;
  let service: CaService | undefined;
  const attestors: Attestor[] = [
    new JoinTokenAttestor({ tokens: store.joinTokens, clock, trustDomain: td }),
    ...(o.attestors?.(td) ?? []),
    new SvidAttestor({
      clock,
      trust: {
        trustDomain: td,
        // Any root still in the bundle, through any intermediate the store knows (PRODUCT.md §4).
        roots: () => service!.bundle.roots,
        intermediates: () => current().intermediates,
        bundleVersion: () => service!.bundle.version,
      },
    }),
  ];
  const audit = new AuditLog({ out: o.audit, clock, logger, aggregateMs: o.auditAggregateMs, onWriteError: () => metrics.auditWriteErrors.inc() });
  service = new CaService({
    trustDomain: td,
    clock,
    issuer,
    attestors,
    audit,
    metrics,
    bundle: initial.bundle,
    ...(o.limits ? { limits: o.limits } : {}),
    ...(o.staleAfterMs ? { convergence: new Convergence({ clock, staleAfterMs: o.staleAfterMs }) } : {}),
    authorityOf: (serial) => current().idBySerial.get(serial),
  });
  const svc = service;
  const identity = new CaServerIdentity({ spiffeId: o.spiffeId ?? caSpiffeId(td), issuer, roots: initial.bundle.roots, clock, logger });
  metrics.showAuthorities(initial.records);

  // Everything that can fail happens before anything is swapped; the swaps themselves cannot fail.
  const apply = (next: CaSnapshot, prev: CaSnapshot): void => {
    if (next.trustDomain !== td) throw new TollgateError('TG_STORE_CORRUPT', `the store now names trust domain ${next.trustDomain}, not ${td}; restart the CA if that is intended`);
    const newIssuer = next.intermediateRecord.id === prev.intermediateRecord.id ? undefined : new SvidIssuer({ intermediate: next.intermediate, clock, policy });
    if (newIssuer) identity.setIssuer(newIssuer); // renews the serving SVID; throws (and keeps the old) if it cannot
    if (newIssuer) svc.setIssuer(newIssuer);
    if (!sameBundle(next.bundle, svc.bundle)) {
      svc.setBundle(next.bundle);
      identity.setRoots(next.bundle.roots);
    }
    metrics.showAuthorities(next.records);
    if (newIssuer) logger.info('issuing from a new intermediate', { intermediate: next.intermediateRecord.id, not_after: next.intermediateRecord.notAfter });
  };
  follower = new StoreFollower({
    initial,
    clock,
    logger,
    revision: () => store.revision(),
    load,
    apply,
    pollMs,
    watch: o.watch === false ? undefined : (changed) => store.watch(changed, logger),
  });
  follower.start();
  const f = follower;
  const publisher = store.publishBundle ? new BundlePublisher({ publish: (r) => store.publishBundle!(r), records: () => f.current.records, clock, logger, everyMs: pollMs }) : undefined;
  if (publisher) f.onChange(() => publisher.run());
  publisher?.start();
  const autoRotate = o.autoRotate ?? rootKeyInStore;
  const rotator = autoRotate
    ? new AutoRotator({ step: { store, clock }, follower: f, clock, logger, maxLeafTtlMs: policy.maxTtlSeconds * 1000 })
    : undefined;
  const watchdog = new ExpiryWatchdog({ follower: f, clock, logger, metrics, autoRotate });
  rotator?.start();
  watchdog.start();
  logger.info(autoRotate ? 'intermediates rotate automatically' : 'automatic rotation is off: rotate intermediates with `tollgate ca rotate intermediate`', {
    root_key_in_store: rootKeyInStore,
  });
  return {
    trustDomain: td,
    store,
    service: svc,
    identity,
    metrics,
    follower: f,
    policy,
    rotator,
    watchdog,
    audit,
    snapshot: () => f.current,
    health: () => watchdog.current(),
    status: () => {
      const s = f.current;
      return caStatus({
        records: s.records, revision: s.revision, now: clock.now(), health: watchdog.current(), autoRotate: rotator !== undefined && active(s.records).root.keyInStore,
        next: rotator?.next(), convergence: svc.convergenceCounts(), maxLeafTtlSeconds: policy.maxTtlSeconds,
      });
    },
    settled: async () => {
      await rotator?.settled();
      await f.settled();
      await publisher?.settled();
    },
    stop: () => {
      publisher?.stop();
      rotator?.stop();
      watchdog.stop();
      f.stop();
      identity.stop();
    },
  };
}
