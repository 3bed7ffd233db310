import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TollgateError } from '../common/errors.ts';
import { checkExpiry, formatExpiry, parseWarn } from './expiry.ts';
import { leafFrom, testChain } from './test-chain.ts';

const chain = testChain(); // root: now-1d .. now+365d; intermediate: now-1d .. now+30d
const H = 3600_000;
const leaf = (from: number, to: number) => leafFrom(chain, { notBefore: chain.now + from, notAfter: chain.now + to });
const check = (ders: Buffer[], now = chain.now, warn = 0.33) => checkExpiry(ders, { target: 't', now, warn });

test('each certificate is judged on the last N% of its own life; the verdict is the worst', () => {
  assert.equal(check([leaf(-H, 9 * H)]).state, 'ok');
  assert.equal(check([leaf(-8 * H, 2 * H)]).state, 'warning', '20% of life left');
  assert.equal(check([leaf(-8 * H, 2 * H)], chain.now, 0.1).state, 'ok', 'not inside the last 10%');
  assert.equal(check([leaf(-2 * H, -H)]).state, 'expired');
  assert.equal(check([leaf(H, 2 * H)]).state, 'not_yet_valid');
  const r = check([leaf(-H, 9 * H), chain.intermediate, chain.root], chain.now + 25 * 86400_000);
  assert.deepEqual(r.certificates.map((c) => c.state), ['expired', 'warning', 'ok']);
  assert.equal(r.state, 'expired');
  assert.equal(r.certificates[1]!.warning_from, new Date(chain.now - 86400_000 + 31 * 86400_000 * 0.67).toISOString());
  assert.match(formatExpiry(r), /^t: EXPIRED .*\n  expired .*\n  warning .*CN=Test Intermediate.*\n  ok /);
});

test('--warn takes a share of life; nothing else', () => {
  assert.equal(parseWarn('33%'), 0.33);
  assert.equal(parseWarn('50%'), 0.5);
  for (const bad of ['33', '0%', '100%', '-5%', 'soon', '7d']) assert.throws(() => parseWarn(bad), (e: unknown) => e instanceof TollgateError && e.code === 'TG_USAGE', bad);
  assert.throws(() => check([]), (e: unknown) => e instanceof TollgateError && e.code === 'TG_CERT_INVALID');
  assert.throws(() => check([Buffer.from('junk')]), (e: unknown) => e instanceof TollgateError && e.code === 'TG_CERT_INVALID');
});
