import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { ManualClock } from '../common/clock.ts';
import { createLogger } from '../common/log.ts';
import { TollgateError } from '../common/errors.ts';
import { createCsr } from '../pki/csr.ts';
import { verifySvidChain } from '../pki/svid-validate.ts';
import { p256 } from '../pki/test-chain.ts';
import { JoinTokenAttestor } from './attestation/join-token.ts';
import { activateStep, prepareRootStep, retireStep } from './rotation-steps.ts';
import { startCaRuntime, type CaRuntime } from './runtime.ts';
import type { Bundle } from './service.ts';
import { DirectoryStore, StoreFiles } from './store.ts';

const tmp = mkdtempSync(join(tmpdir(), 'tg-runtime-'));
const runtimes: CaRuntime[] = [];
after(() => {
  for (const r of runtimes) r.stop();
  rmSync(tmp, { recursive: true, force: true });
});
const WEB = 'spiffe://example.org/ns/shop/sa/web';

async function setup(name: string, o: { watch?: boolean } = {}) {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const dir = join(tmp, name);
  await new DirectoryStore({ dir }).init({ trustDomain: 'example.org', clock });
  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger({ clock, out: { write: (l: string) => logs.push(JSON.parse(l) as Record<string, unknown>) } });
  const rt = await startCaRuntime({ dir, clock, logger, audit: { write: () => true }, registry: new Registry(), watch: o.watch ?? false, pollMs: 5000 });
  runtimes.push(rt);
  const pushed: Bundle[] = [];
  rt.service.watchBundle((b) => pushed.push(b));
  const tokens = new JoinTokenAttestor({ dir: join(dir, StoreFiles.tokens), clock, trustDomain: 'example.org' });
  const csr = createCsr(p256().key);
  const first = async () => rt.service.issueSvid({ csr, token: (await tokens.create({ spiffeId: WEB, ttlMs: 60_000 })).token, peerAddress: '127.0.0.1' });
  const renew = (chain: readonly Buffer[]) => rt.service.issueSvid({ csr, peerChain: chain, peerAddress: '127.0.0.1' });
  // Another process (the CLI) on the same directory.
  const cli = { store: new DirectoryStore({ dir }), clock };
  const tick = async () => {
    clock.advance(5000);
    await rt.settled();
  };
  return { clock, dir, rt, pushed, first, renew, cli, tick, logs };
}

const rootOf = (chain: readonly Buffer[], roots: readonly Buffer[], now: number) => verifySvidChain({ leaf: chain[0]!, intermediates: chain.slice(1), roots, now }).path.at(-1)!.der;

test('the running CA follows a root rotation made by another process: pushes, issuer swap, renewal through any root in the bundle', async () => {
  const s = await setup('follow');
  const r1 = s.rt.service.bundle.roots[0]!;
  const old = await s.first();
  assert.deepEqual(s.pushed.map((b) => b.version), [1]);

  await prepareRootStep(s.cli, {});
  await s.tick();
  const v2 = s.pushed.at(-1)!;
  assert.equal(v2.version, 2);
  assert.equal(v2.roots.length, 2);
  assert.ok(v2.roots[0]!.equals(r1), 'the issuing root stays first while the new one is prepared');
  const r2 = v2.roots[1]!;
  assert.equal(v2.endorsements?.length, 1, 'the new root comes with its cross-signature');
  assert.ok(rootOf((await s.first()).certChain, v2.roots, s.clock.now()).equals(r1), 'prepared: still issuing from the old root');

  await activateStep(s.cli);
  await s.tick();
  const v3 = s.pushed.at(-1)!;
  assert.equal(v3.version, 3);
  assert.ok(v3.roots[0]!.equals(r2) && v3.roots[1]!.equals(r1));
  assert.ok(rootOf(s.rt.identity.chain, v3.roots, s.clock.now()).equals(r2), 'the serving SVID moved to the new intermediate');
  // A client that presents its leaf alone: the CA finds the retiring intermediate in the store.
  const renewed = await s.renew([old.certChain[0]!]);
  assert.ok(rootOf(renewed.certChain, v3.roots, s.clock.now()).equals(r2), 'a leaf of the retiring root renews into the new one');
  assert.equal(renewed.bundleVersion, 3);

  await retireStep(s.cli);
  await s.tick();
  const v4 = s.pushed.at(-1)!;
  assert.equal(v4.version, 4);
  assert.equal(v4.roots.length, 1);
  assert.ok(v4.roots[0]!.equals(r2));
  await assert.rejects(s.renew(old.certChain), (e: unknown) => e instanceof TollgateError && e.code === 'TG_SVID_UNTRUSTED');
  assert.deepEqual(s.pushed.map((b) => b.version), [1, 2, 3, 4], 'one push per bundle change, none for nothing');
});

test('a revision that cannot be loaded is logged once and the current state stays', async () => {
  const s = await setup('bad');
  const before = { version: s.rt.service.bundle.version, issuer: s.rt.service.issuer };
  const file = join(s.dir, StoreFiles.records);
  const good = readFileSync(file, 'utf8');
  const rec = JSON.parse(good) as { revision: number; authorities: Array<{ id: string; slot: string; kind: string }> };
  // A partial revision: it names an intermediate whose files are not there.
  rec.revision += 1;
  rec.authorities.find((a) => a.kind === 'intermediate')!.id = 'int-missing';
  (rec as unknown as { authorities: Array<{ parent?: string }> }).authorities[1]!.parent = rec.authorities[0]!.id;
  writeFileSync(file, JSON.stringify(rec));
  await s.tick();
  await s.tick();
  assert.equal(s.rt.service.bundle.version, before.version);
  assert.equal(s.rt.service.issuer, before.issuer);
  assert.equal(s.logs.filter((l) => l.msg === 'cannot load the new CA store revision; keeping the current state').length, 1);
  writeFileSync(file, '{"revision": ');
  await s.tick();
  assert.ok(s.logs.some((l) => l.msg === 'cannot read the CA store revision; keeping the current state'));
  // Restored with a higher revision: followed again.
  writeFileSync(file, JSON.stringify({ ...JSON.parse(good), revision: rec.revision + 1, bundleVersion: 9 }));
  await s.tick();
  assert.equal(s.rt.service.bundle.version, 9);
  assert.equal(s.pushed.at(-1)!.version, 9);
});

test('fs.watch brings a new revision in without waiting for the poll', async () => {
  const s = await setup('watch', { watch: true });
  await prepareRootStep(s.cli, {});
  for (let i = 0; i < 200 && s.rt.service.bundle.version !== 2; i++) {
    await new Promise((r) => setTimeout(r, 25));
    await s.rt.settled();
  }
  assert.equal(s.rt.service.bundle.version, 2, 'applied with the ManualClock never advanced');
});

test('/readyz: 200 "ready (degraded)" with what to do inside a warning window, 503 only once expired', async () => {
  const { caReadiness } = await import('./server.ts');
  const { startAdminServer } = await import('../common/admin-server.ts');
  let h: Parameters<typeof caReadiness>[0] = { state: 'degraded', detail: 'the active intermediate int-1 expires in 9d; run `tollgate ca rotate intermediate --root-key FILE`' };
  const admin = await startAdminServer({ port: 0, registry: new Registry(), readiness: () => caReadiness(h, 'x'), json: { '/status': () => ({ ok: 1 }) } });
  try {
    let r = await fetch(`http://127.0.0.1:${admin.port}/readyz`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-tollgate-health'), 'degraded');
    assert.match(await r.text(), /^ready \(degraded\): the active intermediate int-1 expires in 9d; run `tollgate ca rotate intermediate --root-key FILE`/);
    h = { state: 'expired', detail: 'the active intermediate int-1 expired' };
    r = await fetch(`http://127.0.0.1:${admin.port}/readyz`);
    assert.equal(r.status, 503);
    assert.match(await r.text(), /^not ready: the active intermediate int-1 expired/);
    h = { state: 'ok', detail: 'fine' };
    r = await fetch(`http://127.0.0.1:${admin.port}/readyz`);
    assert.equal(r.headers.get('x-tollgate-health'), 'ok');
    assert.match(await r.text(), /^ready: serving x; fine/);
    assert.deepEqual(await (await fetch(`http://127.0.0.1:${admin.port}/status`)).json(), { ok: 1 });
  } finally {
    await admin.close();
  }
});
