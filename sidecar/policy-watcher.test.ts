import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PolicyWatcher } from './policy-watcher.ts';
import { authorize, type Policy } from './policy.ts';
import { TollgateError } from '../common/errors.ts';
import { ManualClock } from '../common/clock.ts';

const WEB = 'spiffe://example.org/ns/shop/sa/web';
const CART = 'spiffe://example.org/ns/shop/sa/cart';

const policyText = (...allow: string[]): string => `ports:\n  8080:\n    allow: ${JSON.stringify(allow)}\n`;

/** Poll `cond` every 20 ms for up to 5 s. */
async function eventually(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'tollgate-policy-'));
}

const allows = (p: Policy, peer: string): boolean => authorize(p, peer, 8080).allowed;

test('start loads the file; a bad initial file throws', () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'policy.yaml');
    writeFileSync(path, policyText(WEB));
    const w = new PolicyWatcher({ path, ownTrustDomain: 'example.org' });
    try {
      const p = w.start();
      assert.equal(w.current, p);
      assert.equal(allows(p, WEB), true);
    } finally {
      w.close();
    }
    writeFileSync(path, 'ports:\n  0:\n    allow: []\n');
    const bad = new PolicyWatcher({ path, ownTrustDomain: 'example.org' });
    assert.throws(() => bad.start(), (e: unknown) => e instanceof TollgateError && /line 2: port 0/.test(e.message));
    assert.throws(() => bad.current, /before start/);
    const missing = new PolicyWatcher({ path: join(dir, 'nope.yaml'), ownTrustDomain: 'example.org' });
    assert.throws(() => missing.start(), /cannot read policy .*nope\.yaml: the file does not exist/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('reload() picks up a new allowed peer; unchanged text is a no-op', () => {
  const dir = tempDir();
  const path = join(dir, 'policy.yaml');
  writeFileSync(path, policyText(WEB));
  const changes: Policy[] = [];
  const w = new PolicyWatcher({ path, ownTrustDomain: 'example.org', onChange: (p) => changes.push(p) });
  try {
    w.start();
    assert.equal(allows(w.current, CART), false);
    const same = w.reload();
    assert.deepEqual(same.ok && same.changed, false);
    assert.equal(changes.length, 0);
    writeFileSync(path, policyText(WEB, CART));
    const r = w.reload();
    assert.ok(r.ok && r.changed);
    assert.equal(r.policy, w.current);
    assert.equal(allows(w.current, CART), true);
    assert.deepEqual(changes, [w.current]);
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('watcher picks up an edited file', async () => {
  const dir = tempDir();
  const path = join(dir, 'policy.yaml');
  writeFileSync(path, policyText(WEB));
  const changes: Policy[] = [];
  const w = new PolicyWatcher({ path, ownTrustDomain: 'example.org', debounceMs: 20, onChange: (p) => changes.push(p) });
  try {
    w.start();
    writeFileSync(path, policyText(WEB, CART));
    await eventually(() => allows(w.current, CART), 'CART allowed after edit');
    assert.equal(changes.length, 1);
    assert.equal(w.reloadFailures, 0);
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a broken file keeps the old policy, counts a failure and calls onError (watcher and reload)', async () => {
  const dir = tempDir();
  const path = join(dir, 'policy.yaml');
  writeFileSync(path, policyText(WEB));
  const errors: TollgateError[] = [];
  const w = new PolicyWatcher({ path, ownTrustDomain: 'example.org', debounceMs: 20, onError: (e) => errors.push(e) });
  try {
    const before = w.start();
    writeFileSync(path, `ports:\n  8080:\n    allow:\n      - spiffe://Example.org/ns/shop/sa/cart\n`);
    await eventually(() => w.reloadFailures === 1, 'one reload failure');
    assert.equal(w.current, before);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.code, 'TG_CONFIG_INVALID');
    assert.match(errors[0]!.message, new RegExp(`cannot read policy ${path} line 4: .*upper-case trust domain`));

    // An explicit reload of the same broken file reports it again.
    const r = w.reload();
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.error.code === 'TG_CONFIG_INVALID');
    assert.equal(w.reloadFailures, 2);
    assert.equal(errors.length, 2);
    assert.equal(w.current, before);

    // A deleted file is a failure too; the old policy stays.
    unlinkSync(path);
    const gone = w.reload();
    assert.ok(!gone.ok && /does not exist/.test(gone.error.message));
    assert.equal(w.current, before);

    // Fixing the file recovers.
    writeFileSync(path, policyText(WEB, CART));
    await eventually(() => allows(w.current, CART), 'recovered policy');
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Kubernetes ConfigMap symlink swap is picked up', async () => {
  const dir = tempDir();
  const path = join(dir, 'policy.yaml');
  mkdirSync(join(dir, '..2026_01'));
  writeFileSync(join(dir, '..2026_01', 'policy.yaml'), policyText(WEB));
  symlinkSync('..2026_01', join(dir, '..data'));
  symlinkSync(join('..data', 'policy.yaml'), path);
  const changes: Policy[] = [];
  const w = new PolicyWatcher({ path, ownTrustDomain: 'example.org', debounceMs: 20, onChange: (p) => changes.push(p) });
  try {
    w.start();
    assert.equal(allows(w.current, CART), false);
    // What the kubelet does: write a new timestamped dir, point a temp link at it, rename it over ..data.
    mkdirSync(join(dir, '..2026_02'));
    writeFileSync(join(dir, '..2026_02', 'policy.yaml'), policyText(WEB, CART));
    symlinkSync('..2026_02', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    rmSync(join(dir, '..2026_01'), { recursive: true });
    await eventually(() => allows(w.current, CART), 'CART allowed after the swap');
    assert.equal(changes.length, 1);
    assert.equal(w.reloadFailures, 0);
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('events are debounced and no-op events are skipped (manual clock)', async () => {
  const dir = tempDir();
  const path = join(dir, 'policy.yaml');
  writeFileSync(path, policyText(WEB));
  const clock = new ManualClock();
  const changes: Policy[] = [];
  const w = new PolicyWatcher({ path, ownTrustDomain: 'example.org', clock, debounceMs: 100, onChange: (p) => changes.push(p) });
  try {
    w.start();
    // An unrelated file in the directory: an event, but the policy text is unchanged.
    writeFileSync(join(dir, 'other.txt'), 'x');
    await eventually(() => clock.pending > 0, 'debounce timer for unrelated event');
    clock.advance(100);
    assert.equal(changes.length, 0);

    writeFileSync(path, policyText(WEB));
    writeFileSync(path, policyText(WEB, 'spiffe://example.org/ns/a/sa/b'));
    writeFileSync(path, policyText(WEB, CART));
    await eventually(() => clock.pending > 0, 'debounce timer for edits');
    clock.advance(99);
    assert.equal(changes.length, 0, 'nothing before the quiet period ends');
    clock.advance(1);
    assert.equal(changes.length, 1);
    assert.equal(allows(w.current, CART), true);
    // Late events for the same writes re-read the same text and change nothing.
    await new Promise((r) => setImmediate(r));
    clock.advance(1000);
    assert.equal(changes.length, 1);
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('callbacks that throw do not escape: an onChange error goes to onError', () => {
  const dir = tempDir();
  const path = join(dir, 'policy.yaml');
  writeFileSync(path, policyText(WEB));
  const errors: TollgateError[] = [];
  const w = new PolicyWatcher({
    path,
    ownTrustDomain: 'example.org',
    onChange: () => {
      throw new Error('listener bug');
    },
    onError: (e) => errors.push(e),
  });
  try {
    w.start();
    writeFileSync(path, policyText(WEB, CART));
    const r = w.reload();
    assert.ok(r.ok && r.changed);
    assert.equal(allows(w.current, CART), true);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /listener bug/);
    assert.equal(w.reloadFailures, 0);
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('close() cancels a pending reload and stops watching', async () => {
  const dir = tempDir();
  const path = join(dir, 'policy.yaml');
  writeFileSync(path, policyText(WEB));
  const clock = new ManualClock();
  const w = new PolicyWatcher({ path, ownTrustDomain: 'example.org', clock });
  try {
    w.start();
    writeFileSync(path, policyText(WEB, CART));
    await eventually(() => clock.pending > 0, 'debounce timer');
  } finally {
    w.close();
  }
  try {
    assert.equal(clock.pending, 0);
    clock.advance(10_000);
    assert.equal(allows(w.current, CART), false, 'the old policy stays readable after close()');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
