// `tollgate ca rotate` as an operator runs it: --help, --dry-run, --json events, refusals, and a
// root rotation interrupted (Ctrl-C), refused without --resume, resumed after a crash, against a
// running `ca serve` that follows the store.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectCa } from '../pki/ca-connect.ts';
import { certsToPem, pemToCertDers } from '../pki/pem.ts';
import { parseCertificate } from '../pki/x509.ts';
import { createJoinToken, initCa, newKey, startCa } from './helpers/ca-fixture.ts';
import { httpGet, run, spawnTollgate, tempDir, tollgate } from './helpers/procs.ts';

const tmp = tempDir();
after(() => tmp.cleanup());
const records = (dir: string) => JSON.parse(readFileSync(join(dir, 'records.json'), 'utf8')) as { revision: number; bundleVersion: number; rotation: { phase: string } | null; authorities: Array<{ id: string; kind: string; slot: string }> };
const jsonLines = (s: string) => s.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

test('ca rotate --help shows root, intermediate, --dry-run, --resume, --json', () => {
  const r = tollgate(['ca', 'rotate', '--help']);
  assert.equal(r.code, 0);
  for (const s of ['root | intermediate', '--dry-run', '--resume', '--json', '--force', '--ca-admin', '--root-key', 'Examples:']) assert.ok(r.stdout.includes(s), s);
  assert.equal(tollgate(['ca', 'rotate', 'leaf', '--dir', tmp.dir]).code, 2);
});

test('intermediate: --dry-run changes nothing; --json prints each event; openssl verifies the new chain', () => {
  const dir = join(tmp.dir, 'int');
  initCa(dir);
  const before = readFileSync(join(dir, 'records.json'), 'utf8');
  const dry = tollgate(['ca', 'rotate', 'intermediate', '--dir', dir, '--dry-run', '--json']);
  assert.equal(dry.code, 0, dry.stderr);
  const [plan] = jsonLines(dry.stdout);
  assert.deepEqual((plan!.steps as Array<{ step: string }>).map((s) => s.step), ['prepare', 'activate', 'wait-leaves', 'retire']);
  assert.equal(readFileSync(join(dir, 'records.json'), 'utf8'), before);
  const human = tollgate(['ca', 'rotate', 'intermediate', '--dir', dir, '--dry-run']);
  assert.match(human.stdout, /plan \(new intermediate rotation\):\n  1\. prepare/);

  const oldInt = readFileSync(join(dir, 'intermediate.crt'), 'utf8');
  // Real clock (the CLI process waits for the old leaves): --max-leaf-ttl 1s keeps that wait short.
  const r = tollgate(['ca', 'rotate', 'intermediate', '--dir', dir, '--json', '--max-leaf-ttl', '1s', '--poll', '200ms']);
  assert.equal(r.code, 0, r.stderr);
  const events = jsonLines(r.stdout);
  assert.deepEqual(events.filter((e) => e.event === 'phase').map((e) => e.phase), ['prepared', 'activated', 'done']);
  assert.equal(events.at(-1)!.event, 'done');
  const rec = records(dir);
  assert.deepEqual(rec.authorities.filter((a) => a.kind === 'intermediate').map((a) => a.slot).sort(), ['active', 'retired']);
  assert.equal(rec.bundleVersion, 1, 'the bundle did not change');
  assert.notEqual(readFileSync(join(dir, 'intermediate.crt'), 'utf8'), oldInt, 'the intermediate.crt view follows');
  assert.equal(tollgate(['cert', 'issue', '--ca-dir', dir, '--spiffe-id', 'spiffe://example.org/ns/a/sa/b', '--out', join(dir, 'leaf')]).code, 0);
  const v = run('openssl', ['verify', '-CAfile', join(dir, 'bundle.pem'), '-untrusted', join(dir, 'intermediate.crt'), join(dir, 'leaf.crt')]);
  assert.equal(v.code, 0, v.stderr);
  // A root rotation needs to see the sidecars: without --ca-admin (or --force) it is refused up front.
  const root = tollgate(['ca', 'rotate', 'root', '--dir', dir]);
  assert.equal(root.code, 2);
  assert.match(root.stderr, /TG_USAGE: .*--ca-admin/);
});

test('root: Ctrl-C keeps the phase, a second rotation is refused, --resume finishes after a crash, the CA follows every step', async () => {
  const dir = join(tmp.dir, 'root');
  initCa(dir);
  const ca = await startCa(dir);
  try {
    const admin = `127.0.0.1:${ca.adminPort}`;
    const r1 = readFileSync(join(dir, 'root.crt'), 'utf8');
    // One workload with a live leaf under the old root: it keeps the command waiting in phase
    // activated (old leaves) until the test renews it, so the kill below never races a retirement.
    const { csr, keyPem } = newKey();
    const issued = await ca.client().issue({ csr, token: createJoinToken(dir, 'spiffe://example.org/ns/shop/sa/web'), ttlSeconds: 3600, report: { bundle_version: 1, serial: '' } });
    const identity = { certChainPem: certsToPem(issued.certChain), keyPem };
    const serial = parseCertificate(issued.certChain[0]!).serialHex.toLowerCase();
    // Long settle: the command waits in phase prepared until interrupted.
    const first = spawnTollgate(['ca', 'rotate', 'root', '--dir', dir, '--ca-admin', admin, '--json', '--settle', '1h', '--poll', '200ms']);
    await first.waitFor((e) => e.event === 'progress' && e.waiting_for === 'convergence');
    first.proc.kill('SIGINT');
    assert.equal(await first.exited, 1);
    assert.match(first.stderr(), /TG_INTERRUPTED: interrupted; the rotation keeps its phase .*--resume/);
    assert.equal(records(dir).rotation!.phase, 'prepared');
    // The running CA already serves both roots (the prepared one after the active one).
    const s = JSON.parse((await httpGet(`http://${admin}/status`)).body) as { bundle_version: number; bundle_roots: string[] };
    assert.equal(s.bundle_version, 2);
    assert.equal(s.bundle_roots.length, 2);
    assert.equal(pemToCertDers(readFileSync(join(dir, 'bundle.pem'), 'utf8')).length, 2);

    const again = tollgate(['ca', 'rotate', 'root', '--dir', dir, '--ca-admin', admin]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /TG_ROTATION_IN_PROGRESS: cannot start a root rotation: .* in phase prepared; continue it with `tollgate ca rotate root --resume`/);

    // The workload takes the new bundle (its authenticated report), so the sidecars have converged.
    await ca.client(identity).getBundle({ bundle_version: 2, serial });
    // Resumed, then killed hard in phase activated (waiting for the workload's old leaf): a crash.
    const second = spawnTollgate(['ca', 'rotate', 'root', '--dir', dir, '--ca-admin', admin, '--json', '--resume', '--settle', '0s', '--max-leaf-ttl', '1h', '--poll', '200ms']);
    await second.waitFor((e) => e.event === 'phase' && e.phase === 'activated');
    await second.waitFor((e) => e.event === 'progress' && e.waiting_for === 'leaves' && e.old_leaves === 1);
    second.proc.kill('SIGKILL');
    await second.exited;
    assert.equal(records(dir).rotation!.phase, 'activated');
    assert.notEqual(readFileSync(join(dir, 'root.crt'), 'utf8'), r1, 'root.crt is the new active root');

    // The workload renews under the new root: its old leaf no longer counts.
    // The CA now serves under the new root: trust the bundle as it stands (both roots).
    const renewing = connectCa({ address: `127.0.0.1:${ca.grpcPort}`, roots: pemToCertDers(readFileSync(join(dir, 'bundle.pem'), 'utf8')), serverId: ca.serverId, identity });
    try {
      await renewing.issue({ csr, ttlSeconds: 3600, report: { bundle_version: 3, serial } });
    } finally {
      renewing.close();
    }
    // --resume: the CA reports no live leaf on the old root, so retirement does not wait the hour.
    const third = tollgate(['ca', 'rotate', 'root', '--dir', dir, '--ca-admin', admin, '--json', '--resume', '--settle', '0s', '--max-leaf-ttl', '1h', '--poll', '200ms']);
    assert.equal(third.code, 0, third.stderr);
    assert.deepEqual(jsonLines(third.stdout).filter((e) => e.event === 'phase').map((e) => e.phase), ['done']);
    const rec = records(dir);
    assert.deepEqual(rec.authorities.map((a) => `${a.kind}:${a.slot}`).sort(), ['intermediate:active', 'intermediate:retired', 'root:active', 'root:retired']);
    assert.equal(rec.bundleVersion, 4);
    assert.equal(pemToCertDers(readFileSync(join(dir, 'bundle.pem'), 'utf8')).length, 1, 'the old root left the bundle');
    // The CA follows: same bundle, and it serves from the new root.
    let st = JSON.parse((await httpGet(`http://${admin}/status`)).body) as { bundle_version: number; bundle_roots: string[] };
    for (let i = 0; i < 100 && st.bundle_version !== 4; i++) {
      await new Promise((r) => setTimeout(r, 50));
      st = JSON.parse((await httpGet(`http://${admin}/status`)).body) as typeof st;
    }
    assert.equal(st.bundle_version, 4);
    assert.deepEqual(st.bundle_roots, [rec.authorities.find((a) => a.kind === 'root' && a.slot === 'active')!.id]);
    assert.equal(tollgate(['ca', 'rotate', 'root', '--dir', dir, '--resume']).code, 1, 'nothing left to resume');
    // The CA now proves its identity with a chain to the new root alone, over real gRPC.
    const newRoots = pemToCertDers(readFileSync(join(dir, 'bundle.pem'), 'utf8'));
    const client = connectCa({ address: `127.0.0.1:${ca.grpcPort}`, roots: newRoots, serverId: ca.serverId, deadlineMs: 10_000 });
    try {
      const b = await client.getBundle();
      assert.equal(b.version, 4);
      assert.equal(b.roots.length, 1);
      assert.equal(b.endorsements.length, 1, 'the new root\'s cross-signature travels with the bundle');
    } finally {
      client.close();
    }
  } finally {
    await ca.stop();
  }
});
