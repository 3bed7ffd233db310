// The directory join-token store: records 0600 in a 0700 directory, keyed by the token's SHA-256;
// use is a rename to .used that only one caller can win; pruning by mtime at the documented ages.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TollgateError } from '../../common/errors.ts';
import { DirectoryJoinTokens, hashToken, KEEP_USED_TOKENS_MS, MAX_JOIN_TOKEN_TTL_MS, PRUNE_EVERY_MS, reusedToken } from './join-token-store.ts';

const tmp = mkdtempSync(join(tmpdir(), 'tg-join-store-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const isCode = (code: string, message?: RegExp) => (e: unknown) => e instanceof TollgateError && e.code === code && (!message || message.test(e.message));
const REC = { spiffe_id: 'spiffe://example.org/ns/a/sa/b', created_at: '2026-01-01T00:00:00.000Z', expires_at: '2026-01-02T00:00:00.000Z' };
const H = 'ab'.repeat(32);
let n = 0;
const freshDir = () => join(tmp, `s${++n}`, 'tokens');

test('the documented constants: 7 d longest TTL, used records kept a day, pruning at most once a minute', () => {
  assert.deepEqual([MAX_JOIN_TOKEN_TTL_MS, KEEP_USED_TOKENS_MS, PRUNE_EVERY_MS], [7 * 86_400_000, 86_400_000, 60_000]);
});

test('hashToken is the hex SHA-256 of the token; a reuse error says what to do', () => {
  assert.equal(hashToken('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  const e = reusedToken();
  assert.ok(isCode('TG_TOKEN_REUSED', /already used; create a new one with `tollgate ca token create`/)(e));
});

test('add writes <hash>.json 0600 in a 0700 directory it creates; look reads it back', async () => {
  const dir = freshDir();
  const store = new DirectoryJoinTokens({ dir });
  assert.equal(store.where, dir);
  await store.add(H, REC);
  await store.add('cd'.repeat(32), REC); // the directory exists now: still fine
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(statSync(join(dir, `${H}.json`)).mode & 0o777, 0o600);
  assert.deepEqual(await store.look(H), { state: 'live', record: REC });
  assert.equal(await store.look('ef'.repeat(32)), undefined);
});

test('consume renames to .used exactly once; then look says used and consume says reused', async () => {
  const dir = freshDir();
  const store = new DirectoryJoinTokens({ dir });
  await store.add(H, REC);
  assert.deepEqual(await store.look(H), { state: 'live', record: REC });
  const results = await Promise.allSettled([store.consume(H), store.consume(H)]);
  assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  assert.ok(isCode('TG_TOKEN_REUSED')((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason));
  assert.deepEqual(readdirSync(dir), [`${H}.used`]);
  assert.deepEqual(await store.look(H), { state: 'used' });
});

test('consume passes on a failure that is not "already gone"', async () => {
  const dir = freshDir();
  const store = new DirectoryJoinTokens({ dir });
  await store.add(H, REC);
  mkdirSync(join(dir, `${H}.used`, 'x'), { recursive: true }); // a non-empty directory in the way
  await assert.rejects(store.consume(H), (e: unknown) => !(e instanceof TollgateError) && ['EISDIR', 'ENOTEMPTY', 'EEXIST'].includes((e as NodeJS.ErrnoException).code!));
  assert.ok(existsSync(join(dir, `${H}.json`)), 'the record is still there');
});

test('an unreadable record is TG_STORE_CORRUPT naming the file', async () => {
  const dir = freshDir();
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${H}.json`), '{not json');
  await assert.rejects(new DirectoryJoinTokens({ dir }).look(H), (e: unknown) => isCode('TG_STORE_CORRUPT', new RegExp(`join token record .*${H}\\.json is unreadable`))(e) && (e as Error).cause instanceof SyntaxError);
});

test('prune drops used records older than a day and unused ones older than 7 d + 1 d, by mtime, nothing else', async () => {
  const dir = freshDir();
  const store = new DirectoryJoinTokens({ dir });
  await store.prune(0); // no directory yet: nothing to do
  mkdirSync(dir, { recursive: true });
  const now = Date.UTC(2026, 0, 10);
  const usedCut = now - KEEP_USED_TOKENS_MS;
  const liveCut = now - MAX_JOIN_TOKEN_TTL_MS - KEEP_USED_TOKENS_MS;
  const files: Array<[string, number, boolean]> = [
    ['old.used', usedCut - 1000, false],
    ['edge.used', usedCut, true],
    ['new.used', now, true],
    ['old.json', liveCut - 1000, false],
    ['edge.json', liveCut, true],
    ['day-old.json', usedCut - 1000, true], // unused and only a day old: may still be live
    ['other.tmp', liveCut - 1000, true],
  ];
  for (const [name, mtime] of files) {
    writeFileSync(join(dir, name), '{}');
    utimesSync(join(dir, name), mtime / 1000, mtime / 1000);
  }
  await store.prune(now);
  assert.deepEqual(readdirSync(dir).sort(), files.filter(([, , kept]) => kept).map(([name]) => name).sort());
});
