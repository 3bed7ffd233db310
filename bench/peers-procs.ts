// Processes for the peer benchmark: every process the bench starts is recorded here and stopped by
// its PID (and its descendants, e.g. nginx workers) at the end, on error and on SIGINT/SIGTERM.
// Also: free loopback ports, waiting for a port, bounded one-shot commands, and the apt install.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { treePids } from './peers-proc-stat.ts';

export const HOST = '127.0.0.1';
export type Log = (s: string) => void;

export interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string | null>;
  /** The last few KiB of stderr+stdout, for error messages. */
  tail(): string;
  stop(): Promise<void>;
}

const live = new Set<Proc>();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The gist of a failed process's output: its last line that mentions an error (not a stack frame),
 * else its last n lines.
 */
export function lastLines(text: string, n = 3): string {
  const lines = text.split('\n').filter((l) => l.trim());
  const error = lines.findLast((l) => /error/i.test(l) && !/^\s+at /.test(l));
  return (error ?? lines.slice(-n).join(' / ')).trim().slice(0, 600);
}

export interface StartOptions {
  /** Raw output (stdout and stderr) goes here, for post-mortems. */
  readonly logFile: string;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Called with each stdout line (e.g. to find a "ready" JSON line). */
  readonly onLine?: (line: string) => void;
}

export function start(name: string, cmd: string, args: readonly string[], o: StartOptions): Proc {
  const child = spawn(cmd, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = createWriteStream(o.logFile);
  let tail = '';
  const keep = (d: Buffer): void => {
    // A peer's child may still hold the pipe and print after stop() has ended the log (seen with
    // stunnel in CI): such late output goes to the tail only, never to an ended stream.
    if (!out.writableEnded && !out.destroyed) out.write(d);
    tail = (tail + d.toString('utf8')).slice(-4096);
  };
  child.stderr!.on('data', keep);
  if (o.onLine) {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      keep(Buffer.from(`${l}\n`));
      o.onLine!(l);
    });
  } else {
    child.stdout!.on('data', keep);
  }
  const exited = new Promise<number | string | null>((resolve) => {
    child.once('error', (e) => {
      tail += `\n${e.message}`;
      resolve(e.message);
    });
    child.once('exit', (code, sig) => resolve(code ?? sig));
  });
  const proc: Proc = {
    name,
    pid: child.pid ?? -1,
    child,
    exited,
    tail: () => tail,
    stop: () => stopProc(proc),
  };
  live.add(proc);
  // 'close', not 'exit': stdout/stderr can still deliver data after the process has exited.
  child.once('close', () => out.end());
  return proc;
}

const running = (p: Proc): boolean => p.pid > 0 && p.child.exitCode === null && p.child.signalCode === null;

/** SIGTERM, up to 5 s grace, then SIGKILL; descendants that outlive their parent get SIGKILL too. */
async function stopProc(p: Proc): Promise<void> {
  if (!live.has(p)) return;
  // Only a running process's PID is ours: once reaped, the number may belong to someone else.
  if (running(p)) {
    const kids = treePids(p.pid).filter((x) => x !== p.pid);
    p.child.kill('SIGTERM');
    const timer = setTimeout(() => p.child.kill('SIGKILL'), 5000);
    await p.exited;
    clearTimeout(timer);
    for (const k of kids) killQuietly(k, 'SIGKILL');
  }
  live.delete(p);
}

function killQuietly(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop()));
}

let handlersInstalled = false;
/** Ctrl-C or a kill stops every started process before the bench exits; a crash kills them. */
export function installCleanupHandlers(log: Log): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: stopping ${live.size} process(es)`);
      void stopAll().finally(() => process.exit(130));
    });
  }
  process.once('exit', () => {
    for (const p of live) {
      if (running(p)) for (const pid of treePids(p.pid)) killQuietly(pid, 'SIGKILL');
    }
  });
}

/** Start, wait for the "ready":true JSON line on stdout (bounded); returns the parsed line. */
export async function startUntilReady(name: string, cmd: string, args: readonly string[], o: Omit<StartOptions, 'onLine'> & { timeoutMs: number }): Promise<{ proc: Proc; ready: Record<string, unknown>; ms: number }> {
  const t0 = performance.now();
  let onReady: (j: Record<string, unknown>) => void = () => {};
  const gotReady = new Promise<Record<string, unknown>>((r) => (onReady = r));
  const proc = start(name, cmd, args, {
    ...o,
    onLine: (line) => {
      if (!line.startsWith('{')) return;
      try {
        const j = JSON.parse(line) as Record<string, unknown>;
        if (j.ready === true) onReady(j);
      } catch {
        // not the ready line
      }
    },
  });
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    gotReady,
    proc.exited.then((c) => new Error(`${name} exited (${c}) before it was ready: ${lastLines(proc.tail())}`)),
    new Promise<Error>((r) => (timer = setTimeout(() => r(new Error(`${name} not ready after ${o.timeoutMs} ms: ${lastLines(proc.tail())}`)), o.timeoutMs))),
  ]);
  clearTimeout(timer);
  if (outcome instanceof Error) {
    await proc.stop();
    throw outcome;
  }
  return { proc, ready: outcome, ms: performance.now() - t0 };
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A one-shot command (load generator, openssl), killed after timeoutMs; also stopped on SIGINT. */
export async function runBounded(cmd: string, args: readonly string[], timeoutMs: number, cwd?: string): Promise<RunResult> {
  const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
  const p: Proc = { name: cmd, pid: child.pid ?? -1, child, exited: Promise.resolve(null), tail: () => '', stop: async () => void child.kill('SIGKILL') };
  live.add(p);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => {
    child.once('error', (e) => {
      stderr += e.message;
      resolve(null);
    });
    child.once('close', (c) => resolve(c));
  });
  live.delete(p);
  return { code, stdout, stderr };
}

const handedOut = new Set<number>();
/** A loopback port nothing listens on right now (the kernel picks it; never handed out twice). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, HOST, () => {
        const a = s.address();
        s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
      });
    });
    if (port && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/** Is a TCP socket in LISTEN state on this local port (IPv4)? Read from /proc/net/tcp. */
function listening(port: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  // 127.0.0.1 and 0.0.0.0 as /proc/net/tcp writes them (little-endian hex)
  const wanted = new Set([`0100007F:${hexPort}`, `00000000:${hexPort}`]);
  try {
    return readFileSync('/proc/net/tcp', 'utf8')
      .split('\n')
      .map((l) => l.trim().split(/\s+/)) // sl local_address rem_address st ...
      .some((cols) => wanted.has(cols[1] ?? '') && cols[3] === '0A'); // 0A = LISTEN
  } catch {
    return false;
  }
}

/**
 * Wait (bounded) until something listens on 127.0.0.1:port. Looks at /proc/net/tcp instead of
 * connecting: a probe through a proxy pair would reach the backend late, and iperf3's server
 * takes such a stray connection for a test, refusing the real one.
 */
export async function waitPort(port: number, timeoutMs = 10_000): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (performance.now() < until) {
    if (listening(port)) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on ${HOST}:${port} after ${timeoutMs} ms`);
}

export function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export const NGINX_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';
const APT_PACKAGES = ['haproxy', 'nginx', 'libnginx-mod-stream', 'stunnel4', 'wrk', 'iperf3'];

/** apt-get install the peers when one is missing; on failure say so and go on (contenders are then marked). */
export async function ensureTools(log: Log): Promise<void> {
  const missing = ['haproxy', 'nginx', 'stunnel4', 'wrk', 'iperf3'].filter((t) => !have(t));
  if (!existsSync(NGINX_STREAM_MODULE)) missing.push('nginx stream module');
  if (missing.length === 0) return;
  if (!have('apt-get')) {
    log(`missing ${missing.join(', ')} and no apt-get here: install them by hand; contenders that need them are skipped`);
    return;
  }
  log(`installing with apt-get (missing: ${missing.join(', ')})`);
  const install = (): Promise<RunResult> => runBounded('env', ['DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-q', ...APT_PACKAGES], 600_000);
  let r = await install();
  if (r.code !== 0) {
    // A fresh container has no package lists yet: refresh once and retry.
    await runBounded('apt-get', ['update', '-q'], 300_000);
    r = await install();
  }
  if (r.code !== 0) log(`apt-get install failed (exit ${r.code}; are we root?): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}; contenders that need the missing tools are skipped`);
}
