// The tollgate contender: our CA (`tollgate ca init/serve`) issues the pair's SVIDs through join
// tokens, and two `tollgate sidecar run` processes form the pair. Also the sidecar's
// start-to-ready time. Everything goes through the CLI, as an operator would run it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { sidecarProcessEnv } from '../common/sidecar-runtime.ts';
import type { Contender, Pair } from './peers-contenders.ts';
import { CLIENT_ID, SERVER_ID, TRUST_DOMAIN } from './peers-pki.ts';
import { freePort, HOST, runBounded, startUntilReady, waitPort, type Proc } from './peers-procs.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin/tollgate.js');
const READY_TIMEOUT_MS = 30_000;

export async function cli(args: string[]): Promise<string> {
  const r = await runBounded(process.execPath, [BIN, ...args], 60_000, ROOT);
  if (r.code !== 0) throw new Error(`tollgate ${args.slice(0, 3).join(' ')} failed (exit ${r.code}): ${r.stderr.trim().slice(-600)}`);
  return r.stdout;
}

export interface RunningCa {
  readonly dir: string;
  readonly grpcPort: number;
  readonly adminPort: number;
  readonly bundle: string;
  /** A client SVID for the idle-connection test (the sidecar pair gets its own through tokens). */
  readonly idleClient: { cert: string; key: string };
  readonly proc: Proc;
}

/** `ca init` + `ca serve` in DIR/ca; `initArgs`/`serveArgs` add flags (e.g. lifetimes, leaf TTLs). */
export async function startTollgateCa(dir: string, o: { initArgs?: readonly string[]; serveArgs?: readonly string[] } = {}): Promise<RunningCa> {
  const caDir = join(dir, 'ca');
  await cli(['ca', 'init', '--trust-domain', TRUST_DOMAIN, '--dir', caDir, ...(o.initArgs ?? [])]);
  // Rate limits off: the bench asks for many SVIDs for the same two identities within minutes.
  const { proc, ready } = await startUntilReady('tollgate-ca', process.execPath,
    [BIN, 'ca', 'serve', '--dir', caDir, '--listen', `${HOST}:0`, '--admin', `${HOST}:0`, '--rate-per-identity', '0', '--rate-per-address', '0', ...(o.serveArgs ?? [])],
    { logFile: join(dir, 'ca.log'), cwd: ROOT, timeoutMs: READY_TIMEOUT_MS });
  const prefix = join(dir, 'idle-client');
  await cli(['cert', 'issue', '--ca-dir', caDir, '--spiffe-id', CLIENT_ID, '--out', prefix]);
  return { dir: caDir, grpcPort: Number(ready.grpc_port), adminPort: Number(ready.admin_port), bundle: join(caDir, 'bundle.pem'), idleClient: { cert: `${prefix}.crt`, key: `${prefix}.key` }, proc };
}

/** A single-use join token for one identity. */
export async function token(ca: RunningCa, spiffeId: string): Promise<string> {
  const out = await cli(['ca', 'token', 'create', '--dir', ca.dir, '--spiffe-id', spiffeId, '--ttl', '10m', '--json']);
  const t = (JSON.parse(out) as { token?: unknown }).token;
  if (typeof t !== 'string') throw new Error(`tollgate ca token create printed no token: ${out.slice(0, 200)}`);
  return t;
}

export interface SideConfig {
  readonly ca: RunningCa;
  readonly token: string;
  /** svid.ttl, e.g. '8s'; the sidecar's default (1 h) when absent. */
  readonly ttl?: string;
  readonly inbound?: { listen: number; appPort: number };
  readonly outbound?: { listen: number; upstream: number };
}

export function writeSidecarConfig(dir: string, side: string, c: SideConfig): string {
  mkdirSync(dir, { recursive: true });
  const config: Record<string, unknown> = {
    trustDomain: TRUST_DOMAIN,
    ca: { address: `${HOST}:${c.ca.grpcPort}`, bundleFile: c.ca.bundle },
    attestation: { joinToken: c.token },
    admin: { listen: `${HOST}:0` },
    ...(c.ttl ? { svid: { ttl: c.ttl } } : {}),
  };
  if (c.inbound) {
    config.inbound = [{ listen: `${HOST}:${c.inbound.listen}`, appPort: c.inbound.appPort }];
    const policy = join(dir, `${side}-policy.yaml`);
    writeFileSync(policy, stringify({ ports: { [String(c.inbound.appPort)]: { allow: [CLIENT_ID] } } }));
    config.policy = { file: policy };
  }
  if (c.outbound) config.outbound = [{ listen: `${HOST}:${c.outbound.listen}`, upstream: `${HOST}:${c.outbound.upstream}`, spiffeId: SERVER_ID }];
  const file = join(dir, `${side}.yaml`);
  writeFileSync(file, stringify(config));
  return file;
}

export function startSidecar(name: string, file: string, logFile: string, workers: number | null): ReturnType<typeof startUntilReady> {
  const args = [BIN, 'sidecar', 'run', '--config', file, ...(workers === null ? [] : ['--workers', String(workers)])];
  // As deployed: the injector puts the sidecar's memory settings in its container's environment.
  return startUntilReady(name, process.execPath, args, { logFile, cwd: ROOT, env: sidecarProcessEnv(), timeoutMs: READY_TIMEOUT_MS });
}

export interface TollgateContender extends Contender {
  /** Spawn-to-ready milliseconds of a server-side sidecar, n times, each with a fresh token. */
  startToReady(dir: string, backendPort: number, n: number): Promise<number[]>;
}

/** workers: passed as `sidecar run --workers N` when set. */
export function tollgateContender(o: { workers: number | null }): TollgateContender {
  let ca: RunningCa | null = null;
  const need = (): RunningCa => {
    if (!ca) throw new Error('the tollgate CA is not running (prepare() failed or was not called)');
    return ca;
  };
  return {
    name: 'tollgate',
    missing: () => null,
    // V8's memory reducer gives back unused heap about 15 s after a process goes quiet (measured:
    // USS 35 MiB at 2 s after start, 24 MiB from 16 s on). A sidecar idles for hours, so memory is
    // read after that, not during start-up.
    idleSettleMs: 20_000,
    async prepare(dir) {
      ca ??= await startTollgateCa(dir);
    },
    async start(ctx): Promise<Pair> {
      const c = need();
      const [inPort, mtlsPort] = [await freePort(), await freePort()];
      const [serverToken, clientToken] = await Promise.all([token(c, SERVER_ID), token(c, CLIENT_ID)]);
      const serverFile = writeSidecarConfig(ctx.dir, 'server', { ca: c, token: serverToken, inbound: { listen: mtlsPort, appPort: ctx.backendPort } });
      const clientFile = writeSidecarConfig(ctx.dir, 'client', { ca: c, token: clientToken, outbound: { listen: inPort, upstream: mtlsPort } });
      const started = await Promise.allSettled([
        startSidecar('tollgate-server', serverFile, join(ctx.dir, 'server.log'), o.workers),
        startSidecar('tollgate-client', clientFile, join(ctx.dir, 'client.log'), o.workers),
      ]);
      const procs = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value.proc] : []));
      const stop = async (): Promise<void> => void (await Promise.all(procs.map((p) => p.stop())));
      const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed || started[0]?.status !== 'fulfilled' || started[1]?.status !== 'fulfilled') {
        await stop();
        throw failed?.reason instanceof Error ? failed.reason : new Error('tollgate sidecar did not start');
      }
      const server = started[0].value.proc;
      const client = started[1].value.proc;
      try {
        await Promise.all([waitPort(mtlsPort), waitPort(inPort)]);
      } catch (e) {
        await stop();
        throw e;
      }
      return { inPort, mtlsPort, client, server, clientCreds: { ...c.idleClient, ca: c.bundle }, stop };
    },
    async startToReady(dir, backendPort, n) {
      const c = need();
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        const file = writeSidecarConfig(dir, `ready-${i}`, { ca: c, token: await token(c, SERVER_ID), inbound: { listen: await freePort(), appPort: backendPort } });
        const { proc, ms } = await startSidecar('tollgate-ready', file, join(dir, `ready-${i}.log`), o.workers);
        times.push(ms);
        await proc.stop();
      }
      return times;
    },
  };
}
