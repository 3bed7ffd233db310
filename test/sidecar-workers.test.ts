// Real processes: `tollgate sidecar run --workers 2` on both sides (orders: inbound in front of a
// counting echo backend; web: outbound to orders). Connections go through both sidecars' workers, the
// primary's /metrics sums the workers' counters, a refused peer still leaves the app at zero
// connections and bytes, the primary pushes each renewal to every worker, forwards SIGHUP to every
// worker and restarts a worker that dies, and SIGTERM drains every worker and exits 0.
// The SVIDs live 10 s so the primary renews during the file: renewal runs on the real clock of a
// separate process, which a test cannot advance.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import type { RunningTestCa } from './helpers/ca-fixture.ts';
import { metricSample, shopId, startWebOrdersMesh, type RunningSidecar, type WebOrdersMesh } from './helpers/mesh-fixture.ts';
import { tollgate } from './helpers/procs.ts';
import { sClient, waitFor, type TestBackend } from './helpers/sidecar-fixture.ts';

const ID = shopId;
const ALLOWED = 'tollgate_inbound_connections_total{result="allowed",reason="allowed"}';
let mesh: WebOrdersMesh;
let ca: RunningTestCa;
let backend: TestBackend;
let orders: RunningSidecar;
let web: RunningSidecar;

before(async () => {
  mesh = await startWebOrdersMesh({ sidecarArgs: ['--workers', '2'], caArgs: ['--default-ttl', '10s'], ttl: '10s' });
  ({ ca, backend, orders, web } = mesh);
});

after(() => mesh?.stop());

test('the ready line reports 2 workers and one shared port (configured as port 0); /readyz is 200', async () => {
  for (const s of [orders, web]) {
    assert.equal(s.proc.ready.workers, 2);
    assert.equal((await s.readiness()).status, 200);
  }
  assert.ok(orders.inboundPort > 0 && web.outboundPort > 0);
  assert.equal(orders.proc.ready.spiffe_id, ID('orders'));
});

test('50 sequential connections through both sidecars; /metrics on the primary sums the workers', async () => {
  const before = backend.connections;
  const counted = metricSample(await orders.metrics(), ALLOWED);
  for (let i = 0; i < 50; i++) {
    const s = connect(web.outboundPort, '127.0.0.1');
    let got = '';
    s.setEncoding('utf8').on('data', (d: string) => (got += d));
    s.write(`order ${i}\n`);
    await waitFor(() => got.includes(`order ${i}\n`), `echo ${i} through both sidecars`);
    await new Promise<void>((resolve) => {
      s.once('close', () => resolve());
      s.end();
    });
  }
  assert.equal(backend.connections, before + 50);
  await waitFor(async () => metricSample(await orders.metrics(), ALLOWED) === counted + 50, `${ALLOWED} summed to ${counted + 50}`);
  const text = await orders.metrics();
  assert.equal(text.split('\n').filter((l) => l.startsWith('# TYPE tollgate_inbound_connections_total ')).length, 1, 'one family, not one per worker');
  assert.ok(metricSample(text, 'tollgate_svid_expiry_timestamp_seconds') > Date.now() / 1000, 'the primary\'s SVID expiry, not a worker\'s 0');
  assert.equal(text.split('\n').filter((l) => l === '# TYPE tollgate_event_loop_lag_seconds histogram').length, 1, 'event-loop lag: one histogram for all processes');
  assert.ok(metricSample(text, 'tollgate_event_loop_lag_seconds_count') > 0);
  const outbound = metricSample(await web.metrics(), 'tollgate_outbound_connections_total{result="allowed",reason="allowed"}');
  assert.equal(outbound, 50);
});

test('refused: no client certificate; the app gets 0 connections and 0 bytes', async () => {
  const conns = backend.connections;
  const bytes = backend.bytes;
  const sample = 'tollgate_inbound_connections_total{result="refused",reason="no_client_cert"}';
  const counted = metricSample(await orders.metrics(), sample);
  const run = await sClient(orders.inboundPort, ['-CAfile', join(ca.dir, 'bundle.pem')], { input: 'GET / HTTP/1.0\r\n\r\n', timeoutMs: 10_000 });
  assert.equal(run.stdout.includes('GET /'), false, 'nothing echoed back');
  await waitFor(async () => metricSample(await orders.metrics(), sample) === counted + 1, `${sample} to grow`);
  assert.equal(backend.connections, conns, 'the app saw no connection');
  assert.equal(backend.bytes, bytes, 'the app got no byte');
});

/** The JSON log lines of a sidecar's processes (the workers share the primary's stderr). */
function logLines(s: RunningSidecar): Array<Record<string, unknown>> {
  return s.proc.stderr().split('\n').flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

/** Worker ids (log field `worker`) with at least `n` lines of `event`. */
function workersWith(s: RunningSidecar, event: string, n = 1, match: (l: Record<string, unknown>) => boolean = () => true): Set<unknown> {
  const count = new Map<unknown, number>();
  for (const l of logLines(s)) if (l.event === event && l.worker !== undefined && match(l)) count.set(l.worker, (count.get(l.worker) ?? 0) + 1);
  return new Set([...count].filter(([, c]) => c >= n).map(([w]) => w));
}

/** Connect to orders' inbound port as `sa` (a certificate from `cert issue`); the serial orders presented, or null if refused. */
function presentAs(sa: string): Promise<string | null> {
  const out = join(mesh.dir, 'ids', sa); // not mesh.dir itself: that is the watched policy directory
  mkdirSync(join(mesh.dir, 'ids'), { recursive: true });
  const r = tollgate(['cert', 'issue', '--ca-dir', ca.dir, '--spiffe-id', ID(sa), '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port: orders.inboundPort, cert: readFileSync(`${out}.crt`), key: readFileSync(`${out}.key`), ca: readFileSync(join(ca.dir, 'bundle.pem')), checkServerIdentity: () => undefined });
    let got = '';
    s.on('error', () => undefined);
    s.setEncoding('utf8').on('data', (d: string) => {
      got += d;
      if (got.includes('ping\n')) {
        resolve(s.getPeerCertificate().serialNumber.toLowerCase());
        s.destroy();
      }
    });
    s.on('close', () => resolve(null));
    s.write('ping\n');
  });
}

test('every renewal the primary makes is pushed to both workers, which present the new certificate', async () => {
  const issued = (): string[] => logLines(orders).filter((l) => l.msg === 'SVID renewed' || l.msg === 'SVID issued').map((l) => String(l.serial));
  const first = issued().at(-1)!;
  await waitFor(() => issued().at(-1) !== first, 'the primary to renew its SVID', 20_000);
  const renewed = issued().at(-1)!;
  const updated = (l: Record<string, unknown>): boolean => l.serial === renewed;
  await waitFor(() => workersWith(orders, 'inbound_context_updated', 1, updated).size === 2, `both workers to install serial ${renewed}`, 10_000);
  const presented = await presentAs('web');
  const later = issued().slice(issued().indexOf(first) + 1);
  assert.ok(presented !== null && later.includes(presented), `orders presented ${presented}; renewed serials: ${later.join(', ')}`);
});

test('SIGHUP on the primary reaches every worker (a policy edit the directory watcher cannot see)', async () => {
  // The policy path becomes a symlink to a file in another directory (a change the watchers see);
  // then that file is edited in place, which no watcher sees: only the forwarded SIGHUP brings it in.
  const policy = (ids: string[]): string => `ports:\n  "${backend.port}":\n    allow: [${ids.map(ID).join(', ')}]\n`;
  const elsewhere = join(mesh.dir, 'elsewhere');
  mkdirSync(elsewhere, { recursive: true });
  const target = join(elsewhere, 'policy.yaml');
  writeFileSync(target, policy(['web', 'billing']));
  symlinkSync(target, `${orders.policyFile}.lnk`);
  renameSync(`${orders.policyFile}.lnk`, orders.policyFile);
  await waitFor(() => workersWith(orders, 'policy_reloaded', 1).size === 2, 'both workers to load the symlinked policy');
  assert.ok((await presentAs('billing')) !== null, 'billing is allowed by the symlinked policy');
  writeFileSync(target, policy(['web']));
  orders.proc.proc.kill('SIGHUP');
  await waitFor(() => workersWith(orders, 'policy_reloaded', 2).size === 2, 'both workers to re-read the policy after SIGHUP');
  for (let i = 0; i < 4; i++) assert.equal(await presentAs('billing'), null, 'billing is refused by whichever worker accepts');
});

test('a worker that dies is restarted and serves', async () => {
  const listening = (): Array<Record<string, unknown>> => logLines(orders).filter((l) => l.event === 'worker_listening');
  const before = listening();
  const victim = before.at(-1)!;
  process.kill(Number(victim.pid), 'SIGKILL');
  await waitFor(() => logLines(orders).some((l) => l.event === 'worker_restart' && l.worker === victim.worker), 'the primary to log the restart');
  await waitFor(() => listening().length > before.length, 'a new worker to listen', 15_000);
  const fresh = listening().at(-1)!;
  assert.notEqual(fresh.pid, victim.pid);
  assert.equal((await orders.readiness()).status, 200);
  const conns = backend.connections;
  for (let i = 0; i < 10; i++) assert.ok((await presentAs('web')) !== null, `connection ${i} after the restart`);
  assert.equal(backend.connections, conns + 10);
});

test('SIGTERM: every worker drains and the primary exits 0', async () => {
  assert.equal(await web.proc.stop('SIGTERM'), 0);
  assert.equal(await orders.proc.stop('SIGTERM'), 0);
});
