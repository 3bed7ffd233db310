// The one place Tollgate error codes become gRPC status codes. The stable TG_ code also travels in
// the trailer `tollgate-error-code` so clients can act on it without parsing messages.
import * as grpc from '@grpc/grpc-js';
import { ERROR_CODE_KEY } from '../common/ca-api.ts';
import type { ErrorCode, TollgateError } from '../common/errors.ts';

const STATUS: Record<ErrorCode, grpc.status> = {
  TG_USAGE: grpc.status.INVALID_ARGUMENT,
  TG_SPIFFE_ID_INVALID: grpc.status.INVALID_ARGUMENT,
  TG_TRUST_DOMAIN_INVALID: grpc.status.INVALID_ARGUMENT,
  TG_CSR_INVALID: grpc.status.INVALID_ARGUMENT,
  TG_CSR_KEY_UNSUPPORTED: grpc.status.INVALID_ARGUMENT,
  TG_TTL_INVALID: grpc.status.INVALID_ARGUMENT,
  TG_CONFIG_INVALID: grpc.status.INVALID_ARGUMENT,
  TG_CERT_INVALID: grpc.status.INVALID_ARGUMENT,
  TG_BUNDLE_ROLLBACK: grpc.status.FAILED_PRECONDITION,
  TG_BUNDLE_UNENDORSED: grpc.status.FAILED_PRECONDITION,
  TG_TOKEN_MISSING: grpc.status.UNAUTHENTICATED,
  TG_TOKEN_INVALID: grpc.status.UNAUTHENTICATED,
  TG_TOKEN_EXPIRED: grpc.status.UNAUTHENTICATED,
  TG_TOKEN_AUDIENCE: grpc.status.UNAUTHENTICATED,
  TG_TOKEN_ISSUER: grpc.status.UNAUTHENTICATED,
  TG_TOKEN_REUSED: grpc.status.UNAUTHENTICATED,
  TG_TOKEN_UNKNOWN: grpc.status.UNAUTHENTICATED,
  TG_TOKEN_CLAIMS: grpc.status.UNAUTHENTICATED,
  TG_SVID_INVALID: grpc.status.UNAUTHENTICATED,
  TG_SVID_EXPIRED: grpc.status.UNAUTHENTICATED,
  TG_SVID_UNTRUSTED: grpc.status.UNAUTHENTICATED,
  TG_POLICY_DENIED: grpc.status.PERMISSION_DENIED,
  TG_TLS_HANDSHAKE: grpc.status.UNAVAILABLE,
  TG_CAPTURE_FAILED: grpc.status.FAILED_PRECONDITION,
  TG_PROXY_HEADER_INVALID: grpc.status.INVALID_ARGUMENT,
  TG_RATE_LIMITED: grpc.status.RESOURCE_EXHAUSTED,
  TG_REQUEST_TOO_LARGE: grpc.status.RESOURCE_EXHAUSTED,
  TG_REQUEST_INVALID: grpc.status.INVALID_ARGUMENT,
  TG_TOKEN_REVIEW_FAILED: grpc.status.UNAVAILABLE,
  TG_UNAVAILABLE: grpc.status.UNAVAILABLE,
  TG_WRITE_FAILED: grpc.status.UNAVAILABLE,
  TG_AUTHORITY_EXPIRED: grpc.status.FAILED_PRECONDITION,
  TG_REATTEST_REQUIRED: grpc.status.UNAUTHENTICATED,
  TG_DENIED: grpc.status.PERMISSION_DENIED,
  TG_STORE_CORRUPT: grpc.status.INTERNAL,
  TG_STORE_EXISTS: grpc.status.FAILED_PRECONDITION,
  TG_STORE_MISSING: grpc.status.FAILED_PRECONDITION,
  TG_STORE_CONFLICT: grpc.status.ABORTED,
  TG_RESERVED_ID: grpc.status.PERMISSION_DENIED,
  TG_ROTATION_IN_PROGRESS: grpc.status.FAILED_PRECONDITION,
  TG_ROTATION_STATE: grpc.status.FAILED_PRECONDITION,
  TG_ROOT_KEY_MISSING: grpc.status.FAILED_PRECONDITION,
  TG_TIMEOUT: grpc.status.DEADLINE_EXCEEDED,
  TG_INTERRUPTED: grpc.status.CANCELLED,
  TG_INTERNAL: grpc.status.INTERNAL,
  TG_ANNOTATION_INVALID: grpc.status.INVALID_ARGUMENT,
  TG_POD_INVALID: grpc.status.INVALID_ARGUMENT,
  TG_KUBE_CONFLICT: grpc.status.ABORTED,
  TG_KUBE_NOT_FOUND: grpc.status.NOT_FOUND,
  TG_KUBE_API: grpc.status.UNAVAILABLE,
};

export function grpcStatusFor(code: ErrorCode): grpc.status {
  return STATUS[code];
}

export function toServiceError(err: TollgateError): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  metadata.set(ERROR_CODE_KEY, err.code);
  // Internal details stay in our logs; the caller gets the code and a message that says what to do.
  const details = err.code === 'TG_INTERNAL' ? `${err.code}: internal error` : `${err.code}: ${err.message}`;
  return { code: STATUS[err.code], details, metadata };
}
