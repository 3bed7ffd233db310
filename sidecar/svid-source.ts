// What the proxies need from the SVID manager: the current SVID, the current trust bundle, and a
// signal when either changes. The proxies depend on this interface only, so they can be tested with
// any source (a fixed test chain) and the SvidManager can be tested without proxies.
import type { KeyObject } from 'node:crypto';

/** The sidecar's own X.509-SVID. Frozen; a renewal produces a new object. */
export interface Svid {
  readonly spiffeId: string;
  /** DER: leaf first, then intermediates (never the root). */
  readonly certChain: readonly Buffer[];
  /** The same chain as PEM, ready for tls.createSecureContext. */
  readonly certChainPem: string;
  /** The in-memory private key (never written to disk). */
  readonly key: KeyObject;
  readonly notBefore: number;
  readonly notAfter: number;
  /** Leaf serial, lower-case hex. */
  readonly serial: string;
}

/** The roots this sidecar trusts (the CA's current bundle). Frozen; an update produces a new object. */
export interface TrustBundle {
  readonly version: number;
  readonly trustDomain: string;
  /** DER roots. */
  readonly roots: readonly Buffer[];
  readonly rootsPem: string;
}

export interface SvidSource {
  /** The current SVID, or null before the first issue. */
  svid(): Svid | null;
  /** The current bundle, or null before the first fetch. */
  bundle(): TrustBundle | null;
  /** Call `fn` after the SVID or the bundle changed. Returns an unsubscribe function. */
  onChange(fn: () => void): () => void;
}
