// The sidecar's memory settings (common/sidecar-runtime.ts) reach a real `tollgate sidecar run`
// started the way the injector starts it: V8's young generation stays at 2 MiB (two semi-spaces of
// 1 MiB) where Node's default grows it to 8 MiB by the time a sidecar is ready and to 32 MiB under
// load. A sidecar started without them says which are missing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initCa, startCa, type RunningTestCa } from './helpers/ca-fixture.ts';
import { shopId, startSidecar } from './helpers/mesh-fixture.ts';
import { tempDir } from './helpers/procs.ts';
import { startBackend, waitFor, type TestBackend } from './helpers/sidecar-fixture.ts';

let tmp: ReturnType<typeof tempDir>;
let ca: RunningTestCa;
let backend: TestBackend;

before(async () => {
  tmp = tempDir();
  initCa(join(tmp.dir, 'ca'));
  ca = await startCa(join(tmp.dir, 'ca'));
  backend = await startBackend();
});

after(async () => {
  await backend?.close();
  await ca?.stop();
  tmp?.cleanup();
});

const DIST = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
/** The code caches of `sidecar run` (one per set of node flags) with their modification times. */
const sidecarCaches = (): string[] => readdirSync(DIST).filter((f) => f.startsWith('tollgate.cjs.sidecar-run')).map((f) => `${f} ${statSync(join(DIST, f)).mtimeMs}`).sort();

const newSpaceBytes = (metrics: string): number => Number(/^nodejs_heap_space_size_total_bytes\{space="new"\} (\d+)/m.exec(metrics)?.[1]);

test('started as the injector starts it: a young generation of at most 2 MiB, and no log line about missing settings', async () => {
  const s = await startSidecar(tmp.dir, ca, { name: 'deployed', spiffeId: shopId('deployed'), inbound: { appPort: backend.port }, policy: 'ports: {}\n' });
  try {
    const metrics = await s.metrics();
    assert.match(metrics, /^tollgate_event_loop_lag_seconds_count \d+$/m, 'the event-loop lag histogram is exported too');
    const bytes = newSpaceBytes(metrics);
    assert.ok(bytes > 0 && bytes <= 2 * 1024 * 1024, `new space ${bytes} B`);
    assert.doesNotMatch(s.proc.stderr(), /runtime_settings_missing/);
  } finally {
    await s.proc.stop();
  }
});

test('started without them (by hand): it runs, and its log names both settings it lacks', async () => {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.GLIBC_TUNABLES;
  delete env.MALLOC_ARENA_MAX;
  const s = await startSidecar(tmp.dir, ca, { name: 'by-hand', spiffeId: shopId('by-hand'), env });
  try {
    const find = (): string | undefined => s.proc.stderr().split('\n').find((l) => l.includes('"event":"runtime_settings_missing"'));
    await waitFor(() => find() !== undefined, 'the runtime_settings_missing log line'); // stderr may trail the ready line on stdout
    const line = find()!;
    assert.deepEqual(JSON.parse(line).missing, ['NODE_OPTIONS=--max-semi-space-size=1', 'GLIBC_TUNABLES=glibc.malloc.arena_max=1:glibc.malloc.trim_threshold=131072:glibc.malloc.mmap_threshold=131072']);
  } finally {
    await s.proc.stop();
  }
});

test('started as deployed, again: the second start runs from the code cache the first left, and makes none (V8 rejects a cache made under other flags)', { skip: process.env.TOLLGATE_BUNDLE === '0' && 'sources run through tsx: no bundle, no code cache' }, async () => {
  const start = (name: string) => startSidecar(tmp.dir, ca, { name, spiffeId: shopId(name), inbound: { appPort: backend.port }, policy: 'ports: {}\n' });
  await (await start('first')).proc.stop(); // exit 0 writes the cache, unless one was used
  const after1 = sidecarCaches();
  assert.ok(after1.length > 0, `no sidecar-run code cache in ${DIST}`);
  await (await start('second')).proc.stop();
  assert.deepEqual(sidecarCaches(), after1);
});
