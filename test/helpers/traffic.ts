// Client traffic through a sidecar's outbound port for integration tests: one request on a fresh
// connection, a long-lived connection pinged now and then, and a bounded loop of both that counts
// what failed. Every request is a line the echo backend sends back.
import { connect, type Socket } from 'node:net';
import { waitFor } from './sidecar-fixture.ts';

/** One request on a fresh connection to 127.0.0.1:port; resolves true when its line came back. */
export function oneRequest(port: number, i: number, timeoutMs = 5000): Promise<boolean> {
  return new Promise((resolve) => {
    const msg = `req ${i}\n`;
    let got = '';
    const s = connect(port, '127.0.0.1');
    const t = setTimeout(() => s.destroy(), timeoutMs);
    s.setEncoding('utf8').on('data', (d: string) => {
      got += d;
      if (got === msg) s.end();
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(t);
      resolve(got === msg);
    });
    s.write(msg);
  });
}

/** A connection kept open for the whole test; `ping` sends a line and waits (bounded) for its echo. */
export interface LongLived {
  readonly closed: boolean;
  ping(n: number): Promise<void>;
  destroy(): void;
}

export async function longLived(port: number): Promise<LongLived> {
  const s: Socket = connect(port, '127.0.0.1');
  let text = '';
  let closed = false;
  s.setEncoding('utf8').on('data', (d: string) => (text += d));
  s.on('error', () => undefined);
  s.on('close', () => (closed = true));
  const c: LongLived = {
    get closed() {
      return closed;
    },
    async ping(n) {
      const line = `ping ${n}\n`;
      s.write(line);
      await waitFor(() => text.includes(line), `echo of ${line.trim()} on the long-lived connection`, 5000);
    },
    destroy: () => s.destroy(),
  };
  await c.ping(0);
  return c;
}

export interface TrafficCounts {
  /** Requests on fresh connections plus pings on the long-lived one. */
  readonly sent: number;
  readonly failed: number;
}

export interface Traffic {
  counts(): TrafficCounts;
  /** Wall-clock times (epoch ms) of the failures, for telling which phase they fell in. */
  readonly failedAt: readonly number[];
  /** The long-lived connection now (reopened after the sidecar closed one at a certificate's notAfter). */
  readonly long: LongLived;
  /** How many times the long-lived connection was closed under it and reopened. */
  readonly reopened: number;
  /** Stop and wait for the request in flight; resolves with the final counts. */
  stop(): Promise<TrafficCounts>;
}

/**
 * Requests on fresh connections back to back, and a ping on one long-lived connection every
 * `pingEvery` requests, until stop() or `maxMs` or `maxRequests`, whichever comes first.
 */
export async function startTraffic(o: { port: number; maxMs: number; maxRequests: number; pingEvery?: number }): Promise<Traffic> {
  let long = await longLived(o.port);
  let reopened = 0;
  const failedAt: number[] = [];
  let sent = 0;
  let stopped = false;
  const until = Date.now() + o.maxMs;
  const loop = (async () => {
    while (!stopped && Date.now() < until && sent < o.maxRequests) {
      const n = sent++;
      let ok = n % (o.pingEvery ?? 20) === 0 ? await long.ping(n).then(() => true, () => false) : await oneRequest(o.port, n);
      if (long.closed) {
        // The sidecars close a connection at its certificates' notAfter (callers check that count):
        // not a failed request; carry on on a new long-lived connection.
        ok = true;
        reopened++;
        long = await longLived(o.port);
      }
      if (!ok) failedAt.push(Date.now());
    }
  })();
  const counts = (): TrafficCounts => ({ sent, failed: failedAt.length });
  return {
    counts,
    failedAt,
    get long() {
      return long;
    },
    get reopened() {
      return reopened;
    },
    async stop() {
      stopped = true;
      await loop;
      return counts();
    },
  };
}
