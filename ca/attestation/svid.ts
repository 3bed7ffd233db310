// Renewal: the caller proves its identity with its current, still-valid SVID over mTLS. The new
// certificate gets the SPIFFE ID of that verified client certificate, never one from the CSR.
import type { Clock } from '../../pki/clock.ts';
import { TollgateError } from '../../pki/errors.ts';
import { verifySvidChain } from '../../pki/svid-validate.ts';
import type { Attestation, AttestationEvidence, Attestor } from './attestor.ts';

export interface TrustSource {
  readonly trustDomain: string;
  /** Current bundle roots. */
  roots(): readonly Buffer[];
  /** Intermediates this CA has signed with that may still have live leaves. */
  intermediates(): readonly Buffer[];
}

export class SvidAttestor implements Attestor {
  readonly kind = 'svid' as const;
  readonly #clock: Clock;
  readonly #trust: TrustSource;

  constructor(options: { clock: Clock; trust: TrustSource }) {
    this.#clock = options.clock;
    this.#trust = options.trust;
  }

  accepts(evidence: AttestationEvidence): boolean {
    return (evidence.peerChain?.length ?? 0) > 0;
  }

  async attest(evidence: AttestationEvidence): Promise<Attestation> {
    const chain = evidence.peerChain ?? [];
    const leaf = chain[0];
    if (!leaf) throw new TollgateError('TG_TOKEN_MISSING', 'no client certificate was presented');
    const verified = verifySvidChain({
      leaf,
      intermediates: [...chain.slice(1), ...this.#trust.intermediates()],
      roots: this.#trust.roots(),
      now: this.#clock.now(),
      usage: 'client',
      trustDomain: this.#trust.trustDomain,
    });
    return { kind: 'svid', spiffeId: verified.spiffeId, details: { prior_serial: verified.leaf.serialHex } };
  }
}
