// The deny-list in the store records: pure changes, compare-and-swap under concurrent writers, and
// CaService refusing issue and renewal for a denied SPIFFE ID or serial (TG_DENIED, audited, counted).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../common/clock.ts';
import { isTollgateError, TollgateError } from '../common/errors.ts';
import { deniedOf } from './slots.ts';
import { denyAdd, denyRemove, denyTarget, withDenied, withoutDenied } from './deny-list.ts';
import { loadSnapshot } from './snapshot.ts';
import { DirectoryStore } from './store.ts';
import { caServiceSetup } from '../test/helpers/ca-service.ts';

const tmp = mkdtempSync(join(tmpdir(), 'tg-deny-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const clock = new ManualClock(Date.UTC(2026, 0, 1));
const WEB = 'spiffe://example.org/ns/shop/sa/web';

test('denyTarget: exactly one of --spiffe-id or --serial; serials as certificates read them', () => {
  assert.deepEqual(denyTarget({ serial: '00:8F:3c:01' }), { kind: 'serial', value: '8f3c01' });
  assert.deepEqual(denyTarget({ serial: 'f3c01' }), { kind: 'serial', value: '0f3c01' });
  assert.deepEqual(denyTarget({ spiffeId: WEB }), { kind: 'spiffe_id', value: WEB });
  for (const bad of [{}, { spiffeId: WEB, serial: '80' }, { serial: 'xyz' }]) assert.throws(() => denyTarget(bad), (e: unknown) => isTollgateError(e, 'TG_USAGE'));
  assert.throws(() => denyTarget({ spiffeId: 'https://x' }), (e: unknown) => isTollgateError(e, 'TG_SPIFFE_ID_INVALID'));
});

test('a deny-list change bumps the bundle version; repeating it changes nothing; both stores carry it as records', async () => {
  const store = new DirectoryStore({ dir: join(tmp, 'a') });
  await store.init({ trustDomain: 'example.org', clock });
  const { records } = await store.read();
  const added = withDenied(records, { kind: 'serial', value: '8f' }, { reason: 'leaked', now: clock.now() });
  assert.equal(added.bundleVersion, records.bundleVersion + 1);
  assert.equal(withDenied(added, { kind: 'serial', value: '8f' }, { now: clock.now() }), added);
  assert.deepEqual(added.denied, [{ kind: 'serial', value: '8f', reason: 'leaked', addedAt: '2026-01-01T00:00:00.000Z' }]);
  const removed = withoutDenied(added, { kind: 'serial', value: '8f' });
  assert.equal(removed.bundleVersion, records.bundleVersion + 2);
  assert.equal(withoutDenied(removed, { kind: 'serial', value: '8f' }), removed);

  // Concurrent writers on one directory: compare-and-swap keeps every entry.
  await Promise.all([
    denyAdd({ store: new DirectoryStore({ dir: join(tmp, 'a') }), target: { kind: 'spiffe_id', value: WEB }, clock }),
    denyAdd({ store: new DirectoryStore({ dir: join(tmp, 'a') }), target: { kind: 'serial', value: '9a' }, clock }),
    denyAdd({ store, target: { kind: 'serial', value: '8f' }, clock }),
  ]);
  const after3 = (await store.read()).records;
  assert.deepEqual(deniedOf(after3), { ids: [WEB], serials: ['8f', '9a'] });
  assert.equal(after3.bundleVersion, records.bundleVersion + 3);
  // What a running CA serves: the bundle carries the lists.
  const snap = await loadSnapshot(store, { withRootKey: false, refreshHintSeconds: 300 });
  assert.deepEqual([snap.bundle.deniedIds, snap.bundle.deniedSerials, snap.bundle.version], [[WEB], ['8f', '9a'], after3.bundleVersion]);
  assert.equal((await denyRemove({ store, target: { kind: 'serial', value: '9a' } })).changed, true);
  assert.equal((await denyRemove({ store, target: { kind: 'serial', value: '9a' } })).changed, false);
});

test('CaService refuses issue for a denied SPIFFE ID and renewal with a denied serial: TG_DENIED, audited, counted', async () => {
  const s = await caServiceSetup();
  const first = await s.first();
  const bundle = s.service.bundle;
  s.service.setBundle({ ...bundle, version: bundle.version + 1, deniedSerials: [first.serial.toLowerCase()] });
  await assert.rejects(s.renew(first.certChain), (e: unknown) => isTollgateError(e, 'TG_DENIED'));
  const other = await s.first(); // a fresh attestation of the same ID is not denied by serial
  await s.renew(other.certChain);
  s.service.setBundle({ ...bundle, version: bundle.version + 2, deniedIds: [s.id] });
  await assert.rejects(s.first(), (e: unknown) => isTollgateError(e, 'TG_DENIED'));
  await assert.rejects(s.renew(other.certChain), (e: unknown) => isTollgateError(e, 'TG_DENIED'));
  assert.deepEqual(s.lines.filter((l) => l.code === 'TG_DENIED').map((l) => l.spiffe_id), [s.id, s.id, s.id]);
  assert.match(await s.registry.metrics(), /tollgate_ca_refused_total\{code="TG_DENIED"\} 3/);
  s.cleanup();
});

test('denyTarget serials: colons and spaces dropped, one leading zero byte kept for a zero serial, at most 20 bytes', () => {
  const ok: Array<[string, string]> = [
    ['8f 3c\t01', '8f3c01'],
    ['0000', '00'],
    ['00:00:8f', '8f'],
    ['f', '0f'],
    ['8f0001', '8f0001'], // only leading zero bytes go
    ['AB'.repeat(20), 'ab'.repeat(20)],
  ];
  for (const [serial, value] of ok) assert.deepEqual(denyTarget({ serial }), { kind: 'serial', value }, serial);
  for (const serial of ['ab'.repeat(21), '', 'g0', '0x8f', '8f-3c']) {
    assert.throws(() => denyTarget({ serial }), (e: unknown) => isTollgateError(e, 'TG_USAGE') && e.message.includes(`--serial ${JSON.stringify(serial)} is not a hexadecimal serial number`), serial);
  }
  assert.throws(() => denyTarget({}), (e: unknown) => isTollgateError(e, 'TG_USAGE') && /exactly one of --spiffe-id ID or --serial HEX/.test(e.message));
  assert.deepEqual(denyTarget({ spiffeId: 'spiffe://example.org/ns/a/sa/b', serial: undefined }), { kind: 'spiffe_id', value: 'spiffe://example.org/ns/a/sa/b' });
});

test('withDenied/withoutDenied match kind and value together; an entry without a reason has no reason field', async () => {
  const store = new DirectoryStore({ dir: join(tmp, 'pure') });
  await store.init({ trustDomain: 'example.org', clock });
  const { records } = await store.read();
  const a = withDenied(records, { kind: 'serial', value: '8f' }, { now: clock.now() });
  assert.deepEqual(a.denied, [{ kind: 'serial', value: '8f', addedAt: '2026-01-01T00:00:00.000Z' }]);
  const b = withDenied(a, { kind: 'serial', value: '9a' }, { reason: '', now: clock.now() });
  assert.deepEqual(b.denied!.map((d) => [d.value, 'reason' in d]), [['8f', false], ['9a', false]]);
  assert.equal(withoutDenied(b, { kind: 'serial', value: '7b' }), b, 'not listed: unchanged');
  assert.equal(withoutDenied(b, { kind: 'spiffe_id', value: WEB }), b);
  assert.deepEqual(withoutDenied(b, { kind: 'serial', value: '8f' }).denied!.map((d) => d.value), ['9a']);
  const c = withDenied(b, { kind: 'spiffe_id', value: WEB }, { now: clock.now() });
  assert.deepEqual(c.denied!.map((d) => d.kind), ['serial', 'serial', 'spiffe_id']);
  assert.equal(withoutDenied(records, { kind: 'serial', value: '8f' }), records, 'no list at all: unchanged');
  // The same text under the other kind is another entry (the pure functions do not lean on the forms never overlapping).
  assert.deepEqual(withDenied(a, { kind: 'spiffe_id', value: '8f' }, { now: clock.now() }).denied!.map((d) => [d.kind, d.value]), [['serial', '8f'], ['spiffe_id', '8f']]);
  assert.equal(withoutDenied(a, { kind: 'spiffe_id', value: '8f' }), a);
});

test('updateDenyList retries a lost compare-and-swap up to 10 attempts, and nothing else', async () => {
  const real = new DirectoryStore({ dir: join(tmp, 'cas') });
  await real.init({ trustDomain: 'example.org', clock });
  const flaky = (failures: number, error: () => Error) => {
    const s = { reads: 0, commits: 0 };
    const store = {
      read: async () => (s.reads++, real.read()),
      commit: async (rev: number, next: Parameters<DirectoryStore['commit']>[1]) => {
        if (++s.commits <= failures) throw error();
        return real.commit(rev, next);
      },
    } as unknown as DirectoryStore;
    return { s, store };
  };
  const conflict = () => new TollgateError('TG_STORE_CONFLICT', 'another writer');
  let i = 0;
  const add = (store: DirectoryStore) => denyAdd({ store, target: { kind: 'serial', value: (++i).toString(16).padStart(2, '0') }, reason: 'r', clock });

  const nine = flaky(9, conflict);
  const r = await add(nine.store);
  assert.equal(r.changed, true);
  assert.deepEqual(nine.s, { reads: 10, commits: 10 });
  assert.equal(r.records.denied!.at(-1)!.reason, 'r');

  const ten = flaky(10, conflict);
  await assert.rejects(add(ten.store), (e: unknown) => isTollgateError(e, 'TG_STORE_CONFLICT'));
  assert.deepEqual(ten.s, { reads: 10, commits: 10 });

  const other = flaky(1, () => new TollgateError('TG_INTERNAL', 'disk full'));
  await assert.rejects(add(other.store), (e: unknown) => isTollgateError(e, 'TG_INTERNAL'));
  assert.deepEqual(other.s, { reads: 1, commits: 1 });

  const same = flaky(0, conflict);
  const listed = (await real.read()).records.denied![0]!;
  const unchanged = await denyAdd({ store: same.store, target: { kind: listed.kind, value: listed.value }, clock });
  assert.deepEqual([unchanged.changed, same.s.commits], [false, 0], 'nothing to change: no commit');
});
