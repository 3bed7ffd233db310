// Renewal: the caller proves its identity with its current, still-valid SVID over mTLS. The new
// certificate gets the SPIFFE ID of that verified client certificate, never one from the CSR.
//
// A sidecar renews with the same certificate many times over its life, so a verified leaf is kept,
// keyed by the SHA-256 of its DER, for as long as every certificate on its verified path is valid
// and the trust it was verified against (bundle version, roots, intermediates) is unchanged.
import { hash } from 'node:crypto';
import type { Clock } from '../../common/clock.ts';
import { TollgateError } from '../../common/errors.ts';
import { refuseReservedId } from '../../pki/spiffe-id.ts';
import { verifySvidChain } from '../../pki/svid-validate.ts';
import { attestedUntilOf } from '../../pki/svid-template.ts';
import { ExpiringCache, type CacheStats } from '../expiring-cache.ts';
import type { Attestation, AttestationEvidence, Attestor } from './attestor.ts';

export interface TrustSource {
  readonly trustDomain: string;
  /** Current bundle roots. */
  roots(): readonly Buffer[];
  /** Intermediates this CA has signed with that may still have live leaves. */
  intermediates(): readonly Buffer[];
  /** Version of the current bundle; a change drops every cached verification. */
  bundleVersion?(): number;
}

export const DEFAULT_VERIFIED_LEAVES = 10_000;

/** What a verified client certificate says about its holder (for convergence counting). */
export interface Presented {
  readonly attestation: Attestation;
  /** Lower-case hex serial of the leaf. */
  readonly serial: string;
  readonly notAfter: number;
  /** Lower-case hex serial of the intermediate it chained through. */
  readonly issuerSerial: string;
}

export class SvidAttestor implements Attestor {
  readonly kind = 'svid' as const;
  readonly #clock: Clock;
  readonly #trust: TrustSource;
  readonly #verified: ExpiringCache<{ readonly der: Buffer; readonly presented: Presented }>;
  // What the cached verifications were made against.
  #version: number | undefined;
  #roots: readonly Buffer[] = [];
  #intermediates: readonly Buffer[] = [];

  constructor(options: { clock: Clock; trust: TrustSource; maxCachedLeaves?: number }) {
    this.#clock = options.clock;
    this.#trust = options.trust;
    this.#verified = new ExpiringCache({ maxEntries: options.maxCachedLeaves ?? DEFAULT_VERIFIED_LEAVES, clock: options.clock });
  }

  accepts(evidence: AttestationEvidence): boolean {
    return (evidence.peerChain?.length ?? 0) > 0;
  }

  get cacheStats(): CacheStats {
    return this.#verified.stats();
  }

  async attest(evidence: AttestationEvidence): Promise<Attestation> {
    return (await this.authenticate(evidence.peerChain ?? [])).attestation;
  }

  /** Verify a presented chain as attest() does, and say which certificate it was. */
  async authenticate(chain: readonly Buffer[]): Promise<Presented> {
    const leaf = chain[0];
    if (!leaf) throw new TollgateError('TG_TOKEN_MISSING', 'no client certificate was presented');
    const roots = this.#trust.roots();
    const intermediates = this.#trust.intermediates();
    this.#dropIfTrustChanged(roots, intermediates);
    const key = leafKey(leaf);
    const hit = this.#verified.get(key);
    // The bytes are compared too: a hit must be the very certificate that was verified.
    if (hit && hit.der.equals(leaf)) return hit.presented;
    const verified = verifySvidChain({
      leaf,
      intermediates: [...chain.slice(1), ...intermediates],
      roots,
      now: this.#clock.now(),
      usage: 'client',
      trustDomain: this.#trust.trustDomain,
    });
    // The CA's own serving SVID is issued by the CA to itself, never through an attestor: a reserved
    // ID presented for renewal is refused, whoever holds it.
    refuseReservedId(verified.spiffeId, 'a renewal with the current SVID');
    const attestation: Attestation = Object.freeze({
      kind: 'svid',
      spiffeId: verified.spiffeId,
      details: Object.freeze({ prior_serial: verified.leaf.serialHex }),
      attestedUntil: attestedUntilOf(verified.leaf),
      presentedValidity: Object.freeze({ notBefore: verified.leaf.notBefore, notAfter: verified.leaf.notAfter }),
    });
    const presented: Presented = Object.freeze({
      attestation,
      serial: verified.leaf.serialHex.toLowerCase(),
      notAfter: verified.leaf.notAfter,
      issuerSerial: (verified.path[1] ?? verified.leaf).serialHex.toLowerCase(),
    });
    // Valid while every certificate on the path is: no later than the earliest notAfter.
    const from = Math.max(...verified.path.map((c) => c.notBefore));
    const until = Math.min(...verified.path.map((c) => c.notAfter));
    this.#verified.set(key, { der: Buffer.from(leaf), presented }, { from, until });
    return presented;
  }

  #dropIfTrustChanged(roots: readonly Buffer[], intermediates: readonly Buffer[]): void {
    const version = this.#trust.bundleVersion?.();
    if (version === this.#version && sameBuffers(roots, this.#roots) && sameBuffers(intermediates, this.#intermediates)) return;
    this.#verified.clear();
    this.#version = version;
    this.#roots = [...roots];
    this.#intermediates = [...intermediates];
  }
}

// A connection presents the same Buffer on every call (ca/grpc-peer.ts): hash each one once. A
// Buffer changed after hashing only costs a miss, since a hit also compares the bytes.
const leafKeys = new WeakMap<Buffer, string>();

function leafKey(leaf: Buffer): string {
  let k = leafKeys.get(leaf);
  // Equivalent mutant left alive: `if (true)` hashes again each call, the same key (the memo only saves time).
  if (k === undefined) {
    // Equivalent mutant left alive: any string encoding of the digest ("" gives latin1) is an equally unique key.
    k = hash('sha256', leaf, 'base64');
    leafKeys.set(leaf, k);
  }
  return k;
}

function sameBuffers(a: readonly Buffer[], b: readonly Buffer[]): boolean {
  return a.length === b.length && a.every((x, i) => x.equals(b[i]!));
}
