// Caps on what an unauthenticated client can hold open on the CA's gRPC port (issue 13): TCP
// connections in total and per address, and anonymous WatchBundle streams in total and per address.
// The gRPC server owns the listening socket through grpc-js's connection injector, so a connection
// over a cap is closed before TLS costs anything.
import type { Socket } from 'node:net';
import { addressKey } from './rate-limit.ts';

export interface ConnectionLimits {
  /** TCP connections open at once, all clients together. */
  readonly maxConnections: number;
  /** TCP connections open at once from one IPv4 address or IPv6 /64. */
  readonly maxConnectionsPerAddress: number;
  /** A connection that has not finished its TLS handshake after this long is closed. */
  readonly handshakeTimeoutMs: number;
  /** A connection with no call in progress for this long is closed (grpc.max_connection_idle_ms). */
  readonly idleTimeoutMs: number;
  /** Every connection is closed after this long, streams get 1 min to end (grpc.max_connection_age_ms). */
  readonly maxAgeMs: number;
  /** Concurrent HTTP/2 streams per connection (grpc.max_concurrent_streams). */
  readonly maxStreamsPerConnection: number;
  /** WatchBundle streams from callers without a valid SVID, all together and per address. */
  readonly maxAnonymousWatches: number;
  readonly maxAnonymousWatchesPerAddress: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxConnections: 20_000,
  maxConnectionsPerAddress: 200,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 5 * 60_000,
  maxAgeMs: 60 * 60_000,
  maxStreamsPerConnection: 100,
  maxAnonymousWatches: 1_000,
  maxAnonymousWatchesPerAddress: 8,
};

/** Counts held slots in total and per key; a slot is refused past either cap. */
export class SlotCounter {
  readonly #max: number;
  readonly #perKey: number;
  readonly #byKey = new Map<string, number>();
  #total = 0;

  constructor(options: { max: number; perKey: number }) {
    this.#max = options.max;
    this.#perKey = options.perKey;
  }

  /** A release function (idempotent), or null when a cap is reached. */
  acquire(key: string): (() => void) | null {
    const held = this.#byKey.get(key) ?? 0;
    if (this.#total >= this.#max || held >= this.#perKey) return null;
    this.#byKey.set(key, held + 1);
    this.#total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#total--;
      const n = (this.#byKey.get(key) ?? 1) - 1;
      if (n > 0) this.#byKey.set(key, n);
      else this.#byKey.delete(key);
    };
  }

  get total(): number {
    return this.#total;
  }
}

/** Admits a TCP connection if it fits under the connection caps; released when it closes. */
export class ConnectionGuard {
  readonly #slots: SlotCounter;
  readonly #open = new Set<Socket>();

  constructor(options: { limits: Pick<ConnectionLimits, 'maxConnections' | 'maxConnectionsPerAddress'> }) {
    this.#slots = new SlotCounter({ max: options.limits.maxConnections, perKey: options.limits.maxConnectionsPerAddress });
  }

  admit(socket: Socket): boolean {
    const release = this.#slots.acquire(addressKey(socket.remoteAddress ?? ''));
    if (!release) {
      socket.destroy();
      return false;
    }
    this.#open.add(socket);
    socket.once('close', () => {
      this.#open.delete(socket);
      release();
    });
    return true;
  }

  get open(): number {
    return this.#slots.total;
  }

  destroyAll(): void {
    for (const s of this.#open) s.destroy();
  }
}
