// Holds N idle mTLS connections to a server-side proxy, for its per-connection memory figure.
// Spawned by peers-idle.ts: argv[2] is a JSON IdleClientArgs. Prints one JSON line when every
// connection is open (or failed), then holds them until SIGTERM or its own deadline.
import { readFileSync } from 'node:fs';
import { connect, type TLSSocket } from 'node:tls';

export interface IdleClientArgs {
  readonly port: number;
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
  readonly count: number;
  /** Handshakes in flight at once: bounded, so the proxy is not flooded. */
  readonly concurrency: number;
  /** The script exits by itself after this long, even if nobody stops it. */
  readonly deadlineMs: number;
}

const a = JSON.parse(process.argv[2] ?? '{}') as IdleClientArgs;
const cert = readFileSync(a.cert);
const key = readFileSync(a.key);
const ca = readFileSync(a.ca);
const sockets: TLSSocket[] = [];
let failed = 0;
let firstError = '';

function openOne(): Promise<void> {
  return new Promise((resolve) => {
    const s = connect({
      host: '127.0.0.1',
      port: a.port,
      cert,
      key,
      ca,
      minVersion: 'TLSv1.3',
      // The chain is verified; the name is not: peer certificates carry different SANs and
      // this is a memory test, not an identity test.
      checkServerIdentity: () => undefined,
    });
    const timer = setTimeout(() => s.destroy(new Error('handshake timeout (10 s)')), 10_000);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      sockets.push(s);
      resolve();
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      failed++;
      firstError ||= e.message;
      resolve();
    });
  });
}

const deadline = setTimeout(() => process.exit(3), a.deadlineMs);
deadline.unref();
process.once('SIGTERM', () => {
  for (const s of sockets) s.destroy();
  process.exit(0);
});

let next = 0;
await Promise.all(
  Array.from({ length: Math.min(a.concurrency, a.count) }, async () => {
    while (next < a.count) {
      next++;
      await openOne();
    }
  }),
);
process.stdout.write(`${JSON.stringify({ ready: true, open: sockets.length, failed, firstError })}\n`);
// Keep the event loop alive while holding the connections.
setInterval(() => {}, 60_000);
