import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../common/clock.ts';
import { TollgateError } from '../../common/errors.ts';
import { JoinTokenAttestor } from './join-token.ts';

const dir = mkdtempSync(join(tmpdir(), 'tg-join-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const clock = new ManualClock(Date.UTC(2026, 0, 1));
const att = new JoinTokenAttestor({ dir, clock, trustDomain: 'example.org' });
const isCode = (code: string) => (e: unknown) => e instanceof TollgateError && e.code === code;

test('a join token for a reserved ID cannot be created', async () => {
  for (const id of ['spiffe://example.org/tollgate/ca', 'spiffe://example.org/tollgate/x']) {
    await assert.rejects(att.create({ spiffeId: id, ttlMs: 60_000 }), isCode('TG_RESERVED_ID'), id);
  }
});

test('a token record naming a reserved ID is refused before the token is consumed', async () => {
  const token = `tgjoin.${'A'.repeat(43)}`;
  const h = createHash('sha256').update(token).digest('hex');
  const rec = { spiffe_id: 'spiffe://example.org/tollgate/ca', created_at: '2026-01-01T00:00:00Z', expires_at: '2026-01-02T00:00:00Z' };
  writeFileSync(join(dir, `${h}.json`), JSON.stringify(rec));
  await assert.rejects(att.attest({ token }), isCode('TG_RESERVED_ID'));
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
