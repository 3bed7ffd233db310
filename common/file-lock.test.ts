import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { isTollgateError } from './errors.ts';
import { withFileLock } from './file-lock.ts';

const dir = mkdtempSync(join(tmpdir(), 'tg-lock-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** A pid that is not running on this host. */
function deadPid(): number {
  for (let pid = 4_000_000; ; pid--) {
    try {
      process.kill(pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') return pid;
    }
  }
}

// What a holder leaves behind, how old it is (by the wall clock the lock reads), and whether a
// contender may take the lock at once (else it waits, here at most 100 ms, and gives up).
const cases: Array<{ name: string; content: () => string; ageMs: number; taken: boolean }> = [
  { name: 'a dead holder on this host', content: () => `${deadPid()} ${hostname()} x`, ageMs: 0, taken: true },
  { name: 'a live holder (this process)', content: () => `${process.pid} ${hostname()} x`, ageMs: 0, taken: false },
  { name: 'a holder on another host, recent', content: () => `123 other-host x`, ageMs: 1000, taken: false },
  { name: 'a holder on another host, older than staleMs', content: () => `123 other-host x`, ageMs: 31_000, taken: true },
  // Killed between creating the file and writing its name: a live holder writes it in the same tick.
  { name: 'an empty lock left by a holder killed while creating it', content: () => '', ageMs: 2000, taken: true },
  { name: 'an empty lock being written right now', content: () => '', ageMs: 0, taken: false },
];

for (const c of cases) {
  test(`lock held by ${c.name}: ${c.taken ? 'broken and taken' : 'respected'}`, () => {
    const path = join(dir, `${c.name.replace(/\W+/g, '-')}.lock`);
    writeFileSync(path, c.content());
    const wallClock = () => Date.now() + c.ageMs;
    let ran = false;
    try {
      withFileLock(path, () => (ran = true), { waitMs: 100, wallClock });
    } catch (e) {
      assert.ok(isTollgateError(e, 'TG_STORE_CONFLICT'), String(e));
    }
    assert.equal(ran, c.taken);
    assert.equal(existsSync(path), !c.taken, c.taken ? 'released after use' : 'left to its holder');
  });
}
