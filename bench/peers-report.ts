// Peers report: the figures, their median and spread over runs, ratios to haproxy, and the
// markdown that run.ts puts into bench/results.md. Pure functions over the measured trials.
import type { IdleResult } from './peers-idle.ts';
import type { WrkResult } from './peers-load.ts';

export interface Sides {
  readonly client: number;
  readonly server: number;
}

/** One contender in one run. Missing fields = that measurement failed (see notes). */
export interface Trial {
  readonly run: number;
  error?: string;
  readonly notes: string[];
  gbps?: number;
  ka?: WrkResult;
  paced?: WrkResult;
  close?: WrkResult;
  cpuUsPerReq?: number;
  /** CPU per request while paced at ~1,000 req/s: the basis of Istio's "vCPU per 1,000 req/s". */
  cpuUsPerReqPaced?: number;
  cpuUsPerConn?: number;
  /** After the whole HTTP phase (keep-alive, paced, close). */
  hwmKb?: Sides;
  ussLoadedKb?: Sides;
  idle?: IdleResult;
  /** Median spawn-to-ready of this run's sidecar starts. */
  readyMs?: number;
}

export interface ContenderResult {
  readonly name: string;
  /** Why it did not run at all, or null. */
  readonly skipped: string | null;
  readonly trials: Trial[];
}

/**
 * Every figure the report promises that no run produced, one line each ("haproxy: no keep-alive
 * req/s (run 1: wrk: timeout)"). Empty when each contender that was asked for ran and gave every
 * figure at least once: the smoke check CI runs (`npm run bench -- --quick`) fails otherwise.
 */
export function missingFigures(r: PeersResult): string[] {
  const out: string[] = [];
  for (const c of r.contenders) {
    if (c.skipped) {
      out.push(`${c.name}: not run: ${c.skipped}`);
      continue;
    }
    const proxy = c.name !== 'direct';
    const wanted: [string, (t: Trial) => unknown][] = [
      ['keep-alive req/s', (t) => t.ka],
      ['added latency at 1k req/s', (t) => t.paced],
      ['new mTLS conn/s', (t) => t.close],
      ['1-stream Gbit/s', (t) => t.gbps],
    ];
    if (proxy) {
      wanted.push(['CPU µs/req', (t) => t.cpuUsPerReq], ['CPU µs/req at 1k req/s', (t) => t.cpuUsPerReqPaced], ['CPU µs/new conn', (t) => t.cpuUsPerConn], ['memory', (t) => t.hwmKb], ['idle connections', (t) => t.idle]);
    }
    if (c.name === 'tollgate') wanted.push(['start-to-ready', (t) => t.readyMs]);
    const why = c.trials.map((t) => [t.error, ...t.notes].filter(Boolean).map((n) => `run ${t.run}: ${n}`).join('; ')).filter(Boolean).join('; ');
    for (const [label, get] of wanted) {
      if (!c.trials.some((t) => { const v = get(t); return v !== undefined && (typeof v !== 'number' || Number.isFinite(v)); })) {
        out.push(`${c.name}: no ${label}${why ? ` (${why})` : ''}`);
      }
    }
  }
  return out;
}

export interface PeersResult {
  readonly contenders: ContenderResult[];
  readonly runs: number;
  /** Machine, versions, settings: markdown bullet lines. */
  readonly env: string[];
  readonly orders: string[][];
}

type Better = 'higher' | 'lower';
export interface Figure {
  readonly key: string;
  readonly label: string;
  readonly digits: number;
  readonly better: Better;
  /** §9 target for tollgate, as text. */
  readonly target?: string;
  /** Value in one trial; `direct` is the same run's direct trial (for "added" latency). */
  readonly get: (t: Trial, direct: Trial | undefined) => number | undefined;
}

const mib = (kb: number | undefined): number | undefined => (kb === undefined ? undefined : kb / 1024);
const added = (p: 'p50Ms' | 'p99Ms') => (t: Trial, d: Trial | undefined): number | undefined =>
  t.paced && d?.paced ? (t.paced[p] - d.paced[p]) * 1000 : undefined;

export const THROUGHPUT: Figure[] = [
  { key: 'kaRps', label: 'keep-alive req/s', digits: 0, better: 'higher', target: '≥ 1.0× with 2 workers', get: (t) => t.ka?.rps },
  { key: 'kaP50', label: 'keep-alive p50 ms', digits: 2, better: 'lower', get: (t) => t.ka?.p50Ms },
  { key: 'kaP99', label: 'keep-alive p99 ms', digits: 2, better: 'lower', get: (t) => t.ka?.p99Ms },
  { key: 'connRate', label: 'new mTLS conn/s', digits: 0, better: 'higher', get: (t) => t.close?.rps },
  { key: 'addP50', label: 'added p50 µs @1k req/s', digits: 0, better: 'lower', target: '≤ 1.0× with 2 workers', get: added('p50Ms') },
  { key: 'addP99', label: 'added p99 µs @1k req/s', digits: 0, better: 'lower', target: '≤ 1.0× with 2 workers', get: added('p99Ms') },
  { key: 'gbps', label: '1-stream Gbit/s', digits: 2, better: 'higher', target: '≥ 1.0× with 2 workers', get: (t) => t.gbps },
];

export const COST: Figure[] = [
  { key: 'cpuReq', label: 'CPU µs/req (both proxies)', digits: 1, better: 'lower', target: '≤ 1.5×', get: (t) => t.cpuUsPerReq },
  { key: 'cpuPaced', label: 'CPU µs/req @1k req/s (both)', digits: 1, better: 'lower', target: '≤ 200 (0.5× Istio per sidecar)', get: (t) => t.cpuUsPerReqPaced },
  { key: 'cpuConn', label: 'CPU µs/new conn (both)', digits: 0, better: 'lower', target: '≤ 1.5×', get: (t) => t.cpuUsPerConn },
  { key: 'hwmC', label: 'peak RSS client MiB', digits: 1, better: 'lower', get: (t) => mib(t.hwmKb?.client) },
  { key: 'hwmS', label: 'peak RSS server MiB', digits: 1, better: 'lower', get: (t) => mib(t.hwmKb?.server) },
  { key: 'ussIdleC', label: 'USS idle client MiB', digits: 1, better: 'lower', target: '≤ 25 MiB', get: (t) => mib(t.idle?.clientUssIdleKb) },
  { key: 'ussIdleS', label: 'USS idle server MiB', digits: 1, better: 'lower', target: '≤ 25 MiB', get: (t) => mib(t.idle?.serverUssIdleKb) },
  { key: 'ussLoadC', label: 'USS after load client MiB', digits: 1, better: 'lower', get: (t) => mib(t.ussLoadedKb?.client) },
  { key: 'ussLoadS', label: 'USS after load server MiB', digits: 1, better: 'lower', get: (t) => mib(t.ussLoadedKb?.server) },
  { key: 'kibConn', label: 'KiB per idle mTLS conn (server)', digits: 1, better: 'lower', target: '≤ 35 KiB', get: (t) => t.idle?.kbPerConn },
  { key: 'ready', label: 'sidecar start-to-ready ms', digits: 0, better: 'lower', target: '≤ 200 ms', get: (t) => t.readyMs },
];

export const FIGURES = [...THROUGHPUT, ...COST];

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface Stat {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

/** Median and range of one figure for one contender over its runs, or null when never measured. */
export function stat(result: PeersResult, name: string, f: Figure): Stat | null {
  const c = result.contenders.find((x) => x.name === name);
  const direct = result.contenders.find((x) => x.name === 'direct');
  if (!c) return null;
  const xs = c.trials
    .map((t) => f.get(t, direct?.trials.find((d) => d.run === t.run)))
    .filter((v): v is number => v !== undefined && Number.isFinite(v));
  return xs.length ? { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length } : null;
}

const group = (v: number, digits: number): string => v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** "15,445 ±11%": median, then half the range over runs as a share of the median. */
export function fmtStat(s: Stat | null, digits: number): string {
  if (!s) return '–';
  const v = group(s.median, digits);
  if (s.n < 2 || s.median === 0) return v;
  return `${v} ±${Math.round((50 * (s.max - s.min)) / Math.abs(s.median))}%`;
}

function table(head: string[], rows: string[][], align?: string[]): string {
  return [`| ${head.join(' | ')} |`, `|${(align ?? head.map(() => '---')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

const measured = (r: PeersResult): ContenderResult[] => r.contenders.filter((c) => !c.skipped && c.trials.some((t) => !t.error));

function figureTable(r: PeersResult, figs: Figure[]): string {
  return table(['contender', ...figs.map((f) => f.label)], measured(r).map((c) => [c.name, ...figs.map((f) => fmtStat(stat(r, c.name, f), f.digits))]), ['---', ...figs.map(() => '--:')]);
}

/** Rows = figures; columns = haproxy's value, tollgate's value, each proxy's median ÷ haproxy's, the target. */
export function ratioTable(r: PeersResult): string {
  const names = measured(r).map((c) => c.name);
  const others = names.filter((n) => n !== 'haproxy' && n !== 'direct').sort((a, b) => Number(b === 'tollgate') - Number(a === 'tollgate'));
  if (!names.includes('haproxy') || others.length === 0) return '_No ratios: haproxy and at least one other proxy must both run._';
  const tollgate = names.includes('tollgate');
  const rows = FIGURES.filter((f) => !['kaP50', 'kaP99'].includes(f.key)).map((f) => {
    const h = stat(r, 'haproxy', f);
    const ratios = others.map((n) => {
      const s = stat(r, n, f);
      return s && h && h.median !== 0 ? `${(s.median / h.median).toFixed(2)}×` : '–';
    });
    return [f.label, fmtStat(h, f.digits), ...(tollgate ? [fmtStat(stat(r, 'tollgate', f), f.digits)] : []), ...ratios, f.target ?? ''];
  });
  const head = ['figure', 'haproxy', ...(tollgate ? ['tollgate'] : []), ...others.map((n) => `${n} ÷ haproxy`), 'tollgate target (PRODUCT.md §9)'];
  return table(head, rows, ['---', '--:', ...(tollgate ? ['--:'] : []), ...others.map(() => '--:'), '---']);
}

/** Contenders that did not run at all, with the reason. */
function notRun(r: PeersResult): string[] {
  return r.contenders.flatMap((c) => {
    if (c.skipped) return [`- ${c.name}: not run (${c.skipped})`];
    if (!c.trials.some((t) => !t.error)) return [`- ${c.name}: could not run (${c.trials[0]?.error ?? 'no trial'})`];
    return [];
  });
}

function perRunTable(r: PeersResult): string {
  const rows: string[][] = [];
  for (const c of r.contenders) {
    for (const t of c.trials) {
      const e = (w: WrkResult | undefined): string => (w ? String(w.errors) : '–');
      const fmt = (v: number | undefined, d: number): string => (v === undefined || !Number.isFinite(v) ? '–' : group(v, d));
      rows.push([c.name, String(t.run), fmt(t.ka?.rps, 0), fmt(t.close?.rps, 0), fmt(t.gbps, 2), fmt(t.cpuUsPerReq, 1), fmt(t.cpuUsPerConn, 0),
        `${e(t.ka)} / ${e(t.paced)} / ${e(t.close)}`, [t.error, ...t.notes].filter(Boolean).join('; ').replace(/\|/g, '/').slice(0, 300)]);
    }
  }
  return table(['contender', 'run', 'keep-alive req/s', 'new conn/s', 'Gbit/s', 'CPU µs/req', 'CPU µs/conn', 'wrk errors ka / paced / close', 'notes'], rows);
}

/** The console table: both figure tables and the ratios. */
export function peersTables(r: PeersResult): string {
  const missing = notRun(r);
  return [figureTable(r, THROUGHPUT), '', figureTable(r, COST), '', ratioTable(r), ...(missing.length ? ['', ...missing] : [])].join('\n');
}

/** The "## Sidecar vs peers" section of bench/results.md. */
export function peersSection(r: PeersResult): string {
  const missing = notRun(r);
  return `## Sidecar vs peers

Topology: \`wrk/iperf3 → client-side proxy (plaintext in, mTLS out) → server-side proxy (mTLS in, client cert
required, plaintext out) → backend\`, all on 127.0.0.1; TLS 1.3, one worker each (stunnel: one thread per
connection), no session resumption, ECDSA P-256 certificates in the same chain for all (root → intermediate →
leaf; each side sends leaf + intermediate). Backend: nginx (1 worker) serving a 1 KiB file, or \`iperf3 -s\`.
Each cell: median over ${r.runs} run(s) ± half the range as a share of the median. Run order per run:
${r.orders.map((o, i) => `${i + 1}: ${o.join(' ')}`).join('; ')}.

${r.env.join('\n')}
${missing.length ? `\n${missing.join('\n')}\n` : ''}
![keep-alive req/s, new conn/s and CPU per request per contender](results.svg)

### Throughput and latency

${figureTable(r, THROUGHPUT)}

### Cost

${figureTable(r, COST)}

### Ratios to haproxy

${ratioTable(r)}

### Per run

${perRunTable(r)}

How measured: keep-alive = \`wrk -t2 -c32 --latency\` after a short warm-up; new conn/s = the same with
\`Connection: close\` (a full mTLS handshake per request); added latency = \`wrk -t2 -c10\` with paced.lua
(10 ms think time per connection, ~1,000 req/s) minus direct in the same run; throughput = \`iperf3 -P1\`
client → server. CPU = utime+stime from /proc/PID/stat of both proxies' process trees over the keep-alive
(per request), paced (per request at ~1,000 req/s; Istio publishes 0.20 vCPU per 1,000 req/s per sidecar,
i.e. 200 µs per request per sidecar) and close (per connection) runs. Peak RSS = VmHWM, USS = Private_Clean+Private_Dirty from
smaps_rollup, summed over each side's process tree; "after load" is read after the close run. Idle
memory is read once a freshly started pair has been quiet for its settle time (Tollgate: 20 s, since V8
gives start-up garbage back about 15 s after a process goes quiet; a sidecar idles for hours). Idle
connections: a separate Node client opens N mTLS connections (client certificate, 32 handshakes in flight) to
that server side, which settles again before it is read; KiB per connection = USS growth / N. Start-to-ready: spawn of a server-side
\`tollgate sidecar run\` to its ready line (fresh join token each), median of 5 per run. All proxies share
the machine's CPUs with wrk and the backend: rates are whole-system figures; CPU per request/connection
is the more portable one. Raw tool output: \`bench/out/peers/\` (not committed).
`;
}
