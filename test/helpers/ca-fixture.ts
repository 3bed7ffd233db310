// A real `tollgate ca serve` process on loopback plus clients for it.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CaClient } from '../../common/ca-client.ts';
import { connectCa } from '../../pki/ca-connect.ts';
import { createCsr } from '../../pki/csr.ts';
import { pemToCertDers } from '../../pki/pem.ts';
import { after, before } from 'node:test';
import { startTollgate, tempDir, tollgate, type Started } from './procs.ts';

export interface RunningTestCa {
  dir: string;
  proc: Started;
  grpcPort: number;
  adminPort: number;
  serverId: string;
  roots: Buffer[];
  client(identity?: { certChainPem: string; keyPem: string }): CaClient;
  auditLines(): Array<Record<string, unknown>>;
  /** Stop with `signal` (default SIGTERM; SIGKILL for a crash) and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** `tollgate ca init` into DIR; `extra` e.g. ['--intermediate-lifetime', '1h']. */
export function initCa(dir: string, trustDomain = 'example.org', extra: readonly string[] = []): void {
  const r = tollgate(['ca', 'init', '--trust-domain', trustDomain, '--dir', dir, ...extra]);
  if (r.code !== 0) throw new Error(`ca init failed: ${r.stderr}`);
}

export async function startCa(dir: string, extra: string[] = []): Promise<RunningTestCa> {
  const audit = join(dir, 'audit-serve.log');
  const proc = await startTollgate(['ca', 'serve', '--dir', dir, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--audit-log', audit, ...extra]);
  const roots = pemToCertDers(readFileSync(join(dir, 'bundle.pem'), 'utf8'));
  const grpcPort = proc.ready.grpc_port as number;
  const serverId = proc.ready.spiffe_id as string;
  const clients: CaClient[] = [];
  return {
    dir,
    proc,
    grpcPort,
    adminPort: proc.ready.admin_port as number,
    serverId,
    roots,
    client(identity) {
      const c = connectCa({ address: `127.0.0.1:${grpcPort}`, roots, serverId, identity, deadlineMs: 10_000 });
      clients.push(c);
      return c;
    },
    auditLines() {
      let text = '';
      try {
        text = readFileSync(audit, 'utf8');
      } catch {
        return [];
      }
      return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    async stop(signal) {
      for (const c of clients) c.close();
      await proc.stop(signal);
    },
  };
}

export function newKey(): { key: KeyObject; csr: Buffer; keyPem: string } {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  return { key, csr: createCsr(key), keyPem: key.export({ format: 'pem', type: 'pkcs8' }) as string };
}

export function createJoinToken(dir: string, spiffeId: string, ttl = '10m'): string {
  const r = tollgate(['ca', 'token', 'create', '--dir', dir, '--spiffe-id', spiffeId, '--ttl', ttl, '--json']);
  if (r.code !== 0) throw new Error(`token create failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { token: string }).token;
}

/** One CA from `ca init` + `ca serve` for a whole test file: started before, stopped after. */
export function caForFile(extra: string[] = []): { readonly ca: RunningTestCa; readonly tmp: string } {
  const state: { ca?: RunningTestCa; tmp?: ReturnType<typeof tempDir> } = {};
  before(async () => {
    state.tmp = tempDir();
    initCa(join(state.tmp.dir, 'ca'));
    state.ca = await startCa(join(state.tmp.dir, 'ca'), extra);
  });
  after(async () => {
    await state.ca?.stop();
    state.tmp?.cleanup();
  });
  return {
    get ca() {
      return state.ca!;
    },
    get tmp() {
      return state.tmp!.dir;
    },
  };
}
