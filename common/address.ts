// HOST:PORT parsing shared by the sidecar config and the CLI flags, so both accept and refuse the same
// addresses with the same words.
import { isIP } from 'node:net';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export const isHostName = (host: string): boolean => /^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$/.test(host) && host.length <= 253;
export const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
export const isWildcard = (host: string): boolean => host === '0.0.0.0' || host === '::';

/** "host:port" or "[v6]:port" → HostPort, or what is wrong with it. */
export function parseHostPort(text: string, options: { allowPortZero: boolean }): HostPort | { problem: string } {
  const m = /^\[([^\]]*)\]:([^:]*)$/.exec(text) ?? /^([^:[\]]*):([^:]*)$/.exec(text);
  if (!m) return { problem: `${JSON.stringify(text)} is not HOST:PORT (e.g. 127.0.0.1:15001, [::1]:15001 or orders.shop.svc:15006)` };
  const host = m[1]!;
  if (!(text.startsWith('[') ? isIP(host) === 6 : isIP(host) === 4 || isHostName(host))) return { problem: `${JSON.stringify(text)} has no valid host; write HOST:PORT with an IP address or DNS name (IPv6 in brackets: [::1]:15001)` };
  const low = options.allowPortZero ? 0 : 1;
  const n = /^\d{1,5}$/.test(m[2]!) ? Number(m[2]) : NaN;
  if (!(n >= low && n <= 65535)) return { problem: `${JSON.stringify(text)} has no valid port; use ${low}..65535${low === 0 ? ' (0 picks a free port)' : ''}` };
  return { host, port: n };
}

/** HostPort → "host:port" ("[v6]:port"), the form parseHostPort reads. */
export function formatHostPort(a: HostPort): string {
  return `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}
