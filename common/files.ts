// Atomic file writes: write a temporary file beside the target, fsync, rename over it, fsync the
// directory. A crash leaves either the old file or the new one, never half of one. A write that
// fails (disk full, read-only file system) removes its temporary file and throws TG_WRITE_FAILED
// naming the target: Node's own message for a failed write() names no file.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TollgateError } from './errors.ts';

/** TG_WRITE_FAILED for `path`, saying what to check (already one: returned as it is). */
export function writeFailed(path: string, e: unknown): TollgateError {
  if (e instanceof TollgateError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  const hint = code === 'ENOSPC' || code === 'EDQUOT' ? 'the disk is full' : code === 'EROFS' ? 'the file system is read-only' : code === 'EACCES' || code === 'EPERM' ? 'no permission' : 'the write failed';
  return new TollgateError('TG_WRITE_FAILED', `cannot write ${path}: ${hint} (${(e as Error).message}); the previous file, if any, is unchanged`, { cause: e, details: { path } });
}

/** Run `fn`, turning anything it throws into TG_WRITE_FAILED naming `path`. */
export function writingTo<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw writeFailed(path, e);
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone, or the file system refuses even that: the temporary name is never read
  }
}

export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = writingTo(path, () => {
    mkdirSync(dir, { recursive: true });
    return openSync(tmp, 'wx', mode);
  });
  try {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    removeQuietly(tmp);
    throw writeFailed(path, e);
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (e) {
    removeQuietly(tmp);
    throw writeFailed(path, e);
  }
  try {
    const dfd = openSync(dir, 'r');
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    // Directory fsync is best effort (not supported on every filesystem).
  }
}
