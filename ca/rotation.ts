// `tollgate ca rotate root|intermediate` (PRODUCT.md §4): prepare → wait until the sidecars hold the
// new bundle (root only; a new intermediate changes no bundle) → activate → wait until no live leaf
// chains to the old authority (at most its longest leaf after activation) → retire. The phase lives
// in the store's rotation record, so `--resume` continues after Ctrl-C, a crash of this command or
// a CA restart; each step is a compare-and-swap (ca/rotation-steps.ts), so a step some other process
// took is seen on the next read and not done twice.
import { hostname } from 'node:os';
import type { Clock } from '../common/clock.ts';
import { isTollgateError, TollgateError } from '../common/errors.ts';
import { processAlive } from '../common/file-lock.ts';
import { planRotation, type RotationEvent } from './rotation-plan.ts';
import { activateStep, currentOwner, prepareIntermediateStep, prepareRootStep, retireStep, type StepContext } from './rotation-steps.ts';
import { leavesGoneAt } from './schedule.ts';
import { active, bundleOf, claimRotation, inProgress, ms, refuseIfInProgress, type AuthorityKind, type RotationRecord, type StoreRecords } from './slots.ts';
import type { CaStatus } from './status.ts';
import type { AuthorityStore } from './store.ts';

export interface RotationOptions {
  readonly kind: AuthorityKind;
  readonly store: AuthorityStore;
  readonly clock: Clock;
  readonly resume?: boolean;
  readonly dryRun?: boolean;
  /** Skip the waits (with a warning each). */
  readonly force?: boolean;
  /** PKCS#8 DER of the active root's key when it is kept offline. */
  readonly rootKey?: Buffer | undefined;
  /** Root rotation in offline mode: where the new root's key goes instead of the store. */
  readonly newRootKeyOut?: string | undefined;
  /** GET /status of a running CA (`--ca-admin`); convergence comes only from there. */
  readonly status?: (() => Promise<CaStatus>) | undefined;
  readonly pollMs: number;
  /** Longest a wait for convergence may take before the command stops (the rotation stays resumable). */
  readonly timeoutMs: number;
  /** After a CA restart it knows no sidecar yet: wait until it has been counting for this long. */
  readonly settleMs: number;
  /** Longest leaf lifetime; default the CA's (from /status), else 24 h. */
  readonly maxLeafTtlMs?: number | undefined;
  readonly events: (e: RotationEvent) => void;
  readonly signal?: AbortSignal | undefined;
}

export const DEFAULT_MAX_LEAF_TTL_MS = 24 * 3600 * 1000;

/** Refuse a rotation that is not ours to drive now; returns the one to resume, if any. */
function admit(r: StoreRecords, o: RotationOptions): RotationRecord | undefined {
  const running = inProgress(r);
  if (!running) {
    if (o.resume) {
      const last = r.rotation ? `the last one (${r.rotation.kind}) finished ${r.rotation.updatedAt}` : 'none was ever started';
      throw new TollgateError('TG_ROTATION_STATE', `nothing to resume: no rotation is in progress (${last}); start one with \`tollgate ca rotate ${o.kind}\``);
    }
    refuseIfInProgress(r, o.kind);
    return undefined;
  }
  if (!o.resume) refuseIfInProgress(r, o.kind);
  if (running.kind !== o.kind) {
    throw new TollgateError('TG_ROTATION_IN_PROGRESS', `the rotation in progress is a ${running.kind} rotation; resume it with \`tollgate ca rotate ${running.kind} --resume\``);
  }
  const me = currentOwner();
  if (!running.automatic && running.owner.host === hostname() && running.owner.pid !== me.pid && processAlive(running.owner.pid)) {
    throw new TollgateError('TG_ROTATION_IN_PROGRESS', `the ${running.kind} rotation is being driven by pid ${running.owner.pid} on this host right now; wait for it, or stop it (Ctrl-C) and run --resume`);
  }
  return running;
}

export interface RotationResult {
  readonly records: StoreRecords;
  readonly dryRun: boolean;
}

export async function runRotation(o: RotationOptions): Promise<RotationResult> {
  const ctx: StepContext = { store: o.store, clock: o.clock, rootKey: o.rootKey };
  let { records } = await o.store.read();
  const resuming = admit(records, o);
  if (o.kind === 'root' && !resuming && !active(records).root.keyInStore && !o.newRootKeyOut) {
    throw new TollgateError('TG_USAGE', 'the active root keeps its key offline: pass --new-root-key-out FILE so the new root\'s key is kept offline too');
  }
  if (o.kind === 'root' && !o.status && !o.force && (!resuming || resuming.phase === 'prepared')) {
    throw new TollgateError('TG_USAGE', 'a root rotation waits until every sidecar holds the new root: pass --ca-admin HOST:PORT of a running CA (or --force to skip that wait, at the risk of refused handshakes)');
  }
  const first = o.status ? await tryStatus(o) : undefined;
  const maxLeafTtlMs = o.maxLeafTtlMs ?? (first?.max_leaf_ttl_seconds ? first.max_leaf_ttl_seconds * 1000 : DEFAULT_MAX_LEAF_TTL_MS);
  o.events({ event: 'plan', kind: o.kind, resume: !!resuming, steps: planRotation(records, { kind: o.kind, now: o.clock.now(), maxLeafTtlMs, timeoutMs: o.timeoutMs }) });
  if (o.dryRun) return { records, dryRun: true };
  if (resuming) records = await claim(o);
  const emitPhase = (r: StoreRecords) => {
    const rot = r.rotation!;
    o.events({ event: 'phase', kind: rot.kind, phase: rot.phase, old: rot.old, new: rot.new, bundle_version: r.bundleVersion, time: new Date(o.clock.now()).toISOString() });
  };
  let driven = !!resuming; // a rotation this run started or resumed
  for (;;) {
    const rot = inProgress(records);
    try {
      if (!rot) {
        if (driven) break; // ours is done (retired here, or by another process)
        records = (o.kind === 'root' ? await prepareRootStep(ctx, { newRootKeyOut: o.newRootKeyOut }) : await prepareIntermediateStep(ctx, { automatic: false })).records;
        driven = true;
        emitPhase(records);
      } else if (rot.phase === 'prepared') {
        if (rot.kind === 'root') await waitConvergence(o, records.bundleVersion);
        records = (await activateStep(ctx)).records;
        emitPhase(records);
      } else {
        await waitLeaves(o, records, rot, maxLeafTtlMs);
        records = (await retireStep(ctx)).records;
        emitPhase(records);
      }
    } catch (e) {
      // Someone else moved the store (the CA's automatic rotation, another command): re-read and go on.
      if (!isTollgateError(e, 'TG_STORE_CONFLICT')) throw e;
      records = (await o.store.read()).records;
    }
  }
  const act = active(records);
  o.events({
    event: 'done',
    kind: o.kind,
    active: [act.root.id, act.intermediate.id],
    retired: records.rotation?.old ?? [],
    bundle_version: records.bundleVersion,
    time: new Date(o.clock.now()).toISOString(),
  });
  return { records, dryRun: false };
}

// Record that this process drives the rotation now; two resuming at once: one wins, the other is refused.
async function claim(o: RotationOptions): Promise<StoreRecords> {
  for (;;) {
    const { revision, records } = await o.store.read();
    admit(records, o);
    const next = claimRotation(records, { now: o.clock.now(), owner: currentOwner() });
    try {
      await o.store.commit(revision, next);
      return next;
    } catch (e) {
      if (!isTollgateError(e, 'TG_STORE_CONFLICT')) throw e;
    }
  }
}

function sleep(o: RotationOptions, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) return reject(interrupted());
    const t = o.clock.setTimer(ms, () => {
      o.signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    const onAbort = () => {
      t.cancel();
      reject(interrupted());
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function interrupted(): TollgateError {
  return new TollgateError('TG_INTERRUPTED', 'interrupted');
}

async function tryStatus(o: RotationOptions): Promise<CaStatus | undefined> {
  try {
    return await o.status!();
  } catch {
    return undefined;
  }
}

function progress(o: RotationOptions, e: Omit<Extract<RotationEvent, { event: 'progress' }>, 'event'>): void {
  o.events({ event: 'progress', ...e });
}

/** Until every live, not stale sidecar reports `version` (or a newer one). */
async function waitConvergence(o: RotationOptions, version: number): Promise<void> {
  if (o.force) {
    o.events({ event: 'warning', message: `--force: not waiting for the sidecars to hold bundle version ${version}; one that does not trust the new root yet will refuse leaves issued under it` });
    return;
  }
  const deadline = o.clock.now() + o.timeoutMs;
  for (;;) {
    const now = o.clock.now();
    const s = await tryStatus(o);
    const c = s?.convergence;
    const left = Math.ceil((deadline - now) / 1000);
    let note: string | null = null;
    if (!s || !c) note = 'the CA admin is unreachable; retrying';
    else if (s.bundle_version < version) note = `the CA serves bundle version ${s.bundle_version}, not yet ${version}`;
    else if (now - ms(c.tracking_since) < o.settleMs) note = 'the CA started recently; letting sidecars report';
    progress(o, { phase: 'prepared', waiting_for: 'convergence', converged: c?.on_current_bundle ?? null, total: c?.clients ?? null, stale: c?.stale ?? null, old_leaves: null, time_left_seconds: left, note });
    if (!note && c && c.on_current_bundle >= c.clients) {
      if (c.clients === 0) o.events({ event: 'warning', message: 'no sidecar has reported to this CA: nothing to wait for' });
      return;
    }
    if (now >= deadline) {
      throw new TollgateError('TG_TIMEOUT', `sidecars have not all taken bundle version ${version} (${c ? `${c.on_current_bundle}/${c.clients}` : 'CA unreachable'}); the rotation stays prepared: run again with --resume (or --force to go on anyway)`);
    }
    await sleep(o, Math.min(o.pollMs, Math.max(1, deadline - now)));
  }
}

/** Until no live leaf chains to the old authority, or its longest leaf has expired. */
async function waitLeaves(o: RotationOptions, r: StoreRecords, rot: RotationRecord, maxLeafTtlMs: number): Promise<void> {
  const deadline = leavesGoneAt(ms(rot.activatedAt!), maxLeafTtlMs);
  // The old intermediates: for a root, every intermediate it signed.
  const oldRoots = new Set(rot.old.filter((id) => r.authorities.find((a) => a.id === id)?.kind === 'root'));
  const oldInts = new Set(r.authorities.filter((a) => a.kind === 'intermediate' && (rot.old.includes(a.id) || (a.parent && oldRoots.has(a.parent)))).map((a) => a.id));
  if (o.force) {
    o.events({ event: 'warning', message: `--force: retiring now; leaves of ${[...oldInts].join(', ')} that are still alive ${rot.kind === 'root' ? 'will fail to verify at peers once their root leaves the bundle' : 'stay valid until they expire'}` });
    return;
  }
  const activation = bundleOf(r);
  for (;;) {
    const now = o.clock.now();
    const left = Math.ceil((deadline - now) / 1000);
    if (now >= deadline) {
      progress(o, { phase: 'activated', waiting_for: 'leaves', converged: null, total: null, stale: null, old_leaves: 0, time_left_seconds: 0, note: 'the longest leaf of the old authority has expired' });
      return;
    }
    let oldLeaves: number | null = null;
    let note: string | null = null;
    if (o.status) {
      const s = await tryStatus(o);
      const c = s?.convergence;
      if (!s || !c) note = 'the CA admin is unreachable; retrying';
      else if (s.bundle_version < r.bundleVersion || s.bundle_roots[0] !== activation.rootIds[0]) note = 'the CA has not applied the activation yet';
      else if (now - ms(c.tracking_since) < o.settleMs) note = 'the CA started recently; letting sidecars report';
      else oldLeaves = Object.entries(c.live_leaves_by_authority).filter(([id]) => oldInts.has(id)).reduce((n, [, k]) => n + k, 0);
    }
    progress(o, { phase: 'activated', waiting_for: 'leaves', converged: null, total: null, stale: null, old_leaves: oldLeaves, time_left_seconds: left, note });
    if (oldLeaves === 0) return;
    await sleep(o, Math.min(o.pollMs, Math.max(1, deadline - now)));
  }
}
