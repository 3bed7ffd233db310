// One interface for proving identity (as Linkerd's identity Validator): each attestor turns what a
// caller proves into a SPIFFE ID, or throws a TollgateError with a stable code. The CSR never counts.
import type { SpiffeId } from '../../pki/spiffe-id.ts';

export type AttestationKind = 'join_token' | 'k8s_token' | 'svid';

export interface AttestationEvidence {
  /** A join token or a Kubernetes projected service-account token, when one was sent. */
  readonly token?: string;
  /** DER chain the caller presented over mTLS (leaf first), when it did. */
  readonly peerChain?: readonly Buffer[];
  /** The caller's address, for audit only. */
  readonly peerAddress?: string;
}

export interface Attestation {
  readonly kind: AttestationKind;
  readonly spiffeId: SpiffeId;
  /** Facts worth auditing (never the token itself): e.g. pod name, token id hash, prior serial. */
  readonly details?: Readonly<Record<string, string>>;
  /** Renewal only: the presented leaf's "attested until" (epoch ms), copied unchanged into the new leaf. */
  readonly attestedUntil?: number;
  /** Renewal only: the presented leaf's notBefore and notAfter (epoch ms); the new one lives no longer. */
  readonly presentedValidity?: { readonly notBefore: number; readonly notAfter: number };
  /**
   * Single-use evidence (a join token): use it up. The CA calls this last, once everything else
   * that can refuse the request has passed; it throws (TG_TOKEN_REUSED) when another request won.
   */
  readonly consume?: () => Promise<void>;
}

export interface Attestor {
  readonly kind: AttestationKind;
  /** True when this attestor is the one that should judge the evidence. */
  accepts(evidence: AttestationEvidence): boolean;
  attest(evidence: AttestationEvidence): Promise<Attestation>;
}
