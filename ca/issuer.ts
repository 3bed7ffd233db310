// Leaf issuance policy: TTL default 1 h, capped (24 h by default), backdated for clock skew, and never
// past the issuing intermediate's notAfter.
import type { Clock } from '../common/clock.ts';
import { TollgateError } from '../common/errors.ts';
import { LeafTemplate, type IssuedLeaf, type LeafRequest } from '../pki/svid-template.ts';
import type { Authority } from './authority.ts';

export interface IssuancePolicy {
  readonly defaultTtlSeconds: number;
  readonly maxTtlSeconds: number;
  readonly minTtlSeconds: number;
  /** notBefore is set this far in the past so peers with slightly slow clocks accept new leaves. */
  readonly backdateMs: number;
  /** Attestation horizon of a join token: its SVIDs renew until this long after first issue. */
  readonly joinTokenHorizonSeconds: number;
  /** Attestation horizon of a Kubernetes token: the sidecar re-presents its projected token this often. */
  readonly k8sReattestSeconds: number;
}

export const DEFAULT_ISSUANCE: IssuancePolicy = Object.freeze({
  defaultTtlSeconds: 3600,
  maxTtlSeconds: 24 * 3600,
  minTtlSeconds: 5,
  // The sidecars' skew tolerance (sidecar/ca-answers.ts SKEW_TOLERANCE_MS) is 5 min too: a client up
  // to 5 min behind the CA gets a leaf already valid by its own clock (issue 13, problem 6).
  backdateMs: 5 * 60_000,
  joinTokenHorizonSeconds: 24 * 3600,
  k8sReattestSeconds: 12 * 3600,
});

export interface IssuedSvid {
  readonly spiffeId: string;
  /** leaf DER, then the intermediate DER */
  readonly chain: readonly Buffer[];
  readonly serialHex: string;
  readonly notBefore: number;
  readonly notAfter: number;
}

export interface IssueOptions {
  readonly spki: Buffer;
  readonly spiffeId: string;
  readonly ttlSeconds?: number | undefined;
  /** Epoch ms the attestation holds until: notAfter never passes it, and the leaf carries it. */
  readonly attestedUntil?: number | undefined;
  /** A renewal's cap: the presented certificate's own lifetime. */
  readonly maxTtlSeconds?: number | undefined;
}

export class SvidIssuer {
  readonly #template: LeafTemplate;
  readonly #intermediate: Authority;
  readonly #clock: Clock;
  readonly policy: IssuancePolicy;

  constructor(options: { intermediate: Authority; clock: Clock; policy?: Partial<IssuancePolicy> }) {
    this.#intermediate = options.intermediate;
    this.#template = new LeafTemplate({ issuerCertificate: options.intermediate.certificate, issuerKey: options.intermediate.key });
    this.#clock = options.clock;
    this.policy = Object.freeze({ ...DEFAULT_ISSUANCE, ...options.policy });
    if (this.policy.maxTtlSeconds < this.policy.minTtlSeconds || this.policy.defaultTtlSeconds > this.policy.maxTtlSeconds) {
      throw new TollgateError('TG_CONFIG_INVALID', 'TTL settings must satisfy min <= default <= max');
    }
    if (Math.min(this.policy.joinTokenHorizonSeconds, this.policy.k8sReattestSeconds) < this.policy.minTtlSeconds) {
      throw new TollgateError('TG_CONFIG_INVALID', 'attestation horizons (--join-token-horizon, --k8s-reattest) must be at least the minimum TTL');
    }
  }

  get intermediate(): Authority {
    return this.#intermediate;
  }

  /** The lifetime a request gets: default when unset, capped at the maximum. */
  ttlFor(requestedSeconds: number | undefined): number {
    if (!requestedSeconds) return this.policy.defaultTtlSeconds;
    if (requestedSeconds < this.policy.minTtlSeconds) {
      throw new TollgateError('TG_TTL_INVALID', `requested TTL ${requestedSeconds}s is below the minimum of ${this.policy.minTtlSeconds}s`);
    }
    return Math.min(requestedSeconds, this.policy.maxTtlSeconds);
  }

  issue(options: IssueOptions): IssuedSvid {
    return this.sign(this.plan(options));
  }

  /** Everything that can refuse an issuance (lifetime, the intermediate's own expiry), decided now. */
  plan(options: IssueOptions): LeafRequest {
    const now = this.#clock.now();
    const ttl = Math.min(this.ttlFor(options.ttlSeconds), options.maxTtlSeconds ?? Infinity);
    const horizon = options.attestedUntil ?? Infinity;
    if (horizon - now < this.policy.minTtlSeconds * 1000) {
      throw new TollgateError('TG_REATTEST_REQUIRED', `the attestation of ${options.spiffeId} held until ${new Date(horizon).toISOString()}: renewal cannot extend it; attest again with a Kubernetes service-account token or a new join token`);
    }
    const notAfter = Math.min(now + ttl * 1000, this.#template.issuerNotAfter, horizon);
    if (notAfter - now < this.policy.minTtlSeconds * 1000) {
      throw new TollgateError('TG_AUTHORITY_EXPIRED', 'the intermediate expires too soon to issue from; rotate it with `tollgate ca rotate intermediate`');
    }
    const notBefore = Math.max(now - this.policy.backdateMs, this.#template.issuerNotBefore);
    return { spki: options.spki, spiffeId: options.spiffeId, notBefore, notAfter, attestedUntil: options.attestedUntil };
  }

  /** The horizon a fresh attestation of this kind gives, from now (epoch ms). */
  horizonFor(kind: 'join_token' | 'k8s_token'): number {
    const seconds = kind === 'k8s_token' ? this.policy.k8sReattestSeconds : this.policy.joinTokenHorizonSeconds;
    return this.#clock.now() + seconds * 1000;
  }

  /** Sign a leaf planned by this issuer. */
  sign(plan: LeafRequest): IssuedSvid {
    return this.#result(plan, this.#template.issue(plan));
  }

  #result(plan: LeafRequest, leaf: IssuedLeaf): IssuedSvid {
    return {
      spiffeId: plan.spiffeId,
      chain: [leaf.der, this.#intermediate.certificate],
      serialHex: leaf.serialHex,
      notBefore: Math.floor(plan.notBefore / 1000) * 1000,
      notAfter: Math.floor(plan.notAfter / 1000) * 1000,
    };
  }
}
