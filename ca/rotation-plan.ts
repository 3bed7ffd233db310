// `tollgate ca rotate`: the plan (`--dry-run`), the events the driver emits (`--json` prints them one
// per line), and their human form (the live progress line). Pure.
import { formatDuration } from '../common/duration.ts';
import { leavesGoneAt } from './schedule.ts';
import { active, inProgress, lifetimes, ms, type AuthorityKind, type RotationPhase, type StoreRecords } from './slots.ts';

export interface PlanStep {
  readonly step: 'prepare' | 'wait-convergence' | 'activate' | 'wait-leaves' | 'retire';
  /** When it happens at the earliest (or, for waits, by when they end at the latest). */
  readonly at: string;
  readonly detail: string;
}

export type RotationEvent =
  | { readonly event: 'plan'; readonly kind: AuthorityKind; readonly resume: boolean; readonly steps: readonly PlanStep[] }
  | { readonly event: 'phase'; readonly kind: AuthorityKind; readonly phase: RotationPhase; readonly old: readonly string[]; readonly new: readonly string[]; readonly bundle_version: number; readonly time: string }
  | {
      readonly event: 'progress';
      readonly phase: RotationPhase;
      readonly waiting_for: 'convergence' | 'leaves';
      /** Sidecars holding the new bundle / all live, not stale ones (convergence waits). */
      readonly converged: number | null;
      readonly total: number | null;
      readonly stale: number | null;
      /** Live leaves still chaining to the old authority (leaf waits). */
      readonly old_leaves: number | null;
      readonly time_left_seconds: number;
      readonly note: string | null;
    }
  | { readonly event: 'warning'; readonly message: string }
  | { readonly event: 'done'; readonly kind: AuthorityKind; readonly active: readonly string[]; readonly retired: readonly string[]; readonly bundle_version: number; readonly time: string };

export interface PlanOptions {
  readonly kind: AuthorityKind;
  readonly now: number;
  readonly maxLeafTtlMs: number;
  readonly timeoutMs: number;
}

const at = (t: number) => new Date(t).toISOString();

/** What `ca rotate` will do from the records' current state, with dates. */
export function planRotation(r: StoreRecords, o: PlanOptions): PlanStep[] {
  const running = inProgress(r);
  const steps: PlanStep[] = [];
  const act = active(r);
  const life = lifetimes(r);
  let t = o.now;
  if (!running) {
    const root = o.kind === 'root'
      ? `a new root valid until ${at(o.now + life.root)}, cross-signed by ${act.root.id}, and its intermediate`
      : `a new intermediate signed by ${act.root.id}, valid until ${at(Math.min(o.now + life.intermediate, ms(act.root.notAfter)))}`;
    steps.push({ step: 'prepare', at: at(t), detail: `create ${root}, in slot prepared${o.kind === 'root' ? '; the bundle gains the new root (a new bundle version, pushed to every sidecar)' : ''}` });
  }
  if (!running || running.phase === 'prepared') {
    if (o.kind === 'root') {
      steps.push({ step: 'wait-convergence', at: at(t + o.timeoutMs), detail: 'wait until every live sidecar reports the new bundle (stale ones are not waited for); at the latest by this time, then stop' });
    }
    steps.push({ step: 'activate', at: at(t), detail: `the new ${o.kind} starts issuing; the old one is retiring (no longer issues, still trusted)${o.kind === 'root' ? '; the new root moves first in the bundle' : ''}` });
  }
  if (running?.phase === 'activated') t = ms(running.activatedAt!);
  if (!running || running.phase !== 'done') {
    const gone = leavesGoneAt(t, o.maxLeafTtlMs);
    steps.push({ step: 'wait-leaves', at: at(gone), detail: `wait until no live leaf chains to the old ${o.kind}; at the latest until its longest leaf (${formatDuration(o.maxLeafTtlMs)}) has expired` });
    steps.push({ step: 'retire', at: at(gone), detail: o.kind === 'root' ? 'the old root and its intermediates are retired and leave the bundle (a new bundle version)' : 'the old intermediate is retired' });
  }
  return steps;
}

function secondsLeft(s: number): string {
  return s <= 0 ? 'no time left' : `${formatDuration(s * 1000)} left`;
}

/** One line for humans per event (the progress line is rewritten in place on a terminal). */
export function formatRotationEvent(e: RotationEvent): string {
  switch (e.event) {
    case 'plan':
      return [`plan (${e.resume ? 'resuming' : 'new'} ${e.kind} rotation):`, ...e.steps.map((s, i) => `  ${i + 1}. ${s.step.padEnd(17)} ${s.at}  ${s.detail}`)].join('\n');
    case 'phase':
      return `${e.kind} rotation: phase ${e.phase} (${e.old.join(',')} → ${e.new.join(',')}), bundle version ${e.bundle_version}, ${e.time}`;
    case 'progress': {
      const what = e.waiting_for === 'convergence'
        ? `sidecars ${e.converged ?? '?'}/${e.total ?? '?'} converged, ${e.stale ?? '?'} stale`
        : `${e.old_leaves === null ? 'old leaves unknown (no --ca-admin): waiting for the longest leaf to expire' : `${e.old_leaves} live leaves on the old authority`}`;
      return `phase ${e.phase} · ${what} · ${secondsLeft(e.time_left_seconds)}${e.note ? ` · ${e.note}` : ''}`;
    }
    case 'warning':
      return `warning: ${e.message}`;
    case 'done':
      return `done: active ${e.active.join(', ')}; retired ${e.retired.join(', ')}; bundle version ${e.bundle_version}`;
  }
}

/**
 * Print events: one JSON object per line with `json`; on a terminal the progress line is rewritten
 * in place; elsewhere (a log, CI) a progress line is printed when what it says changes, or every minute.
 */
export function rotationPrinter(o: { write: (s: string) => void; json: boolean; tty: boolean; now: () => number }): (e: RotationEvent) => void {
  let open = false;
  let last = '';
  let lastAt = -Infinity;
  return (e) => {
    if (o.json) return o.write(`${JSON.stringify(e)}\n`);
    const line = formatRotationEvent(e);
    if (e.event === 'progress') {
      if (o.tty) {
        o.write(`\r\x1b[2K${line}`);
        open = true;
        return;
      }
      const key = JSON.stringify({ ...e, time_left_seconds: 0 });
      if (key === last && o.now() - lastAt < 60_000) return;
      last = key;
      lastAt = o.now();
      return o.write(`${line}\n`);
    }
    if (open) o.write('\n');
    open = false;
    o.write(`${line}\n`);
  };
}
