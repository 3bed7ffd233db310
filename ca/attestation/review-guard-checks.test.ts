// The parts of the TokenReview guard that need no API server: the unsigned checks and the claims
// (each refusal's code and words), the negative cache and the in-flight cap, the CA's own token file.
// Kept apart from review-guard.test.ts (a real HTTPS endpoint) so they run in a fraction of the time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../common/clock.ts';
import { TollgateError } from '../../common/errors.ts';
import { unsignedProjectedJwt } from '../../test/helpers/k8s-token.ts';
import { cachedTokenFile, identityFromClaims, isLegacySecretToken, NEGATIVE_CACHE_MS, OWN_TOKEN_CACHE_MS, precheckToken, REVIEW_MAX_IN_FLIGHT, REVIEW_MAX_WAITING, ReviewGuard } from './review-guard.ts';

const NOW_S = 1_767_225_600;
const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
const jwt = (over?: Record<string, unknown>, header?: Record<string, unknown>): string => unsignedProjectedJwt(NOW_S, over, header);

const isErr = (c: string, message?: RegExp, details?: Record<string, unknown>) => (e: unknown) => {
  assert.ok(e instanceof TollgateError, String(e));
  assert.equal(e.code, c, e.message);
  if (message) assert.match(e.message, message);
  if (details) assert.deepEqual(e.details, details);
  return true;
};
const PRE = { audience: 'tollgate-ca', issuer: 'https://kubernetes.default.svc', nowMs: NOW_S * 1000, toleranceS: 30 };

test('precheckToken: what is refused before any TokenReview, and with which words', () => {
  const cases: Array<[string, string, token: string, o?: Partial<typeof PRE>, RegExp?]> = [
    ['header not JSON', 'TG_TOKEN_INVALID', `${Buffer.from('{x').toString('base64url')}.${b64({})}.c2ln`, {}, /^token header is not base64url JSON$/],
    ['header not an object', 'TG_TOKEN_INVALID', `${b64(['RS256'])}.${b64({})}.c2ln`, {}, /^token header is not a JSON object$/],
    ['header null', 'TG_TOKEN_INVALID', `${b64(null)}.${b64({})}.c2ln`, {}, /^token header is not a JSON object$/],
    ['payload not JSON', 'TG_TOKEN_INVALID', `${b64({ alg: 'RS256' })}.bm9wZQ.c2ln`, {}, /^token payload is not base64url JSON$/],
    ['payload a number', 'TG_TOKEN_INVALID', `${b64({ alg: 'RS256' })}.${b64(7)}.c2ln`, {}, /^token payload is not a JSON object$/],
    ['no alg', 'TG_TOKEN_INVALID', jwt({}, {}), {}, /^token is unsigned or names no algorithm$/],
    ['empty alg', 'TG_TOKEN_INVALID', jwt({}, { alg: '' }), {}, /unsigned or names no algorithm/],
    ['alg none', 'TG_TOKEN_INVALID', jwt({}, { alg: 'none' }), {}, /unsigned or names no algorithm/],
    ['no signature', 'TG_TOKEN_INVALID', jwt().replace(/c2ln$/, ''), {}, /unsigned or names no algorithm/],
    ['exp a string', 'TG_TOKEN_CLAIMS', jwt({ exp: String(NOW_S + 60) }), {}, /^token has no "exp" claim$/],
    ['expired 30 s ago', 'TG_TOKEN_EXPIRED', jwt({ exp: NOW_S - 30 }), {}, /^token has expired \(exp 2025-12-31T23:59:30\.000Z; checked before any TokenReview\)$/],
    ['nbf 31 s ahead', 'TG_TOKEN_EXPIRED', jwt({ nbf: NOW_S + 31 }), {}, /^token is not yet valid \(nbf is in the future\)$/],
    ['audience elsewhere', 'TG_TOKEN_AUDIENCE', jwt({ aud: 'x' }), {}, /^token audience does not include "tollgate-ca" \(checked before any TokenReview\)$/],
    ['a string audience that only contains ours', 'TG_TOKEN_AUDIENCE', jwt({ aud: 'not-tollgate-ca' }), {}, /does not include/],
    ['audience for another CA name', 'TG_TOKEN_AUDIENCE', jwt(), { audience: 'mesh-ca' }, /"mesh-ca"/],
    ['another issuer', 'TG_TOKEN_ISSUER', jwt({ iss: 'https://evil' }), {}, /^token issuer must be "https:\/\/kubernetes\.default\.svc"$/],
    ['no issuer claim', 'TG_TOKEN_ISSUER', jwt({ iss: undefined }), {}],
  ];
  for (const [name, c, token, o, message] of cases) assert.throws(() => precheckToken(token, { ...PRE, ...o }), isErr(c, message), name);
  const fine: Array<[string, string, Partial<typeof PRE>?]> = [
    ['expired 29 s ago', jwt({ exp: NOW_S - 29 })],
    ['nbf 30 s ahead', jwt({ nbf: NOW_S + 30 })],
    ['nbf not a number (even a numeric string is the API server\'s to judge)', jwt({ nbf: String(NOW_S + 600) })],
    ['audience as a string', jwt({ aud: 'tollgate-ca' })],
    ['any issuer when none is configured', jwt({ iss: 'https://elsewhere' }), { issuer: undefined }],
  ];
  for (const [name, token, o] of fine) assert.doesNotThrow(() => precheckToken(token, { ...PRE, ...o }), name);
});

test('identityFromClaims: the kubernetes.io claim, agreeing with sub, bound to a pod', () => {
  const k = { namespace: 'shop', pod: { name: 'web-1', uid: 'u-1' }, serviceaccount: { name: 'web', uid: 's-1' } };
  assert.deepEqual(identityFromClaims({ 'kubernetes.io': k }), { namespace: 'shop', serviceAccount: 'web', pod: 'web-1', podUid: 'u-1' }, 'sub is optional');
  assert.deepEqual(identityFromClaims({ 'kubernetes.io': k, sub: 'system:serviceaccount:shop:web' }).pod, 'web-1');
  const legacy = { 'kubernetes.io/serviceaccount/namespace': 'shop' };
  assert.equal(isLegacySecretToken(legacy), true);
  assert.equal(isLegacySecretToken({ ...legacy, 'kubernetes.io': k }), false, 'a projected token that also has the old claim');
  assert.equal(isLegacySecretToken({ 'kubernetes.io/serviceaccount/namespace': 7 }), false);
  const where = { namespace: 'shop', service_account: 'web' };
  const cases: Array<[string, Record<string, unknown>, RegExp, Record<string, unknown>?]> = [
    ['legacy', legacy, /^token is a legacy service-account secret token; use a projected service-account token with audience tollgate-ca$/],
    ['no kubernetes.io', { sub: 'x' }, /^token has no "kubernetes\.io" claim; it is not a Kubernetes service-account token$/],
    ['kubernetes.io a list', { 'kubernetes.io': [k] }, /no "kubernetes\.io" claim/],
    ['no namespace', { 'kubernetes.io': { ...k, namespace: '' } }, /^token "kubernetes\.io" claim has no namespace$/],
    ['no service account', { 'kubernetes.io': { ...k, serviceaccount: 'web' } }, /^token "kubernetes\.io" claim has no serviceaccount name$/],
    ['empty service account', { 'kubernetes.io': { ...k, serviceaccount: { name: '' } } }, /no serviceaccount name/],
    ['sub disagrees', { 'kubernetes.io': k, sub: 'system:serviceaccount:shop:admin' }, /^token "sub" does not agree with its "kubernetes\.io" claim$/, where],
    ['no pod', { 'kubernetes.io': { ...k, pod: undefined } }, /^token is not bound to a pod; use a projected service-account token with audience tollgate-ca$/, where],
    ['pod without a name', { 'kubernetes.io': { ...k, pod: { uid: 'u' } } }, /not bound to a pod/, where],
    ['pod without a uid', { 'kubernetes.io': { ...k, pod: { name: 'p', uid: '' } } }, /not bound to a pod/, where],
  ];
  for (const [name, claims, message, details] of cases) assert.throws(() => identityFromClaims(claims), isErr('TG_TOKEN_CLAIMS', message, details), name);
});

test('ReviewGuard: final refusals are cached per token, transport failures and other errors are not', async () => {
  const clock = new ManualClock(0);
  const guard = new ReviewGuard({ clock });
  const codes = ['TG_TOKEN_INVALID', 'TG_TOKEN_EXPIRED', 'TG_TOKEN_AUDIENCE', 'TG_TOKEN_CLAIMS', 'TG_TOKEN_ISSUER'] as const;
  for (const c of codes) {
    let calls = 0;
    const review = async () => {
      calls++;
      throw new TollgateError(c, 'no');
    };
    await assert.rejects(guard.run(`t-${c}`, review), isErr(c));
    await assert.rejects(guard.run(`t-${c}`, review), isErr(c));
    assert.equal(calls, 1, `${c} is remembered`);
    await assert.rejects(guard.run(`other-${c}`, review), isErr(c));
    assert.equal(calls, 2, 'per token');
  }
  for (const error of [new TollgateError('TG_TOKEN_REVIEW_FAILED', 'down'), new Error('bug')]) {
    let calls = 0;
    const review = async () => {
      calls++;
      throw error;
    };
    await assert.rejects(guard.run('t-x', review), (e) => e === error);
    await assert.rejects(guard.run('t-x', review), (e) => e === error);
    assert.equal(calls, 2, `${error.message} is not remembered`);
  }
  assert.equal(await guard.run('t-ok', async () => 'yes'), 'yes');
  // Only our own refusals count: a foreign error that happens to carry such a code is not remembered.
  let calls = 0;
  const foreign = Object.assign(new Error('foreign'), { code: 'TG_TOKEN_INVALID' });
  const review = async () => {
    calls++;
    throw foreign;
  };
  await assert.rejects(guard.run('t-foreign', review), (e) => e === foreign);
  await assert.rejects(guard.run('t-foreign', review), (e) => e === foreign);
  assert.equal(calls, 2);
});

test('ReviewGuard: a token refused again after its entry expired is the newest entry, not the oldest', async () => {
  const clock = new ManualClock(0);
  const guard = new ReviewGuard({ clock });
  const reviewed: string[] = [];
  const refuse = (t: string) => guard.run(t, async () => {
    reviewed.push(t);
    throw new TollgateError('TG_TOKEN_INVALID', 'no');
  }).catch(() => undefined);
  await refuse('a');
  await refuse('b');
  clock.advance(NEGATIVE_CACHE_MS);
  await refuse('a'); // reviewed again, now newer than b
  for (let i = 0; i < 9_999; i++) await refuse(`t${i}`); // the 10 001st entry pushes out the oldest
  reviewed.length = 0;
  await refuse('a');
  assert.deepEqual(reviewed, [], 'a is still remembered');
});

test('ReviewGuard: the negative cache holds 10 000 tokens; the oldest leaves first', async () => {
  const guard = new ReviewGuard({ clock: new ManualClock(0) });
  const reviewed: string[] = [];
  const refuse = (t: string) => guard.run(t, async () => {
    reviewed.push(t);
    throw new TollgateError('TG_TOKEN_INVALID', 'no');
  }).catch(() => undefined);
  for (let i = 0; i < 10_001; i++) await refuse(`t${i}`);
  reviewed.length = 0;
  await refuse('t1'); // still cached
  await refuse('t0'); // evicted by t10000
  assert.deepEqual(reviewed, ['t0']);
});

test('ReviewGuard: at most maxInFlight (default 16) at once, the rest wait their turn, then TG_RATE_LIMITED', async () => {
  const held: Array<() => void> = [];
  let running = 0;
  const review = () => new Promise<string>((resolve) => {
    running++;
    held.push(() => {
      running--;
      resolve('ok');
    });
  });
  const settle = async () => {
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
  };
  const guard = new ReviewGuard({ clock: new ManualClock(0) });
  const first = Array.from({ length: 16 + REVIEW_MAX_WAITING }, (_, i) => guard.run(`a${i}`, review));
  await settle();
  assert.equal(running, 16, 'sixteen by default');
  await assert.rejects(guard.run('one-too-many', review), isErr('TG_RATE_LIMITED', /^16 token reviews in flight and 64 waiting; retry with backoff$/));
  while (held.length) {
    held.shift()!();
    await settle();
    assert.ok(running <= 16);
  }
  assert.deepEqual(new Set(await Promise.all(first)), new Set(['ok']));
  assert.equal(guard.peakInFlight, 16);

  const one = new ReviewGuard({ clock: new ManualClock(0), maxInFlight: 1 });
  for (let i = 0; i < 3; i++) assert.equal(await one.run(`s${i}`, async () => i), i, 'a finished review frees its slot');
  assert.equal(one.peakInFlight, 1);
  const a = one.run('x', review);
  const b = one.run('y', review);
  await settle();
  assert.equal(running, 1, 'one at a time');
  held.shift()!();
  await settle();
  assert.equal(running, 1, 'the waiter took the slot');
  held.shift()!();
  assert.deepEqual(await Promise.all([a, b]), ['ok', 'ok']);
  assert.equal(REVIEW_MAX_IN_FLIGHT, 16);
});

test('cachedTokenFile: one read shared by concurrent callers, kept just under the TTL, and a failed read is retried', async () => {
  const d = mkdtempSync(join(tmpdir(), 'tg-own-token-'));
  try {
    const clock = new ManualClock(0);
    const file = join(d, 'token');
    const read = cachedTokenFile(file, clock, 1000);
    await assert.rejects(read(), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
    writeFileSync(file, '  one \n');
    assert.equal(await read(), 'one', 'the failure was not kept');
    writeFileSync(file, 'two');
    clock.advance(999);
    assert.equal(read(), read(), 'the same pending read');
    assert.equal(await read(), 'one');
    clock.advance(1);
    assert.equal(await read(), 'two');
    assert.equal(OWN_TOKEN_CACHE_MS, 60_000);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
