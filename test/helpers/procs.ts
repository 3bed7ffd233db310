// Start real Tollgate processes and outside tools (openssl) for integration tests.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'bin/tollgate.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function tollgate(args: string[], options: { input?: string } = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', input: options.input ?? '', timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function run(cmd: string, args: string[], options: { input?: string | Buffer; cwd?: string } = {}): CliResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input: options.input ?? '', timeout: 60_000, cwd: options.cwd ?? ROOT });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function tempDir(prefix = 'tollgate-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Started {
  proc: ChildProcess;
  ready: Record<string, unknown>;
  stderr: () => string;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/**
 * Start `tollgate ARGS` and wait (bounded) for the JSON line with "ready": true on stdout. `prefix`
 * runs it through another command, e.g. ['ip', 'netns', 'exec', NS] to start it in a network namespace.
 */
export async function startTollgate(args: string[], timeoutMs = 20_000, prefix: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<Started> {
  // TOLLGATE_NODE_ARGS passes node flags (e.g. --cpu-prof) to the started process, for profiling.
  const nodeArgs = process.env.TOLLGATE_NODE_ARGS ? process.env.TOLLGATE_NODE_ARGS.split(' ') : [];
  const argv = [...prefix, process.execPath, ...nodeArgs, BIN, ...args];
  const proc = spawn(argv[0]!, argv.slice(1), { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`tollgate ${args.join(' ')} not ready after ${timeoutMs} ms; stderr:\n${err}`)), timeoutMs);
    const rl = createInterface({ input: proc.stdout! });
    rl.on('line', (line) => {
      try {
        const j = JSON.parse(line) as Record<string, unknown>;
        if (j.ready === true) {
          clearTimeout(t);
          resolve(j);
        }
      } catch {
        // not our line
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`tollgate ${args.join(' ')} exited with ${code} before ready; stderr:\n${err}`));
    });
  });
  return {
    proc,
    ready,
    stderr: () => err,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (proc.exitCode === null) proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

/** GET a loopback URL; returns status and body. */
export async function httpGet(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

export interface Running {
  proc: ChildProcess;
  /** Every stdout line that parsed as JSON, in order. */
  events: Array<Record<string, unknown>>;
  stdout: () => string;
  stderr: () => string;
  /** Wait (bounded) for a JSON line matching `pred`. */
  waitFor: (pred: (e: Record<string, unknown>) => boolean, timeoutMs?: number) => Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

/** Start `tollgate ARGS` (a long command printing JSON lines, e.g. `ca rotate --json`) without waiting. */
export function spawnTollgate(args: string[]): Running {
  const proc = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const events: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    out += `${line}\n`;
    try {
      events.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a human line
    }
    for (const w of waiters) w();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const waitFor = (pred: (e: Record<string, unknown>) => boolean, timeoutMs = 30_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const hit = events.find(pred);
        if (!hit) return;
        waiters.delete(check);
        clearTimeout(t);
        resolve(hit);
      };
      const t = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`tollgate ${args.join(' ')}: no matching line after ${timeoutMs} ms; stdout:\n${out}\nstderr:\n${err}`));
      }, timeoutMs);
      waiters.add(check);
      void exited.then(() => setImmediate(check));
      check();
    });
  return { proc, events, stdout: () => out, stderr: () => err, waitFor, exited };
}
