// One module of typed errors with stable codes (as undici does). gRPC status codes and CLI exit codes
// are derived from these codes in exactly one place each (ca/grpc-errors.ts, cli/exit.ts).

export const ErrorCodes = {
  TG_USAGE: 'bad command-line usage or argument',
  TG_SPIFFE_ID_INVALID: 'SPIFFE ID does not follow the SPIFFE specification',
  TG_TRUST_DOMAIN_INVALID: 'trust domain name is invalid',
  TG_CSR_INVALID: 'certificate signing request is malformed or its signature does not verify',
  TG_CSR_KEY_UNSUPPORTED: 'certificate signing request key is not ECDSA P-256',
  TG_TTL_INVALID: 'requested lifetime is out of range',
  TG_TOKEN_MISSING: 'no attestation: neither a token nor a client certificate was presented',
  TG_TOKEN_INVALID: 'token is malformed or its signature does not verify',
  TG_TOKEN_EXPIRED: 'token has expired or is not yet valid',
  TG_TOKEN_AUDIENCE: 'token audience does not include tollgate-ca',
  TG_TOKEN_ISSUER: 'token issuer is not the configured cluster issuer',
  TG_TOKEN_REUSED: 'join token was already used',
  TG_TOKEN_UNKNOWN: 'join token is not known to this CA',
  TG_TOKEN_CLAIMS: 'token lacks the Kubernetes claims needed to derive an identity',
  TG_TOKEN_REVIEW_FAILED: 'the Kubernetes TokenReview API could not be reached or refused the request',
  TG_SVID_INVALID: 'certificate is not a valid X.509-SVID',
  TG_SVID_EXPIRED: 'certificate has expired or is not yet valid',
  TG_SVID_UNTRUSTED: 'certificate does not chain to a trusted authority',
  TG_RATE_LIMITED: 'too many requests; retry later',
  TG_REQUEST_TOO_LARGE: 'request exceeds the size limit',
  TG_REQUEST_INVALID: 'the request is not a well-formed message of the CA API (tollgate.ca.v1)',
  TG_CERT_INVALID: 'certificate or key file is malformed',
  TG_BUNDLE_ROLLBACK: 'trust bundle is older than, or conflicts with, the one held',
  TG_BUNDLE_UNENDORSED: 'trust bundle adds a root that no trusted root has cross-signed',
  TG_STORE_CORRUPT: 'a file in the CA store is unreadable or corrupt',
  TG_STORE_EXISTS: 'a CA already exists in this directory',
  TG_STORE_MISSING: 'no CA found in this directory',
  TG_STORE_CONFLICT: 'the CA store changed since it was read (another writer won); re-read and retry',
  TG_RESERVED_ID: 'the SPIFFE ID is reserved for Tollgate itself (under /tollgate/) and is never issued to a workload',
  TG_ROTATION_IN_PROGRESS: 'another rotation is in progress',
  TG_ROTATION_STATE: 'the rotation step does not apply to the authorities in their current slots',
  TG_ROOT_KEY_MISSING: 'the step needs the root private key, which is not in the store',
  TG_TIMEOUT: 'a wait did not finish in time',
  TG_INTERRUPTED: 'interrupted by the operator; what was done is kept',
  TG_REATTEST_REQUIRED: 'the attestation behind this SVID has reached its horizon: renewal cannot extend it; attest again with a token',
  TG_DENIED: 'the identity or certificate is on the deny-list (tollgate ca deny)',
  TG_AUTHORITY_EXPIRED: 'the signing authority has expired or cannot sign for the requested lifetime',
  TG_CONFIG_INVALID: 'configuration is invalid',
  TG_PROXY_HEADER_INVALID: 'PROXY protocol header is malformed',
  TG_UNAVAILABLE: 'a dependency is unreachable',
  TG_WRITE_FAILED: 'a file could not be written (disk full, read-only file system or no permission); nothing was half-written',
  TG_POLICY_DENIED: 'peer is not allowed by policy',
  TG_TLS_HANDSHAKE: 'the TLS handshake failed (peer closed, wrong protocol or TLS version)',
  TG_CAPTURE_FAILED: 'traffic capture rules could not be applied',
  TG_ANNOTATION_INVALID: 'a tollgate.io annotation of a pod is malformed',
  TG_POD_INVALID: 'the object is not a pod (template) Tollgate can inject',
  TG_KUBE_CONFLICT: 'the Kubernetes object changed since it was read (resourceVersion conflict)',
  TG_KUBE_NOT_FOUND: 'the Kubernetes object does not exist',
  TG_KUBE_API: 'the Kubernetes API server refused the request',
  TG_INTERNAL: 'internal error',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class TollgateError extends Error {
  readonly code: ErrorCode;
  /** Extra, non-secret facts for logs (never keys or tokens). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TollgateError';
    this.code = code;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }
}

export function isTollgateError(e: unknown, code?: ErrorCode): e is TollgateError {
  return e instanceof TollgateError && (code === undefined || e.code === code);
}

/** Wrap anything thrown into a TollgateError, keeping one that already is. */
export function toTollgateError(e: unknown, fallback: ErrorCode = 'TG_INTERNAL'): TollgateError {
  if (e instanceof TollgateError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new TollgateError(fallback, message, { cause: e });
}
