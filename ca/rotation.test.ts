import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../common/clock.ts';
import { TollgateError } from '../common/errors.ts';
import { parsePemBlocks } from '../pki/pem.ts';
import type { RotationEvent } from './rotation-plan.ts';
import { activateStep, prepareIntermediateStep, prepareRootStep } from './rotation-steps.ts';
import { runRotation, type RotationOptions } from './rotation.ts';
import { health } from './schedule.ts';
import { active, claimRotation, type StoreRecords } from './slots.ts';
import { caStatus, type CaStatus } from './status.ts';
import { DirectoryStore } from './store.ts';

const tmp = mkdtempSync(join(tmpdir(), 'tg-rotate-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const HOUR = 3600_000;
let n = 0;

const code = (c: string, msg?: RegExp) => (e: unknown) => e instanceof TollgateError && e.code === c && (!msg || msg.test(e.message));

async function fresh(o: { offline?: boolean } = {}) {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const dir = join(tmp, `ca${n++}`);
  const rootKeyOut = o.offline ? join(tmp, `root${n}.key`) : undefined;
  await new DirectoryStore({ dir }).init({ trustDomain: 'example.org', clock, rootKeyOut });
  const store = new DirectoryStore({ dir });
  // What a running CA would report: the store, plus a fleet the test controls.
  const fleet = { clients: 3, onCurrent: 0, stale: 0, live: {} as Record<string, number>, since: clock.now() - HOUR, up: true };
  const status = async (): Promise<CaStatus> => {
    if (!fleet.up) throw new TollgateError('TG_UNAVAILABLE', 'down');
    const { revision, records } = store.readSync();
    return caStatus({
      records, revision, now: clock.now(), health: health(records, clock.now(), { autoRotate: true }), autoRotate: true, maxLeafTtlSeconds: 3600,
      convergence: { bundleVersion: records.bundleVersion, clients: fleet.clients, onCurrentBundle: fleet.onCurrent, stale: fleet.stale, ratio: 0, liveByAuthority: fleet.live, trackingSince: fleet.since, staleAfterMs: HOUR },
    });
  };
  const events: RotationEvent[] = [];
  const options = (over: Partial<RotationOptions> = {}): RotationOptions => ({
    kind: 'root', store, clock, status, pollMs: 1000, timeoutMs: HOUR, settleMs: 30_000, events: (e) => events.push(e), ...over,
  });
  const rootKey = rootKeyOut ? parsePemBlocks(readFileSync(rootKeyOut, 'utf8'))[0]!.der : undefined;
  return { clock, store, fleet, status, events, options, rootKey, records: () => store.readSync().records };
}

/**
 * Run the driver to its end. The ManualClock moves only while the driver sleeps on it (a timer is
 * pending), a step at a time, with `each` called before each step: real work (key generation) takes
 * no simulated time. Bounded.
 */
async function drive<T>(clock: ManualClock, p: Promise<T>, each: () => void = () => {}, stepMs = 1000): Promise<T> {
  let done = false;
  const settled = p.then((value) => ({ value }), (error: unknown) => ({ error })).finally(() => (done = true));
  for (let i = 0; i < 200_000 && !done; i++) {
    await new Promise((r) => setImmediate(r));
    if (done || clock.pending === 0) continue;
    each();
    clock.advance(stepMs);
  }
  const r = await settled;
  if ('error' in r) throw r.error;
  return r.value;
}

const phases = (events: RotationEvent[]) => events.filter((e) => e.event === 'phase').map((e) => (e as { phase: string }).phase);
const slotsOf = (r: StoreRecords) => r.authorities.map((a) => `${a.kind}:${a.slot}`).sort();

test('root rotation: waits for every live sidecar before activating, for the old leaves before retiring', async () => {
  const s = await fresh();
  const oldRoot = active(s.records()).root.id;
  const oldInt = active(s.records()).intermediate.id;
  s.fleet.live = { [oldInt]: 3 };
  let activatedEarly = false;
  const result = await drive(s.clock, runRotation(s.options()), () => {
    const r = s.records();
    const rot = r.rotation;
    if (rot?.phase === 'prepared' && s.fleet.onCurrent < 3) s.fleet.onCurrent++; // sidecars take the push one by one
    if (rot?.phase === 'activated' && s.fleet.onCurrent < 3) activatedEarly = true;
    if (rot?.phase === 'activated') s.fleet.live = { [oldInt]: Math.max(0, (s.fleet.live[oldInt] ?? 0) - 1), [rot.new[1]!]: 3 };
  });
  assert.equal(activatedEarly, false);
  assert.deepEqual(phases(s.events), ['prepared', 'activated', 'done']);
  const r = result.records;
  assert.deepEqual(slotsOf(r), ['intermediate:active', 'intermediate:retired', 'root:active', 'root:retired']);
  assert.equal(r.authorities.find((a) => a.id === oldRoot)!.slot, 'retired');
  assert.equal(r.bundleVersion, 4, 'prepare, activate and retire each pushed a bundle');
  const progress = s.events.filter((e) => e.event === 'progress') as Array<Extract<RotationEvent, { event: 'progress' }>>;
  assert.ok(progress.some((e) => e.waiting_for === 'convergence' && e.converged === 1 && e.total === 3 && e.time_left_seconds > 0));
  assert.ok(progress.some((e) => e.waiting_for === 'leaves' && e.old_leaves === 2));
  const done = s.events.at(-1) as Extract<RotationEvent, { event: 'done' }>;
  assert.deepEqual(done.retired, [oldRoot, oldInt]);
  assert.ok(s.clock.now() - Date.UTC(2026, 0, 1) < HOUR, 'did not wait for the longest leaf: the fleet said the old leaves were gone');
});

test('intermediate rotation without a CA admin: no convergence wait, retire once the longest leaf has expired', async () => {
  const s = await fresh();
  const t0 = s.clock.now();
  await drive(s.clock, runRotation(s.options({ kind: 'intermediate', status: undefined, maxLeafTtlMs: HOUR })), undefined, 60_000);
  assert.deepEqual(phases(s.events), ['prepared', 'activated', 'done']);
  assert.equal(s.records().bundleVersion, 1);
  assert.ok(s.clock.now() - t0 >= HOUR, 'waited the longest leaf after activation');
  const p = s.events.find((e) => e.event === 'progress') as Extract<RotationEvent, { event: 'progress' }>;
  assert.equal(p.old_leaves, null);
});

test('resume from every phase: prepared, activated; and each refusal', async () => {
  for (const upTo of ['prepared', 'activated'] as const) {
    const s = await fresh();
    await prepareRootStep({ store: s.store, clock: s.clock }, {});
    if (upTo === 'activated') await activateStep({ store: s.store, clock: s.clock });
    // Without --resume: refused, saying what to do.
    await assert.rejects(runRotation(s.options()), code('TG_ROTATION_IN_PROGRESS', /--resume/));
    await assert.rejects(runRotation(s.options({ kind: 'intermediate', resume: true })), code('TG_ROTATION_IN_PROGRESS', /tollgate ca rotate root --resume/));
    s.fleet.onCurrent = 3;
    await drive(s.clock, runRotation(s.options({ resume: true })));
    assert.deepEqual(phases(s.events), upTo === 'prepared' ? ['activated', 'done'] : ['done'], upTo);
    assert.deepEqual(slotsOf(s.records()), ['intermediate:active', 'intermediate:retired', 'root:active', 'root:retired']);
    await assert.rejects(runRotation(s.options({ resume: true })), code('TG_ROTATION_STATE', /nothing to resume/));
  }
});

test('a rotation driven right now by another live process on this host is refused, even with --resume', async () => {
  const s = await fresh();
  await prepareIntermediateStep({ store: s.store, clock: s.clock }, { automatic: false });
  const { revision, records } = s.store.readSync();
  const { hostname } = await import('node:os');
  await s.store.commit(revision, claimRotation(records, { now: s.clock.now(), owner: { pid: process.ppid, host: hostname() } }));
  await assert.rejects(runRotation(s.options({ kind: 'intermediate', resume: true })), code('TG_ROTATION_IN_PROGRESS', new RegExp(`pid ${process.ppid}`)));
});

test('Ctrl-C while waiting keeps the phase; --resume finishes; a timeout does the same', async () => {
  const s = await fresh();
  const ac = new AbortController();
  let polls = 0;
  await assert.rejects(drive(s.clock, runRotation(s.options({ signal: ac.signal })), () => {
    if (++polls === 5) ac.abort();
  }), code('TG_INTERRUPTED'));
  assert.equal(s.records().rotation!.phase, 'prepared');
  await assert.rejects(drive(s.clock, runRotation(s.options({ resume: true, timeoutMs: 10_000 }))), code('TG_TIMEOUT', /stays prepared: run again with --resume/));
  assert.equal(s.records().rotation!.phase, 'prepared');
  s.fleet.onCurrent = 3;
  await drive(s.clock, runRotation(s.options({ resume: true })));
  assert.equal(s.records().rotation!.phase, 'done');
});

test('a CA that just restarted (or is unreachable) is not taken as converged', async () => {
  const s = await fresh();
  s.fleet.onCurrent = 3;
  s.fleet.up = false;
  let seen = 0;
  await drive(s.clock, runRotation(s.options()), () => {
    seen++;
    if (seen === 10) {
      s.fleet.up = true; // back, but it started just now and knows no sidecar yet
      s.fleet.since = s.clock.now();
      s.fleet.clients = 0;
      s.fleet.onCurrent = 0;
    }
  });
  const notes = (s.events.filter((e) => e.event === 'progress') as Array<{ note: string | null; waiting_for: string }>).filter((e) => e.waiting_for === 'convergence').map((e) => e.note);
  assert.ok(notes.includes('the CA admin is unreachable; retrying'), notes.join('\n'));
  assert.ok(notes.includes('the CA started recently; letting sidecars report'), notes.join('\n'));
  const activated = (s.events.find((e) => e.event === 'phase' && e.phase === 'activated') as { time: string }).time;
  assert.ok(Date.parse(activated) >= s.fleet.since + 30_000, `activated ${activated}, only after the settle time from ${new Date(s.fleet.since).toISOString()}`);
});

test('--force skips each wait with a warning; --dry-run changes nothing; a root rotation needs --ca-admin', async () => {
  const s = await fresh();
  await assert.rejects(runRotation(s.options({ status: undefined })), code('TG_USAGE', /--ca-admin/));
  const before = s.store.readSync();
  const dry = await runRotation(s.options({ dryRun: true }));
  assert.equal(dry.dryRun, true);
  assert.deepEqual(s.store.readSync(), before);
  const plan = s.events[0] as Extract<RotationEvent, { event: 'plan' }>;
  assert.deepEqual(plan.steps.map((p) => p.step), ['prepare', 'wait-convergence', 'activate', 'wait-leaves', 'retire']);
  assert.equal(plan.steps[3]!.at, new Date(s.clock.now() + HOUR + 60_000).toISOString(), 'leaves gone at the latest after the CA\'s longest leaf');
  s.events.length = 0;
  await runRotation(s.options({ force: true }));
  assert.deepEqual(phases(s.events), ['prepared', 'activated', 'done']);
  assert.equal(s.events.filter((e) => e.event === 'warning').length, 2);
});

test('offline root: intermediate rotation with --root-key; without it, or with another key, refused', async () => {
  const s = await fresh({ offline: true });
  await assert.rejects(runRotation(s.options({ kind: 'intermediate', force: true })), code('TG_ROOT_KEY_MISSING', /--root-key FILE/));
  const other = await fresh();
  const wrong = other.store.privateKeySync(active(other.records()).root.id);
  await assert.rejects(runRotation(s.options({ kind: 'intermediate', force: true, rootKey: wrong })), code('TG_USAGE', /not the key of the active root/));
  assert.equal(s.records().rotation, null, 'nothing changed');
  await runRotation(s.options({ kind: 'intermediate', force: true, rootKey: s.rootKey }));
  assert.equal(s.records().rotation!.phase, 'done');
  // A root rotation in offline mode writes the new root's key outside the store.
  const out = join(tmp, 'new-root.key');
  await runRotation(s.options({ kind: 'root', force: true, rootKey: s.rootKey, newRootKeyOut: out }));
  const r = s.records();
  assert.equal(active(r).root.keyInStore, false);
  assert.equal(s.store.privateKeySync(active(r).root.id), undefined);
  assert.ok(readFileSync(out, 'utf8').includes('PRIVATE KEY'));
});
