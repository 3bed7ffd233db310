// Policy hot reload, a broken policy, SIGHUP and SIGTERM drain on a real `tollgate sidecar run` process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { initCa, startCa, type RunningTestCa } from './helpers/ca-fixture.ts';
import { metricSample, startSidecar, type RunningSidecar } from './helpers/mesh-fixture.ts';
import { tempDir, tollgate } from './helpers/procs.ts';
import { startBackend, waitFor, type TestBackend } from './helpers/sidecar-fixture.ts';

const ID = (sa: string): string => `spiffe://example.org/ns/shop/sa/${sa}`;
let tmp: ReturnType<typeof tempDir>;
let ca: RunningTestCa;
let backend: TestBackend;
let orders: RunningSidecar;

function identity(sa: string): { cert: Buffer; key: Buffer } {
  // Not in tmp.dir: that is the policy's directory, which the sidecar watches (see the SIGHUP test).
  const out = join(tmp.dir, 'ids', sa);
  const r = tollgate(['cert', 'issue', '--ca-dir', ca.dir, '--spiffe-id', ID(sa), '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  return { cert: readFileSync(`${out}.crt`), key: readFileSync(`${out}.key`) };
}

/** A TLS client presenting `sa`'s certificate; resolves with the socket once the echo of `hello` came back, or null. */
function client(sa: string): Promise<TLSSocket | null> {
  const id = identity(sa);
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port: orders.inboundPort, ...id, ca: readFileSync(join(ca.dir, 'bundle.pem')), checkServerIdentity: () => undefined });
    let got = '';
    const t = setTimeout(() => s.destroy(), 5000);
    s.setEncoding('utf8').on('data', (d: string) => {
      got += d;
      if (got.includes('hello')) {
        clearTimeout(t);
        resolve(s);
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(t);
      resolve(null);
    });
    s.write('hello\n');
  });
}

async function allowed(sa: string): Promise<boolean> {
  const s = await client(sa);
  s?.destroy();
  return s !== null;
}

const policy = (ids: string[]): string => `ports:\n  "${backend.port}":\n    allow: [${ids.join(', ')}]\n`;

/** Replace the policy file atomically, as an editor or a ConfigMap update would. */
function writePolicy(text: string): void {
  writeFileSync(`${orders.policyFile}.new`, text);
  renameSync(`${orders.policyFile}.new`, orders.policyFile);
}

before(async () => {
  tmp = tempDir();
  mkdirSync(join(tmp.dir, 'ids'));
  initCa(join(tmp.dir, 'ca'));
  ca = await startCa(join(tmp.dir, 'ca'));
  backend = await startBackend();
  orders = await startSidecar(tmp.dir, ca, { name: 'orders', spiffeId: ID('orders'), inbound: { appPort: backend.port }, policy: `ports:\n  "${backend.port}":\n    allow: [${ID('web')}]\n` });
});

after(async () => {
  await orders?.proc.stop('SIGKILL');
  await backend?.close();
  await ca?.stop();
  tmp?.cleanup();
});

test('policy hot reload: a newly listed peer is allowed without a restart', async () => {
  assert.equal(await allowed('web'), true);
  assert.equal(await allowed('billing'), false);
  writePolicy(policy([ID('web'), ID('billing')]));
  await waitFor(() => allowed('billing'), 'billing to be allowed after the policy change', 10_000);
  assert.equal(await allowed('web'), true);
});

test('a broken policy is refused with its line, counted, and the previous policy stays', async () => {
  writePolicy(`ports:\n  "${backend.port}":\n    allow: [spiffe://Example.org/ns/shop/sa/web]\n`);
  await waitFor(() => orders.proc.stderr().includes('policy_reload_failed'), 'the reload failure in the log', 10_000);
  assert.match(orders.proc.stderr(), /line 3/);
  assert.equal(metricSample(await orders.metrics(), 'tollgate_config_reload_failures_total'), 1);
  assert.equal(await allowed('billing'), true, 'the previous policy (web + billing) is still in force');
});

// The sidecar watches the policy file's directory, so an edit there is seen without a signal. To see
// what SIGHUP itself does, the policy path becomes a symlink to a file in another directory: an edit
// of that file makes no event in the watched directory, and only SIGHUP can bring it in.
test('SIGHUP re-reads the policy (an edit the directory watcher cannot see)', async () => {
  const elsewhere = join(tmp.dir, 'elsewhere');
  mkdirSync(elsewhere, { recursive: true });
  const target = join(elsewhere, 'policy.yaml');
  writeFileSync(target, policy([ID('web')]));
  symlinkSync(target, `${orders.policyFile}.lnk`);
  renameSync(`${orders.policyFile}.lnk`, orders.policyFile); // seen by the watcher: billing is dropped
  await waitFor(async () => !(await allowed('billing')), 'billing to be denied once the symlink is in place', 10_000);
  writeFileSync(target, policy([ID('web'), ID('billing')])); // in place, outside the watched directory
  orders.proc.proc.kill('SIGHUP');
  await waitFor(() => allowed('billing'), 'billing to be allowed after SIGHUP', 10_000);
  assert.match(orders.proc.stderr(), /SIGHUP/);
});

test('SIGTERM drains: an open connection keeps working, new connections are refused, then the process exits 0', async () => {
  const open = await client('web');
  assert.ok(open);
  const exited = new Promise<number | null>((resolve) => orders.proc.proc.once('exit', (code) => resolve(code)));
  orders.proc.proc.kill('SIGTERM');
  await waitFor(() => orders.proc.stderr().includes('"event":"drain"'), 'the drain to start');
  // New connections: the listener is closed.
  await waitFor(() => new Promise<boolean>((resolve) => {
    const s = netConnect(orders.inboundPort, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(true));
  }), 'the inbound listener to refuse new connections');
  // The open one still works.
  let got = '';
  open.on('data', (d: string) => (got += d));
  open.write('still here\n');
  await waitFor(() => got.includes('still here'), 'echo on the draining connection');
  open.end();
  assert.equal(await exited, 0);
});
