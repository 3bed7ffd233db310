// Memory of one server-side proxy holding many idle mTLS connections: USS before and after,
// and the difference per connection. The connections come from peers-idle-client.ts, a separate
// process so that its descriptors and heap do not mix with the bench's.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Pair } from './peers-contenders.ts';
import { memory } from './peers-proc-stat.ts';
import { startUntilReady } from './peers-procs.ts';
import type { IdleClientArgs } from './peers-idle-client.ts';

const SCRIPT = fileURLToPath(new URL('./peers-idle-client.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url)); // where `--import tsx` resolves
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface IdleResult {
  /** USS of the idle server side before any connection, KiB. */
  readonly serverUssIdleKb: number;
  readonly clientUssIdleKb: number;
  readonly serverUssHeldKb: number;
  readonly opened: number;
  readonly failed: number;
  /** (USS held - USS idle) / opened. */
  readonly kbPerConn: number;
}

/** Wait settleMs, reading USS every second (the series goes to the log), then read both sides. */
async function settle(pair: Pair, settleMs: number, log: (line: string) => void): Promise<{ server: number; client: number }> {
  const server = pair.server!.pid;
  const client = pair.client!.pid;
  const series: number[] = [];
  for (let waited = 0; waited < settleMs; waited += 1000) {
    await sleep(Math.min(1000, settleMs - waited));
    series.push(Math.round(memory(server).ussKb / 1024));
  }
  log(`server USS MiB each second while settling: ${series.join(' ')}`);
  return { server: memory(server).ussKb, client: memory(client).ussKb };
}

export async function measureIdle(pair: Pair, o: { count: number; settleMs: number; dir: string; log: (line: string) => void }): Promise<IdleResult> {
  if (!pair.server || !pair.client || !pair.mtlsPort || !pair.clientCreds) throw new Error('the idle test needs a proxy pair');
  const idle = await settle(pair, o.settleMs, o.log); // start-up garbage given back
  const args: IdleClientArgs = { port: pair.mtlsPort, ...pair.clientCreds, count: o.count, concurrency: 32, deadlineMs: 180_000 };
  const { proc, ready } = await startUntilReady('idle-client', process.execPath, ['--import', 'tsx', SCRIPT, JSON.stringify(args)], {
    logFile: join(o.dir, 'idle-client.log'),
    cwd: ROOT,
    timeoutMs: 120_000,
  });
  try {
    // The server side finishes its half of the handshake and dials the backend after the client's
    // secureConnect; wait before reading its memory.
    const held = (await settle(pair, o.settleMs, o.log)).server;
    const opened = Number(ready.open);
    const failed = Number(ready.failed);
    if (opened === 0) throw new Error(`no idle connection opened: ${String(ready.firstError)}`);
    return {
      serverUssIdleKb: idle.server,
      clientUssIdleKb: idle.client,
      serverUssHeldKb: held,
      opened,
      failed,
      kbPerConn: (held - idle.server) / opened,
    };
  } finally {
    await proc.stop();
  }
}
