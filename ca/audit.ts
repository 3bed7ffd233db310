// The audit trail: one JSON line per issuance and per refusal of an authenticated caller; refusals
// of unauthenticated or rate-limited callers are aggregated, one line per address per interval with
// a count and the codes (a flood writes a few lines, not one per request). Never keys, tokens or CSRs.
// Writes go to a stream without blocking the event loop; an issuance waits for its own line to be
// handed to the OS before its answer leaves. A write failure is loud: metric, log and `failure`.
import { createWriteStream, openSync, type WriteStream } from 'node:fs';
import { Writable } from 'node:stream';
import { writingTo } from '../common/files.ts';
import type { Clock, TimerHandle } from '../common/clock.ts';
import type { Logger } from '../common/log.ts';

export interface AuditRecord {
  readonly event: 'svid_issued' | 'svid_refused' | 'join_token_created' | 'join_token_refused';
  readonly spiffe_id?: string | undefined;
  readonly serial?: string | undefined;
  readonly not_after?: string | undefined;
  readonly attestation?: string | undefined;
  readonly peer?: string | undefined;
  readonly code?: string | undefined;
  readonly message?: string | undefined;
  readonly details?: Readonly<Record<string, unknown>> | undefined;
}

/** A Writable (file stream, stderr) or any object with a synchronous `write`. */
export interface AuditSink {
  write(line: string): unknown;
  /** The file behind it (fs.WriteStream has one), named in failure messages. */
  readonly path?: string | Buffer;
}

/** Open `path` for appending audit lines (0600); TG_WRITE_FAILED naming it when it cannot be opened. */
export function openAuditFile(path: string): WriteStream {
  const fd = writingTo(path, () => openSync(path, 'a', 0o600));
  const stream = createWriteStream(path, { fd });
  stream.path = path; // Node leaves it unset when given an fd; AuditLog names it in failures
  return stream;
}

/** One aggregated line per address per interval. */
export const AUDIT_AGGREGATE_MS = 10_000;
/** Addresses tracked per interval; beyond it refusals are counted under peer "*". */
export const AUDIT_AGGREGATE_ADDRESSES = 4096;

interface Aggregate {
  since: number;
  count: number;
  codes: Record<string, number>;
}

export interface AuditLogOptions {
  readonly out: AuditSink;
  readonly clock: Clock;
  /** Interval of the aggregated refusal lines (default AUDIT_AGGREGATE_MS); 0: one line per refusal. */
  readonly aggregateMs?: number | undefined;
  readonly logger?: Logger | undefined;
  /** Called once per failed write (the CA counts tollgate_ca_audit_write_errors_total). */
  readonly onWriteError?: ((e: Error) => void) | undefined;
}

export class AuditLog {
  readonly #o: AuditLogOptions;
  readonly #stream: Writable | undefined;
  readonly #aggregates = new Map<string, Aggregate>();
  #timer: TimerHandle | undefined;
  #failure: string | undefined;

  constructor(options: AuditLogOptions) {
    this.#o = options;
    this.#stream = options.out instanceof Writable ? options.out : undefined;
    this.#stream?.on('error', (e) => this.#failed(e));
  }

  /** False with aggregateMs 0: every refusal gets its own line. */
  get aggregates(): boolean {
    return this.#o.aggregateMs !== 0;
  }

  /** Why the audit trail is not being written, once a write has failed; undefined while healthy. */
  get failure(): string | undefined {
    return this.#failure;
  }

  /** One line now. Resolves once the line is handed to the OS (or the write has failed). */
  record(r: AuditRecord): Promise<void> {
    return this.#write({ time: this.#iso(this.#o.clock.now()), audit: true, ...r });
  }

  /** A refusal of an unauthenticated or rate-limited caller: counted into its address's next line. */
  refusedAggregate(peer: string, code: string): void {
    const key = this.#aggregates.has(peer) || this.#aggregates.size < AUDIT_AGGREGATE_ADDRESSES ? peer : '*';
    let a = this.#aggregates.get(key);
    if (!a) this.#aggregates.set(key, (a = { since: this.#o.clock.now(), count: 0, codes: {} }));
    a.count++;
    a.codes[code] = (a.codes[code] ?? 0) + 1;
    this.#timer ??= this.#o.clock.setTimer(this.#o.aggregateMs ?? AUDIT_AGGREGATE_MS, () => {
      this.#timer = undefined;
      this.flush();
    });
  }

  /** Write the aggregated lines now (the timer does this every interval; close does it last). */
  flush(): void {
    const now = this.#iso(this.#o.clock.now());
    for (const [peer, a] of this.#aggregates) {
      void this.#write({ time: now, audit: true, event: 'svid_refused_aggregate', peer, count: a.count, codes: a.codes, since: this.#iso(a.since) });
    }
    this.#aggregates.clear();
  }

  /** Flush, then wait until everything written so far is with the OS. The caller owns (and ends) the sink. */
  async close(): Promise<void> {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.flush();
    const s = this.#stream;
    if (s && s.writableNeedDrain && !s.destroyed) await new Promise<void>((resolve) => { s.once('drain', resolve); s.once('error', () => resolve()); });
  }

  #write(line: Record<string, unknown>): Promise<void> {
    const text = `${JSON.stringify(line)}\n`;
    const s = this.#stream;
    if (!s) {
      try {
        this.#o.out.write(text);
      } catch (e) {
        this.#failed(e as Error);
      }
      return Promise.resolve();
    }
    if (s.destroyed || s.writableEnded) {
      this.#failed(new Error('the audit stream is closed'));
      return Promise.resolve();
    }
    // A full stream buffers in memory (backpressure is visible in writableLength); nothing blocks.
    return new Promise<void>((resolve) => s.write(text, (e) => {
      if (e) this.#failed(e);
      resolve();
    }));
  }

  #failed(e: Error): void {
    const first = this.#failure === undefined;
    const path = this.#o.out.path;
    const file = typeof path === 'string' && path !== '' ? ` (${path})` : '';
    this.#failure = `audit log write failed: ${e.message}${file}`;
    this.#o.onWriteError?.(e);
    if (first) this.#o.logger?.error(`audit log write failed${file}: decisions are not being recorded; free space or fix the file, then restart`, { error: e.message, ...(file ? { path } : {}) });
  }

  #iso(ms: number): string {
    return new Date(ms).toISOString();
  }
}
