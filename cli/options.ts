// Small shared parsers for command-line values; each throws TG_USAGE with what to write instead.
import { TollgateError } from '../pki/errors.ts';

export function parsePort(text: string, what = 'port'): number {
  const n = Number(text);
  if (!/^\d+$/.test(String(text)) || n < 0 || n > 65535) throw new TollgateError('TG_USAGE', `${what} ${JSON.stringify(text)} is not a port number (0-65535)`);
  return n;
}

/** "host:port", ":port" or "port" → { host, port }. */
export function parseListen(text: string, defaultHost: string, what = 'address'): { host: string; port: number } {
  const m = /^(?:\[?([^\]]*?)\]?:)?(\d+)$/.exec(text);
  if (!m) throw new TollgateError('TG_USAGE', `${what} ${JSON.stringify(text)} is not HOST:PORT`);
  return { host: m[1] || defaultHost, port: parsePort(m[2]!, what) };
}

export function parsePositiveInt(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(String(text))) throw new TollgateError('TG_USAGE', `${what} ${JSON.stringify(text)} is not a whole number`);
  return n;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
