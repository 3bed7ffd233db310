import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../common/clock.ts';
import { TollgateError } from '../common/errors.ts';
import { autoStep, health } from './schedule.ts';
import { activate, bundleOf, DAY_MS, prepareIntermediate, prepareRoot, pruneRetired, retire, validateRecords, type AuthorityRecord, type StoreRecords } from './slots.ts';

const clock = new ManualClock(Date.UTC(2026, 0, 1));
const owner = { pid: 42, host: 'test' };
const T0 = clock.now();

function rec(id: string, kind: 'root' | 'intermediate', slot: AuthorityRecord['slot'], o: { parent?: string; days?: number; from?: number; endorsedBy?: string } = {}): AuthorityRecord {
  const from = o.from ?? clock.now();
  return {
    id, kind, slot, serial: id, keyInStore: true,
    notBefore: new Date(from).toISOString(),
    notAfter: new Date(from + (o.days ?? (kind === 'root' ? 365 : 30)) * DAY_MS).toISOString(),
    createdAt: new Date(clock.now()).toISOString(),
    ...(o.parent ? { parent: o.parent } : {}),
    ...(o.endorsedBy ? { endorsement: { signer: o.endorsedBy, der: `cross-${id}` } } : {}),
  };
}

function fresh(): StoreRecords {
  return validateRecords({
    format: 2, trustDomain: 'example.org', bundleVersion: 1, rotation: null,
    authorities: [rec('r1', 'root', 'active', { from: T0 }), rec('i1', 'intermediate', 'active', { parent: 'r1', from: T0 })],
  });
}

const code = (c: string, msg?: RegExp) => (e: unknown) => e instanceof TollgateError && e.code === c && (!msg || msg.test(e.message));
const slots = (r: StoreRecords) => Object.fromEntries(r.authorities.map((a) => [a.id, a.slot]));

test('root rotation: prepare → activate → retire moves every slot and changes the bundle at each step', () => {
  let r = fresh();
  r = prepareRoot(r, { root: rec('r2', 'root', 'prepared', { endorsedBy: 'r1' }), intermediate: rec('i2', 'intermediate', 'prepared', { parent: 'r2' }), now: clock.now(), owner });
  assert.deepEqual(slots(r), { r1: 'active', i1: 'active', r2: 'prepared', i2: 'prepared' });
  assert.deepEqual(bundleOf(r), { rootIds: ['r1', 'r2'], endorsements: ['cross-r2'] });
  assert.equal(r.bundleVersion, 2);
  assert.deepEqual({ phase: r.rotation!.phase, old: r.rotation!.old, new: r.rotation!.new }, { phase: 'prepared', old: ['r1', 'i1'], new: ['r2', 'i2'] });

  clock.advance(3600_000);
  r = activate(r, { now: clock.now(), owner });
  assert.deepEqual(slots(r), { r1: 'retiring', i1: 'retiring', r2: 'active', i2: 'active' });
  // The issuing root comes first: that order change is a new bundle version (a push to sidecars).
  assert.deepEqual(bundleOf(r).rootIds, ['r2', 'r1']);
  assert.equal(r.bundleVersion, 3);
  assert.equal(r.rotation!.activatedAt, new Date(clock.now()).toISOString());

  clock.advance(DAY_MS);
  r = retire(r, { now: clock.now(), owner });
  assert.deepEqual(slots(r), { r1: 'retired', i1: 'retired', r2: 'active', i2: 'active' });
  assert.deepEqual(bundleOf(r), { rootIds: ['r2'], endorsements: ['cross-r2'] });
  assert.equal(r.bundleVersion, 4);
  assert.equal(r.rotation!.phase, 'done');
});

test('intermediate rotation never changes the bundle', () => {
  let r = fresh();
  r = prepareIntermediate(r, { intermediate: rec('i2', 'intermediate', 'prepared', { parent: 'r1' }), now: clock.now(), owner, automatic: true });
  assert.equal(r.bundleVersion, 1);
  r = activate(r, { now: clock.now(), owner });
  assert.deepEqual(slots(r), { r1: 'active', i1: 'retiring', i2: 'active' });
  assert.equal(r.bundleVersion, 1);
  r = retire(r, { now: clock.now(), owner });
  assert.deepEqual(slots(r), { r1: 'active', i1: 'retired', i2: 'active' });
  assert.equal(r.bundleVersion, 1);
});

test('a root rotation retires every intermediate of the old root, including ones already retiring', () => {
  let r = fresh();
  r = prepareIntermediate(r, { intermediate: rec('i2', 'intermediate', 'prepared', { parent: 'r1' }), now: clock.now(), owner, automatic: true });
  r = activate(r, { now: clock.now(), owner }); // i1 retiring, not yet retired
  r = { ...r, rotation: { ...r.rotation!, phase: 'done' } };
  r = prepareRoot(r, { root: rec('r2', 'root', 'prepared', { endorsedBy: 'r1' }), intermediate: rec('i3', 'intermediate', 'prepared', { parent: 'r2' }), now: clock.now(), owner });
  r = retire(activate(r, { now: clock.now(), owner }), { now: clock.now(), owner });
  assert.deepEqual(slots(r), { r1: 'retired', i1: 'retired', i2: 'retired', r2: 'active', i3: 'active' });
});

test('refusals: every step out of order, a second rotation, a root without a cross-signature', () => {
  const r = fresh();
  const i2 = rec('i2', 'intermediate', 'prepared', { parent: 'r1' });
  assert.throws(() => activate(r, { now: clock.now(), owner }), code('TG_ROTATION_STATE', /no rotation was started/));
  assert.throws(() => retire(r, { now: clock.now(), owner }), code('TG_ROTATION_STATE'));
  const p = prepareIntermediate(r, { intermediate: i2, now: clock.now(), owner, automatic: false });
  assert.throws(() => retire(p, { now: clock.now(), owner }), code('TG_ROTATION_STATE', /phase prepared, not activated/));
  assert.throws(() => prepareIntermediate(p, { intermediate: rec('i3', 'intermediate', 'prepared', { parent: 'r1' }), now: clock.now(), owner, automatic: false }), code('TG_ROTATION_IN_PROGRESS', /--resume/));
  assert.throws(() => prepareRoot(p, { root: rec('r2', 'root', 'prepared', { endorsedBy: 'r1' }), intermediate: rec('i3', 'intermediate', 'prepared', { parent: 'r2' }), now: clock.now(), owner }), code('TG_ROTATION_IN_PROGRESS', /pid 42 on test/));
  const a = activate(p, { now: clock.now(), owner });
  assert.throws(() => activate(a, { now: clock.now(), owner }), code('TG_ROTATION_STATE', /phase activated, not prepared/));
  const d = retire(a, { now: clock.now(), owner });
  assert.throws(() => retire(d, { now: clock.now(), owner }), code('TG_ROTATION_STATE'));
  assert.throws(() => prepareRoot(r, { root: rec('r2', 'root', 'prepared'), intermediate: rec('i3', 'intermediate', 'prepared', { parent: 'r2' }), now: clock.now(), owner }), code('TG_ROTATION_STATE', /cross-signature/));
  assert.throws(() => prepareRoot(r, { root: rec('r2', 'root', 'prepared', { endorsedBy: 'r1' }), intermediate: rec('i3', 'intermediate', 'prepared', { parent: 'r1' }), now: clock.now(), owner }), code('TG_ROTATION_STATE'));
  assert.throws(() => prepareIntermediate(r, { intermediate: rec('i3', 'intermediate', 'prepared', { parent: 'r9' }), now: clock.now(), owner, automatic: false }), code('TG_ROTATION_STATE'));
});

test('validateRecords refuses inconsistent records', () => {
  const base = fresh();
  const bad: Array<[string, StoreRecords]> = [
    ['two active roots', { ...base, authorities: [...base.authorities, rec('r2', 'root', 'active')] }],
    ['no active intermediate', { ...base, authorities: [base.authorities[0]!] }],
    ['active intermediate under another root', { ...base, authorities: [rec('r1', 'root', 'active'), rec('r0', 'root', 'retiring'), rec('i1', 'intermediate', 'active', { parent: 'r0' })] }],
    ['duplicate id', { ...base, authorities: [...base.authorities, base.authorities[1]!] }],
    ['unknown parent', { ...base, authorities: [...base.authorities, rec('i2', 'intermediate', 'retired', { parent: 'nope' })] }],
    ['wrong format', { ...base, format: 1 as never }],
  ];
  for (const [what, r] of bad) assert.throws(() => validateRecords(r), code('TG_STORE_CORRUPT'), what);
});

test('automatic rotation: prepare at 1/2, activate at 2/3, retire after the longest leaf; nothing during an operator rotation', () => {
  const c = new ManualClock(T0);
  const o = { maxLeafTtlMs: DAY_MS };
  let r = fresh();
  const step = () => autoStep(r, c.now(), o);
  assert.deepEqual(step(), { action: 'none', at: T0 + 15 * DAY_MS, why: 'the active intermediate is in the first half of its life' });
  c.set(T0 + 15 * DAY_MS);
  assert.equal(step().action, 'prepare');
  r = prepareIntermediate(r, { intermediate: rec('i2', 'intermediate', 'prepared', { parent: 'r1', from: c.now() }), now: c.now(), owner, automatic: true });
  assert.equal(step().action, 'none');
  assert.equal((step() as { at: number }).at, T0 + 20 * DAY_MS);
  c.set(T0 + 20 * DAY_MS);
  assert.equal(step().action, 'activate');
  r = activate(r, { now: c.now(), owner });
  assert.equal(step().action, 'none');
  c.advance(DAY_MS + 60_000);
  assert.equal(step().action, 'retire');
  r = retire(r, { now: c.now(), owner });
  assert.equal((step() as { at: number }).at, T0 + 30 * DAY_MS, 'next: half of the new intermediate (made on day 15)');

  const manual = prepareIntermediate(fresh(), { intermediate: rec('i9', 'intermediate', 'prepared', { parent: 'r1' }), now: c.now(), owner, automatic: false });
  assert.match((autoStep(manual, c.now(), o) as { why: string }).why, /by the operator/);
});

test('automatic rotation stops when the root ends before a new intermediate would outlive the active one', () => {
  const r = validateRecords({
    format: 2, trustDomain: 'example.org', bundleVersion: 1, rotation: null,
    authorities: [rec('r1', 'root', 'active', { from: T0, days: 40 }), rec('i1', 'intermediate', 'active', { parent: 'r1', from: T0 + 10 * DAY_MS })],
  });
  assert.equal(autoStep(r, T0 + 30 * DAY_MS, { maxLeafTtlMs: DAY_MS }).action, 'none');
  assert.match((autoStep(r, T0 + 30 * DAY_MS, { maxLeafTtlMs: DAY_MS }) as { why: string }).why, /rotate the root/);
});

test('health: ok, warning from half-life when nothing rotates, degraded in the last third, expired', () => {
  const r = fresh();
  assert.equal(health(r, T0 + DAY_MS, { autoRotate: true }).state, 'ok');
  assert.equal(health(r, T0 + 16 * DAY_MS, { autoRotate: false }).state, 'warning');
  assert.match(health(r, T0 + 16 * DAY_MS, { autoRotate: false }).detail, /root key is offline; run `tollgate ca rotate intermediate --root-key FILE`/);
  assert.match(health(r, T0 + 16 * DAY_MS, { autoRotate: true }).detail, /automatic rotation has not prepared/);
  const withSuccessor = prepareIntermediate(r, { intermediate: rec('i2', 'intermediate', 'prepared', { parent: 'r1' }), now: T0, owner, automatic: true });
  assert.equal(health(withSuccessor, T0 + 16 * DAY_MS, { autoRotate: true }).state, 'ok');
  assert.equal(health(r, T0 + 21 * DAY_MS, { autoRotate: true }).state, 'degraded');
  assert.equal(health(r, T0 + 31 * DAY_MS, { autoRotate: true }).state, 'expired');
  const lateRoot = validateRecords({ ...r, authorities: [rec('r1', 'root', 'active', { from: T0 - 250 * DAY_MS }), rec('i1', 'intermediate', 'active', { parent: 'r1', from: T0 })] });
  assert.match(health(lateRoot, T0 + DAY_MS, { autoRotate: true }).detail, /root r1 expires in .* inside its warning window; run `tollgate ca rotate root`/);
});

test('pruneRetired drops retired authorities long expired, keeps a root whose intermediates are alive', () => {
  let r = fresh();
  r = prepareIntermediate(r, { intermediate: rec('i2', 'intermediate', 'prepared', { parent: 'r1' }), now: T0, owner, automatic: true });
  r = retire(activate(r, { now: T0, owner }), { now: T0, owner });
  r = { ...r, rotation: null };
  assert.deepEqual(pruneRetired(r, T0 + 31 * DAY_MS, 7 * DAY_MS).removed, []);
  assert.deepEqual(pruneRetired(r, T0 + 38 * DAY_MS, 7 * DAY_MS).removed, ['i1']);
});
