// Sidecar start-up time (PRODUCT.md §9: ready ≤ 200 ms after start; it was 500 ms when this was written), measured as an operator sees it:
// a real `tollgate ca serve` on loopback, then for each run a fresh join token and config, and the
// time from spawning `tollgate sidecar run` to its {"ready":true,...} line on stdout. Token creation
// and config writing happen before the clock starts. Run alone with
//   node --import tsx bench/startup.ts [--runs N] [--inbound]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { sidecarProcessEnv } from '../common/sidecar-runtime.ts';

const BIN = fileURLToPath(new URL('../bin/tollgate.js', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TRUST_DOMAIN = 'example.org';

export interface StartupOptions {
  /** Timed runs after one untimed warm-up run (default 7). */
  readonly runs?: number;
  /** The CLI entry point (default bin/tollgate.js). */
  readonly bin?: string;
  /** Extra node flags for the sidecar process, e.g. ['--cpu-prof']. */
  readonly nodeArgs?: readonly string[];
  /** Also an inbound listener and its policy file (as deployed), besides the one outbound. */
  readonly inbound?: boolean;
  readonly log?: (s: string) => void;
}

export interface StartupResult {
  /** Spawn → ready line, ms, in run order. */
  readonly samplesMs: number[];
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  /** The untimed warm-up run (after a source change it builds the bundle and its code cache). */
  readonly warmupMs: number;
  /** `tollgate --version` spawn → exit, median of the same number of runs. */
  readonly versionMedianMs: number;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function cli(bin: string, args: string[]): string {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`tollgate ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

interface Running {
  readonly ready: Record<string, unknown>;
  readonly ms: number;
  stop(): Promise<void>;
}

/** Spawn `node [nodeArgs] bin args` and resolve at its ready line, with the time it took. */
function startUntilReady(bin: string, args: string[], nodeArgs: readonly string[] = [], timeoutMs = 30_000, env: NodeJS.ProcessEnv = process.env): Promise<Running> {
  const t0 = performance.now();
  const proc = spawn(process.execPath, [...nodeArgs, bin, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`tollgate ${args.join(' ')} not ready after ${timeoutMs} ms; stderr:\n${stderr}`));
    }, timeoutMs);
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const ms = performance.now() - t0;
      let j: Record<string, unknown>;
      try {
        j = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (j.ready !== true) return;
      clearTimeout(timer);
      resolve({ ready: j, ms, stop });
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tollgate ${args.join(' ')} exited with ${code} before ready; stderr:\n${stderr}`));
    });
  });
}

/** Start a CA, time `runs` sidecar starts against it, stop everything. */
export async function measureSidecarStartup(options: StartupOptions = {}): Promise<StartupResult> {
  const runs = options.runs ?? 7;
  const bin = options.bin ?? BIN;
  const log = options.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-startup-'));
  const caDir = join(dir, 'ca');
  let ca: Running | null = null;
  try {
    cli(bin, ['ca', 'init', '--trust-domain', TRUST_DOMAIN, '--dir', caDir]);
    ca = await startUntilReady(bin, ['ca', 'serve', '--dir', caDir, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--audit-log', join(dir, 'audit.log')]);
    const caAddress = `127.0.0.1:${ca.ready.grpc_port as number}`;
    const policy = join(dir, 'policy.yaml');
    if (options.inbound) writeFileSync(policy, `ports:\n  "8080": { allow: [spiffe://${TRUST_DOMAIN}/ns/x/sa/*] }\n`);
    const once = async (i: number): Promise<number> => {
      // One identity per run, as each sidecar has its own (and the CA rate-limits SVIDs per identity).
      const spiffeId = `spiffe://${TRUST_DOMAIN}/ns/bench/sa/startup-${i}`;
      const { token } = JSON.parse(cli(bin, ['ca', 'token', 'create', '--dir', caDir, '--spiffe-id', spiffeId, '--json'])) as { token: string };
      const config = join(dir, `sidecar-${i}.yaml`);
      writeFileSync(
        config,
        [
          `trustDomain: ${TRUST_DOMAIN}`,
          `ca: { address: "${caAddress}", bundleFile: ${JSON.stringify(join(caDir, 'bundle.pem'))} }`,
          `attestation: { joinToken: ${JSON.stringify(token)} }`,
          'admin: { listen: "127.0.0.1:0" }',
          'outbound:',
          `  - { listen: "127.0.0.1:0", upstream: "127.0.0.1:1", spiffeId: spiffe://${TRUST_DOMAIN}/ns/x/sa/y }`,
          ...(options.inbound ? ['inbound:', '  - { listen: "127.0.0.1:0", appPort: 8080 }', `policy: { file: ${JSON.stringify(policy)} }`] : []),
          '',
        ].join('\n'),
      );
      const sidecar = await startUntilReady(bin, ['sidecar', 'run', '--config', config], options.nodeArgs, undefined, sidecarProcessEnv()); // as deployed
      await sidecar.stop();
      if (sidecar.ready.spiffe_id !== spiffeId) throw new Error(`sidecar ready as ${String(sidecar.ready.spiffe_id)}, expected ${spiffeId}`);
      return sidecar.ms;
    };
    const warmupMs = await once(0);
    log(`sidecar start warm-up: ${warmupMs.toFixed(0)} ms`);
    const samplesMs: number[] = [];
    for (let i = 1; i <= runs; i++) {
      samplesMs.push(await once(i));
      log(`sidecar start ${i}/${runs}: ${samplesMs.at(-1)!.toFixed(0)} ms`);
    }
    const versionMs: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      cli(bin, ['--version']);
      versionMs.push(performance.now() - t0);
    }
    return { samplesMs, medianMs: median(samplesMs), minMs: Math.min(...samplesMs), maxMs: Math.max(...samplesMs), warmupMs, versionMedianMs: median(versionMs) };
  } finally {
    await ca?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const i = process.argv.indexOf('--runs');
  const runs = i > 0 ? Number(process.argv[i + 1]) : undefined;
  const inbound = process.argv.includes('--inbound');
  const r = await measureSidecarStartup({ ...(runs ? { runs } : {}), inbound, log: (s) => process.stderr.write(`[startup] ${s}\n`) });
  const f = (ms: number): string => ms.toFixed(0);
  process.stdout.write(
    `sidecar ready${inbound ? ' (with inbound + policy)' : ''}: median ${f(r.medianMs)} ms (min ${f(r.minMs)}, max ${f(r.maxMs)}, n=${r.samplesMs.length}; warm-up ${f(r.warmupMs)} ms); ` +
      `tollgate --version: median ${f(r.versionMedianMs)} ms\n`,
  );
}
