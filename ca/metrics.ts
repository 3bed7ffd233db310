// CA metrics (PRODUCT.md §8). Names live here only; the registry is injected, labels stay low-cardinality.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { ms, type AuthorityKind, type SlotName, type StoreRecords } from './slots.ts';

export const CaMetricNames = {
  issued: 'tollgate_ca_issued_total',
  refused: 'tollgate_ca_refused_total',
  authorityExpiry: 'tollgate_authority_expiry_timestamp_seconds',
  bundleVersion: 'tollgate_ca_bundle_version',
  issueSeconds: 'tollgate_ca_issue_seconds',
  reportedBundle: 'tollgate_ca_clients_on_current_bundle_ratio',
  rotationPhase: 'tollgate_rotation_phase',
  expiryWarning: 'tollgate_ca_expiry_warning',
  auditWriteErrors: 'tollgate_ca_audit_write_errors_total',
} as const;

/** tollgate_rotation_phase{kind}: 0 no rotation in progress, 1 prepared, 2 activated (the old one retiring). */
export const ROTATION_PHASE_VALUE = { none: 0, prepared: 1, activated: 2 } as const;

export class CaMetrics {
  readonly issued: Counter<'attestation'>;
  readonly refused: Counter<'code'>;
  readonly authorityExpiry: Gauge<'kind' | 'slot'>;
  readonly bundleVersion: Gauge;
  readonly issueSeconds: Histogram;
  readonly onCurrentBundle: Gauge;
  readonly rotationPhase: Gauge<'kind'>;
  readonly expiryWarning: Gauge;
  readonly auditWriteErrors: Counter;
  /** Where tollgate_ca_clients_on_current_bundle_ratio is read from at each scrape. */
  ratio: (() => number) | undefined;

  constructor(registry: Registry) {
    const registers = [registry];
    this.issued = new Counter({ name: CaMetricNames.issued, help: 'SVIDs issued, by attestation kind', labelNames: ['attestation'], registers });
    this.refused = new Counter({ name: CaMetricNames.refused, help: 'SVID requests refused, by error code', labelNames: ['code'], registers });
    this.authorityExpiry = new Gauge({
      name: CaMetricNames.authorityExpiry,
      help: 'notAfter (Unix seconds) of the authorities in each slot (the earliest when several share one); retired ones are not shown',
      labelNames: ['kind', 'slot'],
      registers,
    });
    this.bundleVersion = new Gauge({ name: CaMetricNames.bundleVersion, help: 'version of the trust bundle this CA serves', registers });
    this.issueSeconds = new Histogram({
      name: CaMetricNames.issueSeconds,
      help: 'time to attest and sign one SVID request',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
      registers,
    });
    this.onCurrentBundle = new Gauge({
      name: CaMetricNames.reportedBundle,
      help: 'share of live, not stale, authenticated clients that hold the current bundle version (1 when none)',
      registers,
      collect: () => {
        if (this.ratio) this.onCurrentBundle.set(this.ratio());
      },
    });
    this.rotationPhase = new Gauge({
      name: CaMetricNames.rotationPhase,
      help: 'rotation in progress per kind: 0 none, 1 prepared (new authority published, not issuing), 2 activated (the old one retiring)',
      labelNames: ['kind'],
      registers,
    });
    this.auditWriteErrors = new Counter({ name: CaMetricNames.auditWriteErrors, help: 'audit lines that could not be written (the CA is then not ready)', registers });
    this.expiryWarning = new Gauge({
      name: CaMetricNames.expiryWarning,
      help: 'trust health of this CA: 0 ok, 1 warning (an active authority is past half its life and nothing will rotate it), 2 degraded (inside the last third of its life), 3 expired',
      registers,
    });
  }

  /** Expiry of every prepared, active and retiring authority, from the records. */
  showAuthorities(records: StoreRecords): void {
    const earliest = new Map<string, { kind: AuthorityKind; slot: SlotName; at: number }>();
    for (const a of records.authorities) {
      if (a.slot === 'retired') continue;
      const k = `${a.kind}/${a.slot}`;
      const at = ms(a.notAfter);
      if (!earliest.has(k) || at < earliest.get(k)!.at) earliest.set(k, { kind: a.kind, slot: a.slot, at });
    }
    this.authorityExpiry.reset();
    for (const e of earliest.values()) this.authorityExpiry.set({ kind: e.kind, slot: e.slot }, Math.floor(e.at / 1000));
    const running = records.rotation && records.rotation.phase !== 'done' ? records.rotation : undefined;
    for (const kind of ['root', 'intermediate'] as const) {
      this.rotationPhase.set({ kind }, running?.kind === kind ? ROTATION_PHASE_VALUE[running.phase as 'prepared' | 'activated'] : ROTATION_PHASE_VALUE.none);
    }
  }
}
