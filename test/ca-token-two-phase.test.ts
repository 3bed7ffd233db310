// Issue 13, problem 5: a join token is used up only once nothing else can refuse the request. A
// ttl_seconds below the minimum is refused (TG_TTL_INVALID) and the retry with a good ttl succeeds
// with the same token; only then is the token spent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { caForFile, createJoinToken, newKey } from './helpers/ca-fixture.ts';

const file = caForFile();
const WEB = 'spiffe://example.org/ns/shop/sa/web';
const code = (c: string) => (e: Error & { code?: string }) => (assert.equal(e.code, c, e.message), true);

test('ttl_seconds below the minimum is refused without burning the join token; the retry succeeds; a third use is TG_TOKEN_REUSED', async () => {
  const token = createJoinToken(file.ca.dir, WEB);
  const client = file.ca.client();
  await assert.rejects(client.issue({ csr: newKey().csr, token, ttlSeconds: 1 }), code('TG_TTL_INVALID'));
  const ok = await client.issue({ csr: newKey().csr, token, ttlSeconds: 600 });
  assert.equal(ok.spiffeId, WEB);
  await assert.rejects(client.issue({ csr: newKey().csr, token, ttlSeconds: 600 }), code('TG_TOKEN_REUSED'));
});
