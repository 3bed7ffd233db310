// Fleet convergence during rotation (PRODUCT.md §4), from what authenticated clients tell the CA:
// per client certificate (serial) the bundle version it holds, when it was last seen, which
// authority issued it and when it expires. Only authenticated calls count (a renewal over mTLS, a
// first issue attested by a token, a GetBundle/WatchBundle that presented a valid SVID), so an
// anonymous caller cannot make a rotation look converged. A renewal replaces the entry of the
// certificate it renewed. A client not seen for one renewal period is stale: counted apart and not
// waited for. Expired certificates drop out.
import type { Clock } from '../common/clock.ts';

/**
 * Default staleness, as a share of the longest leaf lifetime the CA grants. Sidecars renew at 50 % ±
 * 10 % of their lifetime (PRODUCT.md §5), so a healthy one may go 60 % of it without calling; 3/4
 * leaves a margin for retries, so a sidecar that is merely late is never dropped from the counts.
 */
export const STALE_AFTER_SHARE = 3 / 4;

export interface ClientSeen {
  /** Serial of the client's certificate (lower-case hex). */
  readonly serial: string;
  readonly bundleVersion: number;
  /** Authority id of the intermediate that issued it, when known. */
  readonly authorityId: string | undefined;
  /** Epoch ms. */
  readonly notAfter: number;
  /** A renewal: the serial of the certificate this one replaces. */
  readonly replaces?: string | undefined;
}

export interface ConvergenceCounts {
  /** The bundle version clients should hold. */
  readonly bundleVersion: number;
  /** Live, not stale clients. */
  readonly clients: number;
  readonly onCurrentBundle: number;
  /** Live certificates whose client has not been seen for a renewal period. */
  readonly stale: number;
  /** onCurrentBundle / clients; 1 when there are none. */
  readonly ratio: number;
  /** Live, not stale certificates per issuing authority id. */
  readonly liveByAuthority: Readonly<Record<string, number>>;
  /** Since when this process has been counting (a CA that just started knows few clients yet). */
  readonly trackingSince: number;
  readonly staleAfterMs: number;
}

interface Entry {
  bundleVersion: number;
  lastSeen: number;
  authorityId: string | undefined;
  notAfter: number;
}

export class Convergence {
  readonly #clock: Clock;
  readonly #staleAfterMs: number;
  readonly #max: number;
  readonly #since: number;
  readonly #clients = new Map<string, Entry>();

  constructor(options: { clock: Clock; staleAfterMs: number; maxClients?: number }) {
    this.#clock = options.clock;
    this.#staleAfterMs = options.staleAfterMs;
    this.#max = options.maxClients ?? 200_000;
    this.#since = options.clock.now();
  }

  seen(c: ClientSeen): void {
    const now = this.#clock.now();
    if (c.notAfter <= now) return;
    const prior = c.replaces ? this.#clients.get(c.replaces) : undefined;
    if (c.replaces) this.#clients.delete(c.replaces);
    if (!this.#clients.has(c.serial) && this.#clients.size >= this.#max) this.#prune(now);
    if (!this.#clients.has(c.serial) && this.#clients.size >= this.#max) return;
    const bundleVersion = c.bundleVersion || prior?.bundleVersion || this.#clients.get(c.serial)?.bundleVersion || 0;
    this.#clients.set(c.serial, { bundleVersion, lastSeen: now, authorityId: c.authorityId, notAfter: c.notAfter });
  }

  counts(currentVersion: number): ConvergenceCounts {
    const now = this.#clock.now();
    this.#prune(now);
    let clients = 0;
    let onCurrentBundle = 0;
    let stale = 0;
    const liveByAuthority: Record<string, number> = {};
    for (const e of this.#clients.values()) {
      if (now - e.lastSeen > this.#staleAfterMs) {
        stale++;
        continue;
      }
      clients++;
      if (e.bundleVersion >= currentVersion) onCurrentBundle++;
      const id = e.authorityId ?? 'unknown';
      liveByAuthority[id] = (liveByAuthority[id] ?? 0) + 1;
    }
    return { bundleVersion: currentVersion, clients, onCurrentBundle, stale, ratio: clients === 0 ? 1 : onCurrentBundle / clients, liveByAuthority, trackingSince: this.#since, staleAfterMs: this.#staleAfterMs };
  }

  #prune(now: number): void {
    for (const [serial, e] of this.#clients) if (e.notAfter <= now) this.#clients.delete(serial);
  }
}
