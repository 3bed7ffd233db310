import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TollgateError } from './errors.ts';
import { secretFrom } from './secret.ts';

const flags = { flag: '--join-token', fileFlag: '--join-token-file', envName: 'TOLLGATE_JOIN_TOKEN' };

test('a secret comes from the flag, else the file (mode 0600 only), else the environment', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-secret-'));
  try {
    const file = join(dir, 't');
    writeFileSync(file, ' tgjoin.file\n', { mode: 0o600 });
    assert.equal(secretFrom({ ...flags, value: 'tgjoin.flag', env: { TOLLGATE_JOIN_TOKEN: 'tgjoin.env' } }), 'tgjoin.flag');
    assert.equal(secretFrom({ ...flags, file, env: { TOLLGATE_JOIN_TOKEN: 'tgjoin.env' } }), 'tgjoin.file');
    assert.equal(secretFrom({ ...flags, env: { TOLLGATE_JOIN_TOKEN: 'tgjoin.env' } }), 'tgjoin.env');
    assert.equal(secretFrom({ ...flags, env: {} }), undefined);
    assert.throws(() => secretFrom({ ...flags, value: 'x', file, env: {} }), (e: unknown) => e instanceof TollgateError && e.code === 'TG_USAGE');
    chmodSync(file, 0o640);
    assert.throws(() => secretFrom({ ...flags, file, env: {} }), /is mode 0640: a secret file must be readable by its owner only \(chmod 600 /);
    assert.throws(() => secretFrom({ ...flags, file: join(dir, 'missing'), env: {} }), /--join-token-file .*missing: ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
