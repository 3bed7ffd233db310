// Inbound authorization policy: which peer SPIFFE IDs may connect to which app port.
// The file format and its parser are in policy-parse.ts; this file holds the compiled matcher and
// authorize(), the one decision shared by the sidecar and `tollgate policy check`.
//
// authorize() result: `rule` is null when denied, else "<pattern> (<location>)", e.g.
//   "spiffe://example.org/ns/shop/sa/* (ports.8080.allow[1])" or "spiffe://td/a/b (default.allow[0])".
// If several rules match, an exact rule wins over a wildcard; among wildcards the first in the file wins.
import { parseSpiffeId, spiffeIdProblem } from '../pki/spiffe-id.ts';
import { parsePolicyText, type ParsePolicyOptions, type Policy, type PolicySection } from './policy-parse.ts';

export type { ParsePolicyOptions, Policy, PolicyRule, PolicySection } from './policy-parse.ts';

export type AuthorizeReason = 'allowed' | 'no_rule' | 'trust_domain' | 'invalid_id';

export interface Decision {
  readonly allowed: boolean;
  /** "<pattern> (<location>)" of the matching rule, or null when denied. */
  readonly rule: string | null;
  readonly reason: AuthorizeReason;
}

// ---------------------------------------------------------------------------------------------------
// Compiled form

interface Wildcard {
  /** Segments after the trust domain; null stands for `*`. */
  readonly segments: readonly (string | null)[];
  readonly decision: Decision;
}

interface CompiledSection {
  readonly exact: ReadonlyMap<string, Decision>;
  /** Keyed by `${trustDomain}/${segmentCount}`, in file order. */
  readonly wildcards: ReadonlyMap<string, readonly Wildcard[]>;
}

interface Compiled {
  readonly trustDomains: ReadonlySet<string>;
  readonly ports: ReadonlyMap<number, CompiledSection>;
  readonly fallback: CompiledSection | null;
}

const DENY_INVALID: Decision = Object.freeze({ allowed: false, rule: null, reason: 'invalid_id' });
const DENY_TRUST_DOMAIN: Decision = Object.freeze({ allowed: false, rule: null, reason: 'trust_domain' });
const DENY_NO_RULE: Decision = Object.freeze({ allowed: false, rule: null, reason: 'no_rule' });
const SCHEME = 'spiffe://';

const compiledCache = new WeakMap<Policy, Compiled>();

function compileSection(section: PolicySection): CompiledSection {
  const exact = new Map<string, Decision>();
  const wildcards = new Map<string, Wildcard[]>();
  for (const r of section.allow) {
    const decision: Decision = Object.freeze({ allowed: true, rule: `${r.pattern} (${r.location})`, reason: 'allowed' });
    const rest = r.pattern.slice(SCHEME.length);
    const slash = rest.indexOf('/');
    const td = rest.slice(0, slash);
    const segments = rest.slice(slash + 1).split('/');
    if (!segments.includes('*')) {
      if (!exact.has(r.pattern)) exact.set(r.pattern, decision);
      continue;
    }
    const key = `${td}/${segments.length}`;
    let list = wildcards.get(key);
    if (!list) wildcards.set(key, (list = []));
    list.push({ segments: segments.map((s) => (s === '*' ? null : s)), decision });
  }
  return { exact, wildcards };
}

function compile(policy: Policy): Compiled {
  const ports = new Map<number, CompiledSection>();
  for (const [port, section] of Object.entries(policy.ports)) ports.set(Number(port), compileSection(section));
  return {
    trustDomains: new Set(policy.trustDomains),
    ports,
    fallback: policy.default ? compileSection(policy.default) : null,
  };
}

function compiledOf(policy: Policy): Compiled {
  let c = compiledCache.get(policy);
  if (!c) compiledCache.set(policy, (c = compile(policy)));
  return c;
}

/**
 * Decide whether `peerId` may connect to app port `port`. Pure; allocates nothing on the hot path.
 * Order: an exact rule hit allows at once; otherwise an unparsable ID is 'invalid_id', a trust domain
 * not accepted is 'trust_domain', then wildcards are tried, else 'no_rule'. A port outside 1..65535
 * has no rules.
 */
export function authorize(policy: Policy, peerId: string, port: number): Decision {
  const c = compiledOf(policy);
  const section = Number.isInteger(port) && port >= 1 && port <= 65535 ? (c.ports.get(port) ?? c.fallback) : null;
  const hit = section?.exact.get(peerId);
  if (hit) return hit;
  let trustDomain: string;
  let path: string;
  try {
    ({ trustDomain, path } = parseSpiffeId(peerId));
  } catch {
    return DENY_INVALID;
  }
  if (!c.trustDomains.has(trustDomain)) return DENY_TRUST_DOMAIN;
  if (!section || path === '') return DENY_NO_RULE;
  const segments = path.slice(1).split('/');
  const candidates = section.wildcards.get(`${trustDomain}/${segments.length}`);
  if (candidates) {
    for (const w of candidates) {
      let ok = true;
      for (let i = 0; i < segments.length; i++) {
        const want = w.segments[i];
        if (want !== null && want !== segments[i]) {
          ok = false;
          break;
        }
      }
      if (ok) return w.decision;
    }
  }
  return DENY_NO_RULE;
}

/**
 * Parse, validate and compile a policy file's text (see policy-parse.ts for the format). Throws
 * TollgateError('TG_CONFIG_INVALID') whose message names the file and line:
 * `cannot read policy <source> line <N>: <problem and what to do>`. Compiling here keeps that work
 * off the connection path: a reload is ready to serve before it is swapped in.
 */
export function parsePolicy(text: string, options: ParsePolicyOptions): Policy {
  const policy = parsePolicyText(text, options);
  compiledCache.set(policy, compile(policy));
  return policy;
}

// ---------------------------------------------------------------------------------------------------
// Explaining decisions (`tollgate policy check`)

/** The decision for a peer on one port and, when denied, what would change it. */
export interface PortCheck {
  /** The app port, or 'default' for every port the policy does not list. */
  readonly port: number | 'default';
  readonly decision: Decision;
  /** What to change in the policy (or the peer ID) to allow the peer; null when allowed. */
  readonly hint: string | null;
}

/**
 * Check `peerId` on `port`, or without one on every port the policy lists (ascending) plus 'default'.
 * The decisions come from authorize() itself, so they are the sidecar's.
 */
export function checkPeer(policy: Policy, peerId: string, port?: number): PortCheck[] {
  // Port keys are decimal integers, which Object.keys() lists in ascending order.
  const ports: (number | 'default')[] = port !== undefined ? [port] : [...Object.keys(policy.ports).map(Number), 'default'];
  const checks: PortCheck[] = [];
  for (const p of ports) {
    // 'default' is asked of the first port the policy does not list: authorize() then uses the default section.
    const asked = p === 'default' ? firstUnlistedPort(policy) : p;
    if (asked === null) continue;
    const decision = authorize(policy, peerId, asked);
    checks.push(Object.freeze({ port: p, decision, hint: decision.allowed ? null : denialHint(policy, peerId, p, decision.reason) }));
  }
  return checks;
}

/** The lowest port the policy does not list, or null when it lists all of 1..65535. */
export function firstUnlistedPort(policy: Policy): number | null {
  let port = 1;
  while (policy.ports[String(port)] !== undefined) port++; // stops by 65536: no port key is larger
  return port > 65535 ? null : port;
}

function denialHint(policy: Policy, peerId: string, port: number | 'default', reason: AuthorizeReason): string {
  const file = policy.source;
  if (reason === 'invalid_id') {
    return `${JSON.stringify(peerId)} ${spiffeIdProblem(peerId)}; a peer is named by its SPIFFE ID, e.g. spiffe://TD/ns/NS/sa/SA`;
  }
  if (reason === 'trust_domain') {
    const td = peerId.slice(SCHEME.length).split('/')[0]!;
    return `peers from trust domain ${JSON.stringify(td)} are not accepted (accepted: ${policy.trustDomains.join(', ')}); add it to trustDomains in ${file}, and a rule for the peer`;
  }
  if (port === 'default') {
    return policy.default
      ? `no rule in default.allow matches; add ${peerId} (or a pattern with "*" for one segment) to default.allow in ${file}`
      : `the policy has no default section, so ports it does not list deny everyone; add "default: {allow: [${peerId}]}" to ${file} if that is meant`;
  }
  const listed = policy.ports[String(port)];
  if (listed?.allow.length === 0) {
    return `ports.${port}.allow is empty, so the port denies everyone; add ${peerId} to it in ${file} if the peer should connect`;
  }
  if (listed) {
    return `no rule in ports.${port}.allow matches; add ${peerId} (or a pattern with "*" for one segment) to ports.${port}.allow in ${file}`;
  }
  return policy.default
    ? `port ${port} is not listed, so default.allow applies and no rule there matches; add a "${port}" section under ports (or the peer to default.allow) in ${file}`
    : `port ${port} is not listed and the policy has no default section (default deny); add a "${port}" section under ports in ${file} with allow: [${peerId}]`;
}
