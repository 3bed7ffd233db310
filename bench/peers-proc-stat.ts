// /proc sampling of a proxy's process tree: CPU time (utime+stime, all threads), peak RSS (VmHWM)
// and private memory (USS = Private_Clean + Private_Dirty). A "side" is the process we started plus
// its descendants (nginx master + worker, tollgate with --workers), so every figure covers the tree.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null; // the process went away between listing and reading
  }
}

/** Fields after the "(comm)" of /proc/PID/stat; comm may hold spaces and parentheses. */
function statFields(pid: number): string[] | null {
  const s = read(`/proc/${pid}/stat`);
  if (!s) return null;
  return s.slice(s.lastIndexOf(')') + 2).split(' ');
}

/** pid and all its live descendants. */
export function treePids(root: number): number[] {
  if (root <= 0) return [];
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    const ppid = f ? Number(f[1]) : NaN; // field 4 of stat = index 1 after comm
    if (!Number.isFinite(ppid)) continue;
    const list = children.get(ppid) ?? [];
    list.push(Number(name));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out;
}

let clkTck = 0;
function ticksPerSecond(): number {
  if (!clkTck) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/**
 * CPU seconds used by the tree so far: utime+stime of every live process plus cutime+cstime
 * (children that already exited and were reaped still count).
 */
export function cpuSeconds(root: number): number {
  let ticks = 0;
  for (const pid of treePids(root)) {
    const f = statFields(pid);
    if (!f) continue;
    // utime, stime, cutime, cstime are stat fields 14-17 (indexes 11-14 after comm)
    ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return ticks / ticksPerSecond();
}

function kbField(text: string | null, key: string): number {
  if (!text) return 0;
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

export interface Memory {
  /** Peak RSS, summed over the tree (shared pages count once per process). */
  readonly hwmKb: number;
  /** Private memory, summed over the tree: what the proxy costs beyond shared libraries. */
  readonly ussKb: number;
}

export function memory(root: number): Memory {
  let hwmKb = 0;
  let ussKb = 0;
  for (const pid of treePids(root)) {
    hwmKb += kbField(read(`/proc/${pid}/status`), 'VmHWM');
    const r = read(`/proc/${pid}/smaps_rollup`);
    ussKb += kbField(r, 'Private_Clean') + kbField(r, 'Private_Dirty');
  }
  return { hwmKb, ussKb };
}
