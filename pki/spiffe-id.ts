// SPIFFE IDs, parsed strictly per the SPIFFE ID specification (spiffe/standards SPIFFE-ID.md):
//   spiffe://<trust-domain>[/<segment>...]
// trust domain: [a-z0-9.-_], 1..255 chars; segments: [a-zA-Z0-9.-_], never empty, "." or "..";
// no trailing "/", query, fragment, port, userinfo or percent-encoding; whole ID at most 2048 bytes.
import { TollgateError } from '../common/errors.ts';

const SCHEME = 'spiffe://';
const MAX_ID_LENGTH = 2048;
const MAX_TD_LENGTH = 255;
const TD_CHARS: ReadonlySet<string> = new Set('abcdefghijklmnopqrstuvwxyz0123456789._-');
const SEG_CHARS: ReadonlySet<string> = new Set([...TD_CHARS, ...'ABCDEFGHIJKLMNOPQRSTUVWXYZ']);

export interface SpiffeId {
  readonly trustDomain: string;
  /** '' for a trust-domain ID, else starts with '/'. */
  readonly path: string;
  /** The canonical string form. */
  readonly id: string;
}

function invalid(input: string, why: string, code: 'TG_SPIFFE_ID_INVALID' | 'TG_TRUST_DOMAIN_INVALID' = 'TG_SPIFFE_ID_INVALID'): TollgateError {
  const shown = input.length > 120 ? `${input.slice(0, 117)}...` : input;
  return new TollgateError(code, `${JSON.stringify(shown)} ${why}`, { details: { reason: why } });
}

function describeChar(c: string): string {
  if (c === '?') return 'has a query ("?"), which SPIFFE IDs may not have';
  if (c === '#') return 'has a fragment ("#"), which SPIFFE IDs may not have';
  if (c === '%') return 'has percent-encoding, which SPIFFE IDs may not have';
  return `has the character ${JSON.stringify(c)}, which is not allowed`;
}

/** Validate a bare trust domain name (e.g. "example.org"). Returns it unchanged. */
export function parseTrustDomain(td: string): string {
  if (td.length === 0) throw invalid(td, 'is not a trust domain: it is empty', 'TG_TRUST_DOMAIN_INVALID');
  if (td.startsWith(SCHEME)) {
    const id = parseSpiffeId(td);
    if (id.path !== '') throw invalid(td, 'is a SPIFFE ID with a path, not a trust domain', 'TG_TRUST_DOMAIN_INVALID');
    return id.trustDomain;
  }
  if (td.length > MAX_TD_LENGTH) throw invalid(td, `is longer than ${MAX_TD_LENGTH} characters`, 'TG_TRUST_DOMAIN_INVALID');
  for (const c of td) {
    if (TD_CHARS.has(c)) continue;
    if (c >= 'A' && c <= 'Z') throw invalid(td, 'has an upper-case trust domain; trust domains are lower-case', 'TG_TRUST_DOMAIN_INVALID');
    if (c === ':') throw invalid(td, 'has a port, which trust domains may not have', 'TG_TRUST_DOMAIN_INVALID');
    if (c === '@') throw invalid(td, 'has userinfo ("@"), which trust domains may not have', 'TG_TRUST_DOMAIN_INVALID');
    throw invalid(td, `trust domain ${describeChar(c)} (allowed: a-z 0-9 . - _)`, 'TG_TRUST_DOMAIN_INVALID');
  }
  return td;
}

export function parseSpiffeId(input: string): SpiffeId {
  if (typeof input !== 'string' || input.length === 0) throw invalid(String(input), 'is not a SPIFFE ID: it is empty');
  if (Buffer.byteLength(input) > MAX_ID_LENGTH) throw invalid(input, `is longer than ${MAX_ID_LENGTH} bytes`);
  if (!input.startsWith(SCHEME)) {
    if (input.toLowerCase().startsWith(SCHEME)) throw invalid(input, 'has an upper-case scheme; it must start with "spiffe://"');
    throw invalid(input, 'is not a SPIFFE ID: it must start with "spiffe://"');
  }
  const rest = input.slice(SCHEME.length);
  const slash = rest.indexOf('/');
  const td = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (td.length === 0) throw invalid(input, 'has no trust domain');
  if (td.length > MAX_TD_LENGTH) throw invalid(input, `has a trust domain longer than ${MAX_TD_LENGTH} characters`);
  for (const c of td) {
    if (TD_CHARS.has(c)) continue;
    if (c >= 'A' && c <= 'Z') throw invalid(input, 'has an upper-case trust domain; trust domains are lower-case');
    if (c === ':') throw invalid(input, 'has a port, which SPIFFE IDs may not have');
    if (c === '@') throw invalid(input, 'has userinfo ("@"), which SPIFFE IDs may not have');
    throw invalid(input, `trust domain ${describeChar(c)} (allowed: a-z 0-9 . - _)`);
  }
  if (path !== '') {
    if (path.endsWith('/')) throw invalid(input, 'ends with "/"; remove the trailing slash');
    const segments = path.slice(1).split('/');
    for (const seg of segments) {
      if (seg === '') throw invalid(input, 'has an empty path segment ("//")');
      if (seg === '.' || seg === '..') throw invalid(input, `has a "${seg}" path segment, which SPIFFE IDs may not have`);
      for (const c of seg) {
        if (!SEG_CHARS.has(c)) throw invalid(input, `path ${describeChar(c)} (allowed: a-z A-Z 0-9 . - _)`);
      }
    }
  }
  return Object.freeze({ trustDomain: td, path, id: input });
}

/** Why `input` is not a SPIFFE ID (the words after the quoted input in parseSpiffeId's error), or null when it is one. */
export function spiffeIdProblem(input: string): string | null {
  try {
    parseSpiffeId(input);
    return null;
  } catch (e) {
    return (e as TollgateError).details['reason'] as string; // parseSpiffeId throws only through invalid()
  }
}

/** Parse and require a workload (leaf) ID: one with a non-empty path. */
export function parseWorkloadId(input: string): SpiffeId {
  const id = parseSpiffeId(input);
  if (id.path === '') throw invalid(input, 'is a trust-domain ID; a workload SPIFFE ID needs a path such as /ns/NS/sa/SA');
  return id;
}

/** The Kubernetes identity form: spiffe://<td>/ns/<namespace>/sa/<service-account>. */
const K8S_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export function kubernetesSpiffeId(trustDomain: string, namespace: string, serviceAccount: string): SpiffeId {
  for (const [what, v] of [['namespace', namespace], ['service account', serviceAccount]] as const) {
    if (!K8S_NAME.test(v)) {
      throw new TollgateError('TG_SPIFFE_ID_INVALID', `${what} ${JSON.stringify(v)} is not a valid Kubernetes name`);
    }
  }
  return parseWorkloadId(`${SCHEME}${parseTrustDomain(trustDomain)}/ns/${namespace}/sa/${serviceAccount}`);
}

/**
 * Everything under /tollgate/ is reserved for Tollgate itself (PRODUCT.md §3 "Reserved identities"):
 * no attestor, join token or `cert issue` ever issues it, so holding a workload identity can never
 * make a process the CA. It lies outside the ns/<ns>/sa/<sa> form Kubernetes attestation produces.
 */
export const RESERVED_PATH = '/tollgate';

/** The CA's own SPIFFE ID: spiffe://<td>/tollgate/ca. */
export function caSpiffeId(trustDomain: string): string {
  return `${SCHEME}${parseTrustDomain(trustDomain)}${RESERVED_PATH}/ca`;
}

export function isReservedId(id: SpiffeId | string): boolean {
  const path = typeof id === 'string' ? parseSpiffeId(id).path : id.path;
  return path === RESERVED_PATH || path.startsWith(`${RESERVED_PATH}/`);
}

/** Throws TG_RESERVED_ID when `id` is reserved; `what` says who asked (e.g. "a join token"). */
export function refuseReservedId(id: SpiffeId, what: string): SpiffeId {
  if (!isReservedId(id)) return id;
  throw new TollgateError('TG_RESERVED_ID', `${what} asks for ${id.id}, which is reserved for Tollgate itself (everything under ${RESERVED_PATH}/ is never issued to a workload); use a workload ID such as spiffe://${id.trustDomain}/ns/NS/sa/SA`, {
    details: { spiffe_id: id.id },
  });
}

export function trustDomainId(trustDomain: string): string {
  return `${SCHEME}${parseTrustDomain(trustDomain)}`;
}
