// SIGTERM on a real `tollgate sidecar run` with limits.drainTimeout 4s while a client holds a connection
// open and never ends it: /readyz answers 503 "draining" during the drain, the held connection still
// works, and at the drain timeout the sidecar closes it itself and exits 0.
// The drain timer is the process's real clock (a separate process has no ManualClock), so the test
// waits ~4 s; its only time bound is a generous one, below the 20 s default the break would fall back to.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { initCa, startCa, type RunningTestCa } from './helpers/ca-fixture.ts';
import { shopId, startSidecar, type RunningSidecar } from './helpers/mesh-fixture.ts';
import { tempDir, tollgate } from './helpers/procs.ts';
import { startBackend, waitFor, type TestBackend } from './helpers/sidecar-fixture.ts';

let tmp: ReturnType<typeof tempDir> | undefined;
let ca: RunningTestCa | undefined;
let backend: TestBackend | undefined;
let orders: RunningSidecar | undefined;

after(async () => {
  await orders?.proc.stop('SIGKILL');
  await backend?.close();
  await ca?.stop();
  tmp?.cleanup();
});

/** A TLS connection to `port` presenting web's certificate, once its first echo came back. */
async function heldConnection(port: number, caDir: string, dir: string): Promise<TLSSocket> {
  const out = join(dir, 'web');
  const r = tollgate(['cert', 'issue', '--ca-dir', caDir, '--spiffe-id', shopId('web'), '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const s = tlsConnect({ host: '127.0.0.1', port, cert: readFileSync(`${out}.crt`), key: readFileSync(`${out}.key`), ca: readFileSync(join(caDir, 'bundle.pem')), checkServerIdentity: () => undefined });
  s.on('error', () => undefined);
  let got = '';
  s.setEncoding('utf8').on('data', (d: string) => (got += d));
  s.write('hello\n');
  await waitFor(() => got.includes('hello\n'), 'the first echo');
  return s;
}

async function readyz(port: number): Promise<{ status: number; body: string } | null> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/readyz`);
    return { status: r.status, body: await r.text() };
  } catch {
    return null; // the admin server has closed (end of the drain)
  }
}

test('SIGTERM with a connection held open: /readyz 503 while draining, the sidecar closes it at drainTimeout and exits 0', async () => {
  tmp = tempDir();
  mkdirSync(join(tmp.dir, 'ids'));
  initCa(join(tmp.dir, 'ca'));
  ca = await startCa(join(tmp.dir, 'ca'));
  backend = await startBackend();
  orders = await startSidecar(tmp.dir, ca, {
    name: 'orders',
    spiffeId: shopId('orders'),
    inbound: { appPort: backend.port },
    policy: `ports:\n  "${backend.port}":\n    allow: [${shopId('web')}]\n`,
    extraYaml: 'limits: { drainTimeout: 4s }',
  });
  assert.equal((await orders.readiness()).status, 200);
  const held = await heldConnection(orders.inboundPort, ca.dir, join(tmp.dir, 'ids'));
  let heldClosed = false;
  held.on('close', () => (heldClosed = true));
  const exited = new Promise<number | null>((resolve) => orders!.proc.proc.once('exit', (code) => resolve(code)));
  let exitCode: number | null | undefined;
  void exited.then((c) => (exitCode = c));

  orders.proc.proc.kill('SIGTERM');
  let seen: Awaited<ReturnType<typeof readyz>> = null;
  await waitFor(async () => {
    seen = await readyz(orders!.adminPort);
    return seen?.status === 503 || exitCode !== undefined;
  }, '/readyz to answer 503 while draining');
  const during = seen as Awaited<ReturnType<typeof readyz>>;
  assert.equal(during?.status, 503, `/readyz during the drain answered ${JSON.stringify(during)}`);
  assert.match(during.body, /draining/);

  // The held connection still carries data during the drain.
  let got = '';
  held.on('data', (d: string) => (got += d));
  held.write('during drain\n');
  await waitFor(() => got.includes('during drain\n'), 'an echo on the held connection during the drain');
  assert.equal(heldClosed, false);

  // We never end it: the sidecar must, at limits.drainTimeout (4 s), then exit 0.
  await waitFor(() => heldClosed && exitCode !== undefined, 'the sidecar to close the held connection and exit', 15_000);
  assert.equal(exitCode, 0);
  assert.match(orders.proc.stderr(), /"event":"inbound_drain_timeout"/);
});
