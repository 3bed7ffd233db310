// Load generators (wrk, iperf3) run bounded in time, and their output parsed.
import { request } from 'node:http';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HOST, runBounded } from './peers-procs.ts';

export const PACED_LUA = fileURLToPath(new URL('./paced.lua', import.meta.url));

export interface WrkResult {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly requests: number;
  /** Socket errors plus non-2xx answers. */
  readonly errors: number;
}

const toMs = (v: number, unit: string): number => v * ({ us: 0.001, ms: 1, s: 1000, m: 60_000 }[unit] ?? NaN);

export function parseWrk(txt: string): WrkResult | null {
  const num = (re: RegExp): number => Number(re.exec(txt)?.[1] ?? NaN);
  const pct = (p: number): number => {
    const m = new RegExp(`^\\s+${p}(?:\\.0+)?%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(txt);
    return m ? toMs(Number(m[1]), m[2]!) : NaN;
  };
  const rps = num(/Requests\/sec:\s+([\d.]+)/);
  if (Number.isNaN(rps)) return null;
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(txt);
  const non2xx = num(/Non-2xx or 3xx responses: (\d+)/);
  const errors = (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + (Number.isNaN(non2xx) ? 0 : non2xx);
  return { rps, p50Ms: pct(50), p99Ms: pct(99), requests: num(/(\d+) requests in/), errors };
}

export interface WrkOptions {
  readonly threads: number;
  readonly connections: number;
  readonly seconds: number;
  /** Send `Connection: close`: one new connection (and one full mTLS handshake) per request. */
  readonly close?: boolean;
  /** Paced: each connection waits 10 ms before every request (paced.lua). */
  readonly paced?: boolean;
  /** Raw output is kept here. */
  readonly outFile?: string;
}

export async function wrk(url: string, o: WrkOptions): Promise<WrkResult | { error: string }> {
  const args = [`-t${o.threads}`, `-c${o.connections}`, `-d${o.seconds}s`, '--timeout', '5s', '--latency'];
  if (o.close) args.push('-H', 'Connection: close');
  if (o.paced) args.push('-s', PACED_LUA);
  args.push(url);
  const r = await runBounded('wrk', args, (o.seconds + 30) * 1000);
  if (o.outFile) writeFileSync(o.outFile, `$ wrk ${args.join(' ')}\n${r.stdout}${r.stderr}`);
  const parsed = parseWrk(r.stdout);
  return parsed ?? { error: `wrk exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(-300)}` };
}

/** One-stream bulk throughput client -> server, Gbit/s received. */
export async function iperf(port: number, seconds: number, outFile?: string): Promise<{ gbps: number } | { error: string }> {
  const args = ['-c', HOST, '-p', String(port), '-t', String(seconds), '-P', '1', '-J', '--connect-timeout', '5000'];
  const r = await runBounded('iperf3', args, (seconds + 30) * 1000);
  if (outFile) writeFileSync(outFile, r.stdout + r.stderr);
  try {
    const j = JSON.parse(r.stdout) as { error?: string; end?: { sum_received?: { bits_per_second?: number } } };
    if (j.error) return { error: j.error };
    const bps = j.end?.sum_received?.bits_per_second;
    return bps === undefined ? { error: 'no sum_received in iperf3 output' } : { gbps: bps / 1e9 };
  } catch {
    return { error: `iperf3 exit ${r.code}: ${r.stderr.trim().slice(-300)}` };
  }
}

/** One GET on a fresh connection; the pair is usable when it returns 200 with the whole file. */
export function sanityGet(port: number, path: string, size: number, timeoutMs = 5000): Promise<string | null> {
  return new Promise((resolve) => {
    const req = request({ host: HOST, port, path, agent: false, timeout: timeoutMs }, (res) => {
      let n = 0;
      res.on('data', (d: Buffer) => (n += d.length));
      res.on('end', () => resolve(res.statusCode !== 200 ? `HTTP ${res.statusCode}` : n !== size ? `${n} bytes, expected ${size}` : null));
      res.on('error', (e) => resolve(e.message));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', (e) => resolve(e.message));
    req.end();
  });
}
