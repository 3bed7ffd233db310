#!/usr/bin/env node
// `npm test`: type-check, then every unit test (`*.test.ts` beside its code) and every
// integration test (`test/**/*.test.ts`) under Node's own test runner, ending with its counts.
// Node 20's runner does not expand globs, so the file list is collected here.
// The real-API-server tier (`test/kube/`) runs when kube-apiserver, kube-controller-manager and etcd
// are found (TOLLGATE_KUBE_BIN, else the cache scripts/kube-bin.sh fills); the last line says whether
// it ran or why not.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, readdirSync } from 'node:fs';
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

/** The directory with the tier's binaries (as test/helpers/kube-cluster.ts looks for it), or a reason. */
function kubeBin() {
  const fromEnv = process.env.TOLLGATE_KUBE_BIN;
  const dir = fromEnv || join(process.env.TOLLGATE_KUBE_CACHE || '/var/cache/tollgate-kube', 'bin');
  try {
    for (const b of ['etcd', 'kube-apiserver', 'kube-controller-manager']) accessSync(join(dir, b), constants.X_OK);
    return { dir };
  } catch {
    return { why: `kube-apiserver, kube-controller-manager and etcd are not in ${fromEnv ? `TOLLGATE_KUBE_BIN=${fromEnv}` : dir}` };
  }
}

const kubeTier = join('test', 'kube') + '/';
let files = parts.flatMap((p) => collect(join(root, p), [])).sort();
if (only.length > 0) files = files.filter((f) => only.some((o) => f.includes(o)));
const kube = kubeBin();
const kubeFiles = files.filter((f) => f.startsWith(kubeTier));
if (!kube.dir) files = files.filter((f) => !f.startsWith(kubeTier));
const tierLine = (() => {
  if (kubeFiles.length === 0) return 'real-API-server tier: not selected (no test/kube/ file matches the arguments)';
  if (kube.dir) return `real-API-server tier: ran (${kubeFiles.length} files) with the binaries in ${kube.dir}`;
  return `real-API-server tier: SKIPPED — ${kube.why}; run scripts/kube-bin.sh as root to enable it`;
})();
if (files.length === 0) {
  if (kubeFiles.length > 0) {
    console.log(tierLine);
    process.exit(0);
  }
  console.error('no test files found');
  process.exit(1);
}
const env = { ...process.env, TOLLGATE_TEST: '1', ...(kube.dir ? { TOLLGATE_KUBE_BIN: kube.dir } : {}) };
const run = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...files],
  { cwd: root, stdio: 'inherit', env },
);
console.log(tierLine);
process.exit(run.status ?? 1);
