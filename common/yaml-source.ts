// A YAML file being read as configuration, kept with its syntax tree so that every problem found later
// (by the JSON schema or by a semantic check) can be reported with the file and line it is on:
//   cannot read <what> <source> line <N>: <problem and what to do>
// Shared by the policy parser, the sidecar config parser and the injector config parser.
import { readFileSync } from 'node:fs';
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node, type YAMLError } from 'yaml';
import type { ErrorObject } from 'ajv';
import { TollgateError } from './errors.ts';

export interface YamlSourceOptions {
  /** File path (or other label) shown in messages. */
  source: string;
  /** What the file is, for messages: "policy", "sidecar config". */
  what: string;
}

/** Read a configuration file's text; an unreadable file is TG_CONFIG_INVALID naming the path. */
export function readSourceFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'the file does not exist' : (e as Error).message;
    throw new TollgateError('TG_CONFIG_INVALID', `cannot read ${what} ${path}: ${why}`, { cause: e, details: { source: path } });
  }
}

export class YamlSource {
  readonly source: string;
  readonly what: string;
  readonly #doc: Document;
  readonly #lines: LineCounter;

  /**
   * Parse `text`. Throws TG_CONFIG_INVALID for a YAML syntax error and for a duplicate key in any
   * mapping (YAML would silently keep one of the two).
   */
  constructor(text: string, options: YamlSourceOptions) {
    this.source = options.source;
    this.what = options.what;
    this.#lines = new LineCounter();
    this.#doc = parseDocument(text, { lineCounter: this.#lines, uniqueKeys: false, prettyErrors: true });
    const syntax = this.#doc.errors[0];
    if (syntax) {
      const { line, problem } = describeYamlError(text, this.#lines, syntax);
      throw this.fail(line, problem, { yamlCode: syntax.code });
    }
    this.#checkDuplicateKeys(this.#doc.contents);
  }

  /** The root node of the document (null for an empty file). */
  get root(): Node | null {
    return this.#doc.contents;
  }

  /** The document as plain data (mappings become objects, keys strings). */
  toJS(): unknown {
    return this.#doc.toJS({ maxAliasCount: 100 });
  }

  /** Follow an alias to the node it names; other values are returned as they are. */
  resolve(node: unknown): unknown {
    return isAlias(node) ? node.resolve(this.#doc) : node;
  }

  /** 1-based line of a node (line 1 when there is none, e.g. an empty file). */
  lineOf(node: Node | null | undefined): number {
    return this.#lines.linePos(node?.range?.[0] ?? 0).line;
  }

  /** Line of the node at `steps`, or of the nearest existing ancestor (where a missing key belongs). */
  lineAt(steps: readonly string[], key = false): number {
    return this.lineOf(this.find(steps, key));
  }

  fail(line: number, problem: string, extra: Record<string, unknown> = {}): TollgateError {
    return new TollgateError('TG_CONFIG_INVALID', `cannot read ${this.what} ${this.source} line ${line}: ${problem}`, {
      details: { source: this.source, line, ...extra },
    });
  }

  /** The node at a path of keys and list indexes (the key node of its last step when `key`). */
  find(steps: readonly string[], key = false): Node | null {
    let node: unknown = this.#doc.contents;
    for (let i = 0; i < steps.length; i++) {
      node = this.resolve(node);
      const step = steps[i]!;
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === step);
        if (!pair) return node as Node;
        if (key && i === steps.length - 1) return pair.key as Node;
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

  /** The line an ajv error is about: an unknown key's own line, else the offending value's. */
  lineOfSchemaError(e: ErrorObject): number {
    const steps = pointerSteps(e.instancePath);
    if (e.keyword === 'additionalProperties') return this.lineAt([...steps, additionalProperty(e)], true);
    return this.lineAt(steps);
  }

  #checkDuplicateKeys(node: unknown, seen = new Set<unknown>()): void {
    if (seen.has(node)) return;
    seen.add(node);
    if (isMap(node)) {
      const first = new Map<string, number>();
      for (const pair of node.items) {
        if (!isScalar(pair.key)) throw this.fail(this.lineOf((pair.key as Node | null) ?? node), 'keys must be plain scalars');
        const k = String(pair.key.value);
        const line = this.lineOf(pair.key);
        const prev = first.get(k);
        if (prev !== undefined) throw this.fail(line, `duplicate key ${JSON.stringify(k)} (first on line ${prev}); merge the two entries`);
        first.set(k, line);
        this.#checkDuplicateKeys(pair.value, seen);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) this.#checkDuplicateKeys(item, seen);
    }
  }
}

/** The line and words of a YAML syntax error: "invalid YAML: <what>". */
export function describeYamlError(text: string, lines: LineCounter, error: YAMLError): { line: number; problem: string } {
  // An error found only at the end of the input (e.g. an unclosed "[") is shown on the last non-blank line.
  const at = text.slice(error.pos[0]).trim() === '' ? Math.max(0, text.trimEnd().length - 1) : error.pos[0];
  const what = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
  return { line: lines.linePos(at).line, problem: `invalid YAML: ${what}` };
}

/** The unknown key an ajv `additionalProperties` error names. */
export function additionalProperty(e: ErrorObject): string {
  return String((e.params as { additionalProperty: string }).additionalProperty);
}

/** `unknown key "prots" in the policy; allowed keys are: ... (did you mean "ports"?)` for an ajv additionalProperties error. */
export function unknownKeyMessage(e: ErrorObject, where: string): string {
  const key = additionalProperty(e);
  const allowed = Object.keys((e.parentSchema as { properties?: object }).properties ?? {});
  const near = closest(key, allowed);
  return `unknown key ${JSON.stringify(key)} in ${where}; allowed keys are: ${allowed.join(', ')}${near ? ` (did you mean "${near}"?)` : ''}`;
}

/** The closest of `candidates` to a misspelt word, if one is close (differs in case, or by at most 2 edits). */
export function closest(word: string, candidates: readonly string[]): string | null {
  const distance = (a: string, b: string): number => {
    let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      const row = [i];
      for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = row;
    }
    return prev[b.length]!;
  };
  let best: string | null = null;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = c.toLowerCase() === word.toLowerCase() ? 0 : distance(word, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

/** A value as the operator wrote it, kept short: a scalar as JSON, else "a list" / "a mapping". */
export function shown(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value !== null && typeof value === 'object') return 'a mapping';
  return JSON.stringify(value) ?? String(value);
}

export interface SchemaMessageOptions {
  /** How the whole document is named in messages: "the config". */
  root: string;
  /** The message when the document is not a mapping at all (an empty file, a list). */
  notAMapping: string;
  /** Extra words after an enum error, by path text: { 'tls.minVersion': '; ...' }. */
  enumHints?: Readonly<Record<string, string>>;
}

/**
 * The operator's message for one ajv error of a configuration schema whose nodes carry a
 * `description` (the noun phrase used for a missing or mistyped value).
 */
export function schemaMessage(e: ErrorObject, data: unknown, options: SchemaMessageOptions): string {
  const steps = pointerSteps(e.instancePath);
  const where = pathText(steps, data, options.root);
  const s = e.parentSchema as { type?: string | string[]; description?: string; properties?: Record<string, { description?: string }>; minimum?: number; maximum?: number; enum?: unknown[] };
  switch (e.keyword) {
    case 'additionalProperties':
      return unknownKeyMessage(e, where);
    case 'required': {
      const missing = String((e.params as { missingProperty: string }).missingProperty);
      return `${where} has no "${missing}"; add ${s.properties?.[missing]?.description ?? 'it'}`;
    }
    case 'type':
    case 'minimum':
    case 'maximum': {
      const type = String(s.type);
      if (steps.length === 0) return options.notAMapping;
      if (type === 'integer') {
        const quoted = typeof e.data === 'string' && /^\d+$/.test(e.data) ? '; write it without quotes' : '';
        return `${where} must be an integer ${s.minimum}..${s.maximum}, got ${shown(e.data)}${quoted}`;
      }
      const words: Record<string, string> = { object: 'a mapping', array: 'a list', boolean: 'true or false', string: 'a string', 'string,number': 'a duration' };
      const want = words[type] ?? type;
      return `${where} must be ${want}${s.description && want !== s.description ? ` (${s.description})` : ''}, got ${shown(e.data)}`;
    }
    case 'enum':
      return `${where} must be ${s.description ?? (s.enum ?? []).join(', ')}, got ${shown(e.data)}${options.enumHints?.[where] ?? ''}`;
    case 'minLength':
      return `${where} is empty; write ${s.description ?? 'a value'}`;
    default:
      return `${where} ${e.message ?? 'is invalid'}`;
  }
}

/**
 * The TG_CONFIG_INVALID error for a failed schema check, about the error an operator should fix
 * first: an unknown key (often a typo, it explains more than the errors it causes), otherwise the
 * first error in the file.
 */
export function schemaFailure(yaml: YamlSource, errors: readonly ErrorObject[], data: unknown, options: SchemaMessageOptions): TollgateError {
  const pool = errors.some((x) => x.keyword === 'additionalProperties') ? errors.filter((x) => x.keyword === 'additionalProperties') : errors;
  if (pool.length === 0) return yaml.fail(1, `${options.root} does not match its schema`);
  const e = pool.reduce((a, b) => (yaml.lineOfSchemaError(b) < yaml.lineOfSchemaError(a) ? b : a));
  return yaml.fail(yaml.lineOfSchemaError(e), schemaMessage(e, data, options));
}

/** "/ports/8080/allow/1" → ["ports","8080","allow","1"] */
export function pointerSteps(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/**
 * How a path is shown to the operator: ["ports","8080","allow","1"] → "ports.8080.allow[1]",
 * ["inbound","0","appPort"] → "inbound[0].appPort". A step is an index where `data` has a list.
 * The empty path is `root` (e.g. "the policy").
 */
export function pathText(steps: readonly string[], data: unknown, root: string): string {
  let out = '';
  let node = data;
  for (const s of steps) {
    out += Array.isArray(node) ? `[${s}]` : out === '' ? s : `.${s}`;
    node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[s] : undefined;
  }
  return out === '' ? root : out;
}

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
