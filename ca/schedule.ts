// When things are due, as pure functions of the records and the time: the next step of automatic
// intermediate rotation, and how healthy the CA's trust is (for /readyz, metrics and the log).
import { formatDuration } from '../common/duration.ts';
import { ACTIVATE_AT, active, inProgress, lifePoint, lifetimes, ms, PREPARE_AT, prepared, WARNING_FRACTION, type StoreRecords } from './slots.ts';

export type AutoStep =
  | { readonly action: 'prepare' }
  | { readonly action: 'activate' }
  | { readonly action: 'retire' }
  | { readonly action: 'none'; readonly at?: number; readonly why: string };

export interface AutoOptions {
  /** Longest leaf lifetime the CA grants: the old intermediate retires this long after activation. */
  readonly maxLeafTtlMs: number;
}

/**
 * A retiring authority may have leaves until this time: the longest leaf issued just before its
 * successor was activated, plus a margin for clocks of CA processes that disagree a little
 * (a tenth of the lifetime, at most a minute).
 */
export function leavesGoneAt(activatedAt: number, maxLeafTtlMs: number): number {
  return activatedAt + maxLeafTtlMs + Math.min(60_000, maxLeafTtlMs / 10);
}

/**
 * The next step of automatic intermediate rotation at `now`: prepare at 1/2 of the active
 * intermediate's life, activate at 2/3, retire once its leaves are gone. Nothing while an operator's
 * rotation is in progress, and nothing that would not extend the active intermediate's life (the
 * root ends first: then only a root rotation helps, and health() says so).
 */
export function autoStep(r: StoreRecords, now: number, o: AutoOptions): AutoStep {
  const running = inProgress(r);
  if (running && !running.automatic) return { action: 'none', why: `a ${running.kind} rotation by the operator is in phase ${running.phase}` };
  const act = active(r);
  if (running?.phase === 'activated') {
    const at = leavesGoneAt(ms(running.activatedAt!), o.maxLeafTtlMs);
    return now >= at ? { action: 'retire' } : { action: 'none', at, why: 'waiting for the leaves of the retiring intermediate to expire' };
  }
  if (running?.phase === 'prepared') {
    const at = lifePoint(act.intermediate, ACTIVATE_AT);
    return now >= at ? { action: 'activate' } : { action: 'none', at, why: 'a prepared intermediate waits for 2/3 of the active one\'s life' };
  }
  const at = lifePoint(act.intermediate, PREPARE_AT);
  if (now < at) return { action: 'none', at, why: 'the active intermediate is in the first half of its life' };
  if (!act.root.keyInStore) return { action: 'none', why: `the root ${act.root.id} keeps its key offline; run \`tollgate ca rotate intermediate --root-key FILE\`` };
  const wouldEnd = Math.min(now + lifetimes(r).intermediate, ms(act.root.notAfter));
  if (wouldEnd <= ms(act.intermediate.notAfter)) return { action: 'none', why: `the root ${act.root.id} ends before a new intermediate could outlive the active one; rotate the root` };
  return { action: 'prepare' };
}

export type HealthState = 'ok' | 'warning' | 'degraded' | 'expired';
/** Numeric form for the tollgate_ca_expiry_warning gauge. */
export const HEALTH_LEVEL: Readonly<Record<HealthState, number>> = { ok: 0, warning: 1, degraded: 2, expired: 3 };

export interface Health {
  readonly state: HealthState;
  readonly detail: string;
}

/**
 * ok; warning from 1/2 of the active intermediate's life when nothing will rotate it (offline root,
 * or automatic rotation not prepared) and from 1/2 of the root's; degraded inside the warning window
 * (last 1/3 of life) of any active authority; expired once the active intermediate or root is.
 */
export function health(r: StoreRecords, now: number, o: { autoRotate: boolean }): Health {
  const act = active(r);
  const left = (a: { notAfter: string }) => formatDuration(ms(a.notAfter) - now);
  for (const a of [act.intermediate, act.root]) {
    if (now >= ms(a.notAfter)) return { state: 'expired', detail: `the active ${a.kind} ${a.id} expired at ${a.notAfter}; ${fix(a.kind, o.autoRotate)}` };
  }
  for (const a of [act.intermediate, act.root]) {
    if (now >= lifePoint(a, 1 - WARNING_FRACTION)) {
      return { state: 'degraded', detail: `the active ${a.kind} ${a.id} expires in ${left(a)} (${a.notAfter}), inside its warning window; ${fix(a.kind, o.autoRotate)}` };
    }
  }
  const i = act.intermediate;
  if (now >= lifePoint(i, PREPARE_AT) && !prepared(r, 'intermediate')) {
    const why = o.autoRotate ? 'automatic rotation has not prepared its successor' : 'the root key is offline';
    return { state: 'warning', detail: `the active intermediate ${i.id} is past half its life (expires in ${left(i)}) and ${why}; ${fix('intermediate', o.autoRotate)}` };
  }
  if (now >= lifePoint(act.root, PREPARE_AT)) {
    return { state: 'warning', detail: `the root ${act.root.id} is past half its life (expires in ${left(act.root)}); plan \`tollgate ca rotate root\`` };
  }
  return { state: 'ok', detail: `active root ${act.root.id} until ${act.root.notAfter}, intermediate ${i.id} until ${i.notAfter}` };
}

function fix(kind: 'root' | 'intermediate', autoRotate: boolean): string {
  if (kind === 'root') return 'run `tollgate ca rotate root`';
  return autoRotate ? 'check the CA log, or run `tollgate ca rotate intermediate`' : 'run `tollgate ca rotate intermediate --root-key FILE`';
}
