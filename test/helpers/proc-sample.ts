// What a running process holds, read from outside it: open file descriptors (/proc/PID/fd), resident
// memory (VmRSS in /proc/PID/status) and, from its own /metrics, the V8 heap in use (prom-client's
// default metric nodejs_heap_size_used_bytes, which the CA's and the sidecar's registries collect).
// Linux only (the soak and its test run here and in CI on Linux).
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcSample {
  readonly pid: number;
  readonly fds: number;
  readonly rssBytes: number;
  /** null when /metrics did not answer or does not carry the heap gauge. */
  readonly heapUsedBytes: number | null;
}

export const HEAP_METRIC = 'nodejs_heap_size_used_bytes';

/** Open file descriptors of PID (entries of /proc/PID/fd). */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** VmRSS of PID in bytes. */
export function residentBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/** nodejs_heap_size_used_bytes from the Prometheus text at `metricsUrl`, or null. */
export async function heapUsedBytes(metricsUrl: string): Promise<number | null> {
  try {
    const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) })).text();
    const line = text.split('\n').find((l) => l.startsWith(`${HEAP_METRIC} `));
    return line ? Number(line.slice(HEAP_METRIC.length + 1)) : null;
  } catch {
    return null;
  }
}

export async function sampleProcess(pid: number, metricsUrl: string): Promise<ProcSample> {
  // The heap first: the fetch opens a connection in the sampled process, which then shows in its fds
  // only while it is open; reading /proc afterwards keeps that out of the count as far as possible.
  const heapUsed = await heapUsedBytes(metricsUrl);
  return { pid, fds: openFds(pid), rssBytes: residentBytes(pid), heapUsedBytes: heapUsed };
}

/** start / end / max of one figure over a run. */
export interface Span {
  start: number | null;
  end: number | null;
  max: number | null;
}

export interface ProcFigures {
  readonly name: string;
  /** Every PID the role had (a restarted CA has two). */
  readonly pids: number[];
  readonly fds: Span;
  readonly rssBytes: Span;
  readonly heapUsedBytes: Span;
  samples: number;
}

export function emptyFigures(name: string): ProcFigures {
  const span = (): Span => ({ start: null, end: null, max: null });
  return { name, pids: [], fds: span(), rssBytes: span(), heapUsedBytes: span(), samples: 0 };
}

/** Fold one sample into `f`: `at` says whether it is the start or the end point (max is kept always). */
export function record(f: ProcFigures, s: ProcSample, at?: 'start' | 'end'): void {
  if (!f.pids.includes(s.pid)) f.pids.push(s.pid);
  f.samples++;
  const fold = (span: Span, v: number | null): void => {
    if (v === null) return;
    span.max = span.max === null ? v : Math.max(span.max, v);
    if (at) span[at] = v;
  };
  fold(f.fds, s.fds);
  fold(f.rssBytes, s.rssBytes);
  fold(f.heapUsedBytes, s.heapUsedBytes);
}
