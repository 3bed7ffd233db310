// Issue 13, problem 8: a sidecar given --join-token with --workers 2 forks workers whose command
// lines (/proc/<pid>/cmdline, world-readable) do not hold the token; they get it from the environment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createJoinToken, initCa, startCa } from './helpers/ca-fixture.ts';
import { shopId, startSidecar } from './helpers/mesh-fixture.ts';
import { tempDir } from './helpers/procs.ts';

function childrenOf(pid: number): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((p) => {
    try {
      return Number(readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1]) === pid;
    } catch {
      return false;
    }
  });
}

test('--join-token never reaches the workers\' argv', { skip: process.platform !== 'linux' }, async () => {
  const tmp = tempDir();
  initCa(join(tmp.dir, 'ca'));
  const ca = await startCa(join(tmp.dir, 'ca'));
  try {
    const token = createJoinToken(ca.dir, shopId('web'));
    const web = await startSidecar(tmp.dir, ca, { name: 'web', spiffeId: shopId('web'), outbound: { upstreamPort: 9, spiffeId: shopId('orders') } }, ['--workers', '2', '--join-token', token]);
    try {
      assert.equal(web.proc.ready.spiffe_id, shopId('web'));
      const workers = childrenOf(web.proc.proc.pid!);
      assert.equal(workers.length, 2, 'two workers');
      for (const w of workers) assert.ok(!readFileSync(`/proc/${w}/cmdline`, 'utf8').includes(token), `worker ${w}'s argv holds no token`);
    } finally {
      await web.proc.stop();
    }
  } finally {
    await ca.stop();
    tmp.cleanup();
  }
});
