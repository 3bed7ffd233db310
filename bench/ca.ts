// CA figures (PRODUCT.md §9): in-process leaf issuance vs `openssl speed ecdsap256` sign/s, and
// SVIDs/s over gRPC with concurrent clients against real `tollgate ca serve` processes: one, then
// two replicas on one store (as the chart runs them). The load comes from separate processes with
// a lean HTTP/2 client (bench/ca-load.ts, bench/ca-h2-client.ts), so the figure measures the CA.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JoinTokenAttestor } from '../ca/attestation/join-token.ts';
import { SvidIssuer } from '../ca/issuer.ts';
import { DirectoryStore } from '../ca/store.ts';
import { systemClock } from '../common/clock.ts';
import { createCsr, parseCsr } from '../pki/csr.ts';
import { certsToPem, pemToCertDers } from '../pki/pem.ts';
import { startTollgate, type Started } from '../test/helpers/procs.ts';
import { runLoad, type LoadClient, type LoadJob, type LoadSummary } from './ca-load.ts';

export interface GrpcFigure {
  readonly perSec: number;
  /** CA CPU (all its processes) per SVID, µs; undefined off Linux. */
  readonly serverCpuUs: number | undefined;
  /** Load generators' CPU per call, µs. */
  readonly clientCpuUs: number;
  readonly errors: number;
}

export interface CaFigures {
  opensslSignPerSec: number;
  opensslVerifyPerSec: number;
  inProcessIssuePerSec: number;
  inProcessWithCsrPerSec: number;
  /** One CA process. */
  grpcRenewPerSec: number;
  grpcFirstIssuePerSec: number;
  grpcClients: number;
  grpcInFlight: number;
  loadClient: LoadClient;
  /** By number of CA processes (1, then 2 replicas on one store). */
  renew: Record<number, GrpcFigure>;
  firstIssue: Record<number, GrpcFigure>;
}

// Operations per second of user CPU time, the divisor `openssl speed` uses (unless -elapsed): on a
// shared machine a wall-clock rate would measure the neighbours as much as the code.
function rate(ms: number, f: () => void): number {
  let n = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage().user;
  while (performance.now() - t0 < ms) {
    for (let i = 0; i < 50; i++) f();
    n += 50;
  }
  return n / ((process.cpuUsage().user - cpu0) / 1e6);
}

export function opensslSpeed(seconds: number): { sign: number; verify: number } {
  const out = execFileSync('openssl', ['speed', '-seconds', String(seconds), 'ecdsap256'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const m = /256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)/.exec(out);
  if (!m) throw new Error(`cannot parse openssl speed output:\n${out}`);
  return { sign: Number(m[1]), verify: Number(m[2]) };
}

export interface CaBenchOptions {
  readonly quick: boolean;
  readonly log: (s: string) => void;
  /** Load generator shape (defaults: 2 processes × 4 channels × 16 calls in flight, lean HTTP/2). */
  readonly loadProcesses?: number;
  readonly channelsPerProcess?: number;
  readonly inFlightPerChannel?: number;
  readonly loadClient?: LoadClient;
  /** CA process counts to measure (default [1, 2]). */
  readonly replicas?: readonly number[];
}

function figure(s: LoadSummary): GrpcFigure {
  return { perSec: s.perSec, serverCpuUs: s.serverCpuUsPerCall, clientCpuUs: s.clientCpuUsPerCall, errors: s.errors };
}

export async function runCaBench(options: CaBenchOptions): Promise<CaFigures> {
  const secs = options.quick ? 1 : 3;
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-ca-'));
  const cas: Started[] = [];
  try {
    const store = new DirectoryStore({ dir: join(dir, 'ca') });
    const material = await store.init({ trustDomain: 'bench.example', clock: systemClock });
    options.log('openssl speed ecdsap256 ...');
    const ossl = opensslSpeed(secs);

    const issuer = new SvidIssuer({ intermediate: material.intermediate, clock: systemClock });
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const csr = createCsr(key);
    const spki = parseCsr(csr).spki;
    const id = 'spiffe://bench.example/ns/shop/sa/web';
    rate(300, () => issuer.issue({ spki, spiffeId: id })); // warm up
    const inProcessIssuePerSec = rate(secs * 1000, () => issuer.issue({ spki, spiffeId: id }));
    const inProcessWithCsrPerSec = rate(secs * 1000, () => issuer.issue({ spki: parseCsr(csr).spki, spiffeId: id }));

    // gRPC: real CA processes on one store, rate limits off, each with its own audit log.
    const replicas = options.replicas ?? [1, 2];
    const maxReplicas = Math.max(...replicas);
    for (let r = 0; r < maxReplicas; r++) {
      cas.push(await startTollgate(['ca', 'serve', '--dir', store.dir, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--audit-log', join(dir, `audit-${r}.log`), '--rate-per-address', '0', '--rate-per-identity', '0']));
    }
    const roots = pemToCertDers(readFileSync(store.path('bundle.pem'), 'utf8'));
    const procs = options.loadProcesses ?? 2;
    const perProc = options.channelsPerProcess ?? 4;
    const inFlightPerChannel = options.inFlightPerChannel ?? 16;
    const loadClient = options.loadClient ?? 'http2';
    const nClients = procs * perProc;
    const base = { rootsB64: roots.map((r) => r.toString('base64')), serverId: cas[0]!.ready.spiffe_id as string, inFlightPerChannel, warmupMs: 500, client: loadClient };
    // Load process p talks to CA process p mod n; the CA's CPU is summed over the n processes.
    const address = (p: number, n: number): string => `127.0.0.1:${cas[p % n]!.ready.grpc_port as number}`;
    const pids = (n: number): number[] => cas.slice(0, n).map((c) => c.proc.pid!);

    // Renewal over mTLS: each channel holds an SVID and renews with the same key (as a sidecar does).
    const local = new SvidIssuer({ intermediate: material.intermediate, clock: systemClock });
    const identities = Array.from({ length: nClients }, (_, i) => {
      const k = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      const c = createCsr(k);
      const spiffeId = `spiffe://bench.example/ns/load/sa/client-${i}`;
      const svid = local.issue({ spki: parseCsr(c).spki, spiffeId });
      return { spiffeId, certChainPem: certsToPem(svid.chain), keyPem: k.export({ format: 'pem', type: 'pkcs8' }) as string, csrB64: c.toString('base64') };
    });
    const att = new JoinTokenAttestor({ dir: store.path('tokens'), clock: systemClock, trustDomain: 'bench.example' });
    let serial = 0;
    const renew: Record<number, GrpcFigure> = {};
    const firstIssue: Record<number, GrpcFigure> = {};
    for (const n of replicas) {
      options.log(`gRPC renewals, ${n} CA process(es): ${procs} load processes × ${perProc} channels × ${inFlightPerChannel} in flight (${loadClient}) ...`);
      const jobs: LoadJob[] = Array.from({ length: procs }, (_, p) => ({ ...base, address: address(p, n), mode: 'renew', identities: identities.slice(p * perProc, (p + 1) * perProc), durationMs: secs * 1000 }));
      const r = await runLoad(jobs, pids(n));
      if (r.errors) options.log(`  ${r.errors} renewal errors, first: ${r.firstError}`);
      renew[n] = figure(r);

      // First issue with join tokens and a fresh key per request (the expensive path: CSR verified).
      const count = options.quick ? 1000 : 4000;
      const work: Array<{ spiffeId: string; token: string; csrB64: string }> = [];
      for (let i = 0; i < count; i++) {
        const spiffeId = `spiffe://bench.example/ns/load/sa/new-${serial++}`;
        const csrB64 = createCsr(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey).toString('base64');
        work.push({ spiffeId, token: (await att.create({ spiffeId, ttlMs: 600_000 })).token, csrB64 });
      }
      options.log(`gRPC first issues, ${n} CA process(es): ${count} join tokens, fresh keys ...`);
      const share = Math.ceil(count / procs);
      const firstJobs: LoadJob[] = Array.from({ length: procs }, (_, p) => ({ ...base, address: address(p, n), mode: 'first', channels: perProc, firstIssues: work.slice(p * share, (p + 1) * share), durationMs: 60_000 }));
      const f = await runLoad(firstJobs, pids(n));
      if (f.errors) options.log(`  ${f.errors} first-issue errors, first: ${f.firstError}`);
      firstIssue[n] = figure(f);
    }
    const one = (m: Record<number, GrpcFigure>): number => m[1]?.perSec ?? m[Math.min(...replicas)]!.perSec;
    return {
      opensslSignPerSec: ossl.sign,
      opensslVerifyPerSec: ossl.verify,
      inProcessIssuePerSec,
      inProcessWithCsrPerSec,
      grpcRenewPerSec: one(renew),
      grpcFirstIssuePerSec: one(firstIssue),
      grpcClients: nClients,
      grpcInFlight: nClients * inFlightPerChannel,
      loadClient,
      renew,
      firstIssue,
    };
  } finally {
    await Promise.all(cas.map((c) => c.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

export function caTable(f: CaFigures): string {
  const r = (x: number): string => Math.round(x).toLocaleString('en-US');
  const pct = (x: number): string => `${Math.round(x * 100)} %`;
  const cpu = (g: GrpcFigure): string => `CA ${g.serverCpuUs === undefined ? '?' : r(g.serverCpuUs)} µs CPU/SVID, load ${r(g.clientCpuUs)} µs/call${g.errors ? `, ${g.errors} errors` : ''}`;
  const rows = (what: string, m: Record<number, GrpcFigure>): string[] =>
    Object.entries(m).map(([n, g]) => `| gRPC SVIDs/s, ${what}, ${n === '1' ? '1 CA process' : `${n} CA processes on one store`} | ${r(g.perSec)} | ${pct(g.perSec / 5000)} of 5,000/s goal (${cpu(g)}) |`);
  return [
    '| CA figure | value | vs target |',
    '|---|---:|---|',
    `| openssl speed ecdsap256 sign/s (this machine; per CPU-second, as all in-process rows) | ${r(f.opensslSignPerSec)} | reference |`,
    `| in-process leaf issuance/s (template + node:crypto sign) | ${r(f.inProcessIssuePerSec)} | ${pct(f.inProcessIssuePerSec / f.opensslSignPerSec)} of openssl sign (goal ≥ 50 %) |`,
    `| in-process issuance/s incl. CSR verification (fresh key import) | ${r(f.inProcessWithCsrPerSec)} | openssl verify/s is ${r(f.opensslVerifyPerSec)} |`,
    ...rows(`renewal over mTLS (${f.grpcClients} channels, ${f.grpcInFlight} in flight)`, f.renew),
    ...rows('first issue (join token, fresh key per request)', f.firstIssue),
  ].join('\n');
}
