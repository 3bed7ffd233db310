// The validators of our config schemas, compiled ahead: Ajv's standalone code generation
// (https://ajv.js.org/standalone.html) turns each schema into a CommonJS module that validates
// without Ajv's compiler, so no process compiles a schema at start (that cost a sidecar ~17 ms, plus
// loading Ajv itself). The modules are committed, next to their schemas, so the sources run as they
// are (tsx, TOLLGATE_BUNDLE=0) and the bundle takes them like any other file;
// test/config-validators.test.ts fails when one is not what its schema generates now.
//   node --import tsx scripts/config-validators.ts     (npm run validators)   rewrites them
// Each is CommonJS because Ajv's ES-module output still require()s its runtime helpers
// (ajv-validator/ajv#2209); a .d.cts beside it gives its type.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type Options } from 'ajv';
import standalone from 'ajv/dist/standalone/index.js';
import { schema as injectorConfigSchema } from '../injector/config-schema.ts';
import { schema as sidecarConfigSchema } from '../sidecar/config-schema.ts';
import { policySchema } from '../sidecar/policy-schema.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
// A CommonJS module whose function is both module.exports and .default: the latter is typed.
const standaloneCode = standalone.default;

export interface ConfigValidator {
  /** The generated module, relative to the repository root; its .d.cts has the same name. */
  readonly module: string;
  /** Where the schema is written, for the header. */
  readonly schemaModule: string;
  readonly schema: object;
  /** Whether a `type` may list several types (Ajv's strict mode refuses that unless asked). */
  readonly allowUnionTypes: boolean;
}

export const CONFIG_VALIDATORS: readonly ConfigValidator[] = [
  { module: 'sidecar/config-validator.cjs', schemaModule: 'sidecar/config-schema.ts', schema: sidecarConfigSchema, allowUnionTypes: true },
  { module: 'sidecar/policy-validator.cjs', schemaModule: 'sidecar/policy-schema.ts', schema: policySchema, allowUnionTypes: false },
  { module: 'injector/config-validator.cjs', schemaModule: 'injector/config-schema.ts', schema: injectorConfigSchema, allowUnionTypes: true },
];

/**
 * The options our validators are built with: every error (the message picks the one to show),
 * verbose (messages read the failing schema node's `description` and the data), strict (an unknown
 * keyword in our schema is a mistake).
 */
export function ajvOptions(o: { allowUnionTypes: boolean }): Options {
  return { allErrors: true, verbose: true, strict: true, allowUnionTypes: o.allowUnionTypes };
}

/** What the JSON Schema (draft-07) meta-schema finds wrong with `schema`; empty when it is a valid schema. */
export function metaSchemaErrors(schema: object): string[] {
  const ajv = new Ajv({ strict: true, allowUnionTypes: true });
  return ajv.validateSchema(schema) ? [] : (ajv.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
}

/** The text of a validator's module and of its .d.cts. Throws when the schema is not valid JSON Schema. */
export function generate(v: ConfigValidator): { code: string; types: string } {
  const problems = metaSchemaErrors(v.schema);
  if (problems.length > 0) throw new Error(`${v.schemaModule}: not a valid JSON Schema: ${problems.join('; ')}`);
  const ajv = new Ajv({ ...ajvOptions(v), code: { source: true, lines: true } });
  const header = `// Generated from ${v.schemaModule} by scripts/config-validators.ts (npm run validators): do not edit.\n`;
  return {
    code: `${header}${standaloneCode(ajv, ajv.compile(v.schema))}\n`,
    types: `${header}import type { ValidateFunction } from 'ajv';\ndeclare const validate: ValidateFunction;\nexport = validate;\n`,
  };
}

/** [path, text] of every file generated, as it should be now. */
export function generatedFiles(): Array<[path: string, text: string]> {
  return CONFIG_VALIDATORS.flatMap((v) => {
    const { code, types } = generate(v);
    return [
      [v.module, code],
      [v.module.replace(/\.cjs$/, '.d.cts'), types],
    ] as Array<[string, string]>;
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const [path, text] of generatedFiles()) {
    const file = join(ROOT, path);
    let old: string | undefined;
    try {
      old = readFileSync(file, 'utf8');
    } catch {
      // new
    }
    if (old === text) continue;
    writeFileSync(file, text);
    process.stdout.write(`wrote ${relative(process.cwd(), file)}\n`);
  }
}
