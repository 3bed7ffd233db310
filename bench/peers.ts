// Sidecar vs peers (PRODUCT.md §9): every contender pair measured in the same topology, run after run
// in interleaved order (odd runs forward, even runs reverse, to spread drift over contenders).
// Each phase is bounded and starts its own pair, so one failure costs one figure, not the run.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FILE_PATH, FILE_SIZE, startHttpBackend, startIperfServer, type Backend } from './peers-backends.ts';
import { direct, haproxy, nginx, stunnel, type Contender, type Pair } from './peers-contenders.ts';
import { measureIdle } from './peers-idle.ts';
import { iperf, sanityGet, wrk } from './peers-load.ts';
import { makePeerPki, type PeerPki } from './peers-pki.ts';
import { cpuSeconds, memory } from './peers-proc-stat.ts';
import { ensureTools, have, HOST, installCleanupHandlers, stopAll, type Log } from './peers-procs.ts';
import { median, type ContenderResult, type PeersResult, type Trial } from './peers-report.ts';
import { tollgateContender, type TollgateContender } from './peers-tollgate.ts';

export const CONTENDERS = ['direct', 'tollgate', 'haproxy', 'nginx', 'stunnel'] as const;

export interface PeersOptions {
  readonly quick: boolean;
  /** Full passes over all contenders (default 2, quick 1). */
  readonly runs?: number;
  /** Contender names to run (default all). */
  readonly only?: readonly string[];
  /** `sidecar run --workers N` for tollgate; null = the sidecar's default. */
  readonly workers: number | null;
  readonly log: Log;
}

interface Settings {
  readonly iperfSecs: number;
  readonly httpSecs: number;
  readonly warmSecs: number;
  readonly idleConns: number;
  readonly settleMs: number;
  readonly readyStarts: number;
}

const FULL: Settings = { iperfSecs: 8, httpSecs: 10, warmSecs: 2, idleConns: 1000, settleMs: 2000, readyStarts: 5 };
const QUICK: Settings = { iperfSecs: 2, httpSecs: 3, warmSecs: 1, idleConns: 300, settleMs: 1000, readyStarts: 5 };
const OUT = fileURLToPath(new URL('./out/peers/', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const msg = (e: unknown): string => (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ').trim();

/** CPU seconds of both sides of a pair so far. */
const pairCpu = (p: Pair): number => (p.client ? cpuSeconds(p.client.pid) : 0) + (p.server ? cpuSeconds(p.server.pid) : 0);

interface TrialContext {
  readonly c: Contender;
  readonly dir: string;
  readonly pki: PeerPki;
  readonly http: Backend | null;
  readonly s: Settings;
  readonly log: Log;
}

async function withPair<T>(x: TrialContext, phase: string, backendPort: number, f: (p: Pair) => Promise<T>): Promise<T> {
  const dir = join(x.dir, phase);
  mkdirSync(dir, { recursive: true });
  const pair = await x.c.start({ dir, backendPort, pki: x.pki, log: x.log });
  try {
    return await f(pair);
  } finally {
    await pair.stop();
  }
}

async function phaseIperf(x: TrialContext, t: Trial): Promise<void> {
  if (!have('iperf3')) return void t.notes.push('iperf3 missing');
  const srv = await startIperfServer(join(x.dir, 'iperf-backend'));
  try {
    await withPair(x, 'iperf', srv.port, async (p) => {
      x.log(`${x.c.name}: iperf3 -P1 ${x.s.iperfSecs}s`);
      const r = await iperf(p.inPort, x.s.iperfSecs, join(x.dir, 'iperf.json'));
      if ('error' in r) t.notes.push(`iperf3: ${r.error}`);
      else t.gbps = r.gbps;
    });
  } finally {
    await srv.proc.stop();
  }
}

async function phaseHttp(x: TrialContext, t: Trial): Promise<void> {
  if (!x.http || !have('wrk')) return void t.notes.push('no HTTP figures: the nginx backend or wrk is missing');
  await withPair(x, 'http', x.http.port, async (p) => {
    const bad = await sanityGet(p.inPort, FILE_PATH, FILE_SIZE);
    if (bad) throw new Error(`GET ${FILE_PATH} through the pair failed: ${bad}`);
    const url = `http://${HOST}:${p.inPort}${FILE_PATH}`;
    const out = (n: string): string => join(x.dir, `wrk-${n}.txt`);
    await wrk(url, { threads: 2, connections: 32, seconds: x.s.warmSecs }); // JIT, caches, buffers
    await sleep(500);

    x.log(`${x.c.name}: wrk keep-alive -t2 -c32 ${x.s.httpSecs}s`);
    let cpu0 = pairCpu(p);
    const ka = await wrk(url, { threads: 2, connections: 32, seconds: x.s.httpSecs, outFile: out('keepalive') });
    if ('error' in ka) t.notes.push(`keep-alive: ${ka.error}`);
    else {
      t.ka = ka;
      if (p.client) t.cpuUsPerReq = ((pairCpu(p) - cpu0) / ka.requests) * 1e6;
    }
    await sleep(500);

    x.log(`${x.c.name}: wrk paced ~1000 req/s ${x.s.httpSecs}s`);
    cpu0 = pairCpu(p);
    const paced = await wrk(url, { threads: 2, connections: 10, seconds: x.s.httpSecs, paced: true, outFile: out('paced') });
    if ('error' in paced) t.notes.push(`paced: ${paced.error}`);
    else {
      t.paced = paced;
      if (p.client) t.cpuUsPerReqPaced = ((pairCpu(p) - cpu0) / paced.requests) * 1e6;
    }
    await sleep(500);

    x.log(`${x.c.name}: wrk Connection: close -t2 -c32 ${x.s.httpSecs}s`);
    cpu0 = pairCpu(p);
    const close = await wrk(url, { threads: 2, connections: 32, seconds: x.s.httpSecs, close: true, outFile: out('close') });
    if ('error' in close) t.notes.push(`close: ${close.error}`);
    else {
      t.close = close;
      if (p.client) t.cpuUsPerConn = ((pairCpu(p) - cpu0) / close.requests) * 1e6;
    }
    if (p.client && p.server) {
      const [c, s] = [memory(p.client.pid), memory(p.server.pid)];
      t.hwmKb = { client: c.hwmKb, server: s.hwmKb };
      t.ussLoadedKb = { client: c.ussKb, server: s.ussKb };
    }
  });
}

async function phaseIdle(x: TrialContext, t: Trial): Promise<void> {
  if (!x.http) return void t.notes.push('no idle test: the nginx backend is missing');
  await withPair(x, 'idle', x.http.port, async (p) => {
    x.log(`${x.c.name}: ${x.s.idleConns} idle mTLS connections to the server side`);
    const settleMs = Math.max(x.s.settleMs, x.c.idleSettleMs ?? 0);
    t.idle = await measureIdle(p, { count: x.s.idleConns, settleMs, dir: join(x.dir, 'idle'), log: (line) => x.log(`${x.c.name}: ${line}`) });
    if (t.idle.failed) t.notes.push(`idle: ${t.idle.failed} of ${x.s.idleConns} connections failed`);
  });
}

async function runTrial(x: TrialContext, run: number): Promise<Trial> {
  const t: Trial = { run, notes: [] };
  const phases: [string, (x: TrialContext, t: Trial) => Promise<void>][] = [['http', phaseHttp], ['iperf', phaseIperf]];
  if (x.c.name !== 'direct') phases.push(['idle', phaseIdle]);
  for (const [name, f] of phases) {
    try {
      await f(x, t);
    } catch (e) {
      // The HTTP phase is the first to start a pair: its failure means the contender does not work here.
      if (name === 'http') {
        t.error = msg(e).slice(0, 400);
        x.log(`${x.c.name}: ${t.error}`);
        return t;
      }
      t.notes.push(`${name}: ${msg(e).slice(0, 300)}`);
      x.log(`${x.c.name}: ${name} failed: ${msg(e)}`);
    }
  }
  if (x.c.name === 'tollgate' && x.http) {
    try {
      x.log(`tollgate: start-to-ready x${x.s.readyStarts}`);
      t.readyMs = median(await (x.c as TollgateContender).startToReady(join(x.dir, 'ready'), x.http.port, x.s.readyStarts));
    } catch (e) {
      t.notes.push(`start-to-ready: ${msg(e).slice(0, 300)}`);
    }
  }
  return t;
}

function version(cmd: string, args: string[], re: RegExp): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  const m = re.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`);
  return m?.[1] ?? 'n/a';
}

function envLines(s: Settings, o: PeersOptions, runs: number): string[] {
  const cpu = cpus();
  return [
    `- host: ${cpu.length} CPUs (${cpu[0]?.model ?? '?'}), load average ${loadavg()[0]!.toFixed(1)} at the start (other work on the machine moves every rate); node ${process.version} (OpenSSL ${process.versions.openssl}); openssl CLI ${version('openssl', ['version'], /OpenSSL (\S+)/)}`,
    `- haproxy ${version('haproxy', ['-v'], /version (\S+)/)}, nginx ${version('nginx', ['-v'], /nginx\/(\S+)/)}, stunnel ${version('stunnel4', ['-version'], /stunnel (\S+)/)}, wrk ${version('wrk', ['-v'], /wrk (\S+)/)}, iperf3 ${version('iperf3', ['-v'], /iperf (\S+)/)}`,
    `- settings: ${o.quick ? 'quick' : 'full'}, runs ${runs}, iperf3 ${s.iperfSecs} s, each wrk run ${s.httpSecs} s (warm-up ${s.warmSecs} s), ${s.idleConns} idle connections, tollgate workers ${o.workers ?? 'default'}`,
  ];
}

export async function runPeersBench(o: PeersOptions): Promise<PeersResult> {
  const { log } = o;
  const s = o.quick ? QUICK : FULL;
  const runs = o.runs ?? (o.quick ? 1 : 2);
  const unknown = (o.only ?? []).filter((n) => !(CONTENDERS as readonly string[]).includes(n));
  if (unknown.length) throw new Error(`unknown contender(s) ${unknown.join(', ')}; choose from ${CONTENDERS.join(', ')}`);
  const all: Contender[] = [direct, tollgateContender({ workers: o.workers }), haproxy, nginx, stunnel];
  const chosen = all.filter((c) => !o.only?.length || o.only.includes(c.name));

  installCleanupHandlers(log);
  await ensureTools(log);
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });

  const results: ContenderResult[] = [];
  const orders: string[][] = [];
  try {
    const ready: Contender[] = [];
    for (const c of chosen) {
      let why = c.missing();
      if (!why && c.prepare) {
        try {
          await c.prepare(join(OUT, `${c.name}-setup`), log);
        } catch (e) {
          why = msg(e).slice(0, 400);
        }
      }
      if (why) log(`${c.name}: not run: ${why}`);
      results.push({ name: c.name, skipped: why, trials: [] });
      if (!why) ready.push(c);
    }
    let http: Backend | null = null;
    if (have('nginx')) {
      try {
        http = await startHttpBackend(join(OUT, 'backend-http'));
      } catch (e) {
        log(`HTTP backend did not start, no HTTP figures: ${msg(e)}`);
      }
    } else log('nginx is missing: no HTTP backend, no HTTP figures');

    for (let run = 1; run <= runs; run++) {
      const pki = makePeerPki(join(OUT, `run${run}`, 'pki')); // fresh 1-hour leaves per run
      const order = run % 2 ? ready : [...ready].reverse();
      orders.push(order.map((c) => c.name));
      log(`run ${run}/${runs}: ${order.map((c) => c.name).join(' ')}`);
      for (const c of order) {
        const x: TrialContext = { c, dir: join(OUT, `run${run}`, c.name), pki, http, s, log };
        results.find((r) => r.name === c.name)!.trials.push(await runTrial(x, run));
      }
    }
  } finally {
    await stopAll();
  }
  return { contenders: results, runs, env: envLines(s, o, runs), orders };
}
