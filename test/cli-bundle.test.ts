// bin/tollgate.js runs a prebuilt bundle (scripts/bundle.js) only while it is current: an edit to any
// file it was built from, even one that keeps the size and the mtime, makes it stale and rebuilt; its
// code cache is never used for another build; and the bundle behaves like the sources (same --help
// and errors, files found next to their modules).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BIN, ROOT, tempDir } from './helpers/procs.ts';

interface Where {
  root: string;
  entry: string;
  out: string;
}
interface Loaded {
  exports: { value: string; depUrl: string };
  cacheUsed: boolean;
  saveCache(): void;
}
interface BundleModule {
  currentBundle(o: Where): string | null;
  buildBundle(o: Where): Promise<string>;
  loadBundle(path: string, o: { cacheKey: string }): Loaded;
}
const { currentBundle, buildBundle, loadBundle } = (await import(pathToFileURL(join(ROOT, 'scripts/bundle.js')).href)) as BundleModule;

test('a bundle is used while its inputs are unchanged and rebuilt after any edit', async () => {
  const tmp = tempDir('tollgate-bundle-');
  try {
    const root = tmp.dir;
    const dep = join(root, 'lib', 'dep.ts');
    mkdirSync(join(root, 'lib'));
    writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(join(root, 'main.ts'), "import { word, here } from './lib/dep.ts';\nexport const value: string = word;\nexport const depUrl: string = here;\n");
    writeFileSync(dep, "export const word: string = 'alpha';\nexport const here: string = import.meta.url;\n");
    // A whole-second mtime, so that it can be put back exactly after the edit below.
    const mtime = 1_700_000_000;
    utimesSync(dep, mtime, mtime);
    const where = { root, entry: 'main.ts', out: join(root, 'dist', 'main.cjs') };

    assert.equal(currentBundle(where), null, 'no bundle yet');
    await buildBundle(where);
    assert.equal(currentBundle(where), where.out);
    const first = loadBundle(where.out, { cacheKey: 't' });
    assert.equal(first.exports.value, 'alpha');
    assert.equal(first.exports.depUrl, pathToFileURL(dep).href, "import.meta.url stays the module's own location");
    assert.equal(first.cacheUsed, false);
    first.saveCache();
    assert.ok(existsSync(`${where.out}.t.v8cache`));
    const again = loadBundle(where.out, { cacheKey: 't' });
    assert.deepEqual([again.exports.value, again.cacheUsed], ['alpha', true], 'the second run uses the code cache');
    const cacheFile = `${where.out}.t.v8cache`;
    const made = readFileSync(cacheFile);
    rmSync(cacheFile);
    again.saveCache();
    assert.equal(existsSync(cacheFile), false, 'a run that used a cache makes no other (it would keep a copy of all compiled code)');
    writeFileSync(cacheFile, made);

    // Same size and same mtime: only the change time (ctime) tells, and the bundle must not be used.
    const size = statSync(dep).size;
    writeFileSync(dep, readFileSync(dep, 'utf8').replace('alpha', 'omega'));
    utimesSync(dep, mtime, mtime);
    assert.deepEqual([statSync(dep).size, statSync(dep).mtimeMs], [size, mtime * 1000]);
    assert.equal(currentBundle(where), null, 'stale after an edit that keeps size and mtime');
    await buildBundle(where);
    const rebuilt = loadBundle(currentBundle(where)!, { cacheKey: 't' });
    assert.deepEqual([rebuilt.exports.value, rebuilt.cacheUsed], ['omega', false]);

    assert.equal(currentBundle({ ...where, entry: 'other.ts' }), null, 'built from another entry');
    rmSync(dep);
    assert.equal(currentBundle(where), null, 'an input is gone');
  } finally {
    tmp.cleanup();
  }
});

test('the bundle is ASCII only, so V8 holds its source as one byte per character, and text survives', async () => {
  const tmp = tempDir('tollgate-bundle-');
  try {
    const root = tmp.dir;
    writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
    // A comment esbuild keeps (inside an object literal, as in ca/runtime.ts) and a string, both non-ASCII.
    writeFileSync(join(root, 'main.ts'), "const o = {\n  // end → end, §4, 😀\n  text: 'a → b — ü 😀',\n};\nexport const value: string = o.text;\nexport const depUrl = '';\n");
    const where = { root, entry: 'main.ts', out: join(root, 'dist', 'main.cjs') };
    await buildBundle(where);
    const bytes = readFileSync(where.out);
    assert.equal(bytes.findIndex((b) => b > 0x7f), -1, 'no byte above 0x7f');
    assert.equal(loadBundle(where.out, { cacheKey: 't' }).exports.value, 'a → b — ü 😀');
  } finally {
    tmp.cleanup();
  }
});

function cli(args: string[], mode: '0' | '1'): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, TOLLGATE_BUNDLE: mode } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('a code cache runs only with the text it was made from, even one of the same length', () => {
  const tmp = tempDir('tollgate-bundle-');
  try {
    const file = join(tmp.dir, 'b.cjs');
    const wrapped = (body: string): string => `(function (exports, require, module, __filename, __dirname) {${body}\n})`;
    writeFileSync(file, wrapped("module.exports.value = 'alpha';"));
    const first = loadBundle(file, { cacheKey: 'k' });
    first.saveCache();
    assert.equal(loadBundle(file, { cacheKey: 'k' }).cacheUsed, true);
    // V8 checks only the length of the text a cache was made from; the loader checks its hash.
    writeFileSync(file, wrapped("module.exports.value = 'omega';"));
    const second = loadBundle(file, { cacheKey: 'k' });
    assert.deepEqual([second.exports.value, second.cacheUsed], ['omega', false]);
  } finally {
    tmp.cleanup();
  }
});

test('the CLI runs from the bundle with the same --help and errors as from the sources', () => {
  for (const args of [['--help'], ['sidecar', 'run', '--help'], ['ca', 'serve', '--help'], ['nosuch'], ['policy', 'check', '--policy', 'x', '--peer', 'y', '--port', '0']]) {
    assert.deepEqual(cli(args, '1'), cli(args, '0'), `tollgate ${args.join(' ')}`);
  }
  // TOLLGATE_BUNDLE=1 fails rather than falling back, so the runs above did use the bundle.
  const header = readFileSync(join(ROOT, 'dist', 'tollgate.cjs'), 'utf8').split('\n', 1)[0]!;
  assert.match(header, /^\/\/ tollgate-bundle \{"format":\d+,"entry":"cli\/main\.ts"/);
  for (const input of ['cli/main.ts', 'sidecar/sidecar.ts', 'common/ca-client.ts', 'scripts/bundle.js', 'tsconfig.json']) {
    assert.ok(header.includes(`"${input}"`), `${input} is an input of the bundle`);
  }
});
