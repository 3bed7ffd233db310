// Parser of Linux's /proc/net/tcp and /proc/net/tcp6: the TCP sockets of this network namespace,
// i.e. of every container in the pod. The sidecar reads it to find app ports that listen on a
// non-loopback address (reachable around it when traffic capture is off; PRODUCT.md §5).
// Format (proc_net_tcp.rst): "sl local_address rem_address st ...", addresses as hex words in the
// host's byte order and ports as big-endian hex, state 0A = LISTEN.
import { endianness } from 'node:os';

export interface ProcTcpSocket {
  readonly family: 'ipv4' | 'ipv6';
  /** The local address, e.g. 0.0.0.0, 127.0.0.1, :: or fd21:3::2. */
  readonly address: string;
  readonly port: number;
  /** Kernel TCP state number; 10 (0x0A) is LISTEN. */
  readonly state: number;
  /** The local address is loopback: 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104. */
  readonly loopback: boolean;
}

export const TCP_LISTEN = 0x0a;

/** Bytes of an address written as 32-bit hex words in the host's byte order. */
function addressBytes(hex: string, littleEndian: boolean): Buffer | null {
  if (!/^[0-9A-Fa-f]+$/.test(hex) || (hex.length !== 8 && hex.length !== 32)) return null;
  const b = Buffer.from(hex, 'hex');
  if (littleEndian) for (let i = 0; i < b.length; i += 4) b.subarray(i, i + 4).reverse();
  return b;
}

function formatAddress(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  const groups = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16)).join(':');
  // The WHATWG URL parser writes IPv6 in its canonical compressed form.
  return new URL(`http://[${groups}]/`).hostname.slice(1, -1);
}

function isLoopbackBytes(b: Buffer): boolean {
  if (b.length === 4) return b[0] === 127;
  const v4mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  if (v4mapped) return b[12] === 127;
  return b.subarray(0, 15).every((x) => x === 0) && b[15] === 1;
}

/**
 * The sockets listed in one /proc/net/tcp or /proc/net/tcp6 text; lines that do not parse are
 * skipped. With `state`, only sockets in that state: one regular-expression pass that never splits
 * or decodes the other lines (a pod's sidecar with 10,000 connections lists 20,000 sockets, and
 * the check runs on the event loop that carries them).
 */
export function parseProcNetTcp(text: string, o: { family: 'ipv4' | 'ipv6'; littleEndian?: boolean; state?: number }): ProcTcpSocket[] {
  const littleEndian = o.littleEndian ?? endianness() === 'LE';
  const state = o.state === undefined ? '[0-9A-Fa-f]{2}' : o.state.toString(16).toUpperCase().padStart(2, '0');
  // "  sl  local_address rem_address st ...": sl, local address:port, remote address:port, state.
  const line = new RegExp(String.raw`^[ \t]*\d+:[ \t]+([0-9A-Fa-f]+):([0-9A-Fa-f]{4})[ \t]+[0-9A-Fa-f]+:[0-9A-Fa-f]{4}[ \t]+(${state})(?=[ \t]|$)`, 'gmi');
  const sockets: ProcTcpSocket[] = [];
  for (const m of text.matchAll(line)) {
    const bytes = addressBytes(m[1]!, littleEndian);
    if (!bytes || (bytes.length === 4) !== (o.family === 'ipv4')) continue;
    sockets.push({ family: o.family, address: formatAddress(bytes), port: parseInt(m[2]!, 16), state: parseInt(m[3]!, 16), loopback: isLoopbackBytes(bytes) });
  }
  return sockets;
}

export interface ExposedPort {
  readonly port: number;
  /** Every non-loopback address the port listens on. */
  readonly addresses: readonly string[];
}

/** The app ports with a listening socket on a non-loopback address, in port order. */
export function exposedAppPorts(sockets: readonly ProcTcpSocket[], appPorts: readonly number[]): ExposedPort[] {
  const wanted = new Set(appPorts);
  const by = new Map<number, Set<string>>();
  for (const s of sockets) {
    if (s.state !== TCP_LISTEN || s.loopback || !wanted.has(s.port)) continue;
    const set = by.get(s.port) ?? new Set<string>();
    set.add(s.address);
    by.set(s.port, set);
  }
  return [...by].sort(([a], [b]) => a - b).map(([port, addresses]) => ({ port, addresses: [...addresses].sort() }));
}
