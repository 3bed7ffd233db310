// The soak's table (scripts/soak.ts prints it; test/soak.test.ts reports it as a diagnostic).
import type { Span } from './proc-sample.ts';
import type { SoakResult } from './soak.ts';

const n = (v: number): string => v.toLocaleString('en-US');
const mib = (v: number | null): string => (v === null ? '-' : (v / 1024 / 1024).toFixed(1));
const count = (v: number | null): string => (v === null ? '-' : String(v));
const span = (s: Span, f: (v: number | null) => string): string => `${f(s.start)} / ${f(s.end)} / ${f(s.max)}`;

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/** What happened to one process besides its figures. */
function events(r: SoakResult, name: string): string {
  const renew = r.renewals[name];
  const renewals = renew ? `renewals ${renew.ok} ok, ${renew.failed} failed` : '';
  if (name === 'ca') return `restarts ${r.caRestarts.length}`;
  if (name === 'orders-sidecar') return `${renewals}; reloads ${r.reloads.applied} applied, ${r.reloads.refused} refused`;
  return renewals;
}

export function formatSoak(r: SoakResult): string {
  const rows = [
    ['process', 'pid', 'fds start/end/max', 'heap MiB start/end/max', 'RSS MiB start/end/max', 'during the load'],
    ...r.processes.map((p) => [p.name, p.pids.join('→'), span(p.fds, count), span(p.heapUsedBytes, mib), span(p.rssBytes, mib), events(r, p.name)]),
  ];
  const q = r.requests;
  const reasons = Object.entries(q.reasons).map(([k, v]) => `${v} × ${k}`).join('; ');
  const rl = r.reloads;
  const restarts = r.caRestarts.map((c) => `SIGKILL, down ${(c.downMs / 1000).toFixed(1)} s, serving again ${(c.restartMs / 1000).toFixed(1)} s after the kill`).join('; ');
  return [
    table(rows),
    '',
    `load ${(r.loadMs / 1000).toFixed(0)} s after a warm-up, SVIDs of ${r.ttl}; start and end sampled with no proxied connection open`,
    `requests: ${n(q.ok)} ok (keep-alive ${n(q.byLane.keepalive.ok)}, new connection ${n(q.byLane.fresh.ok)}), ${n(q.failed)} failed${reasons ? ` (${reasons})` : ''}`,
    `policy: ${rl.writes} files written (${rl.changes} with a changed allow-list), ${rl.sighups} SIGHUPs (${rl.sighupsSeen} logged), ${rl.applied} applied, ${rl.refused} refused`,
    `CA restarts: ${r.caRestarts.length}${restarts ? ` (${restarts})` : ''}`,
    `connections closed at a peer certificate's notAfter: ${r.certExpiryCloses}; failed requests just after such a close: ${r.failedAtNotAfter}; requests sent again after such a close crossed them on a reused keep-alive connection: ${r.requests.retried} (${r.retriedAtNotAfter} just after a close)`,
    `descriptor check: end <= start + ${r.fdSlack} for every process`,
    r.problems.length === 0 ? 'PASS' : `FAIL:\n${r.problems.map((p) => `  - ${p}`).join('\n')}`,
  ].join('\n');
}
