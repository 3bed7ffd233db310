// Load generator for the CA benchmark (bench/ca.ts), run as child processes so the figure measures
// the CA and not a client sharing its event loop. Each process opens several channels and keeps a
// fixed number of calls in flight on each; the parent starts all processes at once and sums.
//
// Protocol (IPC): parent sends a LoadJob; the child connects, warms up, replies {ready}; the parent
// sends {go}; the child replies {done, errors, ms, cpuMs, firstError?} and exits.
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CertificateAuthorityService, type IssueSVIDResponseMsg } from '../common/ca-api.ts';
import { connectCa } from '../pki/ca-connect.ts';
import { checkLeafProfile } from '../pki/svid-validate.ts';
import { parseCertificate } from '../pki/x509.ts';
import { EMPTY_FRAME, GET_BUNDLE_PATH, ISSUE_SVID_PATH, RawGrpcChannel, issueSvidFrame, type RawChannelOptions } from './ca-h2-client.ts';

export type LoadClient = 'http2' | 'grpc-js';

export interface LoadJob {
  readonly address: string;
  readonly rootsB64: readonly string[];
  readonly serverId: string;
  readonly mode: 'renew' | 'first';
  /** 'http2': lean HTTP/2 gRPC client (default); 'grpc-js': CaClient, as a sidecar calls. */
  readonly client?: LoadClient;
  /** renew: one mTLS identity per channel (PEM chain + key + its CSR, base64). */
  readonly identities?: ReadonlyArray<{ spiffeId: string; certChainPem: string; keyPem: string; csrB64: string }>;
  /** first: how many anonymous channels, and the (token, CSR) pairs this process spends. */
  readonly channels?: number;
  readonly firstIssues?: ReadonlyArray<{ spiffeId: string; token: string; csrB64: string }>;
  readonly inFlightPerChannel: number;
  readonly durationMs: number;
  readonly warmupMs: number;
}

export interface LoadResult {
  readonly done: number;
  readonly errors: number;
  readonly ms: number;
  /** CPU time (user + system) this load process spent during the run. */
  readonly cpuMs?: number;
  readonly firstError?: string;
}

type Msg = { ready: true } | ({ result: true } & LoadResult);

async function drive(channels: number, inFlightPerChannel: number, ms: number, call: (c: number) => Promise<unknown>, max = Infinity): Promise<LoadResult> {
  let done = 0;
  let errors = 0;
  let started = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const until = t0 + ms;
  const loop = async (c: number): Promise<void> => {
    while (started < max && performance.now() < until) {
      started++;
      try {
        await call(c);
        done++;
      } catch (e) {
        errors++;
        firstError ??= (e as Error).message;
      }
    }
  };
  const loops: Promise<void>[] = [];
  for (let c = 0; c < channels; c++) for (let i = 0; i < inFlightPerChannel; i++) loops.push(loop(c));
  await Promise.all(loops);
  return { done, errors, ms: performance.now() - t0, ...(firstError ? { firstError } : {}) };
}

interface Channel {
  issue(csr: Buffer, token: string | undefined, expectId: string): Promise<unknown>;
  ready(): Promise<unknown>;
  close(): void;
}

const deserialize = CertificateAuthorityService.IssueSVID!.responseDeserialize as (b: Buffer) => IssueSVIDResponseMsg;
let checked = 0;

/** Decode a response in full (the first, then one in 64) and check the leaf carries the expected ID. */
function checkResponse(msg: Buffer, expectId: string): void {
  if (checked++ % 64 !== 0) return;
  const r = deserialize(msg);
  const leaf = r.cert_chain[0];
  if (r.spiffe_id !== expectId || r.cert_chain.length !== 2 || !leaf) throw new Error(`unexpected response for ${expectId}: ${r.spiffe_id}`);
  if (checkLeafProfile(parseCertificate(leaf)).id !== expectId) throw new Error(`leaf is not for ${expectId}`);
}

function openChannel(kind: LoadClient, o: RawChannelOptions): Channel {
  if (kind === 'grpc-js') {
    const c = connectCa(o);
    return {
      issue: async (csr, token, expectId) => {
        const r = await c.issue({ csr, token });
        if (r.spiffeId !== expectId) throw new Error(`unexpected SPIFFE ID ${r.spiffeId}`);
      },
      ready: () => c.getBundle(),
      close: () => c.close(),
    };
  }
  const ch = new RawGrpcChannel(o);
  const frames = new Map<Buffer, Buffer>(); // renewals resend one request per channel
  return {
    issue: async (csr, token, expectId) => {
      let frame = token ? undefined : frames.get(csr);
      if (!frame) {
        frame = issueSvidFrame(csr, token);
        if (!token) frames.set(csr, frame);
      }
      checkResponse(await ch.unary(ISSUE_SVID_PATH, frame), expectId);
    },
    ready: () => ch.unary(GET_BUNDLE_PATH, EMPTY_FRAME),
    close: () => ch.close(),
  };
}

async function child(job: LoadJob): Promise<void> {
  const roots = job.rootsB64.map((r) => Buffer.from(r, 'base64'));
  const base = { address: job.address, roots, serverId: job.serverId };
  const kind = job.client ?? 'http2';
  let channels: Channel[];
  let call: (c: number) => Promise<unknown>;
  let max = Infinity;
  if (job.mode === 'renew') {
    const ids = job.identities ?? [];
    channels = ids.map((id) => openChannel(kind, { ...base, identity: { certChainPem: id.certChainPem, keyPem: id.keyPem } }));
    const csrs = ids.map((id) => Buffer.from(id.csrB64, 'base64'));
    call = (c) => channels[c]!.issue(csrs[c]!, undefined, ids[c]!.spiffeId);
    await drive(channels.length, job.inFlightPerChannel, job.warmupMs, call);
  } else {
    channels = Array.from({ length: job.channels ?? 1 }, () => openChannel(kind, base));
    const work = (job.firstIssues ?? []).map((w) => ({ ...w, csr: Buffer.from(w.csrB64, 'base64') }));
    let next = 0;
    max = work.length;
    call = (c) => {
      const w = work[next++]!;
      return channels[c]!.issue(w.csr, w.token, w.spiffeId);
    };
    await Promise.all(channels.map((c) => c.ready()));
  }
  const go = new Promise<void>((resolve) => process.once('message', () => resolve()));
  process.send!({ ready: true } satisfies Msg);
  await go;
  const cpu0 = process.cpuUsage();
  const r = await drive(channels.length, job.inFlightPerChannel, job.durationMs, call, max);
  const cpu = process.cpuUsage(cpu0);
  for (const c of channels) c.close();
  process.send!({ result: true, ...r, cpuMs: (cpu.user + cpu.system) / 1000 } satisfies Msg, () => process.exit(0));
}

export interface LoadSummary {
  readonly perSec: number;
  readonly done: number;
  readonly errors: number;
  /** Load generators' CPU per completed call, µs. */
  readonly clientCpuUsPerCall: number;
  /** The servers' CPU per completed call, µs (when their pids were given; Linux /proc). */
  readonly serverCpuUsPerCall?: number;
  readonly firstError?: string;
}

/** CPU time of a process in ms from /proc (Linux); undefined elsewhere. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime in USER_HZ (100 on Linux)
  } catch {
    return undefined;
  }
}

/** Run `jobs` in one child process each, start them together, and return their summed result. */
export async function runLoad(jobs: readonly LoadJob[], serverPids: readonly number[] = []): Promise<LoadSummary> {
  const file = fileURLToPath(import.meta.url);
  // CA_LOAD_NODE_ARGS passes node flags (e.g. --cpu-prof) to the load processes, for profiling.
  const extra = process.env.CA_LOAD_NODE_ARGS ? process.env.CA_LOAD_NODE_ARGS.split(' ') : [];
  const procs: ChildProcess[] = jobs.map(() => fork(file, ['--ca-load-child'], { execArgv: [...extra, '--import', import.meta.resolve('tsx')], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  try {
    const next = (p: ChildProcess): Promise<Msg> =>
      new Promise((resolve, reject) => {
        p.once('message', (m) => resolve(m as Msg));
        p.once('exit', (code) => reject(new Error(`CA load process exited with ${code}`)));
      });
    const ready = procs.map((p, i) => {
      const m = next(p);
      p.send(jobs[i]!);
      return m;
    });
    await Promise.all(ready);
    const results = procs.map((p) => next(p));
    const serverCpu = (): number | undefined => {
      const each = serverPids.map(processCpuMs);
      return serverPids.length && each.every((c) => c !== undefined) ? each.reduce((a, c) => a! + c!, 0) : undefined;
    };
    const server0 = serverCpu();
    for (const p of procs) p.send({ go: true });
    const rs = (await Promise.all(results)) as Array<{ result: true } & LoadResult>;
    const server1 = serverCpu();
    const done = rs.reduce((a, r) => a + r.done, 0);
    const errors = rs.reduce((a, r) => a + r.errors, 0);
    const ms = Math.max(...rs.map((r) => r.ms));
    const firstError = rs.find((r) => r.firstError)?.firstError;
    const clientCpuMs = rs.reduce((a, r) => a + (r.cpuMs ?? 0), 0);
    const per = (cpuMs: number): number => (done ? (cpuMs * 1000) / done : 0);
    return {
      perSec: done / (ms / 1000),
      done,
      errors,
      clientCpuUsPerCall: per(clientCpuMs),
      ...(server0 !== undefined && server1 !== undefined ? { serverCpuUsPerCall: per(server1 - server0) } : {}),
      ...(firstError ? { firstError } : {}),
    };
  } finally {
    // Children exit on their own after reporting (and write profiles then); stragglers are killed.
    await Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            const t = setTimeout(() => p.kill(), 10_000);
            p.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
          }),
      ),
    );
  }
}

if (process.argv.includes('--ca-load-child')) {
  process.once('message', (job: LoadJob) => {
    child(job).catch((e: unknown) => {
      console.error(`CA load process failed: ${(e as Error).stack ?? String(e)}`);
      process.exit(1);
    });
  });
}
