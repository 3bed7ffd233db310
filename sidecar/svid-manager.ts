// The sidecar's SVID manager (PRODUCT.md §5): one P-256 key made in memory at start, a first SVID by
// token attestation, renewal over mTLS at 50 % ± 10 % of the lifetime, exponential backoff with jitter
// on failure while the current SVID keeps serving, and the CA's bundle followed over WatchBundle.
// Everything the CA returns is checked before use; a bad answer never replaces a good SVID or bundle
// (PRODUCT.md §10.4). Timers run on the injected Clock, jitter comes from the injected random.
import { readFileSync } from 'node:fs';
import type { ClientReportMsg } from '../common/ca-api.ts';
import type { BundleResponse, IssuedSvidResponse } from '../common/ca-client.ts';
import { connectCa, type CaConnectOptions } from '../pki/ca-connect.ts';
import { systemClock, type Clock, type TimerHandle } from '../common/clock.ts';
import { TollgateError, toTollgateError, type ErrorCode } from '../common/errors.ts';
import { silentLogger, type Logger } from '../common/log.ts';
import { checkContinuity } from '../pki/bundle-continuity.ts';
import { parseSpiffeId } from '../pki/spiffe-id.ts';
import { parseCertificate } from '../pki/x509.ts';
import { attestedUntilOf } from '../pki/svid-template.ts';
import { checkBundle, checkIssued, makeKeyMaterial, SKEW_TOLERANCE_MS, type KeyMaterial } from './ca-answers.ts';
import type { SidecarMetrics } from './metrics.ts';
import { DEFAULT_BACKOFF, backoffDelay, earlyRenewalDelay, heldLifetime, renewAt, retryBeforeExpiry } from './renewal.ts';
import { SvidHolder, type Svid, type SvidSource } from './svid-source.ts';

/** The part of CaClient the manager uses; tests put an in-process CA behind it. */
export interface CaApi {
  issue(req: { csr: Buffer; token?: string | undefined; ttlSeconds?: number | undefined; report?: ClientReportMsg | undefined }): Promise<IssuedSvidResponse>;
  getBundle(report?: ClientReportMsg): Promise<BundleResponse>;
  watchBundle(report: ClientReportMsg | undefined, onBundle: (b: BundleResponse) => void, onEnd: (e?: TollgateError) => void): () => void;
  close(): void;
}

export type Attestation = { readonly kind: 'join'; readonly token: string } | { readonly kind: 'k8s'; readonly tokenFile: string };

export interface SvidManagerOptions {
  readonly ca: { readonly address: string; readonly spiffeId: string };
  /** DER roots that authenticate the CA at first contact (the bundle file or ConfigMap). */
  readonly bootstrapRoots: readonly Buffer[];
  readonly attestation: Attestation;
  readonly ttlSeconds?: number;
  readonly clock?: Clock;
  readonly random?: () => number;
  readonly logger?: Logger;
  readonly metrics?: SidecarMetrics;
  readonly connect?: (o: CaConnectOptions) => CaApi;
  readonly backoff?: { readonly baseMs: number; readonly maxMs: number };
  /** Deadline of each CA call. Default 10 s. */
  readonly deadlineMs?: number;
  /** Accept an SVID starting this far in our future (the CA's clock ahead). Default SKEW_TOLERANCE_MS (5 min). */
  readonly skewToleranceMs?: number | undefined;
}

// Codes with which the CA refuses our SVID as proof of identity: renewing with it again cannot succeed.
interface Issued {
  readonly svid: Svid;
  readonly root: Buffer;
  readonly attestation: 'svid' | Attestation['kind'];
}

const SVID_REFUSALS: ReadonlySet<ErrorCode> = new Set(['TG_SVID_EXPIRED', 'TG_SVID_UNTRUSTED', 'TG_SVID_INVALID', 'TG_TOKEN_MISSING', 'TG_REATTEST_REQUIRED', 'TG_DENIED']);
// A join token refused with one of these never becomes good; TG_TOKEN_UNKNOWN is retried (a CA
// replica may not have seen a just-created token yet).
const JOIN_TOKEN_FINAL: ReadonlySet<ErrorCode> = new Set(['TG_TOKEN_REUSED', 'TG_TOKEN_EXPIRED', 'TG_TOKEN_INVALID']);


export class SvidManager extends SvidHolder implements SvidSource {
  readonly #o: SvidManagerOptions;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #log: Logger;
  readonly #trustDomain: string;
  #keys: Promise<KeyMaterial> | null = null;
  /** The key material once made (it is made before the first issue). */
  #keysMade: KeyMaterial | null = null;

  /** Root the current SVID chains to; a bundle without it means renew now. */
  #svidRoot: Buffer | null = null;
  #lastError: TollgateError | null = null;
  #attempt = 0;
  #issuing = false;
  /** The CA refused our current SVID for renewal; the next attempt uses the token if it can. */
  #svidRefused = false;
  #joinTokenUsed = false;
  /** Why the SVID bought with the join token was refused here, for the message once it is gone. */
  #tokenSpentOn: TollgateError | null = null;
  #renewTimer: TimerHandle | null = null;
  #nextRenewalAt: number | null = null;
  #inFlight: CaApi | null = null;
  #watchClient: CaApi | null = null;
  #watchCancel: (() => void) | null = null;
  #watchTimer: TimerHandle | null = null;
  #watchAttempt = 0;
  #closed = false;
  #started: Promise<void> | null = null;
  #startWaiter: { resolve: () => void; reject: (e: Error) => void } | null = null;

  constructor(options: SvidManagerOptions) {
    if (options.bootstrapRoots.length === 0) {
      throw new TollgateError('TG_CONFIG_INVALID', 'no bootstrap roots to authenticate the CA: point the sidecar at the CA bundle (bundle.pem or the tollgate-bundle ConfigMap)');
    }
    const log = options.logger ?? silentLogger;
    super({ onListenerError: (e) => log.error('an SVID change listener threw', { error: (e as Error).message }) });
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#log = log;
    this.#trustDomain = parseSpiffeId(options.ca.spiffeId).trustDomain;
  }

  /** When the next renewal (or retry) is due, epoch ms; null when none is scheduled. */
  nextRenewalAt(): number | null {
    return this.#nextRenewalAt;
  }

  readiness(): { ready: boolean; detail: string } {
    const now = this.#clock.now();
    const last = this.#lastError ? `; last attempt failed: ${this.#lastError.code}: ${this.#lastError.message}` : '';
    const svid = this.svid();
    const bundle = this.bundle();
    if (!svid) return { ready: false, detail: `no SVID yet${last}` };
    if (svid.notAfter <= now) return { ready: false, detail: `SVID expired at ${iso(svid.notAfter)}${last}` };
    if (!bundle) return { ready: false, detail: `no trust bundle yet${last}` };
    return { ready: true, detail: `SVID ${svid.spiffeId} valid until ${iso(svid.notAfter)}, bundle version ${bundle.version}${last}` };
  }

  /** Fetch the bundle and the first SVID, retrying with backoff; resolves once both are held. */
  start(): Promise<void> {
    if (this.#started) return this.#started;
    if (this.#closed) return Promise.reject(new TollgateError('TG_INTERNAL', 'SvidManager.start() after close()'));
    this.#started = new Promise((resolve, reject) => (this.#startWaiter = { resolve, reject }));
    void this.#keyMaterial();
    void this.#attemptIssue();
    return this.#started;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#renewTimer?.cancel();
    this.#watchTimer?.cancel();
    this.#nextRenewalAt = null;
    this.#watchCancel?.();
    this.#watchClient?.close();
    this.#inFlight?.close();
    this.#startWaiter?.reject(new TollgateError('TG_UNAVAILABLE', 'the SVID manager was closed before it obtained an SVID'));
    this.#startWaiter = null;
  }

  /** One key for the manager's life, made in the thread pool while the first attempt connects to the CA. */
  #keyMaterial(): Promise<KeyMaterial> {
    if (!this.#keys) {
      this.#keys = makeKeyMaterial();
      this.#keys.then((k) => (this.#keysMade = k), () => undefined);
    }
    return this.#keys;
  }

  #report(): ClientReportMsg {
    return { bundle_version: this.bundle()?.version ?? 0, serial: this.svid()?.serial ?? '' };
  }

  #connect(identity?: { certChainPem: string; keyPem: string }): CaApi {
    const options: CaConnectOptions = {
      address: this.#o.ca.address,
      // Once a bundle is held it is the trust anchor; the bootstrap roots only serve first contact.
      roots: this.bundle()?.roots ?? this.#o.bootstrapRoots,
      serverId: this.#o.ca.spiffeId,
      identity,
      deadlineMs: this.#o.deadlineMs ?? 10_000,
    };
    return (this.#o.connect ?? ((o) => connectCa(o)))(options);
  }

  /** One attempt at the first issue or a renewal (fetching the bundle first if none is held). */
  async #attemptIssue(): Promise<void> {
    if (this.#closed || this.#issuing) return;
    this.#issuing = true;
    this.#renewTimer?.cancel();
    this.#renewTimer = null;
    this.#nextRenewalAt = null;
    let outcome: { issued: Issued } | { error: TollgateError } | null = null;
    // At first contact one connection (one TLS handshake) serves GetBundle, the first IssueSVID and
    // then WatchBundle: the bootstrap roots authenticate the CA for all three, and the bundle it
    // sends is what the issued SVID is verified against.
    let bootstrap: CaApi | null = null;
    try {
      if (!this.bundle()) {
        bootstrap = this.#connect();
        this.#setBundle(await this.#track(bootstrap, bootstrap.getBundle(this.#report())));
      }
      const renewing = this.#useSvid();
      if (!renewing && this.#o.attestation.kind === 'join' && this.#joinTokenUsed) this.#stopWithoutToken();
      else if (!this.#closed) outcome = { issued: await this.#issue(renewing, bootstrap) };
    } catch (e) {
      outcome = { error: toTollgateError(e) };
    } finally {
      this.#issuing = false;
    }
    // Scheduling and callbacks run only after the attempt is over, so a listener or a timer that
    // fires from inside them never meets an attempt still marked as running.
    if (this.#closed || !outcome || 'error' in outcome) bootstrap?.close();
    if (this.#closed || !outcome) return;
    if ('error' in outcome) this.#failed(outcome.error);
    else this.#installed(outcome.issued, bootstrap);
  }

  /**
   * Renew with the current SVID while it is valid, unless the CA refused it and a service-account
   * token can do better. With a join token the SVID is the only proof left, so it is retried.
   */
  #useSvid(): boolean {
    const svid = this.svid();
    if (svid === null || this.#clock.now() >= svid.notAfter) return false;
    // A leaf cut short by its attestation horizon cannot be renewed past it: re-present the token now,
    // at the usual renewal point, rather than when the CA refuses with TG_REATTEST_REQUIRED. A join
    // token cannot be re-presented: the sidecar stops renewing and says so.
    if (atHorizon(svid)) return false;
    return !this.#svidRefused || this.#o.attestation.kind === 'join';
  }

  async #track<T>(client: CaApi, call: Promise<T>): Promise<T> {
    this.#inFlight = client;
    try {
      return await call;
    } finally {
      this.#inFlight = null;
    }
  }

  /** Ask the CA for an SVID and validate the answer; installs nothing. `open` is a connection without identity to use. */
  async #issue(renewing: boolean, open: CaApi | null): Promise<Issued> {
    const keys = await this.#keyMaterial();
    const current = this.svid();
    const client = renewing && current ? this.#connect({ certChainPem: current.certChainPem, keyPem: keys.keyPem }) : (open ?? this.#connect());
    let res: IssuedSvidResponse;
    try {
      const token = renewing ? undefined : this.#token();
      res = await this.#track(client, client.issue({ csr: keys.csr, token, ttlSeconds: this.#o.ttlSeconds, report: this.#report() }));
    } catch (e) {
      const err = toTollgateError(e);
      if (renewing && SVID_REFUSALS.has(err.code)) this.#svidRefused = true;
      throw err;
    } finally {
      if (client !== open) client.close();
    }
    if (!renewing && this.#o.attestation.kind === 'join') this.#joinTokenUsed = true;
    try {
      return { ...this.#validate(res, keys), attestation: renewing ? 'svid' : this.#o.attestation.kind };
    } catch (e) {
      if (!renewing && this.#o.attestation.kind === 'join') this.#tokenSpentOn = toTollgateError(e);
      throw e;
    }
  }

  #installed({ svid, root, attestation }: Issued, open: CaApi | null): void {
    const previous = this.svid();
    this.replace({ svid });
    this.#svidRoot = root;
    this.#svidRefused = false;
    this.#attempt = 0;
    this.#lastError = null;
    this.#o.metrics?.renewals.inc({ result: 'ok' });
    this.#o.metrics?.svidExpiry.set(Math.floor(svid.notAfter / 1000));
    const at = renewAt(heldLifetime(svid, this.#clock.now()), this.#random);
    this.#schedule(at);
    this.#log.info(previous ? 'SVID renewed' : 'SVID issued', { spiffe_id: svid.spiffeId, serial: svid.serial, not_after: iso(svid.notAfter), attestation, next_renewal: iso(at) });
    this.notify();
    if (this.#startWaiter) {
      this.#startWaiter.resolve();
      this.#startWaiter = null;
      this.#watch(open ?? this.#connect());
    } else {
      open?.close();
    }
  }

  /** The attestation token, read fresh: kubelet rotates projected service-account tokens. */
  #token(): string {
    const a = this.#o.attestation;
    if (a.kind === 'join') return a.token;
    try {
      return readFileSync(a.tokenFile, 'utf8').trim();
    } catch (e) {
      throw new TollgateError('TG_TOKEN_MISSING', `cannot read the service-account token file ${a.tokenFile}: ${(e as Error).message}; check the projected token volume of the pod`, { cause: e });
    }
  }

  /** Check an IssueSVID answer against our key and the current bundle. */
  #validate(res: IssuedSvidResponse, keys: KeyMaterial): { svid: Svid; root: Buffer } {
    const bundle = this.bundle();
    if (!bundle) throw new TollgateError('TG_INTERNAL', 'an SVID arrived before the trust bundle');
    const checked = checkIssued(res, { keys, bundle, now: this.#clock.now(), trustDomain: this.#trustDomain, skewToleranceMs: this.#o.skewToleranceMs });
    if (checked.skewMs > 0) {
      this.#log.warn('clock skew: the new SVID starts in our future; accepted within the tolerance, check NTP on this node and the CA', {
        skew_ms: checked.skewMs,
        not_before: iso(checked.svid.notBefore),
        tolerance_ms: this.#o.skewToleranceMs ?? SKEW_TOLERANCE_MS,
      });
    }
    return checked;
  }

  #failed(err: TollgateError): void {
    if (this.#o.attestation.kind === 'join' && !this.svid() && this.#startWaiter && JOIN_TOKEN_FINAL.has(err.code)) {
      this.#lastError = new TollgateError(err.code, `the CA will not accept this join token (${err.message}) and this sidecar holds no SVID: give it a new join token (tollgate ca token create) and restart it`);
      this.#o.metrics?.renewals.inc({ result: 'error' });
      this.#log.error('cannot obtain the first SVID: the join token is used up or invalid', { code: err.code, error: err.message });
      this.#giveUp(this.#lastError);
      return;
    }
    this.#lastError = err;
    this.#o.metrics?.renewals.inc({ result: 'error' });
    const now = this.#clock.now();
    let delay = backoffDelay(this.#attempt++, this.#random, this.#o.backoff ?? DEFAULT_BACKOFF);
    const svid = this.svid();
    if (svid) delay = retryBeforeExpiry({ now, delayMs: delay, notAfter: svid.notAfter });
    this.#schedule(now + delay);
    this.#log.warn(svid ? 'SVID renewal failed; keeping the current SVID' : 'cannot obtain the first SVID', {
      code: err.code,
      error: err.message,
      attempt: this.#attempt,
      retry_in_ms: delay,
      retry_at: iso(now + delay),
      ...(svid ? { serial: svid.serial, not_after: iso(svid.notAfter), expired: svid.notAfter <= now } : {}),
    });
  }

  // A join token is single use: once the SVID it bought has expired, only the operator can help.
  #stopWithoutToken(): void {
    const svid = this.svid();
    const expiredAt = svid ? iso(svid.notAfter) : 'unknown';
    this.#lastError = svid && atHorizon(svid)
      ? new TollgateError('TG_REATTEST_REQUIRED', `the SVID expires at ${expiredAt}, the end of its join token's attestation horizon (the CA's --join-token-horizon): give the sidecar a new join token (tollgate ca token create) or restart it with one`)
      : new TollgateError(
        'TG_TOKEN_REUSED',
        svid
          ? `the SVID expired at ${expiredAt} while the CA was unreachable and the join token was already used: give the sidecar a new join token (tollgate ca token create) or restart it with one`
          : `the join token was used up on an SVID this sidecar refused (${this.#tokenSpentOn?.message ?? 'unknown reason'}): give the sidecar a new join token (tollgate ca token create) and restart it`,
      );
    this.#o.metrics?.renewals.inc({ result: 'error' });
    this.#log.error(svid ? 'the SVID cannot be renewed without a new join token' : 'no SVID and the join token is used up', { code: this.#lastError.code, error: this.#lastError.message });
    this.#giveUp(this.#lastError);
  }

  /** Before the first SVID, a join token the CA will never accept ends start(): the process exits non-zero. */
  #giveUp(err: TollgateError): void {
    this.#startWaiter?.reject(err);
    this.#startWaiter = null;
  }

  #schedule(at: number): void {
    this.#renewTimer?.cancel();
    if (this.#closed) return;
    this.#nextRenewalAt = at;
    this.#renewTimer = this.#clock.setTimer(at - this.#clock.now(), () => {
      this.#renewTimer = null;
      void this.#attemptIssue();
    });
  }

  #watch(client: CaApi): void {
    if (this.#closed) {
      client.close();
      return;
    }
    this.#watchClient = client;
    this.#watchCancel = client.watchBundle(
      this.#report(),
      (b) => {
        this.#watchAttempt = 0;
        this.#onPushedBundle(b);
      },
      (e) => {
        client.close();
        if (this.#closed || this.#watchClient !== client) return;
        this.#watchClient = null;
        this.#watchCancel = null;
        const delay = backoffDelay(this.#watchAttempt++, this.#random, this.#o.backoff ?? DEFAULT_BACKOFF);
        this.#log.log(e ? 'warn' : 'info', 'bundle watch ended; watching again', { ...(e ? { code: e.code, error: e.message } : {}), retry_in_ms: delay });
        this.#watchTimer = this.#clock.setTimer(delay, () => {
          this.#watchTimer = null;
          this.#watch(this.#reportingConnection());
        });
      },
    );
  }

  /**
   * A connection that presents our SVID while it is valid, else an anonymous one. The CA counts what a
   * caller reports only when it is authenticated: a watch that ended because the CA restarted comes
   * back over mTLS, so the restarted CA knows this sidecar (its bundle, the authority of its leaf)
   * within seconds instead of at its next renewal, and a rotation waiting on its counts sees it.
   */
  #reportingConnection(): CaApi {
    const svid = this.svid();
    const keys = this.#keysMade;
    if (!svid || !keys || svid.notAfter <= this.#clock.now()) return this.#connect();
    return this.#connect({ certChainPem: svid.certChainPem, keyPem: keys.keyPem });
  }

  #onPushedBundle(b: BundleResponse): void {
    if (this.#closed) return;
    try {
      if (!this.#setBundle(b)) return;
    } catch (e) {
      const err = toTollgateError(e);
      this.#o.metrics?.bundleRejected.inc({ code: err.code });
      this.#log.warn('rejected a pushed trust bundle; keeping the current one', { code: err.code, error: err.message, version: b.version });
      return;
    }
    this.#acknowledge();
    const root = this.#svidRoot;
    if (root && !this.bundle()!.roots.some((r) => r.equals(root)) && !this.#issuing) {
      const at = this.#clock.now() + earlyRenewalDelay(this.#random);
      if (this.#nextRenewalAt === null || at < this.#nextRenewalAt) {
        this.#log.info('the new bundle no longer holds the root of our SVID; renewing early', { bundle_version: b.version, renew_at: iso(at) });
        this.#schedule(at);
      }
    }
  }

  /**
   * Validate and install a bundle; false when it repeats the held one. Throws and keeps the old one
   * when it is unusable, older, or adds a root that no root we trust has cross-signed (before the
   * first bundle, the bootstrap roots are what we trust).
   */
  #setBundle(b: BundleResponse): boolean {
    const checked = checkBundle(b, this.#trustDomain);
    const held = this.bundle() ?? { version: 0, roots: this.#o.bootstrapRoots };
    const verdict = checkContinuity(held, { version: b.version, roots: checked.roots, endorsements: b.endorsements ?? [] }, this.#clock.now());
    if (!verdict.accept) return false;
    this.replace({ bundle: checked });
    this.#o.metrics?.bundleVersion.set(b.version);
    this.#o.metrics?.bundleExpiry.set(Math.floor(Math.min(...checked.roots.map((r) => parseCertificate(r).notAfter)) / 1000));
    this.#log.info('trust bundle updated', { version: b.version, roots: checked.roots.length, added: verdict.added.length, removed: verdict.removed.length });
    this.notify();
    return true;
  }

  /**
   * Tell the CA which bundle we now hold, over mTLS with our SVID: the CA counts convergence only from
   * authenticated reports, and a rotation waits on it. Best effort: the next renewal reports anyway.
   */
  #acknowledge(): void {
    const svid = this.svid();
    if (this.#closed || !svid || svid.notAfter <= this.#clock.now()) return;
    void this.#keyMaterial().then(async (keys) => {
      const client = this.#connect({ certChainPem: svid.certChainPem, keyPem: keys.keyPem });
      try {
        await client.getBundle(this.#report());
      } catch (e) {
        const err = toTollgateError(e);
        this.#log.debug('could not report the new bundle to the CA; the next renewal will', { code: err.code, error: err.message });
      } finally {
        client.close();
      }
    });
  }

}

/** True when the leaf ends at its "attested until" horizon, so only a new attestation extends it. */
function atHorizon(svid: Svid): boolean {
  const leaf = svid.certChain[0];
  if (!leaf) return false;
  const until = attestedUntilOf(parseCertificate(leaf));
  return until !== undefined && until <= svid.notAfter + 1000;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
