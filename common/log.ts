// One JSON-lines logger per process, passed down. Lines go to stderr by default; never log keys or tokens.
import type { Writable } from 'node:stream';
import type { Clock } from './clock.ts';
import { systemClock } from './clock.ts';

export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  log(level: Level, msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function createLogger(options: { out?: Writable | { write(s: string): unknown }; level?: Level; clock?: Clock; base?: Record<string, unknown> } = {}): Logger {
  const out = options.out ?? process.stderr;
  const min = ORDER[options.level ?? 'info'];
  const clock = options.clock ?? systemClock;
  const base = options.base ?? {};
  const log = (level: Level, msg: string, fields?: Record<string, unknown>): void => {
    if (ORDER[level] < min) return;
    out.write(`${JSON.stringify({ time: new Date(clock.now()).toISOString(), level, msg, ...base, ...fields })}\n`);
  };
  return {
    log,
    debug: (m, f) => log('debug', m, f),
    info: (m, f) => log('info', m, f),
    warn: (m, f) => log('warn', m, f),
    error: (m, f) => log('error', m, f),
    child: (fields) => createLogger({ ...options, base: { ...base, ...fields } }),
  };
}

export const silentLogger: Logger = createLogger({ out: { write: () => true }, level: 'error' });
