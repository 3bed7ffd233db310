// Reading an inbound policy file: YAML, the JSON schema (sidecar/policy-schema.ts, checked by its
// precompiled Ajv validator), then the rules themselves, with every problem reported as
// `cannot read policy <file> line <N>: ...`. The matcher is in policy.ts, which re-exports everything
// here that callers use.
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
import { isMap, isScalar, type Node } from 'yaml';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { TollgateError } from '../common/errors.ts';
import { parseSpiffeId, parseTrustDomain, spiffeIdProblem } from '../pki/spiffe-id.ts';
import validatePolicy from './policy-validator.cjs';
import { YamlSource, deepFreeze, pathText, pointerSteps, unknownKeyMessage } from '../common/yaml-source.ts';

// The parsed policy types live here, where they are built (policy.ts imports this file, never the
// reverse, so the two stay free of import cycles); policy.ts re-exports them.

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
  /**
   * The sidecar's own trust domain: the accepted set when the file has no `trustDomains`. Only a
   * tool looking at a policy outside any sidecar (`tollgate policy check`) may leave it out; then
   * the file must list `trustDomains`.
   */
  ownTrustDomain?: string;
}

const SCHEME = 'spiffe://';

/** The shape the JSON schema guarantees. */
interface RawSection {
  allow: string[];
}
interface RawPolicy {
  trustDomains?: string[];
  ports: Record<string, RawSection>;
  default?: RawSection;
}

const validate = validatePolicy as ValidateFunction<RawPolicy>;

const ROOT = 'the policy';
const TYPE_WORDS: Record<string, string> = { object: 'a mapping', array: 'a list', string: 'a string' };

function schemaMessage(e: ErrorObject, data: unknown): string {
  const where = pathText(pointerSteps(e.instancePath), data, ROOT);
  switch (e.keyword) {
    case 'additionalProperties':
      return unknownKeyMessage(e, where);
    case 'required': {
      const missing = String((e.params as { missingProperty: string }).missingProperty);
      if (missing === 'allow') return `${where} has no "allow" list; write "allow: []" to deny everyone`;
      return `${where} has no "${missing}" mapping; add one (it may be "ports: {}")`;
    }
    case 'type': {
      const want = TYPE_WORDS[String((e.params as { type: string }).type)] ?? String((e.params as { type: string }).type);
      if (where === ROOT) return `the policy must be a mapping with a "ports" key (the file is empty or not a mapping)`;
      // A section (under ports, or default) that is not a mapping: the schema's $defs/section.
      if (e.schemaPath === '#/$defs/section/type') return `${where} must be a mapping with an "allow" list (e.g. "allow: []" to deny everyone)`;
      return `${where} must be ${want}`;
    }
    case 'minItems':
      return `${where} must list at least one trust domain; remove the key to accept only the sidecar's own`;
    // Stryker disable next-line ConditionalExpression: unreachable, the schema uses no other keyword; kept so a new one still gets a message
    default:
      // Stryker disable next-line StringLiteral,LogicalOperator: unreachable, as above
      return `${where} ${e.message ?? 'is invalid'}`;
  }
}

/** Reasons a pattern is not a valid rule, or null. Returns text after the quoted pattern. */
function patternProblem(pattern: string, accepted: ReadonlySet<string>): string | null {
  if (pattern.startsWith(SCHEME)) {
    const [td, ...segments] = pattern.slice(SCHEME.length).split('/');
    if (td!.includes('*')) return 'has "*" in the trust domain; wildcards may only be whole path segments, so list each trust domain explicitly';
    for (const seg of segments) {
      if (seg === '**') return 'uses "**", which is not supported; "*" matches exactly one segment, so write one "*" per segment';
      if (seg !== '*' && seg.includes('*')) {
        return `has "*" inside the segment ${JSON.stringify(seg)}; "*" must stand for a whole path segment (e.g. .../sa/*)`;
      }
    }
  }
  // Validate with the strict parser, with each whole-segment "*" replaced by a plain segment (the trust
  // domain has no "*": refused above).
  const probe = pattern.startsWith(SCHEME) ? pattern.split('/').map((s) => (s === '*' ? 'x' : s)).join('/') : pattern;
  const problem = spiffeIdProblem(probe);
  if (problem !== null) return problem;
  const { trustDomain: td, path } = parseSpiffeId(probe);
  if (path === '') return 'has no path; a rule names workloads, e.g. spiffe://TD/ns/NS/sa/SA or spiffe://TD/ns/NS/sa/*';
  if (!accepted.has(td)) {
    return `is in trust domain ${JSON.stringify(td)}, which is not accepted (accepted: ${[...accepted].join(', ')}); add it to trustDomains or remove the rule`;
  }
  return null;
}

/** Check a port key: number or decimal string, integer 1..65535. Returns what is wrong with it, or null. */
function portKeyProblem(value: unknown): string | null {
  const shown = JSON.stringify(value) ?? String(value);
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && /^[0-9]+$/.test(value) && !/^0[0-9]/.test(value)) n = Number(value);
  else return `port ${shown} is not a port number; use an integer 1..65535 (e.g. "8080")`;
  if (!Number.isInteger(n) || n < 1 || n > 65535) return `port ${shown} is out of range; use an integer 1..65535`;
  return null;
}

/**
 * Parse and validate a policy file's text (not yet compiled: use parsePolicy from policy.ts, which
 * compiles the result once). Throws TollgateError('TG_CONFIG_INVALID') whose message names the file
 * and line: `cannot read policy <source> line <N>: <problem and what to do>`.
 * `ownTrustDomain` itself must be valid (else TG_TRUST_DOMAIN_INVALID).
 */
export function parsePolicyText(text: string, options: ParsePolicyOptions): Policy {
  const { source } = options;
  const own = options.ownTrustDomain === undefined ? undefined : parseTrustDomain(options.ownTrustDomain);
  const yaml = new YamlSource(text, { source, what: 'policy' });

  // Port keys are checked on the syntax tree, before toJS() merges 8080 and "8080".
  const portsNode = yaml.resolve(yaml.find(['ports']));
  if (isMap(portsNode) && portsNode !== yaml.root) {
    for (const pair of portsNode.items) {
      const key = pair.key as Node;
      const problem = portKeyProblem(isScalar(key) ? key.value : key);
      if (problem !== null) throw yaml.fail(yaml.lineOf(key), problem);
    }
  }

  const data: unknown = yaml.toJS();
  if (!validate(data)) {
    // An unknown key (often a typo) explains more than the "required" error it causes.
    const errors = validate.errors!; // set whenever validate() returns false
    const e = errors.find((x) => x.keyword === 'additionalProperties') ?? errors[0]!;
    throw yaml.fail(yaml.lineOfSchemaError(e), schemaMessage(e, data));
  }
  const raw = data;

  const trustDomains: string[] = [];
  if (raw.trustDomains === undefined) {
    if (own === undefined) {
      throw yaml.fail(1, 'the policy has no "trustDomains", so it accepts only the sidecar\'s own trust domain, which was not given; pass it (tollgate policy check --trust-domain TD) or add "trustDomains: [TD]" to the file');
    }
    trustDomains.push(own);
  }
  raw.trustDomains?.forEach((td, i) => {
    let name: string;
    try {
      name = parseTrustDomain(td);
    } catch (err) {
      // parseTrustDomain throws only TollgateErrors that carry the reason
      throw yaml.fail(yaml.lineAt(['trustDomains', String(i)]), `${JSON.stringify(td)} ${String((err as TollgateError).details['reason'])}`);
    }
    if (!trustDomains.includes(name)) trustDomains.push(name);
  });
  const accepted = new Set(trustDomains);

  const section = (rawSection: RawSection, steps: readonly string[]): PolicySection => ({
    allow: rawSection.allow.map((pattern, i) => {
      const at = [...steps, 'allow', String(i)];
      const line = yaml.lineAt(at);
      const problem = patternProblem(pattern, accepted);
      if (problem) throw yaml.fail(line, `${JSON.stringify(pattern)} ${problem}`, { pattern });
      return { pattern, location: pathText(at, raw, ROOT), line };
    }),
  });

  const ports: Record<string, PolicySection> = {};
  // Keys were checked on the syntax tree above; toJS() wrote each as its decimal string.
  for (const [key, value] of Object.entries(raw.ports)) ports[key] = section(value, ['ports', key]);
  return deepFreeze({
    source,
    trustDomains,
    ports,
    default: raw.default ? section(raw.default, ['default']) : null,
  });
}
