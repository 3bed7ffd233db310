import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ManualClock } from '../common/clock.ts';
import { TollgateError } from '../common/errors.ts';
import { pemToCertDers, toPem } from '../pki/pem.ts';
import { createIntermediate, createRoot } from './authority.ts';
import { active, bundleOf } from './slots.ts';
import { DirectoryStore, StoreFiles } from './store.ts';

const tmp = mkdtempSync(join(tmpdir(), 'tg-store-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const clock = new ManualClock(Date.UTC(2026, 0, 1));
let n = 0;
const newDir = () => join(tmp, `ca${n++}`);
const conflict = (e: unknown) => e instanceof TollgateError && e.code === 'TG_STORE_CONFLICT';

test('init writes records, one cert/key pair per authority (keys 0600) and the active views', async () => {
  const dir = newDir();
  const store = new DirectoryStore({ dir });
  const m = await store.init({ trustDomain: 'example.org', clock });
  const { revision, records } = store.readSync();
  assert.equal(revision, 1);
  assert.equal(records.bundleVersion, 1);
  const act = active(records);
  for (const a of [act.root, act.intermediate]) {
    assert.equal(statSync(join(dir, 'authorities', `${a.id}.key`)).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'authorities', `${a.id}.crt`)).mode & 0o777, 0o644);
  }
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(act.intermediate.parent, act.root.id);
  assert.deepEqual(pemToCertDers(readFileSync(join(dir, StoreFiles.rootCert), 'utf8')), [m.rootCertificate]);
  assert.deepEqual(pemToCertDers(readFileSync(join(dir, StoreFiles.intermediateCert), 'utf8')), [m.intermediate.certificate]);
  assert.deepEqual(pemToCertDers(readFileSync(join(dir, StoreFiles.bundle), 'utf8')), [m.rootCertificate]);
  assert.equal(statSync(join(dir, StoreFiles.intermediateKey)).mode & 0o777, 0o600);
  assert.ok(store.load().root, 'the root key is in the store by default');
  await assert.rejects(store.init({ trustDomain: 'example.org', clock }), (e: unknown) => e instanceof TollgateError && e.code === 'TG_STORE_EXISTS');
  const again = await store.init({ trustDomain: 'example.org', clock, force: true });
  assert.equal(again.revision, 2);
  assert.equal(again.bundleVersion, 2, 'a replaced CA is a new bundle version');
});

test('offline root: the root key goes to --root-key-out and never into the store', async () => {
  const dir = newDir();
  const out = join(tmp, `root-${n}.key`);
  await new DirectoryStore({ dir }).init({ trustDomain: 'example.org', clock, rootKeyOut: out });
  const store = new DirectoryStore({ dir });
  const { records } = store.readSync();
  assert.equal(active(records).root.keyInStore, false);
  assert.equal(store.privateKeySync(active(records).root.id), undefined);
  assert.equal(existsSync(join(dir, StoreFiles.rootKey)), false);
  assert.equal(statSync(out).mode & 0o777, 0o600);
  assert.equal(store.load().root, undefined);
});

test('compare-and-swap: a writer with a stale revision is refused and loses nothing by retrying', async () => {
  const dir = newDir();
  await new DirectoryStore({ dir }).init({ trustDomain: 'example.org', clock });
  const a = new DirectoryStore({ dir });
  const b = new DirectoryStore({ dir });
  const ra = await a.read();
  const rb = await b.read();
  assert.equal(await a.commit(ra.revision, { ...ra.records, bundleVersion: ra.records.bundleVersion + 10 }), 2);
  await assert.rejects(b.commit(rb.revision, { ...rb.records, bundleVersion: rb.records.bundleVersion + 1 }), conflict);
  const again = await b.read();
  assert.equal(await b.commit(again.revision, { ...again.records, bundleVersion: again.records.bundleVersion + 1 }), 3);
  assert.equal((await a.read()).records.bundleVersion, 12, 'both updates are there');
});

test('a loser of the race leaves no orphan material behind', async () => {
  const dir = newDir();
  const store = new DirectoryStore({ dir });
  await store.init({ trustDomain: 'example.org', clock });
  const { revision, records } = store.readSync();
  const root = await createRoot({ trustDomain: 'example.org', clock });
  await assert.rejects(store.commit(revision - 1, records, [{ id: 'root-orphan', certificate: root.certificate, keyPkcs8: root.keyPkcs8 }]), conflict);
  assert.equal(existsSync(join(dir, 'authorities', 'root-orphan.crt')), false);
  assert.equal(existsSync(join(dir, 'authorities', 'root-orphan.key')), false);
});

test('several processes incrementing through read/commit never lose an update', async () => {
  const dir = newDir();
  await new DirectoryStore({ dir }).init({ trustDomain: 'example.org', clock });
  const script = join(tmp, 'writer.mts');
  const storeUrl = new URL('./store.ts', import.meta.url).href;
  writeFileSync(script, `
import { DirectoryStore } from ${JSON.stringify(storeUrl)};
const s = new DirectoryStore({ dir: process.argv[2] });
let conflicts = 0;
for (let i = 0; i < 15; i++) {
  for (;;) {
    const { revision, records } = await s.read();
    try { await s.commit(revision, { ...records, bundleVersion: records.bundleVersion + 1 }); break; }
    catch (e) { if (e.code !== 'TG_STORE_CONFLICT') throw e; conflicts++; }
  }
}
console.log(conflicts);
`);
  const tsx = fileURLToPath(import.meta.resolve('tsx'));
  const runs = Array.from({ length: 3 }, () => new Promise<number>((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', tsx, script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('exit', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`writer exited ${code}`))));
  }));
  await Promise.all(runs);
  const { revision, records } = new DirectoryStore({ dir }).readSync();
  assert.equal(records.bundleVersion, 1 + 45);
  assert.equal(revision, 1 + 45);
});

test('a lock left by a dead process, or an old one, is broken; a live one is waited for', async () => {
  const dir = newDir();
  const store = new DirectoryStore({ dir });
  await store.init({ trustDomain: 'example.org', clock });
  const lock = join(dir, StoreFiles.lock);
  const { hostname } = await import('node:os');
  writeFileSync(lock, `999999999 ${hostname()} 2026-01-01T00:00:00Z`);
  let v = store.readSync();
  store.commitSync(v.revision, v.records);
  assert.equal(existsSync(lock), false);
  writeFileSync(lock, `1 elsewhere 2026-01-01T00:00:00Z`);
  utimesSync(lock, new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
  v = store.readSync();
  store.commitSync(v.revision, v.records);
  writeFileSync(lock, `${process.pid} ${hostname()} now`);
  // A lock held by a live process on this host is waited for, then refused with what to do.
  const impatient = new DirectoryStore({ dir, lock: { waitMs: 100 } });
  v = impatient.readSync();
  assert.throws(() => impatient.commitSync(v.revision, v.records), (e: unknown) => conflict(e) && /locked for more than 100 ms/.test((e as Error).message));
  assert.equal(impatient.readSync().revision, v.revision);
  rmSync(lock);
});

test('a store written before records.json is migrated on first read, bundle version kept', async () => {
  const dir = newDir();
  const root = await createRoot({ trustDomain: 'example.org', clock });
  const int = await createIntermediate({ trustDomain: 'example.org', root, clock });
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dir, { mode: 0o700 });
  writeFileSync(join(dir, 'root.crt'), toPem('CERTIFICATE', root.certificate));
  writeFileSync(join(dir, 'root.key'), toPem('PRIVATE KEY', root.keyPkcs8), { mode: 0o600 });
  writeFileSync(join(dir, 'intermediate.crt'), toPem('CERTIFICATE', int.certificate));
  writeFileSync(join(dir, 'intermediate.key'), toPem('PRIVATE KEY', int.keyPkcs8), { mode: 0o600 });
  writeFileSync(join(dir, 'bundle.pem'), toPem('CERTIFICATE', root.certificate));
  writeFileSync(join(dir, 'state.json'), JSON.stringify({ format: 1, trustDomain: 'example.org', bundleVersion: 7, updatedAt: '2026-01-01T00:00:00Z' }));
  const store = new DirectoryStore({ dir });
  const m = store.load();
  assert.equal(m.bundleVersion, 7);
  assert.ok(m.intermediate.certificate.equals(int.certificate));
  assert.ok(m.root?.certificate.equals(root.certificate));
  assert.deepEqual(bundleOf(m.records).rootIds, [active(m.records).root.id]);
  assert.equal(existsSync(join(dir, 'state.json')), false);
  assert.equal(store.readSync().revision, 1, 'a second read does not migrate again');
});
