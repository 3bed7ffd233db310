// Small shared parsers for command-line values; each throws TG_USAGE with what to write instead.
import { parseHostPort, type HostPort } from '../common/address.ts';
import { TollgateError } from '../common/errors.ts';

export function parsePort(text: string, what = 'port'): number {
  const n = Number(text);
  if (!/^\d+$/.test(String(text)) || n < 0 || n > 65535) throw new TollgateError('TG_USAGE', `${what} ${JSON.stringify(text)} is not a port number (0-65535)`);
  return n;
}

/** "host:port" (as the sidecar config reads it), ":port" or "port" → { host, port }. */
export function parseListen(text: string, defaultHost: string, what = 'address'): HostPort {
  const full = /^\d+$/.test(text) ? `${defaultHost}:${text}` : text.startsWith(':') ? `${defaultHost}${text}` : text;
  const r = parseHostPort(full, { allowPortZero: true });
  if ('problem' in r) throw new TollgateError('TG_USAGE', `${what}: ${r.problem}`);
  return r;
}

export function parsePositiveInt(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(String(text))) throw new TollgateError('TG_USAGE', `${what} ${JSON.stringify(text)} is not a whole number`);
  return n;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
