// The CA's own serving identity. The CA issues itself an SVID (fresh in-memory key) so clients can
// verify they reach the real CA by its SPIFFE ID, renews it at half-life, and feeds both its
// certificate and the client-trust bundle to grpc-js through the CertificateProvider interface,
// so rotations take effect without a restart.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import type { Clock, TimerHandle } from '../common/clock.ts';
import { createCsr, parseCsr } from '../pki/csr.ts';
import { certsToPem } from '../pki/pem.ts';
import type { Logger } from '../common/log.ts';
import type { SvidIssuer } from './issuer.ts';

type CertificateProvider = grpc.experimental.CertificateProvider;
type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdListener = grpc.experimental.IdentityCertificateUpdateListener;

export class CaServerIdentity implements CertificateProvider {
  readonly spiffeId: string;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #key: KeyObject;
  readonly #spki: Buffer;
  readonly #caListeners = new Set<CaListener>();
  readonly #idListeners = new Set<IdListener>();
  #issuer: SvidIssuer;
  #roots: readonly Buffer[];
  #identity: { certificate: Buffer; privateKey: Buffer } | null = null;
  #notAfter = 0;
  #chain: readonly Buffer[] = [];
  #timer: TimerHandle | undefined;

  constructor(options: { spiffeId: string; issuer: SvidIssuer; roots: readonly Buffer[]; clock: Clock; logger: Logger }) {
    this.spiffeId = options.spiffeId;
    this.#issuer = options.issuer;
    this.#roots = options.roots;
    this.#clock = options.clock;
    this.#log = options.logger;
    this.#key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    this.#spki = parseCsr(createCsr(this.#key)).spki;
    this.renew();
  }

  get notAfter(): number {
    return this.#notAfter;
  }

  /** The serving SVID's chain (leaf, intermediate), DER. */
  get chain(): readonly Buffer[] {
    return this.#chain;
  }

  /** Issue a fresh serving certificate now and schedule the next renewal at half of its life. */
  renew(): void {
    const svid = this.#issuer.issue({ spki: this.#spki, spiffeId: this.spiffeId, ttlSeconds: this.#issuer.policy.maxTtlSeconds });
    this.#identity = {
      certificate: Buffer.from(certsToPem(svid.chain)),
      privateKey: this.#key.export({ format: 'pem', type: 'pkcs8' }) as Buffer,
    };
    this.#notAfter = svid.notAfter;
    this.#chain = svid.chain;
    for (const l of this.#idListeners) l(this.#identity);
    this.#schedule(Math.max(1000, (svid.notAfter - this.#clock.now()) / 2));
    this.#log.info('CA serving certificate issued', { spiffe_id: this.spiffeId, serial: svid.serialHex, not_after: new Date(svid.notAfter).toISOString() });
  }

  #schedule(ms: number): void {
    this.#timer?.cancel();
    this.#timer = this.#clock.setTimer(ms, () => {
      try {
        this.renew();
      } catch (e) {
        // Try again soon: without a retry, one failed renewal would let the serving certificate
        // run out (until setIssuer at the next intermediate rotation).
        const left = this.#notAfter - this.#clock.now();
        const retryMs = left > 0 ? Math.min(60_000, Math.max(1000, left / 10)) : 60_000;
        this.#log.error('cannot renew the CA serving certificate; keeping the current one and trying again', {
          error: (e as Error).message,
          retry_in_ms: Math.round(retryMs),
          not_after: new Date(this.#notAfter).toISOString(),
        });
        this.#schedule(retryMs);
      }
    });
  }

  /** Renew from `issuer` now; if that fails, the old issuer and certificate stay and this throws. */
  setIssuer(issuer: SvidIssuer): void {
    const previous = this.#issuer;
    this.#issuer = issuer;
    try {
      this.renew();
    } catch (e) {
      this.#issuer = previous;
      throw e;
    }
  }

  setRoots(roots: readonly Buffer[]): void {
    this.#roots = roots;
    const update = { caCertificate: Buffer.from(certsToPem(roots)) };
    for (const l of this.#caListeners) l(update);
  }

  stop(): void {
    this.#timer?.cancel();
  }

  addCaCertificateListener(listener: CaListener): void {
    this.#caListeners.add(listener);
    // Deliver after the caller has finished registering: grpc-js adds its server watcher only after
    // adding our listeners, and a synchronous first update would be lost (the port would reset every
    // handshake).
    queueMicrotask(() => this.#caListeners.has(listener) && listener({ caCertificate: Buffer.from(certsToPem(this.#roots)) }));
  }
  removeCaCertificateListener(listener: CaListener): void {
    this.#caListeners.delete(listener);
  }
  addIdentityCertificateListener(listener: IdListener): void {
    this.#idListeners.add(listener);
    queueMicrotask(() => this.#idListeners.has(listener) && listener(this.#identity));
  }
  removeIdentityCertificateListener(listener: IdListener): void {
    this.#idListeners.delete(listener);
  }
}
