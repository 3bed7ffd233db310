// A small file system of the test's own for disk faults: a tmpfs mounted on a fresh directory, which
// the test can fill to the last few pages or remount read-only. Needs root and mount(2); where that is
// not allowed, `smallDiskSkipReason()` says why and the test is skipped.
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function sh(cmd: string, args: string[]): { code: number; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status ?? -1, stderr: r.stderr ?? String(r.error ?? '') };
}

function must(cmd: string, args: string[]): void {
  const r = sh(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
}

/** Why a tmpfs cannot be mounted here, or false when it can (probed once with a real mount). */
export function smallDiskSkipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root to mount a tmpfs (mount -t tmpfs)';
  const probe = mkdtempSync(join(tmpdir(), 'tollgate-mount-probe-'));
  try {
    const r = sh('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe]);
    if (r.code !== 0) return `cannot mount a tmpfs here: ${r.stderr.trim()}`;
    sh('umount', [probe]);
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

export interface SmallDisk {
  /** The mount point. */
  readonly dir: string;
  /** Fill the file system until only `pages` blocks are free (0: full). */
  fillLeaving(pages: number): void;
  /** Remove the filler. */
  unfill(): void;
  /** Remount read-only (true) or read-write (false). */
  readOnly(on: boolean): void;
  /** Free blocks now, and their size. */
  free(): { blocks: number; blockSize: number };
  /** Unmount and remove the mount point. */
  remove(): void;
}

/** Mount a tmpfs of `sizeKb` on a fresh directory under the system temp dir. */
export function mountSmallDisk(sizeKb: number): SmallDisk {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-small-disk-'));
  must('mount', ['-t', 'tmpfs', '-o', `size=${sizeKb}k,mode=0755`, 'tmpfs', dir]);
  const filler = join(dir, '.filler');
  const free = (): { blocks: number; blockSize: number } => {
    const s = statfsSync(dir);
    return { blocks: Number(s.bavail), blockSize: Number(s.bsize) };
  };
  return {
    dir,
    free,
    fillLeaving(pages) {
      const { blocks, blockSize } = free();
      const fd = openSync(filler, 'a');
      try {
        const chunk = Buffer.alloc(blockSize, 0x5a);
        for (let i = 0; i < blocks - pages; i++) writeSync(fd, chunk);
      } finally {
        closeSync(fd);
      }
    },
    unfill: () => {
      try {
        unlinkSync(filler);
      } catch {
        // not filled
      }
    },
    readOnly: (on) => must('mount', ['-o', `remount,${on ? 'ro' : 'rw'}`, dir]),
    remove: () => {
      sh('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
