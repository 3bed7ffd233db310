#!/usr/bin/env node
// `npm test`: type-check, then every unit test (`*.test.ts` beside its code) and every
// integration test (`test/**/*.test.ts`) under Node's own test runner, ending with its counts.
// Node 20's runner does not expand globs, so the file list is collected here.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const parts = ['common', 'pki', 'ca', 'sidecar', 'cli', 'injector', 'test', 'bench'];
const only = process.argv.slice(2);

function collect(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) collect(p, out);
    else if (e.name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}

const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], {
  cwd: root,
  stdio: 'inherit',
});
if (tsc.status !== 0) {
  console.error('type-check failed: fix the errors above before the tests run');
  process.exit(1);
}

let files = parts.flatMap((p) => collect(join(root, p), [])).sort();
if (only.length > 0) files = files.filter((f) => only.some((o) => f.includes(o)));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const run = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...files],
  { cwd: root, stdio: 'inherit', env: { ...process.env, TOLLGATE_TEST: '1' } },
);
process.exit(run.status ?? 1);
