// Why a proxied connection failed, as a metric label (low cardinality, stable) plus the code for the
// log line. Both proxies classify through here so one failure has one name in both directions; the
// inputs are OpenSSL verify codes (X509_V_ERR_* names), Node/OpenSSL error codes, socket errnos and
// our own TollgateErrors.
import { isTollgateError, type ErrorCode } from '../common/errors.ts';

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
