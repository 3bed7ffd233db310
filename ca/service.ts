// The CA's decisions, independent of the transport: rate limits, attestation, CSR check, issuance,
// audit and metrics. ca/grpc-server.ts adapts gRPC calls to this.
import { hash } from 'node:crypto';
import type { Clock } from '../common/clock.ts';
import { parseCsr, MAX_CSR_BYTES, type VerifiedCsr } from '../pki/csr.ts';
import { refuseReservedId } from '../pki/spiffe-id.ts';
import { TollgateError, toTollgateError } from '../common/errors.ts';
import type { Attestation, AttestationEvidence, Attestor } from './attestation/attestor.ts';
import { SvidAttestor } from './attestation/svid.ts';
import { Convergence, STALE_AFTER_SHARE, type ConvergenceCounts } from './convergence.ts';
import type { AuditLog } from './audit.ts';
import type { SvidIssuer } from './issuer.ts';
import type { CaMetrics } from './metrics.ts';
import { DEFAULT_MAX_KEYS, RateLimiter, addressKey, type RateLimit } from './rate-limit.ts';

export const MAX_TOKEN_BYTES = 16 * 1024;

export interface ClientReport {
  readonly bundleVersion: number;
  readonly serial: string;
}

export interface IssueRequest {
  readonly csr: Buffer;
  readonly token?: string | undefined;
  readonly ttlSeconds?: number | undefined;
  readonly peerChain?: readonly Buffer[] | undefined;
  readonly peerAddress: string;
  readonly report?: ClientReport | undefined;
}

export interface IssueResponse {
  readonly spiffeId: string;
  readonly certChain: readonly Buffer[];
  readonly bundleVersion: number;
  /** Unix seconds */
  readonly expiresAt: number;
  readonly serial: string;
}

export interface Bundle {
  readonly trustDomain: string;
  readonly version: number;
  readonly roots: readonly Buffer[];
  readonly refreshHintSeconds: number;
  /** DER cross-signatures vouching for roots of `roots` (see the proto's Bundle.endorsements). */
  readonly endorsements?: readonly Buffer[];
  /** The deny-list (`tollgate ca deny`): SPIFFE IDs and leaf serials (lower-case hex). */
  readonly deniedIds?: readonly string[];
  readonly deniedSerials?: readonly string[];
}

export interface CaServiceOptions {
  readonly trustDomain: string;
  readonly clock: Clock;
  readonly issuer: SvidIssuer;
  readonly attestors: readonly Attestor[];
  readonly audit: AuditLog;
  readonly metrics: CaMetrics;
  readonly bundle: Bundle;
  /**
   * perAddress: unauthenticated attempts (tokens, no or a failing certificate), per IPv4 address or
   * IPv6 /64. perIdentity: authenticated callers, per certificate (SPIFFE ID plus the presented
   * serial) or per pod for Kubernetes tokens, so replicas of one service account never share one.
   */
  readonly limits?: { readonly perAddress?: RateLimit; readonly perIdentity?: RateLimit; readonly maxKeys?: number };
  /** Default: stale after 3/4 of the longest leaf lifetime (STALE_AFTER_SHARE). */
  readonly convergence?: Convergence;
  /** The authority id of an intermediate, by its serial (lower-case hex). */
  readonly authorityOf?: (intermediateSerial: string) => string | undefined;
}

export const DEFAULT_LIMITS = {
  perAddress: { perSecond: 200, burst: 400 },
  perIdentity: { perSecond: 1, burst: 20 },
} as const;

export const CSR_CACHE_SIZE = 20_000;



export class CaService {
  readonly #o: CaServiceOptions;
  #issuer: SvidIssuer;
  #bundle: Bundle;
  readonly #byAddress: RateLimiter;
  readonly #byIdentity: RateLimiter;
  readonly #watchers = new Set<(b: Bundle) => void>();
  // CSRs already verified, by SHA-256 of their DER: a sidecar that renews with the same key and CSR
  // (as Linkerd's proxy does) costs one hash instead of a key import and an ECDSA verification.
  readonly #csrCache = new Map<string, VerifiedCsr>();
  readonly convergence: Convergence;
  readonly #svids: SvidAttestor | undefined;
  // Which line of renewals a serial belongs to: its first certificate's serial, or the pod of a
  // Kubernetes token. Renewal is limited per line, so replicas of one service account never share
  // a bucket while a holder that loops renewals cannot get a fresh bucket from each new serial.
  readonly #lineage = new Map<string, string>();
  readonly #maxKeys: number;
  readonly #authenticated = new WeakMap<readonly Buffer[], Promise<number>>();

  constructor(options: CaServiceOptions) {
    this.#o = options;
    this.#issuer = options.issuer;
    this.#bundle = options.bundle;
    const maxKeys = options.limits?.maxKeys;
    this.#maxKeys = maxKeys ?? DEFAULT_MAX_KEYS;
    this.#byAddress = new RateLimiter({ limit: options.limits?.perAddress ?? DEFAULT_LIMITS.perAddress, clock: options.clock, maxKeys });
    this.#byIdentity = new RateLimiter({ limit: options.limits?.perIdentity ?? DEFAULT_LIMITS.perIdentity, clock: options.clock, maxKeys });
    options.metrics.bundleVersion.set(options.bundle.version);
    this.#svids = options.attestors.find((a): a is SvidAttestor => a instanceof SvidAttestor);
    // Stale once overdue for renewal: 3/4 of the longest lifetime the CA grants.
    this.convergence = options.convergence ?? new Convergence({ clock: options.clock, staleAfterMs: options.issuer.policy.maxTtlSeconds * 1000 * STALE_AFTER_SHARE });
    options.metrics.ratio = () => this.convergenceCounts().ratio;
  }

  get bundle(): Bundle {
    return this.#bundle;
  }

  get issuer(): SvidIssuer {
    return this.#issuer;
  }

  /** Swap in a new issuer (intermediate rotation). */
  setIssuer(issuer: SvidIssuer): void {
    this.#issuer = issuer;
  }

  /** Publish a new bundle to every watcher. */
  setBundle(bundle: Bundle): void {
    this.#bundle = bundle;
    this.#o.metrics.bundleVersion.set(bundle.version);
    for (const w of this.#watchers) w(bundle);
  }

  watchBundle(listener: (b: Bundle) => void): () => void {
    this.#watchers.add(listener);
    listener(this.#bundle);
    return () => this.#watchers.delete(listener);
  }

  get watcherCount(): number {
    return this.#watchers.size;
  }

  /** Sizes of the in-memory tables requests grow (each bounded), for tests and diagnostics. */
  tableSizes(): { byAddress: number; byIdentity: number; lineage: number; verifiedCsrs: number } {
    return { byAddress: this.#byAddress.size, byIdentity: this.#byIdentity.size, lineage: this.#lineage.size, verifiedCsrs: this.#csrCache.size };
  }

  /**
   * GetBundle/WatchBundle carry what the caller holds. It counts for convergence only when the
   * caller presented a valid SVID on the connection; an anonymous report is ignored.
   */
  async reportBundle(peer: { chain: readonly Buffer[]; address: string }, report: ClientReport | undefined): Promise<boolean> {
    if (!report || !report.bundleVersion || peer.chain.length === 0 || !this.#svids) return false;
    if (!this.#byAddress.take(addressKey(peer.address))) return false;
    try {
      const p = await this.#svids.authenticate(peer.chain);
      this.convergence.seen({ serial: p.serial, bundleVersion: report.bundleVersion, authorityId: this.#o.authorityOf?.(p.issuerSerial), notAfter: p.notAfter });
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Whether a connection's client chain is a valid SVID of this trust domain now. grpc-peer.ts
   * freezes one chain array per connection, so the check runs once per connection.
   */
  async isAuthenticated(chain: readonly Buffer[]): Promise<boolean> {
    if (chain.length === 0 || !this.#svids) return false;
    let notAfter = this.#authenticated.get(chain);
    if (!notAfter) {
      notAfter = this.#svids.authenticate(chain).then((p) => p.notAfter, () => 0);
      this.#authenticated.set(chain, notAfter);
    }
    return (await notAfter) > this.#o.clock.now();
  }

  /** Charge one unauthenticated attempt to its address: TG_RATE_LIMITED past the per-address limit. */
  chargeAddress(address: string): void {
    if (!this.#byAddress.take(addressKey(address))) {
      throw new TollgateError('TG_RATE_LIMITED', `too many unauthenticated requests from ${address}; retry with backoff`);
    }
  }

  /**
   * A request grpc-js could not decode into the API's message (ca/grpc-server.ts): an unauthenticated
   * attempt like any other, charged to its address, counted and audited (aggregated), refused with a code.
   */
  refuseUndecodable(address: string, what: string): TollgateError {
    let err = new TollgateError('TG_REQUEST_INVALID', `${what} is not a well-formed message of the CA API (tollgate.ca.v1); use a Tollgate client of the same version`);
    try {
      this.chargeAddress(address);
    } catch (e) {
      err = toTollgateError(e);
    }
    this.#o.metrics.refused.inc({ code: err.code });
    if (this.#o.audit.aggregates) this.#o.audit.refusedAggregate(address, err.code);
    else void this.#o.audit.record({ event: 'svid_refused', peer: address, code: err.code, message: err.message });
    return err;
  }

  /** Convergence on the bundle this CA serves now. */
  convergenceCounts(): ConvergenceCounts {
    return this.convergence.counts(this.#bundle.version);
  }

  async issueSvid(req: IssueRequest): Promise<IssueResponse> {
    const started = performance.now();
    let attestation: Attestation | undefined;
    try {
      // A renewal over mTLS is charged to its certificate, not to the address it comes from (a
      // flood from the same NAT address must not starve it); only if the certificate fails does
      // the attempt count as unauthenticated.
      const renewal = !req.token && (req.peerChain?.length ?? 0) > 0;
      if (!renewal) this.chargeAddress(req.peerAddress);
      if (req.csr.length > MAX_CSR_BYTES) {
        throw new TollgateError('TG_REQUEST_TOO_LARGE', `CSR is ${req.csr.length} bytes; the limit is ${MAX_CSR_BYTES}`);
      }
      if (req.token !== undefined && Buffer.byteLength(req.token) > MAX_TOKEN_BYTES) {
        throw new TollgateError('TG_REQUEST_TOO_LARGE', `token is larger than ${MAX_TOKEN_BYTES} bytes`);
      }
      // The CSR is checked before attestation: a join token is used up by attesting, so a request
      // that is going to fail anyway must not burn it.
      const csr = this.#verifyCsr(req.csr);
      try {
        attestation = await this.#attest({ token: req.token, peerChain: req.peerChain, peerAddress: req.peerAddress });
      } catch (e) {
        if (renewal) this.chargeAddress(req.peerAddress);
        throw e;
      }
      this.#checkAttested(attestation);
      this.#refuseDenied(attestation);
      // Join tokens are single use, a stricter limit than this one.
      const line = this.#lineOf(attestation);
      if (attestation.kind !== 'join_token' && !this.#byIdentity.take(`${attestation.spiffeId.id} ${line ?? ''}`)) {
        throw new TollgateError('TG_RATE_LIMITED', `too many requests for ${attestation.spiffeId.id}; retry with backoff`);
      }
      // Two-phase: a single-use token is used up only once nothing else can refuse the request
      // (the plan checks the lifetime and the intermediate), so a refusal never burns it.
      const issuer = this.#issuer;
      const plan = issuer.plan({ spki: csr.spki, spiffeId: attestation.spiffeId.id, ttlSeconds: req.ttlSeconds, ...horizonOf(attestation, issuer) });
      await attestation.consume?.();
      const svid = issuer.sign(plan);
      this.#remember(svid.serialHex.toLowerCase(), line ?? svid.serialHex.toLowerCase());
      this.convergence.seen({
        serial: svid.serialHex.toLowerCase(),
        bundleVersion: req.report?.bundleVersion ?? 0,
        authorityId: this.#o.authorityOf?.(issuer.intermediate.parsed.serialHex.toLowerCase()),
        notAfter: svid.notAfter,
        replaces: attestation.details?.['prior_serial']?.toLowerCase(),
      });
      this.#o.metrics.issued.inc({ attestation: attestation.kind });
      this.#o.metrics.issueSeconds.observe((performance.now() - started) / 1000);
      // The answer leaves only once its audit line is with the OS (without blocking other requests).
      await this.#o.audit.record({
        event: 'svid_issued',
        spiffe_id: svid.spiffeId,
        serial: svid.serialHex,
        not_after: new Date(svid.notAfter).toISOString(),
        attestation: attestation.kind,
        peer: req.peerAddress,
        details: attestation.details,
      });
      return {
        spiffeId: svid.spiffeId,
        certChain: svid.chain,
        bundleVersion: this.#bundle.version,
        expiresAt: Math.floor(svid.notAfter / 1000),
        serial: svid.serialHex,
      };
    } catch (e) {
      const err = toTollgateError(e);
      this.#o.metrics.refused.inc({ code: err.code });
      // A caller that never authenticated, or one over its rate, gets one line per address per
      // interval: a flood costs a few lines, and the metric above still counts every refusal.
      if ((!attestation || err.code === 'TG_RATE_LIMITED') && this.#o.audit.aggregates) {
        this.#o.audit.refusedAggregate(req.peerAddress, err.code);
        throw err;
      }
      await this.#o.audit.record({
        event: 'svid_refused',
        spiffe_id: attestation?.spiffeId.id,
        attestation: attestation?.kind ?? this.#kindOf(req),
        peer: req.peerAddress,
        code: err.code,
        message: err.message,
      });
      throw err;
    }
  }

  #lineOf(a: Attestation): string | undefined {
    const prior = a.details?.['prior_serial']?.toLowerCase();
    if (prior) return this.#lineage.get(prior) ?? prior;
    const pod = a.details?.['pod_uid'];
    return pod ? `pod ${pod}` : undefined;
  }

  #remember(serial: string, line: string): void {
    if (this.#lineage.size >= this.#maxKeys) this.#lineage.delete(this.#lineage.keys().next().value as string);
    this.#lineage.set(serial, line);
  }

  /** The deny-list holds for every issue and renewal: by attested SPIFFE ID, and by the presented serial. */
  #refuseDenied(a: Attestation): void {
    const b = this.#bundle;
    if (b.deniedIds?.includes(a.spiffeId.id)) throw new TollgateError('TG_DENIED', `${a.spiffeId.id} is on the CA's deny-list (tollgate ca deny list)`);
    const prior = a.details?.['prior_serial']?.toLowerCase();
    if (prior && b.deniedSerials?.includes(prior)) throw new TollgateError('TG_DENIED', `the presented certificate (serial ${prior}) is on the CA's deny-list (tollgate ca deny list)`);
  }

  #kindOf(req: IssueRequest): string | undefined {
    const ev = { token: req.token, peerChain: req.peerChain };
    return this.#o.attestors.find((a) => a.accepts(ev))?.kind;
  }

  async #attest(evidence: AttestationEvidence): Promise<Attestation> {
    // An explicit token wins over a presented certificate; with neither there is nothing to trust.
    const tokenEvidence = evidence.token ? { ...evidence, peerChain: undefined } : evidence;
    const attestor = this.#o.attestors.find((a) => a.accepts(tokenEvidence));
    if (!attestor) {
      if (evidence.token) throw new TollgateError('TG_TOKEN_INVALID', 'token is neither a join token nor a JWT that a configured attestor accepts');
      throw new TollgateError('TG_TOKEN_MISSING', 'no attestation: send a join token or a Kubernetes service-account token, or renew over mTLS with a valid SVID');
    }
    return attestor.attest(tokenEvidence);
  }

  /** What an attestor vouched for must still be ours to issue (a refusal here is audited on its own line). */
  #checkAttested(a: Attestation): void {
    refuseReservedId(a.spiffeId, `${a.kind} attestation`);
    if (a.spiffeId.trustDomain !== this.#o.trustDomain) {
      throw new TollgateError('TG_SVID_UNTRUSTED', `attested identity ${a.spiffeId.id} is outside trust domain ${this.#o.trustDomain}`);
    }
  }

  #verifyCsr(der: Buffer): VerifiedCsr {
    const key = hash('sha256', der, 'base64');
    const hit = this.#csrCache.get(key);
    if (hit) return hit;
    const csr = parseCsr(der);
    if (this.#csrCache.size >= CSR_CACHE_SIZE) this.#csrCache.delete(this.#csrCache.keys().next().value as string);
    this.#csrCache.set(key, csr);
    return csr;
  }
}

/**
 * What bounds a new leaf (PRODUCT.md §3): a token attestation starts a horizon (join token: now +
 * joinTokenHorizonSeconds; Kubernetes: now + k8sReattestSeconds); a renewal copies the presented
 * leaf's horizon unchanged and never outlives the presented leaf's own lifetime (less the backdate).
 * A leaf from before horizons existed counts as attested at its notBefore.
 */
function horizonOf(a: Attestation, issuer: SvidIssuer): { attestedUntil: number; maxTtlSeconds?: number } {
  if (a.kind !== 'svid') return { attestedUntil: issuer.horizonFor(a.kind) };
  const v = a.presentedValidity;
  if (!v) throw new TollgateError('TG_INTERNAL', 'a renewal without the presented validity');
  const p = issuer.policy;
  return {
    attestedUntil: a.attestedUntil ?? v.notBefore + p.backdateMs + p.joinTokenHorizonSeconds * 1000,
    maxTtlSeconds: Math.max(p.minTtlSeconds, Math.floor((v.notAfter - v.notBefore - p.backdateMs) / 1000)),
  };
}
