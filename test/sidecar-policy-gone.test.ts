// The policy file disappears or turns unreadable under a running sidecar (issue 14, reliability suite:
// faults). The tests run as root, and root reads a file whatever its mode bits, so chmod 000 proves
// nothing here; the file is instead (1) deleted, (2) replaced by a directory, (3) rewritten as
// invalid YAML, and (4) swapped away the way a ConfigMap update swaps it: the `..data` symlink moved
// to a version directory without the file. Each time, on a real `sidecar run`:
//  - the previous policy stays in force (web allowed, billing as before), the sidecar stays ready;
//  - tollgate_config_reload_failures_total counts it and a policy_reload_failed line carries a TG_ code;
//  - putting a file back (with a different policy) is picked up without a restart or a signal.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { initCa, startCa, type RunningTestCa } from './helpers/ca-fixture.ts';
import { metricSample, shopId, startSidecar, type RunningSidecar } from './helpers/mesh-fixture.ts';
import { issuedIdentity, peerRequest, type PeerIdentity } from './helpers/peer.ts';
import { tempDir } from './helpers/procs.ts';
import { startBackend, waitFor, type TestBackend } from './helpers/sidecar-fixture.ts';

const FAILURES = 'tollgate_config_reload_failures_total';
let tmp: ReturnType<typeof tempDir>;
let ca: RunningTestCa;
let backend: TestBackend;
let orders: RunningSidecar;
const peers: Record<string, PeerIdentity> = {};

const policy = (sas: string[]): string => `ports:\n  "${backend.port}":\n    allow: [${sas.map(shopId).join(', ')}]\n`;

async function allowed(sa: string): Promise<boolean> {
  return (await peerRequest({ port: orders.inboundPort, identity: peers[sa]!, line: `from ${sa}\n`, timeoutMs: 5000 })).echoed;
}

/** Replace `path` atomically (write beside it, rename over it) with a file or a symlink. */
function replace(path: string, o: { text: string } | { linkTo: string }): void {
  const next = join(dirname(path), `.${basename(path)}.next`);
  rmSync(next, { force: true });
  if ('text' in o) writeFileSync(next, o.text);
  else symlinkSync(o.linkTo, next);
  renameSync(next, path);
}

before(async () => {
  tmp = tempDir();
  initCa(join(tmp.dir, 'ca'));
  ca = await startCa(join(tmp.dir, 'ca'));
  backend = await startBackend();
  const own = join(tmp.dir, 'orders'); // the policy's directory is watched: keep it to this sidecar
  mkdirSync(own);
  orders = await startSidecar(own, ca, { name: 'orders', spiffeId: shopId('orders'), inbound: { appPort: backend.port }, policy: policy(['web']) });
  for (const sa of ['web', 'billing']) peers[sa] = issuedIdentity(ca.dir, tmp.dir, shopId(sa));
});

after(async () => {
  await orders?.proc.stop();
  await backend?.close();
  await ca?.stop();
  tmp?.cleanup();
});

/** Apply `fault`; the old policy must stay, counted and logged; then `restore` must be picked up. */
async function faultThenRestore(o: { fault: () => void; restore: (text: string) => void; what: string }): Promise<void> {
  const billingBefore = await allowed('billing');
  const failures = metricSample(await orders.metrics(), FAILURES);
  const logLines = orders.proc.stderr().split('\n').length;
  o.fault();
  await waitFor(async () => metricSample(await orders.metrics(), FAILURES) > failures, `${o.what}: the failed reload to be counted`);
  assert.equal(await allowed('web'), true, `${o.what}: web is still allowed by the previous policy`);
  assert.equal(await allowed('billing'), billingBefore, `${o.what}: billing is treated as before`);
  assert.equal((await orders.readiness()).status, 200, `${o.what}: the sidecar stays ready`);
  const line = orders.proc.stderr().split('\n').slice(logLines - 1).find((l) => l.includes('"event":"policy_reload_failed"'));
  assert.ok(line, `${o.what}: a policy_reload_failed line`);
  assert.match((JSON.parse(line) as { code: string }).code, /^TG_/, line);
  // Put a file back that flips billing: seen without a restart.
  o.restore(policy(billingBefore ? ['web'] : ['web', 'billing']));
  await waitFor(async () => (await allowed('billing')) !== billingBefore, `${o.what}: the restored policy to be in force`);
  assert.equal(await allowed('web'), true);
}

test('policy file deleted: the previous policy stays, counted and logged; a new file is picked up', async () => {
  await faultThenRestore({ what: 'deleted', fault: () => unlinkSync(orders.policyFile), restore: (text) => replace(orders.policyFile, { text }) });
});

test('policy file replaced by a directory: the previous policy stays; a file again is picked up', async () => {
  await faultThenRestore({
    what: 'a directory',
    fault: () => {
      unlinkSync(orders.policyFile);
      mkdirSync(orders.policyFile);
    },
    restore: (text) => {
      rmSync(orders.policyFile, { recursive: true });
      replace(orders.policyFile, { text });
    },
  });
});

test('policy file rewritten as invalid YAML: the previous policy stays; valid YAML again is picked up', async () => {
  await faultThenRestore({ what: 'invalid YAML', fault: () => replace(orders.policyFile, { text: 'ports: [unclosed\n  allow: {\n' }), restore: (text) => replace(orders.policyFile, { text }) });
});

test('ConfigMap-style swap to a version without the file: the previous policy stays; the next version is picked up', async () => {
  // Lay the file out as a ConfigMap mount: orders-policy.yaml -> ..data/orders-policy.yaml, ..data -> ..v1.
  const dir = dirname(orders.policyFile);
  const name = basename(orders.policyFile);
  const version = (v: string, text?: string): void => {
    mkdirSync(join(dir, v));
    if (text !== undefined) writeFileSync(join(dir, v, name), text);
    replace(join(dir, '..data'), { linkTo: v });
  };
  const billing = await allowed('billing');
  version('..v1', policy(billing ? ['web', 'billing'] : ['web']));
  replace(orders.policyFile, { linkTo: join('..data', name) });
  await faultThenRestore({ what: 'ConfigMap swap', fault: () => version('..v2'), restore: (text) => version('..v3', text) });
});
