// The connection slots every listener of one sidecar draws from (issue 14, problem 1).
//
// One budget per sidecar: limits.maxConnections counts the connections of all listeners together,
// inbound and outbound, from the moment they are accepted. Connections still in their TLS handshake
// also hold a handshake slot, limited in total (limits.maxHandshakes) and per source address
// (limits.maxHandshakesPerSource), so a flood of stalled or abandoned handshakes from one source
// fills its own share and never the slots another source needs. A slot is returned when the socket
// closes (and the handshake slot as soon as the handshake is done), whichever path closes it.
import type net from 'node:net';

export interface BudgetLimits {
  readonly maxConnections: number;
  readonly maxHandshakes: number;
  readonly maxHandshakesPerSource: number;
}

/** Why a connection was not admitted; also its metric reason label. */
export type BudgetRefusal = 'limit' | 'handshake_limit' | 'source_handshake_limit';

const kSlot = Symbol('tollgate.budgetSlot');
interface Slot {
  readonly source: string;
  handshake: boolean;
}
type SlottedSocket = net.Socket & { [kSlot]?: Slot };

export class ConnectionBudget {
  readonly limits: BudgetLimits;
  #open = 0;
  #handshakes = 0;
  readonly #perSource = new Map<string, number>();
  readonly #onClose: (this: net.Socket) => void;

  constructor(limits: BudgetLimits) {
    this.limits = limits;
    const self = this;
    // One listener for every admitted socket (not a closure per connection).
    this.#onClose = function (this: net.Socket) {
      self.#release(this);
    };
  }

  /** Connections holding a slot now (all listeners). */
  get open(): number {
    return this.#open;
  }

  /** Connections still in their handshake now (all listeners). */
  get handshakes(): number {
    return this.#handshakes;
  }

  /** Take a slot for an accepted socket (and a handshake slot if `handshake`); the reason if there is none. */
  admit(socket: net.Socket, options: { readonly handshake: boolean }): BudgetRefusal | null {
    const s = socket as SlottedSocket;
    if (s[kSlot]) return null;
    if (this.#open >= this.limits.maxConnections) return 'limit';
    const source = socket.remoteAddress ?? '?';
    if (options.handshake) {
      if (this.#handshakes >= this.limits.maxHandshakes) return 'handshake_limit';
      const n = this.#perSource.get(source) ?? 0;
      if (n >= this.limits.maxHandshakesPerSource) return 'source_handshake_limit';
      this.#perSource.set(source, n + 1);
      this.#handshakes++;
    }
    this.#open++;
    s[kSlot] = { source, handshake: options.handshake };
    socket.once('close', this.#onClose);
    return null;
  }

  /** The socket's handshake is over (done or failed): give back its handshake slot; it keeps its connection slot. */
  handshakeDone(socket: net.Socket): void {
    const slot = (socket as SlottedSocket)[kSlot];
    if (!slot?.handshake) return;
    slot.handshake = false;
    this.#handshakes--;
    const n = (this.#perSource.get(slot.source) ?? 1) - 1;
    if (n <= 0) this.#perSource.delete(slot.source);
    else this.#perSource.set(slot.source, n);
  }

  #release(socket: net.Socket): void {
    const s = socket as SlottedSocket;
    if (!s[kSlot]) return;
    this.handshakeDone(socket);
    s[kSlot] = undefined;
    this.#open--;
  }
}

/** What a dropped connection's log line says: which limit was full and what to do about it. */
export function budgetAdvice(reason: BudgetRefusal, limits: BudgetLimits): string {
  if (reason === 'limit') return `${limits.maxConnections} connections are open on this sidecar (limits.maxConnections, all listeners together); raise the limit or add replicas`;
  if (reason === 'handshake_limit') return `${limits.maxHandshakes} connections are in their TLS handshake (limits.maxHandshakes); possibly a handshake flood`;
  return `this source has ${limits.maxHandshakesPerSource} connections in their TLS handshake (limits.maxHandshakesPerSource); possibly a handshake flood from it`;
}
