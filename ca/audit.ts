// The audit trail: one JSON line per issuance and per refusal. Never keys, tokens or CSRs.
import type { Clock } from '../common/clock.ts';

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

export interface AuditSink {
  write(line: string): unknown;
}

export class AuditLog {
  readonly #out: AuditSink;
  readonly #clock: Clock;

  constructor(options: { out: AuditSink; clock: Clock }) {
    this.#out = options.out;
    this.#clock = options.clock;
  }

  record(r: AuditRecord): void {
    this.#out.write(`${JSON.stringify({ time: new Date(this.#clock.now()).toISOString(), audit: true, ...r })}\n`);
  }
}
