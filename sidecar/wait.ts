// `tollgate sidecar wait`: poll the sidecar's /readyz until it answers 200 or time runs out. The
// injected pod's fallback for clusters older than 1.29 runs it as the sidecar container's postStart
// hook: the kubelet starts the next container (the app) only when the hook returns, so the app
// starts after the sidecar holds an SVID — what the native sidecar's startup probe gives on 1.29+.
import { request } from 'node:http';
import type { Clock } from '../common/clock.ts';

export interface WaitOptions {
  /** The sidecar's admin address as HOST:PORT. */
  readonly admin: string;
  readonly timeoutMs: number;
  readonly clock: Clock;
  /** Pause between attempts; default 200 ms. */
  readonly intervalMs?: number;
}

export interface WaitResult {
  readonly ready: boolean;
  /** The last answer or error, for the operator. */
  readonly detail: string;
  readonly attempts: number;
}

function probe(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body = (body + d).slice(0, 500)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** A socket timeout for one request (a hung admin port); the deadline itself is kept on the clock. */
const PROBE_TIMEOUT_MS = 1000;

export async function waitUntilReady(options: WaitOptions): Promise<WaitResult> {
  const { clock } = options;
  const url = `http://${options.admin}/readyz`;
  const deadline = clock.now() + options.timeoutMs;
  const interval = options.intervalMs ?? 200;
  let attempts = 0;
  let detail = 'not asked yet';
  for (;;) {
    attempts++;
    try {
      const r = await probe(url, PROBE_TIMEOUT_MS);
      if (r.status === 200) return { ready: true, detail: r.body, attempts };
      detail = `${r.status} ${r.body}`;
    } catch (e) {
      detail = (e as Error).message;
    }
    if (clock.now() + interval > deadline) return { ready: false, detail, attempts };
    await new Promise<void>((resolve) => clock.setTimer(interval, resolve));
  }
}
