// The TLS settings both proxies build from the current SVID and bundle (one place decides versions
// and options), and the connection limits both proxies enforce.
import { constants as cryptoConstants } from 'node:crypto';
import tls from 'node:tls';
import { TollgateError } from '../common/errors.ts';
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
  /** A connection open this long is closed (it is also closed at its peer certificate's notAfter). Default 24 h. */
  readonly maxConnectionAgeMs?: number;
  /** Connections in their TLS handshake at once, all sources together. Default 1,000. */
  readonly maxHandshakes?: number;
  /** Connections in their TLS handshake at once from one source address. Default 100. */
  readonly maxHandshakesPerSource?: number;
}

export const DEFAULT_LIMITS = {
  maxConnections: 10_000,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 3_600_000,
  maxConnectionAgeMs: 86_400_000,
  maxHandshakes: 1_000,
  maxHandshakesPerSource: 100,
} as const;

export function resolveLimits(limits: ProxyLimits | undefined): Required<ProxyLimits> {
  const out = {
    maxConnections: limits?.maxConnections ?? DEFAULT_LIMITS.maxConnections,
    handshakeTimeoutMs: limits?.handshakeTimeoutMs ?? DEFAULT_LIMITS.handshakeTimeoutMs,
    idleTimeoutMs: limits?.idleTimeoutMs ?? DEFAULT_LIMITS.idleTimeoutMs,
    maxConnectionAgeMs: limits?.maxConnectionAgeMs ?? DEFAULT_LIMITS.maxConnectionAgeMs,
    maxHandshakes: limits?.maxHandshakes ?? DEFAULT_LIMITS.maxHandshakes,
    maxHandshakesPerSource: limits?.maxHandshakesPerSource ?? DEFAULT_LIMITS.maxHandshakesPerSource,
  };
  for (const [k, v] of Object.entries(out)) {
    if (!Number.isInteger(v) || v <= 0) throw new TollgateError('TG_CONFIG_INVALID', `limits.${k} must be a positive integer, got ${String(v)}`);
  }
  return out;
}
