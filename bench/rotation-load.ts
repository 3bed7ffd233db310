// The load of the rotation rows: paced HTTP/1.1 GETs through the sidecar pair, counted the way an
// HTTP client sees them. wrk counts a keep-alive connection that the server closes while idle (no
// request written) as a read error; the sidecars now close every connection at its peer
// certificate's notAfter, at a quiet moment (sidecar/deadlines.ts), so with short leaves wrk would
// report one "error" per connection per leaf lifetime although no request was lost. HTTP clients
// (curl, Go's net/http, browsers) see the FIN and open a new connection; so does this one, and counts
// that apart (closedIdle). A request is failed only if it was written and no complete 200 answer came
// back within the timeout.
import net from 'node:net';

export interface PacedLoadOptions {
  readonly port: number;
  readonly host?: string;
  readonly path: string;
  /** The expected body length: an answer is complete when that many body bytes arrived. */
  readonly size: number;
  /** Parallel lanes: keep-alive connections, or loops of one connection per request. */
  readonly lanes: number;
  /** Pause after each answer (wrk's paced.lua: 10 ms). */
  readonly intervalMs: number;
  /** false: `Connection: close`, a new connection per request. */
  readonly keepAlive: boolean;
  /** A request not answered within this is failed (wrk's --timeout 5s). */
  readonly timeoutMs?: number;
}

export interface PacedLoadResult {
  readonly requests: number;
  readonly failed: number;
  /** Keep-alive connections the server closed between requests (reopened; no request lost). */
  readonly closedIdle: number;
  /** The first few failures, with why. */
  readonly failures: string[];
}

type Outcome = { ok: true } | { ok: false; why: string };

/** One connection with at most one request outstanding. */
class Lane {
  #socket: net.Socket | null = null;
  #buf: Buffer = Buffer.alloc(0);
  #pending: ((o: Outcome) => void) | null = null;
  #timer: NodeJS.Timeout | null = null;
  closedIdle = 0;

  constructor(private readonly o: PacedLoadOptions) {}

  #open(): net.Socket {
    const s = net.connect({ host: this.o.host ?? '127.0.0.1', port: this.o.port, noDelay: true });
    s.on('data', (d: Buffer) => {
      this.#buf = this.#buf.length ? Buffer.concat([this.#buf, d]) : d;
      this.#check();
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      if (this.#socket === s) this.#socket = null;
      if (this.#pending) this.#finish({ ok: false, why: 'connection closed before the whole answer' });
      else if (this.o.keepAlive) this.closedIdle++;
    });
    // A FIN while idle: do not write on it again (HTTP clients check this before reusing a connection).
    s.on('end', () => {
      if (this.#socket === s) this.#socket = null;
    });
    return s;
  }

  /** The answer is complete when the head is parsed and Content-Length body bytes are in. */
  #check(): void {
    const head = this.#buf.indexOf('\r\n\r\n');
    if (head < 0 || !this.#pending) return;
    const text = this.#buf.subarray(0, head).toString('latin1');
    const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(text)?.[1] ?? NaN);
    if (!Number.isFinite(length)) return this.#finish({ ok: false, why: `no Content-Length in ${JSON.stringify(text.slice(0, 60))}` });
    if (this.#buf.length < head + 4 + length) return;
    this.#buf = this.#buf.subarray(head + 4 + length);
    const status = /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1];
    if (status !== '200') return this.#finish({ ok: false, why: `status ${status ?? '?'}` });
    if (length !== this.o.size) return this.#finish({ ok: false, why: `body of ${length} bytes, ${this.o.size} expected` });
    this.#finish({ ok: true });
  }

  #finish(o: Outcome): void {
    const p = this.#pending;
    this.#pending = null;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    p?.(o);
  }

  request(): Promise<Outcome> {
    const s = this.o.keepAlive && this.#socket && !this.#socket.destroyed ? this.#socket : this.#open();
    this.#socket = s;
    this.#buf = Buffer.alloc(0);
    return new Promise<Outcome>((resolve) => {
      this.#pending = resolve;
      this.#timer = setTimeout(() => {
        this.#finish({ ok: false, why: `no whole answer within ${this.o.timeoutMs ?? 5000} ms` });
        s.destroy();
      }, this.o.timeoutMs ?? 5000);
      s.write(`GET ${this.o.path} HTTP/1.1\r\nHost: tollgate-bench\r\n${this.o.keepAlive ? '' : 'Connection: close\r\n'}\r\n`);
    }).then((outcome) => {
      if (!this.o.keepAlive || !outcome.ok) s.destroy();
      return outcome;
    });
  }

  close(): void {
    this.#socket?.destroy();
  }
}

/** Start the load; stop() ends it (after each lane's request in flight) and returns the counts. */
export function startPacedLoad(o: PacedLoadOptions): { stop: () => Promise<PacedLoadResult> } {
  let stopped = false;
  let requests = 0;
  const failures: string[] = [];
  let failed = 0;
  const lanes = Array.from({ length: o.lanes }, () => new Lane(o));
  const loops = lanes.map(async (lane) => {
    while (!stopped) {
      requests++;
      const r = await lane.request();
      if (!r.ok) {
        failed++;
        if (failures.length < 5) failures.push(r.why);
      }
      await new Promise((res) => setTimeout(res, o.intervalMs));
    }
    lane.close();
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return { requests, failed, closedIdle: lanes.reduce((n, l) => n + l.closedIdle, 0), failures };
    },
  };
}
