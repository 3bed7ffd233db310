// Root and intermediate rotation under continuous traffic, with real processes (issue 10): a CA with
// 8-second leaves, the orders sidecar (join token) in front of an echo backend, the web sidecar
// (Kubernetes service-account token file) calling orders, and traffic through web → orders → echo
// the whole time: requests on fresh connections back to back plus one long-lived connection.
// 1. `ca rotate root` then `ca rotate intermediate`, each to completion: 0 failed requests, 0 refused
//    or failed handshakes in either sidecar, the long-lived connection is closed only at a certificate's
//    notAfter (and reopened); afterwards every live
//    leaf chains to the new root, orders' listener verifies against the new root alone, and the old
//    root has left the bundle of the CA and of both sidecars.
// 2. The same with the command killed (SIGKILL) after its `prepared` event and `--resume`d, and the CA
//    restarted (stop, start on the same ports and store) while the resumed root rotation waits for the
//    old leaves: still 0 failed requests and 0 refused handshakes, and the rotation completes.
// The figures (requests sent / failed / refused, each phase's duration) are printed as diagnostics.
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectCa } from '../pki/ca-connect.ts';
import { certsToPem, pemToCertDers } from '../pki/pem.ts';
import type { CaStatus } from '../ca/status.ts';
import { metricSample, shopId, startWebOrdersMesh, type WebOrdersMesh } from './helpers/mesh-fixture.ts';
import { httpGet, run, spawnTollgate, tollgate, type Running } from './helpers/procs.ts';
import { waitFor } from './helpers/sidecar-fixture.ts';
import { startTraffic, type Traffic } from './helpers/traffic.ts';

// Real clock: rotation and renewal happen inside separate processes, which a test cannot advance.
const LEAF_TTL = '8s';
const RENEWED = 'tollgate_svid_renewals_total{result="ok"}';
let mesh: WebOrdersMesh;
let traffic: Traffic;

before(async () => {
  mesh = await startWebOrdersMesh({
    // Short lifetimes, yet long enough that automatic intermediate rotation (at 1/2 of 1 h) stays out.
    initArgs: ['--root-lifetime', '2h', '--intermediate-lifetime', '1h'],
    // A renewal every 3.2–4.8 s; a sidecar silent for 6 s (3/4 of --max-ttl) is stale; the store re-read every 500 ms.
    caArgs: ['--default-ttl', LEAF_TTL, '--max-ttl', LEAF_TTL, '--store-poll', '500ms'],
    ttl: LEAF_TTL,
    webK8sToken: true,
  });
  // Bounded: stops by itself after 150 s or 60,000 requests, whichever comes first.
  traffic = await startTraffic({ port: mesh.web.outboundPort, maxMs: 150_000, maxRequests: 60_000 });
});

after(async () => {
  await traffic?.stop();
  traffic?.long.destroy();
  await mesh?.stop();
});

const status = async (): Promise<CaStatus> => JSON.parse((await httpGet(`http://127.0.0.1:${mesh.ca.adminPort}/status`)).body) as CaStatus;
const records = () => JSON.parse(readFileSync(join(mesh.ca.dir, 'records.json'), 'utf8')) as { rotation: { kind: string; phase: string } | null };

/** Refused or failed mTLS connections of both sidecars, both directions, by result and reason. */
async function handshakeFailures(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const s of [mesh.orders, mesh.web]) {
    for (const line of (await s.metrics()).split('\n')) {
      const m = /^(tollgate_(?:inbound|outbound)_connections_total\{.*result="(?:refused|error)".*\}) (\d+)$/.exec(line);
      if (m) out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[2]));
    }
  }
  return out;
}

const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

/**
 * `ca rotate KIND` with short polls. `--settle 3s`: after a restart the CA trusts its counts 3 s after
 * it started, before the sidecars' next renewals (every 3.2–4.8 s) could all have told it about their
 * leaves: their bundle watches, back over mTLS within a second or two, must have (sidecar/svid-manager.ts).
 */
function rotate(kind: 'root' | 'intermediate', extra: string[] = []): Running {
  return spawnTollgate(['ca', 'rotate', kind, '--dir', mesh.ca.dir, '--ca-admin', `127.0.0.1:${mesh.ca.adminPort}`, '--json', '--poll', '200ms', '--settle', '3s', '--timeout', '60s', ...extra]);
}

async function finished(r: Running): Promise<Array<Record<string, unknown>>> {
  const code = await r.exited;
  assert.equal(code, 0, `ca rotate exited ${code}\nstdout:\n${r.stdout()}\nstderr:\n${r.stderr()}`);
  return r.events;
}

interface Figures {
  readonly kind: string;
  readonly sent: number;
  readonly failed: number;
  readonly refused: number;
  readonly refusedBy: Map<string, number>;
  /** Milliseconds: start → prepared, prepared → activated, activated → done, and in all. */
  readonly phases: { prepare: number; activate: number; retire: number; total: number };
  readonly old: string[];
  readonly new: string[];
}

/** Run `drive` (which runs one rotation to completion and returns its events) and measure traffic around it. */
async function measured(t: TestContext, kind: 'root' | 'intermediate', drive: () => Promise<Array<Record<string, unknown>>>): Promise<Figures> {
  const c0 = traffic.counts();
  const h0 = await handshakeFailures();
  const t0 = Date.now();
  const events = await drive();
  const t1 = Date.now();
  // What the last step set off (a root leaving the bundles) shows within one renewal of each sidecar:
  // the window ends only after both have renewed since.
  const renewed = async () => Promise.all([mesh.orders, mesh.web].map(async (s) => metricSample(await s.metrics(), RENEWED)));
  const r0 = await renewed();
  await waitFor(async () => (await renewed()).every((n, i) => n > r0[i]!), 'both sidecars to renew after the rotation', 15_000);
  const c1 = traffic.counts();
  const h1 = await handshakeFailures();
  const refusedBy = new Map([...h1].map(([k, v]) => [k, v - (h0.get(k) ?? 0)] as const).filter(([, v]) => v > 0));
  const at = (phase: string): number => Date.parse(events.findLast((e) => e.event === 'phase' && e.phase === phase)!.time as string);
  const first = events.find((e) => e.event === 'phase' && e.phase === 'prepared') ?? events.find((e) => e.event === 'phase')!;
  const f: Figures = {
    kind,
    sent: c1.sent - c0.sent,
    failed: c1.failed - c0.failed,
    refused: sum(refusedBy),
    refusedBy,
    phases: { prepare: at('prepared') - t0, activate: at('activated') - at('prepared'), retire: at('done') - at('activated'), total: t1 - t0 },
    old: first.old as string[],
    new: first.new as string[],
  };
  const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  t.diagnostic(`${kind} rotation: ${f.sent} requests sent, ${f.failed} failed, ${f.refused} refused handshakes; ` +
    `prepare ${s(f.phases.prepare)}, wait for sidecars + activate ${s(f.phases.activate)}, wait for old leaves + retire ${s(f.phases.retire)}, total ${s(f.phases.total)}`);
  return f;
}

const CERT_CLOSES = ['tollgate_outbound_connections_total{result="closed",reason="cert_expired"}', 'tollgate_inbound_connections_total{result="closed",reason="cert_expired"}'];

/** The long-lived connection was closed only at a certificate's notAfter (issue 14), never otherwise. */
async function assertLongLivedClosedOnlyAtNotAfter(): Promise<void> {
  let certCloses = 0;
  for (const sc of [mesh.orders, mesh.web]) {
    const text = await sc.metrics();
    for (const name of CERT_CLOSES) certCloses += metricSample(text, name);
  }
  assert.ok(traffic.reopened <= certCloses, `the long-lived connection was closed ${traffic.reopened} times, only ${certCloses} at a certificate's notAfter`);
}

function assertClean(f: Figures): void {
  assert.ok(f.sent > 0, `no traffic during the ${f.kind} rotation`);
  assert.equal(f.failed, 0, `${f.failed} of ${f.sent} requests failed during the ${f.kind} rotation, at ${traffic.failedAt.map((x) => new Date(x).toISOString()).join(', ')}`);
  assert.equal(f.refused, 0, `refused or failed handshakes during the ${f.kind} rotation: ${JSON.stringify([...f.refusedBy])}`);
}

/** Every live leaf the CA knows chains to `root`; both sidecars hold the CA's bundle, whose only root is `root`. */
async function assertConverged(root: string, oldRoot: string): Promise<void> {
  const s = await status();
  const parentOf = new Map(s.authorities.map((a) => [a.id, a.parent]));
  const live = Object.entries(s.convergence!.live_leaves_by_authority).filter(([, n]) => n > 0);
  assert.ok(live.reduce((n, [, k]) => n + k, 0) >= 2, `both sidecars' leaves are counted: ${JSON.stringify(live)}`);
  for (const [id] of live) assert.equal(parentOf.get(id), root, `live leaves of ${id} chain to ${parentOf.get(id)}, not the new root ${root}`);
  assert.deepEqual(s.bundle_roots, [root]);
  assert.equal(s.authorities.find((a) => a.id === oldRoot)?.slot, 'retired');
  for (const sc of [mesh.orders, mesh.web]) {
    await waitFor(async () => metricSample(await sc.metrics(), 'tollgate_sidecar_bundle_version') === s.bundle_version, `a sidecar to hold bundle version ${s.bundle_version}`, 10_000);
  }
}

test('root, then intermediate rotation under traffic: 0 failed requests, 0 refused handshakes; everything ends on the new root alone', async (t) => {
  await waitFor(() => traffic.counts().sent >= 20, 'traffic to flow', 10_000);
  const oldRootPem = readFileSync(join(mesh.ca.dir, 'root.crt'), 'utf8');
  const root = await measured(t, 'root', () => finished(rotate('root')));
  assertClean(root);
  const int = await measured(t, 'intermediate', () => finished(rotate('intermediate')));
  assertClean(int);
  await assertLongLivedClosedOnlyAtNotAfter();
  const [newRoot, oldRoot] = [root.new[0]!, root.old[0]!];
  assert.equal(int.old[0], root.new[1], 'the intermediate rotation replaced the new root\'s first intermediate');
  await assertConverged(newRoot, oldRoot);

  // The CA's bundle, fetched over gRPC trusting the new root alone: one root, the new one.
  const newRootDer = pemToCertDers(readFileSync(join(mesh.ca.dir, 'root.crt'), 'utf8'))[0]!;
  const oldRootDer = pemToCertDers(oldRootPem)[0]!;
  const client = connectCa({ address: `127.0.0.1:${mesh.ca.grpcPort}`, roots: [newRootDer], serverId: mesh.ca.serverId, deadlineMs: 10_000 });
  try {
    const b = await client.getBundle();
    assert.deepEqual(b.roots, [newRootDer]);
  } finally {
    client.close();
  }
  const bundlePem = pemToCertDers(readFileSync(join(mesh.ca.dir, 'bundle.pem'), 'utf8'));
  assert.deepEqual(bundlePem, [newRootDer], 'bundle.pem holds the new root alone');

  // orders' inbound listener, seen by openssl: its chain verifies against the new root, not the old one.
  const dir = mesh.dir;
  writeFileSync(join(dir, 'new-root.pem'), certsToPem([newRootDer]));
  writeFileSync(join(dir, 'old-root.pem'), certsToPem([oldRootDer]));
  const web = join(dir, 'openssl-web');
  assert.equal(tollgate(['cert', 'issue', '--ca-dir', mesh.ca.dir, '--spiffe-id', shopId('web'), '--out', web]).code, 0);
  const s = run('openssl', ['s_client', '-connect', `127.0.0.1:${mesh.orders.inboundPort}`, '-CAfile', join(dir, 'new-root.pem'), '-verify_return_error', '-showcerts',
    '-cert', `${web}.crt`, '-cert_chain', `${web}.crt`, '-key', `${web}.key`], { input: '' });
  assert.match(s.stdout, /Verify return code: 0 \(ok\)/, s.stdout + s.stderr);
  const served = [...s.stdout.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g)].map((m) => m[0]);
  assert.equal(served.length, 2, 'leaf and intermediate');
  writeFileSync(join(dir, 'served-leaf.pem'), served[0]!);
  writeFileSync(join(dir, 'served-int.pem'), served[1]!);
  const verify = (rootFile: string) => run('openssl', ['verify', '-CAfile', join(dir, rootFile), '-untrusted', join(dir, 'served-int.pem'), join(dir, 'served-leaf.pem')]);
  assert.equal(verify('new-root.pem').code, 0);
  assert.notEqual(verify('old-root.pem').code, 0, 'orders\' certificate does not chain to the old root');
});

/** Start `ca rotate KIND` and SIGKILL it right after its `prepared` event (a crash mid-rotation). */
async function killedAfterPrepared(kind: 'root' | 'intermediate'): Promise<Running> {
  const r = rotate(kind);
  await r.waitFor((e) => e.event === 'phase' && e.phase === 'prepared');
  r.proc.kill('SIGKILL');
  await r.exited;
  return r;
}

test('killed after prepared and resumed, with a CA restart in the middle: still 0 failed requests, rotations complete', async (t) => {
  // Root: the command dies (SIGKILL) in phase prepared; --resume finishes it; the CA restarts while
  // the resumed command waits for the old leaves.
  const root = await measured(t, 'root', async () => {
    const first = await killedAfterPrepared('root');
    assert.equal(records().rotation?.phase, 'prepared');
    const resumed = rotate('root', ['--resume']);
    await resumed.waitFor((e) => e.event === 'phase' && e.phase === 'activated');
    const restartedAt = Date.now();
    await mesh.restartCa();
    t.diagnostic(`CA restarted in phase activated: stop to ready in ${Date.now() - restartedAt} ms`);
    return [...first.events, ...(await finished(resumed))];
  });
  assertClean(root);
  // Intermediate: killed after prepared (it may already have activated: nothing waits in between).
  const int = await measured(t, 'intermediate', async () => {
    const first = await killedAfterPrepared('intermediate');
    assert.notEqual(records().rotation?.phase, 'done');
    return [...first.events, ...(await finished(rotate('intermediate', ['--resume'])))];
  });
  assertClean(int);
  await assertLongLivedClosedOnlyAtNotAfter();
  await assertConverged(root.new[0]!, root.old[0]!);
  const totals = await traffic.stop();
  await traffic.long.ping(-1);
  t.diagnostic(`whole file: ${totals.sent} requests sent, ${totals.failed} failed`);
  assert.equal(totals.failed, 0);
});
