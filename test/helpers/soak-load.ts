// The soak's app and its load (test/helpers/soak.ts). The app is a plain HTTP/1.1 server behind the
// orders sidecar; the load is a bounded, paced Node client on web's outbound port that mixes requests
// on keep-alive connections (an http.Agent pool, as a Node service would call another) with requests
// on a new connection each (a full mTLS handshake between the sidecars every time). Every request is
// counted; every failure with its reason and time.
//
// Like the HTTP clients of Go, curl and browsers (RFC 9112 §9.3.1, RFC 9110 §9.2.2), and unlike Node's
// bare http.Agent, the client sends a GET again, once, on a new connection (not one from the pool, whose
// other connections to the same peer close at the same moment) when a reused keep-alive
// connection closed under it before any byte of the answer: the server may close an idle connection
// at any time, and a request that crossed that close was never processed. Those requests are counted
// apart (`retried`, with their times), so the soak can check they line up with the sidecars' closes.
import { Agent, createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SoakApp {
  readonly port: number;
  /** Requests the app answered. */
  readonly answered: number;
  close(): Promise<void>;
}

/** GET /r/N answers 200 "ok N". Idle keep-alive connections stay open 2 min: only the sidecars close them. */
export async function startSoakApp(): Promise<SoakApp> {
  let answered = 0;
  const server: Server = createServer({ keepAliveTimeout: 120_000 }, (req, res) => {
    answered++;
    const n = /^\/r\/(\d+)$/.exec(req.url ?? '')?.[1];
    res.writeHead(n ? 200 : 404, { 'content-type': 'text/plain' });
    res.end(n ? `ok ${n}` : 'no');
  });
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get answered() {
      return answered;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export type LoadLane = 'keepalive' | 'fresh';

export interface LoadFailure {
  readonly at: number;
  readonly lane: LoadLane;
  readonly reason: string;
}

export interface LoadCounts {
  readonly ok: number;
  readonly failed: number;
  /** Requests sent again after a reused keep-alive connection closed before any byte of the answer. */
  readonly retried: number;
  /** The first MAX_KEPT of those, with their times. */
  readonly retries: LoadFailure[];
  readonly byLane: Record<LoadLane, { ok: number; failed: number }>;
  /** Failures by reason. */
  readonly reasons: Record<string, number>;
  /** The first MAX_KEPT failures, with their times (epoch ms). */
  readonly failures: LoadFailure[];
}

export interface LoadShape {
  /** Keep-alive connections in the pool, each carrying one request at a time. */
  readonly keepAliveConnections: number;
  /** Pause between two requests on one keep-alive connection. */
  readonly keepAlivePauseMs: number;
  /** Loops opening a new connection for each request. */
  readonly freshLoops: number;
  /** Pause between two new connections of one loop. */
  readonly freshPauseMs: number;
  /** A request with no complete answer after this long is a failure ("timeout"). */
  readonly requestTimeoutMs: number;
}

/** ~8 × 100 keep-alive requests/s plus ~2 × 25 new mTLS connections/s: steady, and modest on 2 shared cores. */
export const DEFAULT_LOAD: LoadShape = { keepAliveConnections: 8, keepAlivePauseMs: 10, freshLoops: 2, freshPauseMs: 40, requestTimeoutMs: 10_000 };

const MAX_KEPT = 1000;

export interface Load {
  counts(): LoadCounts;
  /** Stop, wait for the requests in flight, close the pool; resolves with the final counts. */
  stop(): Promise<LoadCounts>;
}

export function emptyCounts(): LoadCounts {
  return { ok: 0, failed: 0, retried: 0, retries: [], byLane: { keepalive: { ok: 0, failed: 0 }, fresh: { ok: 0, failed: 0 } }, reasons: {}, failures: [] };
}

/** a + b (for a run made of several load phases). */
export function addCounts(a: LoadCounts, b: LoadCounts): LoadCounts {
  const reasons = { ...a.reasons };
  for (const [k, v] of Object.entries(b.reasons)) reasons[k] = (reasons[k] ?? 0) + v;
  const lane = (l: LoadLane) => ({ ok: a.byLane[l].ok + b.byLane[l].ok, failed: a.byLane[l].failed + b.byLane[l].failed });
  return {
    ok: a.ok + b.ok,
    failed: a.failed + b.failed,
    retried: a.retried + b.retried,
    retries: [...a.retries, ...b.retries].slice(0, MAX_KEPT),
    byLane: { keepalive: lane('keepalive'), fresh: lane('fresh') },
    reasons,
    failures: [...a.failures, ...b.failures].slice(0, MAX_KEPT),
  };
}

/**
 * One GET /r/n; resolves null when the answer was right, else the reason it failed, and whether it may
 * be sent again: a reused keep-alive connection that closed before any byte of the answer.
 */
function get(o: { port: number; n: number; agent: Agent | false; timeoutMs: number }): Promise<{ why: string; retriable: boolean } | null> {
  return new Promise((resolve) => {
    let done = false;
    let answered = false;
    const finish = (why: string | null, retriable = false): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(why === null ? null : { why, retriable });
    };
    const headers = o.agent ? {} : { connection: 'close' };
    const req = request({ host: '127.0.0.1', port: o.port, path: `/r/${o.n}`, agent: o.agent, headers }, (res: IncomingMessage) => {
      answered = true;
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => finish(res.statusCode !== 200 ? `http ${res.statusCode}` : body !== `ok ${o.n}` ? 'wrong body' : null));
      res.on('error', (e: NodeJS.ErrnoException) => finish(`response ${e.code ?? e.message}`));
    });
    // A reused keep-alive socket closed under the request is told apart: it is the close-at-notAfter race.
    req.on('error', (e: NodeJS.ErrnoException) => finish(`${e.code ?? e.message}${req.reusedSocket ? ' on a reused keep-alive connection' : ''}`, req.reusedSocket && !answered));
    const timer = setTimeout(() => {
      finish('timeout');
      req.destroy();
    }, o.timeoutMs);
    req.end();
  });
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Start the load on 127.0.0.1:port; it stops by itself after maxMs or maxRequests, whichever comes first. */
export function startLoad(o: { port: number; shape?: LoadShape; maxMs: number; maxRequests: number }): Load {
  const shape = o.shape ?? DEFAULT_LOAD;
  const agent = new Agent({ keepAlive: true, maxSockets: shape.keepAliveConnections });
  const c = emptyCounts() as { -readonly [K in keyof LoadCounts]: LoadCounts[K] };
  let sent = 0;
  let stopped = false;
  const until = Date.now() + o.maxMs;
  const more = (): boolean => !stopped && Date.now() < until && sent < o.maxRequests;
  const loop = async (lane: LoadLane): Promise<void> => {
    while (more()) {
      const n = sent++;
      const options = { port: o.port, n, agent: lane === 'keepalive' ? agent : false, timeoutMs: shape.requestTimeoutMs } as const;
      let result = await get(options);
      if (result?.retriable) {
        c.retried++;
        if (c.retries.length < MAX_KEPT) c.retries.push({ at: Date.now(), lane, reason: result.why });
        // Once, on a new connection: the pool's other connections to this peer may be closing in the same instant.
        result = await get({ ...options, agent: false });
      }
      const why = result?.why ?? null;
      if (why === null) {
        c.ok++;
        c.byLane[lane].ok++;
      } else {
        c.failed++;
        c.byLane[lane].failed++;
        c.reasons[why] = (c.reasons[why] ?? 0) + 1;
        if (c.failures.length < MAX_KEPT) c.failures.push({ at: Date.now(), lane, reason: why });
      }
      await pause(lane === 'keepalive' ? shape.keepAlivePauseMs : shape.freshPauseMs);
    }
  };
  const loops = [
    ...Array.from({ length: shape.keepAliveConnections }, () => loop('keepalive')),
    ...Array.from({ length: shape.freshLoops }, () => loop('fresh')),
  ];
  const all = Promise.all(loops);
  const snapshot = (): LoadCounts => structuredClone(c);
  return {
    counts: snapshot,
    async stop() {
      stopped = true;
      await all;
      agent.destroy();
      return snapshot();
    },
  };
}
