// An exclusive lock file for short critical sections shared by processes on one directory (the CA
// store's compare-and-swap). Created with O_EXCL; holds "pid host acquired-at". A lock whose holder
// is a dead process on this host, that names no holder for over a second (its creator died before
// writing it), or that is older than `staleMs` (a holder keeps it for milliseconds), is broken by
// renaming it aside, which only one contender can do. Waiting is a short synchronous sleep: the
// sections are tiny and synchronous themselves.
import { closeSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { TollgateError } from './errors.ts';
import { writeFailed, writingTo } from './files.ts';

export interface FileLockOptions {
  /** A lock older than this is a crashed holder's. Default 30 s. */
  readonly staleMs?: number;
  /** Give up after waiting this long. Default 10 s. */
  readonly waitMs?: number;
  /** Wall-clock time for lock ages (file mtimes are wall-clock). */
  readonly wallClock?: () => number;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

/** Is process `pid` on this host alive (EPERM: alive, owned by someone else)? */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const EMPTY_GRACE_MS = 1000;

function isStale(path: string, staleMs: number, now: number): boolean {
  let text: string;
  let mtime: number;
  try {
    text = readFileSync(path, 'utf8');
    mtime = statSync(path).mtimeMs;
  } catch {
    return false; // gone already: the next attempt will get it
  }
  // A holder writes its name in the same tick it creates the file: empty for longer means it died
  // in between (a SIGKILL during a commit), and there is nobody to wait for.
  if (text === '') return now - mtime > EMPTY_GRACE_MS;
  const [pid, host] = text.split(' ');
  if (host === hostname() && Number(pid) > 0 && !processAlive(Number(pid))) return true;
  return now - mtime > staleMs;
}

/** Run `fn` while holding the lock file at `path`. */
export function withFileLock<T>(path: string, fn: () => T, options: FileLockOptions = {}): T {
  const staleMs = options.staleMs ?? 30_000;
  const wallClock = options.wallClock ?? Date.now;
  const deadline = wallClock() + (options.waitMs ?? 10_000);
  let fd: number | undefined;
  for (let attempt = 0; fd === undefined; attempt++) {
    try {
      fd = openSync(path, 'wx', 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw writeFailed(path, e);
      if (isStale(path, staleMs, wallClock())) {
        const aside = `${path}.stale.${randomBytes(4).toString('hex')}`;
        try {
          renameSync(path, aside);
          unlinkSync(aside);
        } catch {
          // another contender broke it first
        }
        continue;
      }
      if (wallClock() > deadline) {
        throw new TollgateError('TG_STORE_CONFLICT', `${path} has been locked for more than ${options.waitMs ?? 10_000} ms by another process; retry, or remove it if no Tollgate process is running`);
      }
      sleepSync(Math.min(50, 2 + attempt * 2));
    }
  }
  try {
    try {
      writingTo(path, () => writeSync(fd, `${process.pid} ${hostname()} ${new Date(wallClock()).toISOString()}`));
    } finally {
      closeSync(fd);
    }
    return fn();
  } finally {
    try {
      unlinkSync(path);
    } catch {
      // broken as stale by another process after we stalled; nothing more to release
    }
  }
}
