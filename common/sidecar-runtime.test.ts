import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SIDECAR_GLIBC_TUNABLES, SIDECAR_NODE_OPTIONS, sidecarEnvVars, sidecarProcessEnv, tuneSidecarRuntime } from './sidecar-runtime.ts';

test('sidecarProcessEnv: our settings first, the operator\'s own NODE_OPTIONS and GLIBC_TUNABLES after them (the later setting wins), the rest untouched', () => {
  assert.deepEqual(sidecarProcessEnv({ PATH: '/bin' }), { PATH: '/bin', NODE_OPTIONS: SIDECAR_NODE_OPTIONS, GLIBC_TUNABLES: SIDECAR_GLIBC_TUNABLES });
  const env = sidecarProcessEnv({ NODE_OPTIONS: '--max-semi-space-size=4', GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' });
  assert.equal(env.NODE_OPTIONS, `${SIDECAR_NODE_OPTIONS} --max-semi-space-size=4`);
  assert.equal(env.GLIBC_TUNABLES, `${SIDECAR_GLIBC_TUNABLES}:glibc.malloc.arena_max=2`);
});

test('sidecarEnvVars: the same two settings as a container spec lists them', () => {
  assert.deepEqual(sidecarEnvVars(), [
    { name: 'NODE_OPTIONS', value: '--max-semi-space-size=1' },
    { name: 'GLIBC_TUNABLES', value: 'glibc.malloc.arena_max=1:glibc.malloc.trim_threshold=131072:glibc.malloc.mmap_threshold=131072' },
  ]);
});

test('tuneSidecarRuntime: sets --optimize-for-size, and names the start-time settings the process lacks', () => {
  const set: string[] = [];
  const setFlags = (f: string): void => void set.push(f);
  assert.deepEqual(tuneSidecarRuntime({ execArgv: [], env: {}, setFlags }), [`NODE_OPTIONS=${SIDECAR_NODE_OPTIONS}`, `GLIBC_TUNABLES=${SIDECAR_GLIBC_TUNABLES}`]);
  assert.deepEqual(set, ['--optimize-for-size']);
  assert.deepEqual(tuneSidecarRuntime({ execArgv: [], env: sidecarProcessEnv({}), setFlags }), []);
  // The operator's own equivalents count: a flag on the command line, or glibc's older variable.
  assert.deepEqual(tuneSidecarRuntime({ execArgv: ['--max-semi-space-size', '2'], env: { MALLOC_ARENA_MAX: '2' }, setFlags }), []);
  assert.deepEqual(tuneSidecarRuntime({ execArgv: ['--max-old-space-size=64'], env: { GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=1' }, setFlags }).length, 2);
});
