// Disk faults under the CA's store and audit log (issue 14, reliability suite: faults). The store and
// the audit file live on a small tmpfs this test mounts itself (skipped where mount is not allowed),
// filled to its last few pages or remounted read-only. What must hold every time:
//  - a command that cannot write fails with TG_WRITE_FAILED naming the file, never an unexpected error;
//  - the store on disk stays complete and loadable: no temporary files, every authority the records
//    name has its certificate and a key that parses and matches it, no key the records do not name,
//    and if the records did not change, not one byte of the store did;
//  - an audit write that fails is loud: counted, logged with the file, and /readyz answers 503.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { cpSync, existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createJoinToken, initCa, newKey, startCa } from './helpers/ca-fixture.ts';
import { metricSample } from './helpers/mesh-fixture.ts';
import { tempDir, tollgate } from './helpers/procs.ts';
import { waitFor } from './helpers/sidecar-fixture.ts';
import { mountSmallDisk, smallDiskSkipReason, type SmallDisk } from './helpers/small-disk.ts';

const skip = smallDiskSkipReason();

/** Every file under `dir` (relative path → content). */
function snapshot(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

/** The store in `dir` is whole: see the file comment. Returns the records' text. */
function assertStoreWhole(dir: string, what: string): string {
  const files = snapshot(dir);
  const temps = [...files.keys()].filter((f) => f.endsWith('.tmp'));
  assert.deepEqual(temps, [], `${what}: temporary files left behind`);
  const text = files.get('records.json')?.toString('utf8');
  assert.ok(text, `${what}: records.json is missing`);
  const records = JSON.parse(text) as { authorities: Array<{ id: string; keyInStore: boolean }> };
  const named = new Set(records.authorities.map((a) => a.id));
  for (const a of records.authorities) {
    const cert = new X509Certificate(files.get(`authorities/${a.id}.crt`) ?? Buffer.alloc(0));
    if (!a.keyInStore) continue;
    const key = createPrivateKey(files.get(`authorities/${a.id}.key`) ?? Buffer.alloc(0));
    assert.ok(cert.checkPrivateKey(key), `${what}: the key of ${a.id} does not match its certificate`);
  }
  const strays = [...files.keys()].filter((f) => f.startsWith('authorities/') && !named.has(f.slice('authorities/'.length).replace(/\.(crt|key)$/, '')));
  assert.deepEqual(strays, [], `${what}: authority files the records do not name`);
  const status = tollgate(['ca', 'status', '--dir', dir]);
  assert.equal(status.code, 0, `${what}: the store does not load: ${status.stderr}`);
  return text;
}

/** A failed write names the file and its TG code; it is never an unexpected error. */
function assertWriteError(stderr: string, dir: string, what: string): void {
  assert.doesNotMatch(stderr, /unexpected error/, `${what}: ${stderr}`);
  assert.match(stderr, /TG_WRITE_FAILED/, `${what}: ${stderr}`);
  assert.ok(stderr.includes(dir), `${what}: the message does not name a path under ${dir}: ${stderr}`);
}

describe('CA store and audit log on a full or read-only disk', { skip }, () => {
  let tmp: ReturnType<typeof tempDir>;
  let disk: SmallDisk;
  /** A store made on an ordinary disk, copied onto the small one for each attempt. */
  let template: string;

  before(() => {
    tmp = tempDir();
    template = join(tmp.dir, 'template');
    initCa(template);
    disk = mountSmallDisk(256);
  });

  after(() => {
    disk?.remove();
    tmp?.cleanup();
  });

  /** A fresh copy of the template store on the small disk. */
  function freshStore(): string {
    const dir = join(disk.dir, 'ca');
    rmSync(dir, { recursive: true, force: true });
    cpSync(template, dir, { recursive: true });
    return dir;
  }

  // Each command is tried with 0, 1, 2, ... free pages, so it runs out of space at every write in turn.
  for (const [name, args] of [
    ['ca init --force', (dir: string) => ['ca', 'init', '--trust-domain', 'example.org', '--dir', dir, '--force']],
    ['ca rotate intermediate --force', (dir: string) => ['ca', 'rotate', 'intermediate', '--dir', dir, '--force', '--json']],
  ] as const) {
    test(`${name} with the disk full at each write in turn: fails naming the file, the store stays whole`, (t) => {
      const outcomes: string[] = [];
      for (let pages = 0; pages <= 16 && !outcomes.includes('ok'); pages++) {
        const dir = freshStore();
        const before = snapshot(dir);
        const beforeRecords = before.get('records.json')!.toString('utf8');
        disk.fillLeaving(pages);
        const r = tollgate(args(dir));
        disk.unfill();
        const what = `${name} with ${pages} free pages`;
        if (r.code !== 0) assertWriteError(r.stderr, dir, what);
        const records = assertStoreWhole(dir, what);
        if (r.code !== 0 && records === beforeRecords) {
          const now = snapshot(dir);
          assert.deepEqual([...now.keys()].sort(), [...before.keys()].sort(), `${what}: files added or removed`);
          for (const [f, b] of before) assert.ok(now.get(f)!.equals(b), `${what}: ${f} changed`);
        }
        outcomes.push(r.code === 0 ? 'ok' : records === beforeRecords ? 'unchanged' : 'committed');
      }
      t.diagnostic(`${name}, by free pages from 0: ${outcomes.join(', ')}`);
      assert.equal(outcomes[0], 'unchanged', 'a full disk changes nothing');
      assert.equal(outcomes.at(-1), 'ok', `the command succeeds once there is room: ${outcomes.join(', ')}`);
    });
  }

  test('a read-only store: init, rotate and token create fail naming the file, nothing changes', () => {
    const dir = freshStore();
    const before = snapshot(dir);
    disk.readOnly(true);
    try {
      for (const args of [
        ['ca', 'init', '--trust-domain', 'example.org', '--dir', dir, '--force'],
        ['ca', 'rotate', 'intermediate', '--dir', dir, '--force', '--json'],
        ['ca', 'token', 'create', '--dir', dir, '--spiffe-id', 'spiffe://example.org/ns/shop/sa/web'],
      ]) {
        const r = tollgate(args);
        assert.notEqual(r.code, 0, `${args.join(' ')} succeeded on a read-only store`);
        assertWriteError(r.stderr, dir, args.slice(0, 3).join(' '));
      }
    } finally {
      disk.readOnly(false);
    }
    assertStoreWhole(dir, 'read-only store');
    const now = snapshot(dir);
    for (const [f, b] of before) assert.ok(now.get(f)?.equals(b), `${f} changed`);
  });

  test('the audit log on a full disk: the failed write is counted, logged with its file, and /readyz answers 503', async (t) => {
    const store = join(tmp.dir, 'serving');
    initCa(store);
    const auditFile = join(disk.dir, 'audit.log');
    rmSync(auditFile, { force: true });
    const ca = await startCa(store, ['--audit-log', auditFile]);
    try {
      const token = createJoinToken(store, 'spiffe://example.org/ns/shop/sa/web');
      assert.equal((await fetch(`http://127.0.0.1:${ca.adminPort}/readyz`)).status, 200);
      disk.fillLeaving(0); // the audit file is empty: its first line needs a page
      const issued = await ca.client().issue({ csr: newKey().csr, token }).then(() => 'issued', (e: Error) => `refused: ${e.message}`);
      await waitFor(async () => (await fetch(`http://127.0.0.1:${ca.adminPort}/readyz`)).status === 503, '/readyz to fail after the audit write failed');
      const ready = await (await fetch(`http://127.0.0.1:${ca.adminPort}/readyz`)).text();
      assert.match(ready, /audit log write failed/);
      assert.ok(ready.includes(auditFile), `/readyz names the audit file: ${ready}`);
      const metrics = await (await fetch(`http://127.0.0.1:${ca.adminPort}/metrics`)).text();
      assert.ok(metricSample(metrics, 'tollgate_ca_audit_write_errors_total') >= 1, 'the failure is counted');
      const logged = ca.proc.stderr().split('\n').find((l) => l.includes('audit log write failed'));
      assert.ok(logged?.includes(auditFile), `the error log line names the audit file: ${logged}`);
      assert.ok(existsSync(auditFile));
      assert.equal(issued, 'issued', 'the audit fails open (README, "The sidecar under faults and floods"): the issuance is still answered');
      t.diagnostic(`audit on a full disk: the issuance was ${issued}; /readyz: ${ready.trim()}`);
    } finally {
      disk.unfill();
      await ca.stop();
    }
  });

  test('an audit log on a read-only disk: ca serve refuses to start, naming the file', () => {
    const store = join(tmp.dir, 'serving-ro');
    initCa(store);
    disk.readOnly(true);
    try {
      const r = tollgate(['ca', 'serve', '--dir', store, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--audit-log', join(disk.dir, 'audit-ro.log')]);
      assert.notEqual(r.code, 0);
      assertWriteError(r.stderr, disk.dir, 'ca serve --audit-log on a read-only disk');
    } finally {
      disk.readOnly(false);
    }
  });
});
