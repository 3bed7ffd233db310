// What the inbound and outbound proxies share on the data path:
//   - the TLS settings built from the current SVID and bundle (one place decides versions and options);
//   - Splice, which joins the TLS leg and the plaintext leg of one proxied connection;
//   - the mapping of TLS failures to low-cardinality metric reasons.
// Kept lean on purpose (the proxies are the product's hot loop): plain pipe() both ways, listeners
// shared by all connections (no closures per connection), bytes counted once at close.
import { constants as cryptoConstants } from 'node:crypto';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import { TollgateError, isTollgateError, type ErrorCode } from '../pki/errors.ts';
import type { Svid, TrustBundle } from './svid-source.ts';

export type TlsMinVersion = 'TLSv1.2' | 'TLSv1.3';

// Resumption is not used (every connection proves its SVID), and Node's default stateless tickets
// cost ~8 % CPU per connection (each ticket serializes the session, client cert included).
// Renegotiation (TLS 1.2) is a DoS lever with no use here.
const SECURE_OPTIONS = cryptoConstants.SSL_OP_NO_TICKET | cryptoConstants.SSL_OP_NO_RENEGOTIATION;

export function checkMinVersion(v: unknown): TlsMinVersion {
  if (v === 'TLSv1.2' || v === 'TLSv1.3') return v;
  throw new TollgateError('TG_CONFIG_INVALID', `TLS minVersion ${JSON.stringify(v)} is not allowed: use "TLSv1.3" (default) or "TLSv1.2"; older versions are never accepted`);
}

/** The createSecureContext options for an SVID and bundle (also what tls.Server#setSecureContext takes). */
export function secureContextOptions(svid: Svid, bundle: TrustBundle, options: { minVersion: TlsMinVersion }): tls.SecureContextOptions {
  return {
    cert: svid.certChainPem,
    // node:tls takes PEM, not a KeyObject; the string lives in memory only, like the key itself.
    key: svid.key.export({ format: 'pem', type: 'pkcs8' }),
    ca: bundle.rootsPem,
    minVersion: checkMinVersion(options.minVersion),
    maxVersion: 'TLSv1.3',
    secureOptions: SECURE_OPTIONS,
  };
}

/** A secure context presenting `svid` and trusting only `bundle`'s roots. Throws if they do not load. */
export function secureContextFor(svid: Svid, bundle: TrustBundle, options: { minVersion: TlsMinVersion }): tls.SecureContext {
  return tls.createSecureContext(secureContextOptions(svid, bundle, options));
}

// ---------------------------------------------------------------------------------------------------
// Limits (both proxies)

export interface ProxyLimits {
  /** Connections open at once (including those still in their handshake). Default 10,000. */
  readonly maxConnections?: number;
  /** Default 10 s. */
  readonly handshakeTimeoutMs?: number;
  /** A connection with no traffic either way for this long is closed. Default 1 h. */
  readonly idleTimeoutMs?: number;
}

export const DEFAULT_LIMITS = { maxConnections: 10_000, handshakeTimeoutMs: 10_000, idleTimeoutMs: 3_600_000 } as const;

export function resolveLimits(limits: ProxyLimits | undefined): Required<ProxyLimits> {
  const out = {
    maxConnections: limits?.maxConnections ?? DEFAULT_LIMITS.maxConnections,
    handshakeTimeoutMs: limits?.handshakeTimeoutMs ?? DEFAULT_LIMITS.handshakeTimeoutMs,
    idleTimeoutMs: limits?.idleTimeoutMs ?? DEFAULT_LIMITS.idleTimeoutMs,
  };
  for (const [k, v] of Object.entries(out)) {
    if (!Number.isInteger(v) || v <= 0) throw new TollgateError('TG_CONFIG_INVALID', `limits.${k} must be a positive integer, got ${String(v)}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Splice: one proxied connection, a TLS leg (`tls`) and a plaintext leg (`plain`: the app's socket
// inbound, the local client's outbound).

/** The proxy that owns a Splice hears once, when both legs have closed. */
export interface SpliceOwner {
  spliceClosed(splice: Splice): void;
}

export interface SpliceOptions {
  readonly tls: Socket;
  readonly plain: Socket;
  readonly owner: SpliceOwner;
  /** Until open(): time allowed for the other leg to connect / finish its handshake. */
  readonly setupTimeoutMs: number;
  /** After open(): a connection with no traffic either way for this long is closed. */
  readonly idleTimeoutMs: number;
  /** performance.now() when the first leg was accepted (for the handshake histogram). */
  readonly acceptedAt: number;
}

const kSplice = Symbol('tollgate.splice');
type Leg = Socket & { [kSplice]?: Splice };

export class Splice {
  readonly tls: Socket;
  readonly plain: Socket;
  readonly acceptedAt: number;
  readonly #owner: SpliceOwner;
  readonly #idleTimeoutMs: number;
  /** True once bytes may flow (both legs connected and the peer verified). */
  opened = false;
  /** The verified peer's SPIFFE ID, once known. */
  peerId: string | null = null;
  /** The first error on either leg, or a timeout; null for a clean close. */
  error: Error | null = null;
  /** The leg `error` happened on. */
  failedLeg: Socket | null = null;
  /** Which leg closed first (tells "client went away" from "upstream failed"). */
  firstClosed: Socket | null = null;
  /** Bytes the proxy itself wrote to the plain leg before piping (a PROXY header): not proxied bytes. */
  headerBytes = 0;
  #openLegs = 2;

  constructor(options: SpliceOptions) {
    this.tls = options.tls;
    this.plain = options.plain;
    this.acceptedAt = options.acceptedAt;
    this.#owner = options.owner;
    this.#idleTimeoutMs = options.idleTimeoutMs;
    this.#attach(this.tls, options.setupTimeoutMs);
    this.#attach(this.plain, options.setupTimeoutMs);
  }

  #attach(leg: Leg, setupTimeoutMs: number): void {
    leg[kSplice] = this;
    leg.on('error', onLegError);
    leg.on('close', onLegClose);
    leg.on('timeout', onLegTimeout);
    if (setupTimeoutMs > 0) leg.setTimeout(setupTimeoutMs);
  }

  /** Let bytes flow both ways. pipe() carries backpressure and half-close (end → end). */
  open(): void {
    if (this.opened || this.tls.destroyed || this.plain.destroyed) return;
    this.opened = true;
    this.tls.setTimeout(this.#idleTimeoutMs);
    this.plain.setTimeout(this.#idleTimeoutMs);
    this.tls.pipe(this.plain);
    this.plain.pipe(this.tls);
  }

  /** Close both legs now (no TLS close_notify, no flushing), remembering the first failure. */
  destroy(error?: Error, on?: Socket): void {
    if (error && !this.error) {
      this.error = error;
      this.failedLeg = on ?? null;
    }
    this.tls.destroy();
    this.plain.destroy();
  }

  get closed(): boolean {
    return this.#openLegs === 0;
  }

  /** @internal */
  legClosed(leg: Socket): void {
    this.firstClosed ??= leg;
    const other = leg === this.tls ? this.plain : this.tls;
    // A leg that closed after both of its directions finished has passed its end on through pipe(),
    // and the other leg closes by itself once it has flushed. Any other close (reset, destroy, error
    // before open) takes the other leg down at once.
    if (!other.destroyed && !(this.opened && leg.readableEnded && leg.writableFinished)) other.destroy();
    if (--this.#openLegs === 0) this.#owner.spliceClosed(this);
  }
}

/** The Splice a socket belongs to, if any (lets proxies share one listener across connections). */
export function spliceOf(socket: Socket): Splice | undefined {
  return (socket as Leg)[kSplice];
}

function onLegError(this: Leg, err: Error): void {
  this[kSplice]?.destroy(err, this);
}

function onLegClose(this: Leg): void {
  this[kSplice]?.legClosed(this);
}

function onLegTimeout(this: Leg): void {
  const s = this[kSplice];
  if (!s) return;
  const reason = s.opened ? 'idle_timeout' : 'timeout';
  s.destroy(new TollgateError('TG_UNAVAILABLE', s.opened ? 'connection idle timeout' : 'connection setup timed out', { details: { reason } }), this);
}

// ---------------------------------------------------------------------------------------------------
// Failure reasons (metric label values: low cardinality, stable)

export interface FailureReason {
  /** Metric label, e.g. "untrusted". */
  readonly reason: string;
  /** A TG_* code where one fits, else the OpenSSL/Node error code. */
  readonly code: string;
}

/** X509_V_ERR_* names as Node reports them (authorizationError / err.code) for expiry. */
const EXPIRED = new Set(['CERT_HAS_EXPIRED', 'ERROR_IN_CERT_NOT_AFTER_FIELD']);
const NOT_YET_VALID = new Set(['CERT_NOT_YET_VALID', 'ERROR_IN_CERT_NOT_BEFORE_FIELD']);
/** Every other X509_V_ERR_* Node may report: the chain does not lead to a root we trust. */
const CHAIN_ERRORS = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

/** Reason for a certificate verification failure reported by OpenSSL (X509_V_ERR_* name). */
export function certificateFailure(verifyCode: string): FailureReason {
  if (EXPIRED.has(verifyCode)) return { reason: 'expired', code: 'TG_SVID_EXPIRED' };
  if (NOT_YET_VALID.has(verifyCode)) return { reason: 'not_yet_valid', code: 'TG_SVID_EXPIRED' };
  // OpenSSL's purpose check (extKeyUsage lacks serverAuth/clientAuth): the leaf breaks the SVID profile.
  if (verifyCode === 'INVALID_PURPOSE') return { reason: 'svid_invalid', code: 'TG_SVID_INVALID' };
  return { reason: 'untrusted', code: 'TG_SVID_UNTRUSTED' };
}

const SVID_REASONS: Partial<Record<ErrorCode, string>> = {
  TG_SVID_INVALID: 'svid_invalid',
  TG_SVID_EXPIRED: 'svid_expired',
  TG_SVID_UNTRUSTED: 'svid_untrusted',
};

/** Reason for anything that ended a connection before it was opened. */
export function failureReason(err: Error | null): FailureReason {
  if (err === null) return { reason: 'tls_handshake', code: 'ECONNRESET' };
  if (isTollgateError(err)) {
    const detail = err.details.reason;
    if (typeof detail === 'string' && /^[a-z_]+$/.test(detail)) return { reason: detail, code: err.code };
    return { reason: SVID_REASONS[err.code] ?? err.code.slice(3).toLowerCase(), code: err.code };
  }
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (EXPIRED.has(code) || NOT_YET_VALID.has(code) || CHAIN_ERRORS.has(code)) return certificateFailure(code);
  if (UNREACHABLE.has(code)) return { reason: 'unreachable', code };
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return { reason: 'handshake_timeout', code };
  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' || code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') return { reason: 'no_client_cert', code };
  if (/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|WRONG_VERSION_NUMBER|NO_PROTOCOLS_AVAILABLE|VERSION_TOO_LOW/.test(code)) return { reason: 'protocol_version', code };
  return { reason: 'tls_handshake', code: code || 'ERR_TLS' };
}
