// Why a proxied connection failed, as a metric label (low cardinality, stable) plus the code for the
// log line. Both proxies classify through here so one failure has one name in both directions; the
// inputs are OpenSSL verify codes (X509_V_ERR_* names), Node/OpenSSL error codes, socket errnos and
// our own TollgateErrors.
import { isTollgateError, type ErrorCode } from '../common/errors.ts';

export interface FailureReason {
  /** Metric label, e.g. "untrusted". */
  readonly reason: string;
  /** Always a TG_* code (the OpenSSL/Node name, if any, is `internal`, logged at debug only). */
  readonly code: string;
  /** The OpenSSL verify name or Node/OpenSSL error code behind it, for debug logs. */
  readonly internal?: string;
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
/** X509_V_ERR_* names for a leaf outside its issuer's name constraints (the CA's permitted trust domain). */
const NAME_CONSTRAINTS = new Set([
  'PERMITTED_VIOLATION',
  'EXCLUDED_VIOLATION',
  'SUBTREE_MINMAX',
  'UNSUPPORTED_CONSTRAINT_TYPE',
  'UNSUPPORTED_CONSTRAINT_SYNTAX',
  'UNSUPPORTED_NAME_SYNTAX',
  'NAME_CONSTRAINTS_WITHOUT_SANS',
]);
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

/** Reason for a certificate verification failure reported by OpenSSL (X509_V_ERR_* name). */
export function certificateFailure(verifyCode: string): FailureReason {
  const internal = verifyCode;
  if (EXPIRED.has(verifyCode)) return { reason: 'expired', code: 'TG_SVID_EXPIRED', internal };
  if (NOT_YET_VALID.has(verifyCode)) return { reason: 'not_yet_valid', code: 'TG_SVID_EXPIRED', internal };
  // OpenSSL's purpose check (extKeyUsage lacks serverAuth/clientAuth): the leaf breaks the SVID profile.
  if (verifyCode === 'INVALID_PURPOSE') return { reason: 'svid_invalid', code: 'TG_SVID_INVALID', internal };
  if (NAME_CONSTRAINTS.has(verifyCode)) return { reason: 'name_constraints', code: 'TG_SVID_UNTRUSTED', internal };
  return { reason: 'untrusted', code: 'TG_SVID_UNTRUSTED', internal };
}

/** What a refusal's reason means, for a person reading the log (no OpenSSL internals). */
const REASON_TEXT: Record<string, string> = {
  expired: "the peer's certificate has expired",
  not_yet_valid: "the peer's certificate is not valid yet (check the clocks)",
  svid_invalid: "the peer's certificate is not a valid X.509-SVID",
  name_constraints: "the peer's certificate names an identity its issuing CA may not certify (name constraints)",
  untrusted: "the peer's certificate does not chain to this sidecar's trust bundle",
  unreachable: 'the address could not be reached',
  handshake_timeout: 'the peer did not finish the TLS handshake within limits.handshakeTimeout',
  no_client_cert: 'the peer presented no client certificate; mTLS is required',
  protocol_version: 'the peer offered no TLS version this sidecar accepts (tls.minVersion)',
  tls_handshake: 'the TLS handshake failed: the peer closed the connection or does not speak TLS',
};

/** A person's reading of `reason`, else `fallback`. */
export function reasonText(reason: string, fallback: string): string {
  return REASON_TEXT[reason] ?? fallback;
}

const SVID_REASONS: Partial<Record<ErrorCode, string>> = {
  TG_SVID_INVALID: 'svid_invalid',
  TG_SVID_EXPIRED: 'svid_expired',
  TG_SVID_UNTRUSTED: 'svid_untrusted',
};

/** Reason for anything that ended a connection before it was opened. */
export function failureReason(err: Error | null): FailureReason {
  if (err === null) return { reason: 'tls_handshake', code: 'TG_TLS_HANDSHAKE', internal: 'ECONNRESET' };
  if (isTollgateError(err)) {
    const detail = err.details.reason;
    if (typeof detail === 'string' && /^[a-z_]+$/.test(detail)) return { reason: detail, code: err.code };
    return { reason: SVID_REASONS[err.code] ?? err.code.slice(3).toLowerCase(), code: err.code };
  }
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const internal = code || 'ERR_TLS';
  if (EXPIRED.has(code) || NOT_YET_VALID.has(code) || CHAIN_ERRORS.has(code) || NAME_CONSTRAINTS.has(code)) return certificateFailure(code);
  if (UNREACHABLE.has(code)) return { reason: 'unreachable', code: 'TG_UNAVAILABLE', internal };
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return { reason: 'handshake_timeout', code: 'TG_TIMEOUT', internal };
  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' || code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') return { reason: 'no_client_cert', code: 'TG_SVID_INVALID', internal };
  if (/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|WRONG_VERSION_NUMBER|NO_PROTOCOLS_AVAILABLE|VERSION_TOO_LOW/.test(code)) return { reason: 'protocol_version', code: 'TG_TLS_HANDSHAKE', internal };
  return { reason: 'tls_handshake', code: 'TG_TLS_HANDSHAKE', internal };
}
