// What the proxies need from the SVID manager: the current SVID, the current trust bundle, and a
// signal when either changes. The proxies depend on this interface only, so they can be tested with
// any source (a fixed test chain) and the SvidManager can be tested without proxies.
import type { KeyObject } from 'node:crypto';
import { certsToPem } from '../pki/pem.ts';

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
  /** The CA's deny-list: peers with one of these SPIFFE IDs or leaf serials (lower-case hex) are refused. */
  readonly denied: DenyList;
}

export interface DenyList {
  readonly ids: ReadonlySet<string>;
  readonly serials: ReadonlySet<string>;
}

export interface SvidSource {
  /** The current SVID, or null before the first issue. */
  svid(): Svid | null;
  /** The current bundle, or null before the first fetch. */
  bundle(): TrustBundle | null;
  /** Call `fn` after the SVID or the bundle changed. Returns an unsubscribe function. */
  onChange(fn: () => void): () => void;
}

/** A frozen Svid from its parts (the PEM copy of the chain is derived here, once). */
export function svidOf(parts: Omit<Svid, 'certChainPem'>): Svid {
  const certChain = Object.freeze([...parts.certChain]);
  return Object.freeze({ ...parts, certChain, certChainPem: certsToPem(certChain) });
}

/** A frozen TrustBundle from DER roots (the PEM copy is derived here, once). */
export function trustBundleOf(version: number, trustDomain: string, roots: readonly Buffer[], denied?: { ids?: readonly string[] | undefined; serials?: readonly string[] | undefined }): TrustBundle {
  const frozen = Object.freeze([...roots]);
  const deny = Object.freeze({ ids: new Set(denied?.ids ?? []), serials: new Set(denied?.serials ?? []) });
  return Object.freeze({ version, trustDomain, roots: frozen, rootsPem: certsToPem(frozen), denied: deny });
}

/**
 * The state every SvidSource keeps: the current SVID and bundle and the subscribers to tell when
 * either changes. The SVID manager, a worker's copy fed over IPC and test sources all extend it.
 */
export class SvidHolder implements SvidSource {
  #svid: Svid | null;
  #bundle: TrustBundle | null;
  readonly #listeners = new Set<() => void>();
  readonly #onListenerError: (e: unknown) => void;

  /** `onListenerError` defaults to rethrowing, which stops the notification there. */
  constructor(init: { svid?: Svid | null; bundle?: TrustBundle | null; onListenerError?: (e: unknown) => void } = {}) {
    this.#svid = init.svid ?? null;
    this.#bundle = init.bundle ?? null;
    this.#onListenerError = init.onListenerError ?? ((e) => {
      throw e;
    });
  }

  svid(): Svid | null {
    return this.#svid;
  }

  bundle(): TrustBundle | null {
    return this.#bundle;
  }

  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }

  /** Replace the SVID and/or the bundle (undefined keeps the current one) without telling anyone yet. */
  protected replace(next: { svid?: Svid | null; bundle?: TrustBundle | null }): void {
    if (next.svid !== undefined) this.#svid = next.svid;
    if (next.bundle !== undefined) this.#bundle = next.bundle;
  }

  /** Tell every subscriber (as of now) that the state changed. */
  protected notify(): void {
    for (const fn of [...this.#listeners]) {
      try {
        fn();
      } catch (e) {
        this.#onListenerError(e);
      }
    }
  }
}
