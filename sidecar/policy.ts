// Inbound authorization policy: which peer SPIFFE IDs may connect to which app port.
//
// File format (YAML; see examples/policy.yaml):
//
//   # trust domains whose peers may be considered at all (optional; default: only the sidecar's own)
//   trustDomains: [example.org]
//   ports:
//     "8080":            # the app port this inbound listener fronts (string or number key, 1..65535)
//       allow:
//         - spiffe://example.org/ns/shop/sa/web
//         - spiffe://example.org/ns/shop/sa/*     # * = exactly one whole, non-empty path segment
//     "9090":
//       allow: []         # explicit deny-all
//   default:              # optional: rules for ports not listed; absent = deny
//     allow: [...]
//
// Rules: `ports` is required (it may be `{}`); unknown keys, duplicate keys (8080 and "8080" are the
// same port) and a section without `allow` are errors. Every pattern is a workload SPIFFE ID (it needs a
// path) in which a path segment may be exactly `*`; `*` never appears in the trust domain or inside a
// segment, and `**` does not exist. A pattern's trust domain must be one of the accepted trust domains.
// Default deny: a port without a section and without `default` allows nobody.
//
// authorize() result: `rule` is null when denied, else "<pattern> (<location>)", e.g.
//   "spiffe://example.org/ns/shop/sa/* (ports.8080.allow[1])" or "spiffe://td/a/b (default.allow[0])".
// If several rules match, an exact rule wins over a wildcard; among wildcards the first in the file wins.
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import { Ajv, type ErrorObject } from 'ajv';
import { TollgateError } from '../pki/errors.ts';
import { parseSpiffeId, parseTrustDomain } from '../pki/spiffe-id.ts';

export interface PolicyRule {
  /** The pattern as written, e.g. "spiffe://example.org/ns/shop/sa/*". */
  readonly pattern: string;
  /** Where it is in the document, e.g. "ports.8080.allow[1]" or "default.allow[0]". */
  readonly location: string;
  /** 1-based line in the source file. */
  readonly line: number;
}

export interface PolicySection {
  readonly allow: readonly PolicyRule[];
}

/** A parsed, validated, deeply frozen policy. Compiled matchers are kept privately, keyed by this object. */
export interface Policy {
  /** The file path (or other label) the policy was read from, for messages. */
  readonly source: string;
  /** Accepted peer trust domains. */
  readonly trustDomains: readonly string[];
  /** Sections by decimal port number ("8080"). */
  readonly ports: Readonly<Record<string, PolicySection>>;
  /** Rules for ports not listed in `ports`; null = deny. */
  readonly default: PolicySection | null;
}

export interface ParsePolicyOptions {
  /** File path used in error messages and kept as Policy.source. */
  source: string;
  /** The sidecar's own trust domain: the accepted set when the file has no `trustDomains`. */
  ownTrustDomain: string;
}

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

// ---------------------------------------------------------------------------------------------------
// Parsing

const sectionSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['allow'],
  properties: { allow: { type: 'array', items: { type: 'string' } } },
};

const policySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['ports'],
  properties: {
    trustDomains: { type: 'array', minItems: 1, items: { type: 'string' } },
    ports: { type: 'object', additionalProperties: { $ref: '#/$defs/section' } },
    default: { $ref: '#/$defs/section' },
  },
  $defs: { section: sectionSchema },
};

/** The shape the JSON schema guarantees. */
interface RawSection {
  allow: string[];
}
interface RawPolicy {
  trustDomains?: string[];
  ports: Record<string, RawSection>;
  default?: RawSection;
}

const validate = new Ajv({ allErrors: true, verbose: true, strict: true }).compile<RawPolicy>(policySchema);

class Located {
  constructor(
    readonly doc: Document,
    readonly lines: LineCounter,
    readonly source: string,
  ) {}

  lineOf(node: Node | null | undefined): number {
    const offset = node?.range?.[0] ?? 0;
    return this.lines.linePos(offset).line;
  }

  fail(line: number, what: string, extra: Record<string, unknown> = {}): TollgateError {
    return new TollgateError('TG_CONFIG_INVALID', `cannot read policy ${this.source} line ${line}: ${what}`, {
      details: { source: this.source, line, ...extra },
    });
  }

  /** The node at a JSON-pointer-like path (or the key node of its last step when `key`). */
  find(path: readonly string[], key = false): Node | null {
    let node: unknown = this.doc.contents;
    for (let i = 0; i < path.length; i++) {
      if (isAlias(node)) node = node.resolve(this.doc);
      const step = path[i]!;
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === step);
        if (!pair) return node as Node;
        if (key && i === path.length - 1) return pair.key as Node;
        node = pair.value ?? pair.key;
      } else if (isSeq(node)) {
        const item = node.items[Number(step)];
        if (item === undefined) return node as Node;
        node = item;
      } else {
        return (node as Node | null) ?? null;
      }
    }
    return (node as Node | null) ?? null;
  }
}

/** "/ports/8080/allow/1" → ["ports","8080","allow","1"] */
function pointerSteps(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** ["ports","8080","allow","1"] → "ports.8080.allow[1]" */
function locationOf(steps: readonly string[]): string {
  let out = '';
  for (const s of steps) {
    const listIndex = /^\d+$/.test(s) && (out.endsWith('allow') || out === 'trustDomains');
    out += listIndex ? `[${s}]` : out === '' ? s : `.${s}`;
  }
  return out === '' ? 'the policy' : out;
}

const TYPE_WORDS: Record<string, string> = { object: 'a mapping', array: 'a list', string: 'a string' };

function schemaMessage(e: ErrorObject): string {
  const where = locationOf(pointerSteps(e.instancePath));
  switch (e.keyword) {
    case 'additionalProperties': {
      const extra = String((e.params as { additionalProperty: string }).additionalProperty);
      const allowed = Object.keys((e.parentSchema as { properties?: object }).properties ?? {}).join(', ');
      return `unknown key ${JSON.stringify(extra)} in ${where}; allowed keys are: ${allowed}`;
    }
    case 'required': {
      const missing = String((e.params as { missingProperty: string }).missingProperty);
      if (missing === 'allow') return `${where} has no "allow" list; write "allow: []" to deny everyone`;
      return `${where} has no "${missing}" mapping; add one (it may be "ports: {}")`;
    }
    case 'type': {
      const want = TYPE_WORDS[String((e.params as { type: string }).type)] ?? String((e.params as { type: string }).type);
      if (where === 'the policy') return `the policy must be a mapping with a "ports" key (the file is empty or not a mapping)`;
      if (want === 'a mapping' && /^(ports\.\d+|default)$/.test(where)) return `${where} must be a mapping with an "allow" list (e.g. "allow: []" to deny everyone)`;
      return `${where} must be ${want}`;
    }
    case 'minItems':
      return `${where} must list at least one trust domain; remove the key to accept only the sidecar's own`;
    default:
      return `${where} ${e.message ?? 'is invalid'}`;
  }
}

/** Reasons a pattern is not a valid rule, or null. Returns text after the quoted pattern. */
function patternProblem(pattern: string, accepted: ReadonlySet<string>): string | null {
  if (pattern.startsWith(SCHEME)) {
    const rest = pattern.slice(SCHEME.length);
    const slash = rest.indexOf('/');
    const td = slash === -1 ? rest : rest.slice(0, slash);
    if (td.includes('*')) return 'has "*" in the trust domain; wildcards may only be whole path segments, so list each trust domain explicitly';
    if (slash !== -1) {
      for (const seg of rest.slice(slash + 1).split('/')) {
        if (seg === '**') return 'uses "**", which is not supported; "*" matches exactly one segment, so write one "*" per segment';
        if (seg !== '*' && seg.includes('*')) {
          return `has "*" inside the segment ${JSON.stringify(seg)}; "*" must stand for a whole path segment (e.g. .../sa/*)`;
        }
      }
    }
  }
  // Validate with the strict parser, with each whole-segment "*" replaced by a plain segment.
  const probe = pattern.startsWith(SCHEME)
    ? SCHEME + pattern.slice(SCHEME.length).split('/').map((s, i) => (i > 0 && s === '*' ? 'x' : s)).join('/')
    : pattern;
  let td: string;
  let path: string;
  try {
    ({ trustDomain: td, path } = parseSpiffeId(probe));
  } catch (e) {
    const reason = e instanceof TollgateError ? e.details['reason'] : undefined;
    return typeof reason === 'string' ? reason : 'is not a valid SPIFFE ID';
  }
  if (path === '') return 'has no path; a rule names workloads, e.g. spiffe://TD/ns/NS/sa/SA or spiffe://TD/ns/NS/sa/*';
  if (!accepted.has(td)) {
    return `is in trust domain ${JSON.stringify(td)}, which is not accepted (accepted: ${[...accepted].join(', ')}); add it to trustDomains or remove the rule`;
  }
  return null;
}

/** Check a port key: number or decimal string, integer 1..65535. Returns the canonical form or a problem. */
function portKey(value: unknown): { port: string } | { problem: string } {
  const shown = JSON.stringify(value) ?? String(value);
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && /^[0-9]+$/.test(value) && !/^0[0-9]/.test(value)) n = Number(value);
  else return { problem: `port ${shown} is not a port number; use an integer 1..65535 (e.g. "8080")` };
  if (!Number.isInteger(n) || n < 1 || n > 65535) return { problem: `port ${shown} is out of range; use an integer 1..65535` };
  return { port: String(n) };
}

/** Report duplicate keys in every mapping (8080 and "8080" count as the same key). */
function checkDuplicateKeys(loc: Located, node: unknown, seen = new Set<unknown>()): void {
  if (seen.has(node)) return;
  seen.add(node);
  if (isMap(node)) {
    const first = new Map<string, number>();
    for (const pair of node.items) {
      if (!isScalar(pair.key)) throw loc.fail(loc.lineOf((pair.key as Node | null) ?? node), 'keys must be plain scalars');
      const k = String(pair.key.value);
      const line = loc.lineOf(pair.key);
      const prev = first.get(k);
      if (prev !== undefined) throw loc.fail(line, `duplicate key ${JSON.stringify(k)} (first on line ${prev}); merge the two entries`);
      first.set(k, line);
      checkDuplicateKeys(loc, pair.value, seen);
    }
  } else if (isSeq(node)) {
    for (const item of node.items) checkDuplicateKeys(loc, item, seen);
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * Parse and validate a policy file's text. Throws TollgateError('TG_CONFIG_INVALID') whose message
 * names the file and line: `cannot read policy <source> line <N>: <problem and what to do>`.
 * `ownTrustDomain` itself must be valid (else TG_TRUST_DOMAIN_INVALID).
 */
export function parsePolicy(text: string, options: ParsePolicyOptions): Policy {
  const { source } = options;
  const own = parseTrustDomain(options.ownTrustDomain);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: true });
  const loc = new Located(doc, lines, source);

  const syntax = doc.errors[0];
  if (syntax) {
    // An error found only at the end of the input (e.g. an unclosed "[") is shown on the last non-blank line.
    const at = text.slice(syntax.pos[0]).trim() === '' ? Math.max(0, text.trimEnd().length - 1) : syntax.pos[0];
    const line = lines.linePos(at).line;
    const what = syntax.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw loc.fail(line, `invalid YAML: ${what}`, { yamlCode: syntax.code });
  }
  checkDuplicateKeys(loc, doc.contents);

  // Port keys are checked on the syntax tree, before toJS() merges 8080 and "8080".
  let portsNode: unknown = loc.find(['ports']);
  if (isAlias(portsNode)) portsNode = portsNode.resolve(doc);
  if (isMap(portsNode) && portsNode !== doc.contents) {
    for (const pair of portsNode.items) {
      const key = pair.key as Node;
      const checked = portKey(isScalar(key) ? key.value : key);
      if ('problem' in checked) throw loc.fail(loc.lineOf(key), checked.problem);
    }
  }

  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  if (!validate(data)) {
    // An unknown key (often a typo) explains more than the "required" error it causes.
    const errors = validate.errors ?? [];
    const e = errors.find((x) => x.keyword === 'additionalProperties') ?? errors[0]!;
    const steps = pointerSteps(e.instancePath);
    let node: Node | null;
    if (e.keyword === 'additionalProperties') {
      node = loc.find([...steps, String((e.params as { additionalProperty: string }).additionalProperty)], true);
    } else {
      node = loc.find(steps);
    }
    throw loc.fail(loc.lineOf(node), schemaMessage(e));
  }
  const raw = data;

  const trustDomains: string[] = [];
  if (raw.trustDomains === undefined) trustDomains.push(own);
  raw.trustDomains?.forEach((td, i) => {
    let name: string;
    try {
      name = parseTrustDomain(td);
    } catch (err) {
      const reason = err instanceof TollgateError ? err.details['reason'] : undefined;
      throw loc.fail(loc.lineOf(loc.find(['trustDomains', String(i)])), `${JSON.stringify(td)} ${String(reason ?? 'is not a valid trust domain')}`);
    }
    if (!trustDomains.includes(name)) trustDomains.push(name);
  });
  const accepted = new Set(trustDomains);

  const section = (raw: RawSection, steps: readonly string[]): PolicySection => ({
    allow: raw.allow.map((pattern, i) => {
      const at = [...steps, 'allow', String(i)];
      const line = loc.lineOf(loc.find(at));
      const problem = patternProblem(pattern, accepted);
      if (problem) throw loc.fail(line, `${JSON.stringify(pattern)} ${problem}`, { pattern });
      return { pattern, location: locationOf(at), line };
    }),
  });

  const ports: Record<string, PolicySection> = {};
  // Keys were checked on the syntax tree above; toJS() wrote each as its decimal string.
  for (const [key, value] of Object.entries(raw.ports)) ports[key] = section(value, ['ports', key]);
  const policy: Policy = deepFreeze({
    source,
    trustDomains,
    ports,
    default: raw.default ? section(raw.default, ['default']) : null,
  });
  compiledCache.set(policy, compile(policy));
  return policy;
}
