// Sidecar metrics (PRODUCT.md §8). Names live here only; the registry is injected (one per process);
// labels are low-cardinality: never a SPIFFE ID, address or port as a label value.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export const SidecarMetricNames = {
  svidExpiry: 'tollgate_svid_expiry_timestamp_seconds',
  bundleVersion: 'tollgate_sidecar_bundle_version',
  bundleExpiry: 'tollgate_trust_bundle_expiry_timestamp_seconds',
  bundleRejected: 'tollgate_sidecar_bundle_rejected_total',
  renewals: 'tollgate_svid_renewals_total',
  inboundConnections: 'tollgate_inbound_connections_total',
  outboundConnections: 'tollgate_outbound_connections_total',
  handshakeSeconds: 'tollgate_handshake_seconds',
  bytes: 'tollgate_bytes_total',
  activeConnections: 'tollgate_active_connections',
  configReloadFailures: 'tollgate_config_reload_failures_total',
  appPortsExposed: 'tollgate_app_ports_exposed',
} as const;

/** `result` of a renewal attempt. */
export type RenewalResult = 'ok' | 'error';
/** `result` of an inbound or outbound connection. */
export type ConnectionResult = 'allowed' | 'refused' | 'error';
export type Direction = 'inbound' | 'outbound';

export class SidecarMetrics {
  readonly svidExpiry: Gauge;
  readonly bundleVersion: Gauge;
  /** notAfter of the first root of the held bundle to expire: alert on it before trust runs out. */
  readonly bundleExpiry: Gauge;
  /** Bundles refused (rollback, unendorsed root, unusable root), by TG_ code. */
  readonly bundleRejected: Counter<'code'>;
  readonly renewals: Counter<'result'>;
  /** reason: a TG_* code or policy reason in lower case, e.g. "no_rule", "tls_handshake", "svid_invalid". */
  readonly inboundConnections: Counter<'result' | 'reason'>;
  readonly outboundConnections: Counter<'result' | 'reason'>;
  readonly handshakeSeconds: Histogram<'direction'>;
  /** direction: "inbound" = bytes from peers to the app and back, "outbound" = from the app to upstreams and back. */
  readonly bytes: Counter<'direction'>;
  readonly activeConnections: Gauge<'direction'>;
  readonly configReloadFailures: Counter;
  /** Declared app ports listening on a non-loopback address while capture is off (sidecar/app-exposure.ts). */
  readonly appPortsExposed: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.svidExpiry = new Gauge({ name: SidecarMetricNames.svidExpiry, help: 'notAfter of the current SVID (Unix seconds); 0 before the first issue', registers });
    this.bundleVersion = new Gauge({ name: SidecarMetricNames.bundleVersion, help: 'version of the trust bundle this sidecar holds', registers });
    this.bundleExpiry = new Gauge({ name: SidecarMetricNames.bundleExpiry, help: 'notAfter of the earliest-expiring root in the held trust bundle (Unix seconds)', registers });
    this.bundleRejected = new Counter({ name: SidecarMetricNames.bundleRejected, help: 'trust bundles refused, by error code', labelNames: ['code'], registers });
    this.renewals = new Counter({ name: SidecarMetricNames.renewals, help: 'SVID issue and renewal attempts, by result', labelNames: ['result'], registers });
    this.inboundConnections = new Counter({
      name: SidecarMetricNames.inboundConnections,
      help: 'inbound mTLS connections, by result and reason',
      labelNames: ['result', 'reason'],
      registers,
    });
    this.outboundConnections = new Counter({
      name: SidecarMetricNames.outboundConnections,
      help: 'outbound mTLS connections, by result and reason',
      labelNames: ['result', 'reason'],
      registers,
    });
    this.handshakeSeconds = new Histogram({
      name: SidecarMetricNames.handshakeSeconds,
      help: 'TLS handshake time, by direction',
      labelNames: ['direction'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.bytes = new Counter({ name: SidecarMetricNames.bytes, help: 'bytes proxied, by direction', labelNames: ['direction'], registers });
    this.activeConnections = new Gauge({ name: SidecarMetricNames.activeConnections, help: 'open proxied connections, by direction', labelNames: ['direction'], registers });
    this.configReloadFailures = new Counter({
      name: SidecarMetricNames.configReloadFailures,
      help: 'policy or config reloads refused (the previous one stayed active)',
      registers,
    });
    this.appPortsExposed = new Gauge({
      name: SidecarMetricNames.appPortsExposed,
      help: 'app ports listening on a non-loopback address while traffic capture is off: reachable around the sidecar',
      registers,
    });
  }
}
