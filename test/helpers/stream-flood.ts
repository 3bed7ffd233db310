// The review's attack on a CA (issue 13): many connections, each with many WatchBundle streams, and
// no client certificate. Bounded: `connections` × `streams`, each stream waited for until it got a
// bundle or was refused, within `timeoutMs`.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { CertificateAuthorityClientCtor, type BundleMsg, type CertificateAuthorityClient } from '../../common/ca-api.ts';
import { certsToPem } from '../../pki/pem.ts';

export interface FloodResult {
  /** Streams that received a bundle. */
  readonly served: number;
  /** Streams that ended with an error (refused, reset, connection closed). */
  readonly refused: number;
  /** Streams that had neither when the flood stopped waiting. */
  readonly pending: number;
  /** Stop the flood: cancel every stream and close every connection. */
  stop(): void;
}

export async function floodWatchBundle(o: { port: number; roots: readonly Buffer[]; connections: number; streams: number; timeoutMs?: number }): Promise<FloodResult> {
  const creds = grpc.credentials.createSsl(Buffer.from(certsToPem(o.roots)), null, null, { checkServerIdentity: () => undefined });
  const clients: CertificateAuthorityClient[] = [];
  const calls: grpc.ClientReadableStream<BundleMsg>[] = [];
  let served = 0;
  let refused = 0;
  const settled: Promise<void>[] = [];
  for (let c = 0; c < o.connections; c++) {
    // A local subchannel pool: each client is its own TCP connection.
    const client = new CertificateAuthorityClientCtor(`127.0.0.1:${o.port}`, creds, {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.ssl_target_name_override': 'tollgate-ca',
      'grpc.default_authority': 'tollgate-ca',
    }) as unknown as CertificateAuthorityClient;
    clients.push(client);
    for (let s = 0; s < o.streams; s++) {
      const call = client.WatchBundle({ report: null });
      calls.push(call);
      settled.push(
        new Promise<void>((resolve) => {
          let done = false;
          const once = (f: () => void) => () => {
            if (!done) {
              done = true;
              f();
              resolve();
            }
          };
          call.on('data', once(() => served++));
          call.on('error', once(() => refused++));
          call.on('end', once(() => refused++));
        }),
      );
    }
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(settled), new Promise<void>((r) => (timer = setTimeout(r, o.timeoutMs ?? 60_000)))]);
  clearTimeout(timer);
  return {
    served,
    refused,
    pending: calls.length - served - refused,
    stop() {
      for (const call of calls) call.cancel();
      for (const client of clients) client.close();
    },
  };
}

/** Resident memory of a process, in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}
