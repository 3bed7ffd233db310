// Processes of a test Kubernetes control plane (test/helpers/kube-cluster.ts): each component logs to
// a file in its cluster's directory, readiness is polled with a bound, errors carry the log's tail, and
// nothing outlives the test process, not even when the runner ends it with a signal.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

const START_ATTEMPTS = 3; // ports are picked free, but another process may take one before we bind it
const LOG_TAIL_LINES = 30;

// A test process that ends without stop() must not leave an API server behind: not on exit, and not
// when the test runner stops it with a signal (a file's timeout), which would skip 'exit'.
const live = new Set<ChildProcess>();
const liveDirs = new Set<string>();

/** Remove `dir` if the process ends before the cluster is stopped; forget it again with `false`. */
export function removeOnExit(dir: string, remove = true): void {
  if (remove) liveDirs.add(dir);
  else liveDirs.delete(dir);
}

function killAll(): void {
  for (const p of live) p.kill('SIGKILL');
  for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
}
process.once('exit', killAll);
for (const [sig, n] of [['SIGTERM', 15], ['SIGINT', 2], ['SIGHUP', 1]] as const) {
  process.once(sig, () => {
    killAll();
    process.exit(128 + n);
  });
}

/** A started component: its process and its log file. */
export class Component {
  readonly exited: Promise<number | null>;
  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
    readonly logFile: string,
  ) {
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  }

  static start(name: string, bin: string, args: string[], dir: string): Component {
    const logFile = join(dir, `${name}.log`);
    const fd = openSync(logFile, 'a');
    const proc = spawn(bin, args, { stdio: ['ignore', fd, fd], cwd: dir });
    closeSync(fd);
    live.add(proc);
    proc.once('exit', () => live.delete(proc));
    return new Component(name, proc, logFile);
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  tail(lines = LOG_TAIL_LINES): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `fn` every `everyMs` until truthy; the error names `what` and the last failure seen. */
export async function pollUntil<T>(fn: () => T | Promise<T>, what: string, timeoutMs: number, everyMs = 200): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
      last = `last result: ${JSON.stringify(v)}`;
    } catch (e) {
      last = `last error: ${(e as Error).message}`;
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${last})`);
    await sleep(everyMs);
  }
}

/** Wait until `ready()` holds while `c` runs; on timeout or exit, the error carries its log tail. */
export async function awaitReady(c: Component, ready: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  const deadline = t0 + timeoutMs;
  while (Date.now() < deadline) {
    if (!c.running) throw new Error(`${c.name} exited (${c.proc.exitCode ?? c.proc.signalCode}) before it was ready; its log ends:\n${c.tail()}`);
    if (await ready().catch(() => false)) return Date.now() - t0;
    await sleep(100);
  }
  throw new Error(`${c.name} not ready after ${timeoutMs} ms; its log ends:\n${c.tail()}`);
}

/** Start a component on fresh ports; retried when a port was taken between picking and binding it. */
export async function startOnFreePorts(
  name: string,
  portCount: number,
  launch: (ports: number[]) => Component,
  ready: (ports: number[]) => Promise<boolean>,
  timeoutMs: number,
): Promise<{ component: Component; ports: number[]; ms: number }> {
  for (let attempt = 1; ; attempt++) {
    const ports: number[] = [];
    while (ports.length < portCount) {
      const p = await freePort();
      if (!ports.includes(p)) ports.push(p);
    }
    const component = launch(ports);
    try {
      return { component, ports, ms: await awaitReady(component, () => ready(ports), timeoutMs) };
    } catch (e) {
      await component.stop();
      if (attempt >= START_ATTEMPTS || !/address already in use/.test(component.tail(200))) throw e;
    }
  }
}
