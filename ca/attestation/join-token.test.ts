import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../common/clock.ts';
import { TollgateError } from '../../common/errors.ts';
import { JoinTokenAttestor } from './join-token.ts';
import type { JoinTokenEntry, JoinTokenStore } from './join-token-store.ts';

const dir = mkdtempSync(join(tmpdir(), 'tg-join-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const clock = new ManualClock(Date.UTC(2026, 0, 1));
const att = new JoinTokenAttestor({ dir, clock, trustDomain: 'example.org' });
const isCode = (code: string) => (e: unknown) => e instanceof TollgateError && e.code === code;

test('a join token for a reserved ID cannot be created', async () => {
  for (const id of ['spiffe://example.org/tollgate/ca', 'spiffe://example.org/tollgate/x']) {
    await assert.rejects(att.create({ spiffeId: id, ttlMs: 60_000 }), (e: unknown) => isCode('TG_RESERVED_ID')(e) && (e as Error).message.startsWith(`a join token asks for ${id}`), id);
  }
});

test('a token record naming a reserved ID is refused before the token is consumed', async () => {
  const token = `tgjoin.${'A'.repeat(43)}`;
  const h = createHash('sha256').update(token).digest('hex');
  const rec = { spiffe_id: 'spiffe://example.org/tollgate/ca', created_at: '2026-01-01T00:00:00Z', expires_at: '2026-01-02T00:00:00Z' };
  writeFileSync(join(dir, `${h}.json`), JSON.stringify(rec));
  await assert.rejects(att.attest({ token }), (e: unknown) => isCode('TG_RESERVED_ID')(e) && (e as Error).message.startsWith('a join token asks for spiffe://example.org/tollgate/ca'));
  assert.ok(existsSync(join(dir, `${h}.json`)), 'still unused');
  assert.equal(existsSync(join(dir, `${h}.used`)), false);
});

test('an ordinary token works once: attesting only looks, consume uses it up', async () => {
  const { token } = await att.create({ spiffeId: 'spiffe://example.org/ns/a/sa/b', ttlMs: 60_000 });
  const first = await att.attest({ token });
  assert.equal(first.spiffeId.id, 'spiffe://example.org/ns/a/sa/b');
  // Not consumed yet: a request refused after attestation leaves the token usable.
  const second = await att.attest({ token });
  await first.consume!();
  await assert.rejects(second.consume!(), isCode('TG_TOKEN_REUSED'));
  await assert.rejects(att.attest({ token }), isCode('TG_TOKEN_REUSED'));
});

test('an expired token is refused without being used up; an unknown one is unknown', async () => {
  const { token } = await att.create({ spiffeId: 'spiffe://example.org/ns/a/sa/b', ttlMs: 60_000 });
  const h = createHash('sha256').update(token).digest('hex');
  clock.advance(60_000);
  await assert.rejects(att.attest({ token }), isCode('TG_TOKEN_EXPIRED'));
  assert.ok(existsSync(join(dir, `${h}.json`)), 'still unused');
  await assert.rejects(att.attest({ token: `tgjoin.${'B'.repeat(43)}` }), isCode('TG_TOKEN_UNKNOWN'));
});

/** An in-memory JoinTokenStore that records what the attestor asks of it. */
function memoryStore() {
  const records = new Map<string, JoinTokenEntry>();
  const calls: string[] = [];
  const store: JoinTokenStore = {
    where: 'memory',
    add: async (h, record) => {
      calls.push(`add ${h}`);
      records.set(h, { state: 'live', record });
    },
    look: async (h) => records.get(h),
    consume: async (h, seen) => {
      calls.push(`consume ${h} ${seen.state}`);
      records.set(h, { state: 'used' });
    },
    prune: async (now) => {
      calls.push(`prune ${now}`);
    },
  };
  return { store, records, calls };
}

test('a join token attestor needs a store: TG_INTERNAL without one; a given store is used as is', () => {
  assert.throws(() => new JoinTokenAttestor({ clock, trustDomain: 'example.org' }), (e: unknown) => isCode('TG_INTERNAL')(e) && (e as Error).message === 'a join token attestor needs a token store');
  const { store } = memoryStore();
  assert.equal(new JoinTokenAttestor({ tokens: store, clock, trustDomain: 'example.org' }).tokens, store);
  assert.equal(new JoinTokenAttestor({ dir, clock, trustDomain: 'example.org' }).tokens.where, dir);
});

test('accepts() only tokens with the tgjoin. prefix', () => {
  assert.equal(att.kind, 'join_token');
  const cases: Array<[string | undefined, boolean]> = [
    [`tgjoin.${'A'.repeat(43)}`, true],
    ['tgjoin.', true], // ours to refuse as malformed
    ['xtgjoin.abc', false],
    ['eyJh.eyJi.c2ln', false],
    ['', false],
    [undefined, false],
  ];
  for (const [token, want] of cases) assert.equal(att.accepts({ token }), want, String(token));
});

test('create: a 43-character base64url token after the prefix; the record holds the hash, ID and both times', async () => {
  const { store, records } = memoryStore();
  const t0 = Date.UTC(2026, 2, 1);
  const a = new JoinTokenAttestor({ tokens: store, clock: new ManualClock(t0), trustDomain: 'example.org' });
  const { token, expiresAt, tokenId } = await a.create({ spiffeId: 'spiffe://example.org/ns/a/sa/b', ttlMs: 90_000 });
  assert.match(token, /^tgjoin\.[A-Za-z0-9_-]{43}$/);
  const h = createHash('sha256').update(token).digest('hex');
  assert.equal(expiresAt, t0 + 90_000);
  assert.equal(tokenId, h.slice(0, 16));
  assert.deepEqual([...records], [[h, { state: 'live', record: { spiffe_id: 'spiffe://example.org/ns/a/sa/b', created_at: '2026-03-01T00:00:00.000Z', expires_at: '2026-03-01T00:01:30.000Z' } }]]);
  assert.notEqual((await a.create({ spiffeId: 'spiffe://example.org/ns/a/sa/b', ttlMs: 1 })).token, token, 'random each time');
});

test('create refuses another trust domain and a TTL outside 1 ms .. 7 d', async () => {
  const { store } = memoryStore();
  const a = new JoinTokenAttestor({ tokens: store, clock, trustDomain: 'example.org' });
  await assert.rejects(a.create({ spiffeId: 'spiffe://other.org/ns/a/sa/b', ttlMs: 60_000 }), (e: unknown) => isCode('TG_SPIFFE_ID_INVALID')(e) && /other\.org.* is not in this CA's trust domain example\.org/.test((e as Error).message));
  for (const ttlMs of [0, -1, Number.NaN, 7 * 86_400_000 + 1]) {
    await assert.rejects(a.create({ spiffeId: 'spiffe://example.org/ns/a/sa/b', ttlMs }), (e: unknown) => isCode('TG_TTL_INVALID')(e) && /between 1s and 7d/.test((e as Error).message), String(ttlMs));
  }
  for (const ttlMs of [1, 7 * 86_400_000]) await a.create({ spiffeId: 'spiffe://example.org/ns/a/sa/b', ttlMs });
});

test('create prunes the store at most once a minute, with the current time', async () => {
  const { store, calls } = memoryStore();
  const c = new ManualClock(Date.UTC(2026, 0, 1));
  const a = new JoinTokenAttestor({ tokens: store, clock: c, trustDomain: 'example.org' });
  const prunes = () => calls.filter((x) => x.startsWith('prune'));
  const make = () => a.create({ spiffeId: 'spiffe://example.org/ns/a/sa/b', ttlMs: 60_000 });
  await make();
  assert.deepEqual(prunes(), [`prune ${c.now()}`], 'the first create prunes');
  c.advance(59_999);
  await make();
  assert.equal(prunes().length, 1);
  c.advance(1);
  await make();
  assert.deepEqual(prunes().at(-1), `prune ${c.now()}`, 'a minute after the last prune');
  assert.equal(prunes().length, 2);
});

test('attest: only the exact token form is looked up; an expired token is refused at its expiry, not before', async () => {
  const { store, calls } = memoryStore();
  const c = new ManualClock(Date.UTC(2026, 0, 1));
  const a = new JoinTokenAttestor({ tokens: store, clock: c, trustDomain: 'example.org' });
  const { token } = await a.create({ spiffeId: 'spiffe://example.org/ns/a/sa/b', ttlMs: 60_000 });
  const body = token.slice('tgjoin.'.length);
  for (const bad of [`x${token}`, `${token}x`, `${token}\n`, `tgjoin.${body.slice(1)}`, `tgjoin.${body.slice(1)}+`, `tgjoin.${body.slice(1)}=`, `tgjoinx${body}`, 'tgjoin.', undefined]) {
    await assert.rejects(a.attest(bad === undefined ? {} : { token: bad }), (e: unknown) => isCode('TG_TOKEN_INVALID')(e) && /malformed/.test((e as Error).message), String(bad));
  }
  const h = createHash('sha256').update(token).digest('hex');
  c.advance(59_999);
  const ok = await a.attest({ token });
  assert.deepEqual({ ...ok, consume: undefined }, { kind: 'join_token', spiffeId: ok.spiffeId, details: { token_id: h.slice(0, 16) }, consume: undefined });
  assert.equal(ok.spiffeId.id, 'spiffe://example.org/ns/a/sa/b');
  c.advance(1);
  await assert.rejects(a.attest({ token }), (e: unknown) => {
    assert.ok(isCode('TG_TOKEN_EXPIRED')(e));
    assert.match((e as Error).message, /join token expired at 2026-01-01T00:01:00\.000Z; create a new one/);
    assert.deepEqual((e as TollgateError).details, { token_id: h.slice(0, 16) });
    return true;
  });
  assert.ok(!calls.some((x) => x.startsWith('consume')), 'nothing consumed');
  await ok.consume!();
  assert.deepEqual(calls.at(-1), `consume ${h} live`);
  await assert.rejects(a.attest({ token }), (e: unknown) => isCode('TG_TOKEN_REUSED')(e) && /already used/.test((e as Error).message));
});

test('an unknown token says how to make one', async () => {
  await assert.rejects(att.attest({ token: `tgjoin.${'C'.repeat(43)}` }), (e: unknown) => isCode('TG_TOKEN_UNKNOWN')(e) && /not known to this CA; create one with `tollgate ca token create`/.test((e as Error).message));
});
