// CA figures (PRODUCT.md §9): in-process leaf issuance vs `openssl speed ecdsap256` sign/s, and
// SVIDs/s over gRPC with concurrent clients against a real `tollgate ca serve` process.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JoinTokenAttestor } from '../ca/attestation/join-token.ts';
import { SvidIssuer } from '../ca/issuer.ts';
import { DirectoryStore } from '../ca/store.ts';
import { CaClient } from '../pki/ca-client.ts';
import { systemClock } from '../pki/clock.ts';
import { createCsr, parseCsr } from '../pki/csr.ts';
import { certsToPem, pemToCertDers } from '../pki/pem.ts';
import { startTollgate } from '../test/helpers/procs.ts';

export interface CaFigures {
  opensslSignPerSec: number;
  opensslVerifyPerSec: number;
  inProcessIssuePerSec: number;
  inProcessWithCsrPerSec: number;
  grpcRenewPerSec: number;
  grpcFirstIssuePerSec: number;
  grpcClients: number;
  grpcInFlight: number;
}

function rate(ms: number, f: () => void): number {
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let i = 0; i < 50; i++) f();
    n += 50;
    t = performance.now();
  }
  return n / ((t - t0) / 1000);
}

export function opensslSpeed(seconds: number): { sign: number; verify: number } {
  const out = execFileSync('openssl', ['speed', '-seconds', String(seconds), 'ecdsap256'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const m = /256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)/.exec(out);
  if (!m) throw new Error(`cannot parse openssl speed output:\n${out}`);
  return { sign: Number(m[1]), verify: Number(m[2]) };
}

async function grpcLoad(clients: CaClient[], inFlight: number, ms: number, call: (c: CaClient, i: number) => Promise<unknown>, max = Infinity): Promise<{ perSec: number; errors: number }> {
  let done = 0;
  let errors = 0;
  let started = 0;
  const t0 = performance.now();
  const until = t0 + ms;
  const worker = async (c: CaClient): Promise<void> => {
    while (performance.now() < until && started < max) {
      const i = started++;
      try {
        await call(c, i);
        done++;
      } catch {
        errors++;
      }
    }
  };
  const workers: Promise<void>[] = [];
  for (let w = 0; w < inFlight; w++) workers.push(worker(clients[w % clients.length]!));
  await Promise.all(workers);
  return { perSec: done / ((performance.now() - t0) / 1000), errors };
}

export async function runCaBench(options: { quick: boolean; log: (s: string) => void }): Promise<CaFigures> {
  const secs = options.quick ? 1 : 3;
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-ca-'));
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

    // gRPC: a real CA process, rate limits off.
    const ca = await startTollgate(['ca', 'serve', '--dir', store.dir, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--audit-log', join(dir, 'audit.log'), '--rate-per-address', '0', '--rate-per-identity', '0']);
    const roots = pemToCertDers(readFileSync(store.path('bundle.pem'), 'utf8'));
    const serverId = ca.ready.spiffe_id as string;
    const address = `127.0.0.1:${ca.ready.grpc_port as number}`;
    const nClients = 8;
    const inFlight = 64;
    try {
      // Renewal over mTLS: each client holds an SVID and renews with the same key (as a sidecar does).
      const local = new SvidIssuer({ intermediate: material.intermediate, clock: systemClock });
      const renewers: CaClient[] = [];
      const csrs: Buffer[] = [];
      for (let i = 0; i < nClients; i++) {
        const k = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
        const c = createCsr(k);
        const svid = local.issue({ spki: parseCsr(c).spki, spiffeId: `spiffe://bench.example/ns/load/sa/client-${i}` });
        csrs.push(c);
        renewers.push(new CaClient({ address, roots, serverId, identity: { certChainPem: certsToPem(svid.chain), keyPem: k.export({ format: 'pem', type: 'pkcs8' }) as string } }));
      }
      await grpcLoad(renewers, inFlight, 500, (c) => c.issue({ csr: csrs[renewers.indexOf(c)]! })); // warm up
      options.log(`gRPC renewals: ${nClients} clients, ${inFlight} in flight ...`);
      const renew = await grpcLoad(renewers, inFlight, secs * 1000, (c) => c.issue({ csr: csrs[renewers.indexOf(c)]! }));
      if (renew.errors) options.log(`  ${renew.errors} renewal errors`);

      // First issue with join tokens and a fresh key per request (the expensive path: CSR verified).
      const n = options.quick ? 1000 : 4000;
      const att = new JoinTokenAttestor({ dir: store.path('tokens'), clock: systemClock, trustDomain: 'bench.example' });
      const tokens = Array.from({ length: n }, (_, i) => att.create({ spiffeId: `spiffe://bench.example/ns/load/sa/new-${i}`, ttlMs: 600_000 }).token);
      const freshCsrs = Array.from({ length: n }, () => createCsr(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey));
      const anon = Array.from({ length: nClients }, () => new CaClient({ address, roots, serverId }));
      await anon[0]!.getBundle();
      options.log(`gRPC first issues: ${n} join tokens, fresh keys ...`);
      const first = await grpcLoad(anon, inFlight, 60_000, (c, i) => c.issue({ csr: freshCsrs[i]!, token: tokens[i]! }), n);
      if (first.errors) options.log(`  ${first.errors} first-issue errors`);
      for (const c of [...renewers, ...anon]) c.close();
      return {
        opensslSignPerSec: ossl.sign,
        opensslVerifyPerSec: ossl.verify,
        inProcessIssuePerSec,
        inProcessWithCsrPerSec,
        grpcRenewPerSec: renew.perSec,
        grpcFirstIssuePerSec: first.perSec,
        grpcClients: nClients,
        grpcInFlight: inFlight,
      };
    } finally {
      await ca.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function caTable(f: CaFigures): string {
  const r = (x: number): string => Math.round(x).toLocaleString('en-US');
  const pct = (x: number): string => `${Math.round(x * 100)} %`;
  return [
    '| CA figure | value | vs target |',
    '|---|---:|---|',
    `| openssl speed ecdsap256 sign/s (this machine) | ${r(f.opensslSignPerSec)} | reference |`,
    `| in-process leaf issuance/s (template + node:crypto sign) | ${r(f.inProcessIssuePerSec)} | ${pct(f.inProcessIssuePerSec / f.opensslSignPerSec)} of openssl sign (goal ≥ 50 %) |`,
    `| in-process issuance/s incl. CSR verification (fresh key import) | ${r(f.inProcessWithCsrPerSec)} | openssl verify/s is ${r(f.opensslVerifyPerSec)} |`,
    `| gRPC SVIDs/s, renewal over mTLS (${f.grpcClients} clients, ${f.grpcInFlight} in flight) | ${r(f.grpcRenewPerSec)} | ${pct(f.grpcRenewPerSec / 5000)} of 5,000/s goal |`,
    `| gRPC SVIDs/s, first issue (join token, fresh key per request) | ${r(f.grpcFirstIssuePerSec)} | ${pct(f.grpcFirstIssuePerSec / 5000)} of 5,000/s goal |`,
  ].join('\n');
}
