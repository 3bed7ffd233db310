// The validators of the config and policy schemas are generated ahead (scripts/config-validators.ts)
// and committed, so no process compiles a schema at start. They must be exactly what the schemas
// generate now: a schema edited without `npm run validators` would otherwise go on validating by the
// old rules, with nothing else to notice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CONFIG_VALIDATORS, generatedFiles } from '../scripts/config-validators.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

for (const [path, text] of generatedFiles()) {
  test(`${path} is what its schema generates now (else run npm run validators)`, () => {
    assert.equal(readFileSync(root + path, 'utf8'), text, `${path} is stale: run npm run validators and commit the result`);
  });
}

test('each parser uses its generated validator, and no run-time module loads Ajv itself', () => {
  const users: Record<string, string> = { 'sidecar/config-validator.cjs': 'sidecar/config.ts', 'sidecar/policy-validator.cjs': 'sidecar/policy-parse.ts', 'injector/config-validator.cjs': 'injector/config.ts' };
  assert.deepEqual(CONFIG_VALIDATORS.map((v) => v.module).sort(), Object.keys(users).sort());
  const loadsAjv = /^import (?!type\b)[^\n]*from 'ajv(\/[^']*)?';/m;
  for (const [module, user] of Object.entries(users)) {
    const source = readFileSync(root + user, 'utf8');
    assert.ok(source.includes(`from './${module.split('/')[1]}';`), `${user} imports ${module}`);
    assert.doesNotMatch(source, loadsAjv, user);
  }
  assert.doesNotMatch(readFileSync(root + 'common/yaml-source.ts', 'utf8'), loadsAjv, 'common/yaml-source.ts');
  assert.match("import { Ajv } from 'ajv';", loadsAjv, 'the pattern sees an import of Ajv');
});
