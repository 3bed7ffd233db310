import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload, type CryptoKey } from 'jose';
import { K8sTokenAttestor, type K8sTokenAttestorOptions, type TokenReviewMode } from './k8s-token.ts';
import { ManualClock } from '../../common/clock.ts';
import { isReservedId } from '../../pki/spiffe-id.ts';
import { TollgateError, type ErrorCode } from '../../common/errors.ts';

const TD = 'mesh.example';
const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const NOW_S = Date.UTC(2026, 0, 1) / 1000;
const b64url = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

/** Claims exactly as the kubelet's TokenRequest produces them for a projected volume. */
function projectedClaims(over: Record<string, unknown> = {}): JWTPayload {
  return {
    aud: ['tollgate-ca'],
    exp: NOW_S + 3600,
    iat: NOW_S,
    nbf: NOW_S,
    iss: ISSUER,
    jti: '5a1e6c1b-3f5e-4d2a-9b1e-0c7d2f4e8a11',
    'kubernetes.io': {
      namespace: 'shop',
      node: { name: 'node-a', uid: '0b7a7d1e-1c1f-4e5c-9e0a-2d8c4b6f1a22' },
      pod: { name: 'web-7d9f8b6c5-x2x7q', uid: '9c3f7a2e-8b1d-4f6a-a5c3-1e2d3f4a5b66' },
      serviceaccount: { name: 'web', uid: 'f1e2d3c4-b5a6-4789-8a7b-6c5d4e3f2a11' },
      warnafter: NOW_S + 3607,
    },
    sub: 'system:serviceaccount:shop:web',
    ...over,
  };
}

async function sign(claims: JWTPayload, key: CryptoKey, kid: string, alg = 'RS256'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg, kid }).sign(key);
}

async function rejects(p: Promise<unknown>, code: ErrorCode, message?: RegExp, secret?: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof TollgateError, `expected TollgateError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    if (secret) {
      assert.ok(!e.message.includes(secret), 'error message leaks the token');
      assert.ok(!JSON.stringify(e.details).includes(secret), 'error details leak the token');
    }
    return true;
  });
}

describe('k8s_token attestor, JWKS mode', () => {
  const clock = new ManualClock(NOW_S * 1000);
  let rsa: CryptoKey;
  let ec: CryptoKey;
  let stranger: CryptoKey;
  let ecPublic: CryptoKey;
  let attestor: K8sTokenAttestor;

  before(async () => {
    // RSA key generation is slow: both at once (this file runs once per mutant under `npm run mutate`).
    const [r, e, s] = await Promise.all([generateKeyPair('RS256'), generateKeyPair('ES256'), generateKeyPair('RS256')]);
    stranger = s.privateKey;
    ecPublic = e.publicKey;
    rsa = r.privateKey;
    ec = e.privateKey;
    // Shaped like /openid/v1/jwks from a real API server.
    const keys: JWK[] = [
      { ...(await exportJWK(r.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
      { ...(await exportJWK(e.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
    ];
    attestor = new K8sTokenAttestor({ trustDomain: TD, clock, mode: { kind: 'jwks', issuer: ISSUER, jwks: { keys } } });
  });

  test('accepts() only JWT-shaped tokens', () => {
    assert.equal(attestor.kind, 'k8s_token');
    const cases: Array<[string | undefined, boolean]> = [
      ['eyJh.eyJi.c2ln', true],
      ['eyJh.eyJi.', true], // unsigned: still ours to reject
      ['tg-join-0123456789abcdef', false],
      ['a.b', false],
      ['a.b.c.d', false],
      ['a b.c.d', false],
      ['', false],
      [undefined, false],
    ];
    for (const [token, want] of cases) assert.equal(attestor.accepts({ token }), want, String(token));
  });

  for (const [name, key, kid, alg] of [['RS256', () => rsa, 'rsa-1', 'RS256'], ['ES256', () => ec, 'ec-1', 'ES256']] as const) {
    test(`valid projected token (${name}) yields the ns/sa SPIFFE ID`, async () => {
      const token = await sign(projectedClaims(), key(), kid, alg);
      const a = await attestor.attest({ token });
      assert.equal(a.kind, 'k8s_token');
      assert.equal(a.spiffeId.id, `spiffe://${TD}/ns/shop/sa/web`);
      assert.deepEqual(a.details, {
        namespace: 'shop',
        service_account: 'web',
        pod: 'web-7d9f8b6c5-x2x7q',
        pod_uid: '9c3f7a2e-8b1d-4f6a-a5c3-1e2d3f4a5b66',
      });
      assert.ok(!JSON.stringify(a).includes(token));
    });
  }

  test('a service account can only ever yield ns/<ns>/sa/<sa>, never a reserved /tollgate/ ID', async () => {
    const claims = projectedClaims({ sub: 'system:serviceaccount:tollgate:ca' });
    const k = claims['kubernetes.io'] as Record<string, unknown>;
    const token = await sign({ ...claims, 'kubernetes.io': { ...k, namespace: 'tollgate', serviceaccount: { name: 'ca', uid: 'u' } } }, rsa, 'rsa-1');
    const a = await attestor.attest({ token });
    assert.equal(a.spiffeId.id, `spiffe://${TD}/ns/tollgate/sa/ca`);
    assert.equal(isReservedId(a.spiffeId), false);
  });

  test('a token expired by less than the 30 s tolerance is still accepted', async () => {
    const token = await sign(projectedClaims({ exp: NOW_S - 10 }), rsa, 'rsa-1');
    assert.equal((await attestor.attest({ token })).spiffeId.id, `spiffe://${TD}/ns/shop/sa/web`);
  });

  const noPod = projectedClaims();
  delete (noPod['kubernetes.io'] as Record<string, unknown>).pod;
  const cases: Array<{ name: string; token: () => Promise<string>; code: ErrorCode; msg?: RegExp }> = [
    { name: 'signed by an unknown key (same kid)', token: () => sign(projectedClaims(), stranger, 'rsa-1'), code: 'TG_TOKEN_INVALID', msg: /signature/ },
    { name: 'signed by an unknown kid', token: () => sign(projectedClaims(), stranger, 'rsa-9'), code: 'TG_TOKEN_INVALID', msg: /not in the cluster JWKS/ },
    { name: 'wrong audience', token: () => sign(projectedClaims({ aud: ['https://kubernetes.default.svc'] }), rsa, 'rsa-1'), code: 'TG_TOKEN_AUDIENCE' },
    { name: 'no audience', token: () => sign(projectedClaims({ aud: undefined }), rsa, 'rsa-1'), code: 'TG_TOKEN_AUDIENCE' },
    { name: 'expired', token: () => sign(projectedClaims({ iat: NOW_S - 7200, nbf: NOW_S - 7200, exp: NOW_S - 3600 }), rsa, 'rsa-1'), code: 'TG_TOKEN_EXPIRED', msg: /expired/ },
    { name: 'not yet valid (nbf)', token: () => sign(projectedClaims({ nbf: NOW_S + 600, exp: NOW_S + 4200 }), rsa, 'rsa-1'), code: 'TG_TOKEN_EXPIRED', msg: /not yet valid/ },
    { name: 'wrong issuer', token: () => sign(projectedClaims({ iss: 'https://evil.example' }), rsa, 'rsa-1'), code: 'TG_TOKEN_ISSUER' },
    { name: 'no exp claim', token: () => sign(projectedClaims({ exp: undefined }), rsa, 'rsa-1'), code: 'TG_TOKEN_CLAIMS', msg: /"exp"/ },
    {
      name: 'alg none (unsigned)',
      token: async () => `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(projectedClaims())}.`,
      code: 'TG_TOKEN_INVALID',
    },
    {
      name: 'HS256 signed with a guessable secret',
      token: () => new SignJWT(projectedClaims()).setProtectedHeader({ alg: 'HS256', kid: 'rsa-1' }).sign(new TextEncoder().encode('secret')),
      code: 'TG_TOKEN_INVALID',
    },
    {
      name: 'tampered payload (other service account)',
      token: async () => {
        const [h, , s] = (await sign(projectedClaims(), rsa, 'rsa-1')).split('.');
        const forged = projectedClaims({ sub: 'system:serviceaccount:kube-system:admin' });
        (forged['kubernetes.io'] as Record<string, unknown>).namespace = 'kube-system';
        return `${h}.${b64url(forged)}.${s}`;
      },
      code: 'TG_TOKEN_INVALID',
    },
    { name: 'TokenRequest token not bound to a pod', token: () => sign(noPod, rsa, 'rsa-1'), code: 'TG_TOKEN_CLAIMS', msg: /projected service-account token with audience tollgate-ca/ },
    {
      name: 'legacy secret token',
      token: () =>
        sign(
          {
            iss: 'kubernetes/serviceaccount',
            'kubernetes.io/serviceaccount/namespace': 'shop',
            'kubernetes.io/serviceaccount/secret.name': 'web-token-abcde',
            'kubernetes.io/serviceaccount/service-account.name': 'web',
            'kubernetes.io/serviceaccount/service-account.uid': 'f1e2d3c4-b5a6-4789-8a7b-6c5d4e3f2a11',
            sub: 'system:serviceaccount:shop:web',
          },
          rsa,
          'rsa-1',
        ),
      code: 'TG_TOKEN_CLAIMS',
      msg: /legacy.*projected service-account token/,
    },
    { name: 'sub disagrees with the kubernetes.io claim', token: () => sign(projectedClaims({ sub: 'system:serviceaccount:shop:admin' }), rsa, 'rsa-1'), code: 'TG_TOKEN_CLAIMS', msg: /"sub"/ },
    {
      name: 'no namespace',
      token: () => sign(projectedClaims({ 'kubernetes.io': { serviceaccount: { name: 'web', uid: 'u' }, pod: { name: 'p', uid: 'u' } }, sub: undefined }), rsa, 'rsa-1'),
      code: 'TG_TOKEN_CLAIMS',
      msg: /namespace/,
    },
    {
      name: 'malformed service account name',
      token: () => sign(projectedClaims({ 'kubernetes.io': { namespace: 'shop', serviceaccount: { name: 'Web/..', uid: 'u' }, pod: { name: 'p', uid: 'u' } }, sub: undefined }), rsa, 'rsa-1'),
      code: 'TG_TOKEN_CLAIMS',
      msg: /^token names an invalid namespace or service account: /,
    },
    { name: 'no kubernetes.io claim', token: () => sign(projectedClaims({ 'kubernetes.io': undefined }), rsa, 'rsa-1'), code: 'TG_TOKEN_CLAIMS' },
    { name: 'garbage string', token: async () => 'not-a-jwt', code: 'TG_TOKEN_INVALID' },
    { name: 'JWT-shaped garbage', token: async () => 'eyJub3Q.anNvbg.c2ln', code: 'TG_TOKEN_INVALID' },
  ];

  for (const c of cases) {
    test(`rejects: ${c.name}`, async () => {
      const token = await c.token();
      await rejects(attestor.attest({ token }), c.code, c.msg, token);
    });
  }

  test('a token without kid is tried against every matching key', async () => {
    // EC keys: as good as RSA for several keys matching one alg, and quick to make.
    const [first, second, third] = await Promise.all([generateKeyPair('ES256'), generateKeyPair('ES256'), generateKeyPair('ES256')]);
    const keys: JWK[] = [
      { ...(await exportJWK(first.publicKey)), kid: 'old', alg: 'ES256' },
      { ...(await exportJWK(second.publicKey)), kid: 'new', alg: 'ES256' },
    ];
    const multi = new K8sTokenAttestor({ trustDomain: TD, clock, mode: { kind: 'jwks', issuer: ISSUER, jwks: { keys } } });
    const unkeyed = (k: CryptoKey) => new SignJWT(projectedClaims()).setProtectedHeader({ alg: 'ES256' }).sign(k);
    assert.equal((await multi.attest({ token: await unkeyed(second.privateKey) })).spiffeId.id, `spiffe://${TD}/ns/shop/sa/web`);
    assert.equal((await multi.attest({ token: await unkeyed(first.privateKey) })).spiffeId.id, `spiffe://${TD}/ns/shop/sa/web`);
    await rejects(multi.attest({ token: await unkeyed(third.privateKey) }), 'TG_TOKEN_INVALID', /^token signature does not verify against any key in the cluster JWKS$/);
    // A key that verifies but a claim that fails: that refusal, not "no key".
    const stale = new SignJWT(projectedClaims({ exp: NOW_S - 3600 })).setProtectedHeader({ alg: 'ES256' }).sign(second.privateKey);
    await rejects(multi.attest({ token: await stale }), 'TG_TOKEN_EXPIRED', /^token has expired/);
  });

  test('what each refusal tells the operator (code, words, the jose code in details)', async () => {
    const es = (claims: JWTPayload) => sign(claims, ec, 'ec-1', 'ES256');
    const table: Array<[string, () => Promise<string>, ErrorCode, RegExp, string]> = [
      ['expired 30 s ago', () => es(projectedClaims({ exp: NOW_S - 30 })), 'TG_TOKEN_EXPIRED', /^token has expired \(exp check failed; tokens are accepted 30s past exp\)$/, 'ERR_JWT_EXPIRED'],
      ['wrong audience', () => es(projectedClaims({ aud: ['x'] })), 'TG_TOKEN_AUDIENCE', /^token audience does not match: it must include "tollgate-ca"$/, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['no audience', () => es(projectedClaims({ aud: undefined })), 'TG_TOKEN_AUDIENCE', /^token audience is missing: it must include "tollgate-ca"$/, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['wrong issuer', () => es(projectedClaims({ iss: 'https://evil.example' })), 'TG_TOKEN_ISSUER', /^token issuer does not match: it must be "https:\/\/kubernetes\.default\.svc\.cluster\.local"$/, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['no issuer', () => es(projectedClaims({ iss: undefined })), 'TG_TOKEN_ISSUER', /^token issuer is missing: /, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['nbf 31 s ahead', () => es(projectedClaims({ nbf: NOW_S + 31 })), 'TG_TOKEN_EXPIRED', /^token is not yet valid \(nbf is in the future\)$/, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['exp not a number', () => es(projectedClaims({ exp: 'soon' as unknown as number })), 'TG_TOKEN_CLAIMS', /^token claim "exp" is invalid$/, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['no exp', () => es(projectedClaims({ exp: undefined })), 'TG_TOKEN_CLAIMS', /^token claim "exp" is missing$/, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['HS256', async () => `${b64url({ alg: 'HS256', kid: 'rsa-1' })}.${b64url(projectedClaims())}.c2ln`, 'TG_TOKEN_INVALID', /^token algorithm is not allowed \(allowed: RS256, ES256, RS384, ES384, PS256\)$/, 'ERR_JOSE_ALG_NOT_ALLOWED'],
      ['unknown kid', async () => `${b64url({ alg: 'RS256', kid: 'rsa-9' })}.${b64url(projectedClaims())}.c2ln`, 'TG_TOKEN_INVALID', /^token was signed by a key that is not in the cluster JWKS \(unknown kid or alg\)$/, 'ERR_JWKS_NO_MATCHING_KEY'],
      ['bad signature', () => sign(projectedClaims(), stranger, 'rsa-1'), 'TG_TOKEN_INVALID', /^token signature does not verify against the cluster JWKS$/, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'],
      ['garbage header', async () => 'eyJub3Q.anNvbg.c2ln', 'TG_TOKEN_INVALID', /^token is malformed: /, 'ERR_JWS_INVALID'],
      ['an unknown critical header', async () => `${b64url({ alg: 'ES256', kid: 'ec-1', crit: ['zz'], zz: 1 })}.${b64url(projectedClaims())}.c2ln`, 'TG_TOKEN_INVALID', /^token uses a JOSE feature this CA does not support: Extension Header Parameter "zz" is not recognized$/, 'ERR_JOSE_NOT_SUPPORTED'],
    ];
    for (const [name, token, code, message, jose] of table) {
      await assert.rejects(attestor.attest({ token: await token() }), (e: unknown) => {
        assert.ok(e instanceof TollgateError, name);
        assert.equal(e.code, code, name);
        assert.match(e.message, message, name);
        assert.deepEqual(e.details, { jose }, name);
        return true;
      });
    }
  });

  test('the edges: exp 29 s ago and nbf 30 s ahead are inside the tolerance; no token or no JWT is refused up front', async () => {
    const es = (claims: JWTPayload) => sign(claims, ec, 'ec-1', 'ES256');
    assert.equal((await attestor.attest({ token: await es(projectedClaims({ exp: NOW_S - 29 })) })).spiffeId.id, `spiffe://${TD}/ns/shop/sa/web`);
    assert.equal((await attestor.attest({ token: await es(projectedClaims({ nbf: NOW_S + 30 })) })).spiffeId.id, `spiffe://${TD}/ns/shop/sa/web`);
    await rejects(attestor.attest({}), 'TG_TOKEN_MISSING', /^no Kubernetes service-account token was presented$/);
    await rejects(attestor.attest({ token: '' }), 'TG_TOKEN_MISSING');
    await rejects(attestor.attest({ token: 'a.b' }), 'TG_TOKEN_INVALID', /^token is not a JWT \(expected three base64url parts\)$/);
  });

  test('a custom audience is the one required', async () => {
    const keys: JWK[] = [{ ...(await exportJWK(ecPublic)), kid: 'ec-1', alg: 'ES256' }];
    const custom = new K8sTokenAttestor({ trustDomain: TD, clock, audience: 'mesh-ca', mode: { kind: 'jwks', issuer: ISSUER, jwks: { keys } } });
    assert.equal((await custom.attest({ token: await sign(projectedClaims({ aud: ['mesh-ca'] }), ec, 'ec-1', 'ES256') })).spiffeId.id, `spiffe://${TD}/ns/shop/sa/web`);
    await rejects(custom.attest({ token: await sign(projectedClaims(), ec, 'ec-1', 'ES256') }), 'TG_TOKEN_AUDIENCE', /"mesh-ca"/);
  });

  test('rejects a malformed JWKS or empty issuer at construction', () => {
    const bad: K8sTokenAttestorOptions['mode'][] = [
      { kind: 'jwks', issuer: ISSUER, jwks: { keys: 'nope' as unknown as JWK[] } },
      { kind: 'jwks', issuer: '', jwks: { keys: [] } },
    ];
    for (const mode of bad) {
      assert.throws(() => new K8sTokenAttestor({ trustDomain: TD, clock, mode }), (e: unknown) => e instanceof TollgateError && e.code === 'TG_CONFIG_INVALID');
    }
    assert.throws(() => new K8sTokenAttestor({ trustDomain: TD, clock, mode: bad[0]! }), /k8s_token: the JWKS is malformed: /);
    assert.throws(() => new K8sTokenAttestor({ trustDomain: TD, clock, mode: bad[1]! }), /k8s_token: jwks mode needs an issuer/);
    assert.throws(() => new K8sTokenAttestor({ trustDomain: 'Bad_TD', clock, mode: bad[1]! }), (e: unknown) => e instanceof TollgateError && e.code === 'TG_TRUST_DOMAIN_INVALID');
  });
});

// ---- TokenReview mode, against a real loopback HTTPS server ----

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

const POD_EXTRA = {
  'authentication.kubernetes.io/credential-id': ['JTI=5a1e6c1b-3f5e-4d2a-9b1e-0c7d2f4e8a11'],
  'authentication.kubernetes.io/node-name': ['node-a'],
  'authentication.kubernetes.io/node-uid': ['0b7a7d1e-1c1f-4e5c-9e0a-2d8c4b6f1a22'],
  'authentication.kubernetes.io/pod-name': ['web-7d9f8b6c5-x2x7q'],
  'authentication.kubernetes.io/pod-uid': ['9c3f7a2e-8b1d-4f6a-a5c3-1e2d3f4a5b66'],
};

/** A TokenReview v1 response as kube-apiserver writes it (it echoes spec back, token included). */
function review(token: string, status: Record<string, unknown>): string {
  return JSON.stringify({
    kind: 'TokenReview',
    apiVersion: 'authentication.k8s.io/v1',
    metadata: { creationTimestamp: null },
    spec: { token, audiences: ['tollgate-ca'] },
    status,
  });
}

function authenticated(token: string, over: { username?: string; extra?: Record<string, string[]>; audiences?: string[] } = {}): string {
  return review(token, {
    authenticated: true,
    user: {
      username: over.username ?? 'system:serviceaccount:shop:web',
      uid: 'f1e2d3c4-b5a6-4789-8a7b-6c5d4e3f2a11',
      groups: ['system:serviceaccounts', 'system:serviceaccounts:shop', 'system:authenticated'],
      extra: over.extra ?? POD_EXTRA,
    },
    audiences: over.audiences ?? ['tollgate-ca'],
  });
}

function json(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(body);
}

describe('k8s_token attestor, TokenReview mode', () => {
  const clock = new ManualClock(NOW_S * 1000);
  const TOKEN = `${b64url({ alg: 'RS256', kid: 'rsa-1' })}.${b64url(projectedClaims())}.c2lnbmF0dXJl`;
  const CA_BEARER = 'ca-own-sa-token';
  let dir: string;
  let cert: string;
  let server: Server;
  let port: number;
  let handler: Handler = () => {};
  let seen: { method?: string; url?: string; headers: IncomingMessage['headers']; body: string } | undefined;

  const attestor = (mode: Partial<TokenReviewMode> = {}): K8sTokenAttestor =>
    new K8sTokenAttestor({
      trustDomain: TD,
      clock,
      mode: { kind: 'token-review', apiServer: `https://127.0.0.1:${port}`, caCert: cert, bearerToken: () => CA_BEARER, ...mode },
    });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tg-k8s-token-'));
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        seen = { method: req.method, url: req.url, headers: req.headers, body };
        handler(req, body, res);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  test('authenticated pod-bound token yields the ns/sa SPIFFE ID; request is a real TokenReview', async () => {
    handler = (_req, _body, res) => json(res, 201, authenticated(TOKEN));
    const a = await attestor().attest({ token: TOKEN });
    assert.equal(a.spiffeId.id, `spiffe://${TD}/ns/shop/sa/web`);
    assert.deepEqual(a.details, { namespace: 'shop', service_account: 'web', pod: 'web-7d9f8b6c5-x2x7q', pod_uid: '9c3f7a2e-8b1d-4f6a-a5c3-1e2d3f4a5b66' });
    assert.equal(seen?.method, 'POST');
    assert.equal(seen?.url, '/apis/authentication.k8s.io/v1/tokenreviews');
    assert.equal(seen?.headers.authorization, `Bearer ${CA_BEARER}`);
    assert.equal(seen?.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(seen!.body), {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token: TOKEN, audiences: ['tollgate-ca'] },
    });
  });

  test('an async bearerToken is re-read on each call', async () => {
    handler = (_req, _body, res) => json(res, 201, authenticated(TOKEN));
    let n = 0;
    const att = attestor({ bearerToken: async () => `rotated-${++n}` });
    await att.attest({ token: TOKEN });
    await att.attest({ token: TOKEN });
    assert.equal(seen?.headers.authorization, 'Bearer rotated-2');
  });

  const cases: Array<{ name: string; handler: Handler; code: ErrorCode; msg?: RegExp; mode?: Partial<TokenReviewMode> }> = [
    {
      name: 'unauthenticated (status.error)',
      handler: (_q, _b, res) => json(res, 201, review(TOKEN, { user: {}, error: `[invalid bearer token, token ${TOKEN} has been invalidated]` })),
      code: 'TG_TOKEN_INVALID',
      msg: /did not authenticate.*invalid bearer token/,
    },
    // What kube-apiserver v1.20 answers (seen in test/kube/token-review.test.ts), and 1.28+'s wording.
    {
      name: 'unauthenticated: expired (v1.20 wording)',
      handler: (_q, _b, res) => json(res, 201, review(TOKEN, { user: {}, error: '[invalid bearer token, Token has expired.]' })),
      code: 'TG_TOKEN_EXPIRED',
      msg: /did not authenticate.*Token has expired/,
    },
    {
      name: 'unauthenticated: expired (1.28+ wording)',
      handler: (_q, _b, res) => json(res, 201, review(TOKEN, { user: {}, error: '[invalid bearer token, service account token has expired]' })),
      code: 'TG_TOKEN_EXPIRED',
    },
    {
      name: 'unauthenticated: wrong audience',
      handler: (_q, _b, res) =>
        json(res, 201, review(TOKEN, { user: {}, error: '[invalid bearer token, token audiences ["https://kubernetes.default.svc"] is invalid for the target audiences ["tollgate-ca"]]' })),
      code: 'TG_TOKEN_AUDIENCE',
      msg: /target audiences/,
    },
    { name: 'audience missing from status.audiences', handler: (_q, _b, res) => json(res, 201, authenticated(TOKEN, { audiences: ['https://kubernetes.default.svc'] })), code: 'TG_TOKEN_AUDIENCE' },
    { name: 'username is not a service account', handler: (_q, _b, res) => json(res, 201, authenticated(TOKEN, { username: 'system:node:node-a' })), code: 'TG_TOKEN_CLAIMS', msg: /not a service account/ },
    {
      name: 'no pod-name extra (token not bound to a pod)',
      handler: (_q, _b, res) => json(res, 201, authenticated(TOKEN, { extra: { 'authentication.kubernetes.io/credential-id': ['JTI=x'] } })),
      code: 'TG_TOKEN_CLAIMS',
      msg: /projected service-account token/,
    },
    {
      name: 'HTTP 403 (CA lacks tokenreviews create)',
      handler: (_q, _b, res) =>
        json(res, 403, JSON.stringify({
          kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', reason: 'Forbidden', code: 403,
          message: 'tokenreviews.authentication.k8s.io is forbidden: User "system:serviceaccount:tollgate:tollgate-ca" cannot create resource "tokenreviews" in API group "authentication.k8s.io" at the cluster scope',
          details: { group: 'authentication.k8s.io', kind: 'tokenreviews' },
        })),
      code: 'TG_TOKEN_REVIEW_FAILED',
      msg: /HTTP 403.*tokenreviews/,
    },
    { name: 'HTTP 401', handler: (_q, _b, res) => json(res, 401, '{"kind":"Status","code":401,"message":"Unauthorized"}'), code: 'TG_TOKEN_REVIEW_FAILED', msg: /HTTP 401/ },
    { name: 'response is not JSON', handler: (_q, _b, res) => json(res, 201, '<html>proxy</html>'), code: 'TG_TOKEN_REVIEW_FAILED', msg: /not JSON/ },
    { name: 'response over 1 MiB', handler: (_q, _b, res) => json(res, 201, 'x'.repeat(1024 * 1024 + 10)), code: 'TG_TOKEN_REVIEW_FAILED', msg: /exceeds/ },
    { name: 'server certificate not trusted (no caCert)', handler: (_q, _b, res) => json(res, 201, authenticated(TOKEN)), code: 'TG_TOKEN_REVIEW_FAILED', mode: { caCert: undefined }, msg: /could not reach/ },
    { name: 'HTTP 401: the hint names the CA credential', handler: (_q, _b, res) => json(res, 401, '{"message":"Unauthorized"}'), code: 'TG_TOKEN_REVIEW_FAILED', msg: /^TokenReview returned HTTP 401 \(the CA's own credential was rejected\): Unauthorized$/ },
    { name: 'HTTP 403: the hint names the RBAC binding', handler: (_q, _b, res) => json(res, 403, '{}'), code: 'TG_TOKEN_REVIEW_FAILED', msg: /^TokenReview returned HTTP 403 \(the CA's service account lacks RBAC to create tokenreviews; bind it to system:auth-delegator\)$/ },
    { name: 'HTTP 500 error page', handler: (_q, _b, res) => json(res, 500, '<html>oops</html>'), code: 'TG_TOKEN_REVIEW_FAILED', msg: /^TokenReview returned HTTP 500$/ },
    { name: 'HTTP 300', handler: (_q, _b, res) => json(res, 300, authenticated(TOKEN)), code: 'TG_TOKEN_REVIEW_FAILED', msg: /^TokenReview returned HTTP 300$/ },
    { name: 'HTTP 400 whose message is not a string', handler: (_q, _b, res) => json(res, 400, '{"message":{"x":1}}'), code: 'TG_TOKEN_REVIEW_FAILED', msg: /^TokenReview returned HTTP 400$/ },
    { name: 'HTTP 422 echoing the token: scrubbed, cut to 300 characters', handler: (_q, _b, res) => json(res, 422, JSON.stringify({ message: `bad ${TOKEN} ${'y'.repeat(400)}` })), code: 'TG_TOKEN_REVIEW_FAILED', msg: /^TokenReview returned HTTP 422: bad \[token\] y{288}$/ },
    { name: 'no status at all', handler: (_q, _b, res) => json(res, 201, '{"kind":"TokenReview"}'), code: 'TG_TOKEN_REVIEW_FAILED', msg: /^TokenReview response has no status$/ },
    { name: 'status is not an object', handler: (_q, _b, res) => json(res, 201, '{"status":"ok"}'), code: 'TG_TOKEN_REVIEW_FAILED', msg: /no status/ },
    { name: 'a JSON array', handler: (_q, _b, res) => json(res, 201, '[{"status":{"authenticated":true}}]'), code: 'TG_TOKEN_REVIEW_FAILED', msg: /no status/ },
    { name: 'authenticated is "true", a string', handler: (_q, _b, res) => json(res, 201, authenticated(TOKEN).replace('"authenticated":true', '"authenticated":"true"')), code: 'TG_TOKEN_INVALID', msg: /^the API server did not authenticate the token$/ },
    { name: 'unauthenticated with a long error: cut to 300 characters', handler: (_q, _b, res) => json(res, 201, review(TOKEN, { authenticated: false, error: 'z'.repeat(500) })), code: 'TG_TOKEN_INVALID', msg: /^the API server did not authenticate the token: z{300}$/ },
    { name: 'no status.audiences (an API server that ignored the audience)', handler: (_q, _b, res) => json(res, 201, review(TOKEN, { authenticated: true, user: JSON.parse(authenticated(TOKEN)).status.user })), code: 'TG_TOKEN_AUDIENCE', msg: /^token is not valid for audience "tollgate-ca"$/ },
    { name: 'no user', handler: (_q, _b, res) => json(res, 201, review(TOKEN, { authenticated: true, audiences: ['tollgate-ca'] })), code: 'TG_TOKEN_CLAIMS', msg: /^token belongs to "", not a service account$/ },
    { name: 'username with a prefix', handler: (_q, _b, res) => json(res, 201, authenticated(TOKEN, { username: 'xsystem:serviceaccount:shop:web' })), code: 'TG_TOKEN_CLAIMS', msg: /not a service account/ },
    { name: 'username with a fifth part', handler: (_q, _b, res) => json(res, 201, authenticated(TOKEN, { username: 'system:serviceaccount:shop:web:x' })), code: 'TG_TOKEN_CLAIMS', msg: /not a service account/ },
    { name: 'username with an empty namespace', handler: (_q, _b, res) => json(res, 201, authenticated(TOKEN, { username: 'system:serviceaccount::web' })), code: 'TG_TOKEN_CLAIMS', msg: /not a service account/ },
    { name: 'no pod-uid extra', handler: (_q, _b, res) => json(res, 201, authenticated(TOKEN, { extra: { 'authentication.kubernetes.io/pod-name': ['web-1'] } })), code: 'TG_TOKEN_CLAIMS', msg: /^token is not bound to a pod; use a projected service-account token with audience tollgate-ca$/ },
    { name: 'an empty pod-name extra', handler: (_q, _b, res) => json(res, 201, authenticated(TOKEN, { extra: { ...POD_EXTRA, 'authentication.kubernetes.io/pod-name': [''] } })), code: 'TG_TOKEN_CLAIMS', msg: /not bound to a pod/ },
    { name: 'a pod-name extra that is not a list', handler: (_q, _b, res) => json(res, 201, authenticated(TOKEN, { extra: { ...POD_EXTRA, 'authentication.kubernetes.io/pod-name': 'web-1' as unknown as string[] } })), code: 'TG_TOKEN_CLAIMS', msg: /not bound to a pod/ },
    { name: 'extra is not an object', handler: (_q, _b, res) => json(res, 201, authenticated(TOKEN, { extra: ['x'] as unknown as Record<string, string[]> })), code: 'TG_TOKEN_CLAIMS', msg: /not bound to a pod/ },
    { name: 'bearerToken throws', handler: () => {}, code: 'TG_TOKEN_REVIEW_FAILED', mode: { bearerToken: () => { throw new Error('ENOENT token file'); } }, msg: /^could not read the CA's own API-server credential: ENOENT token file$/ },
    { name: 'a JSON null', handler: (_q, _b, res) => json(res, 201, 'null'), code: 'TG_TOKEN_REVIEW_FAILED', msg: /^TokenReview response has no status$/ },
    { name: 'server never answers (timeout)', handler: () => {}, code: 'TG_TOKEN_REVIEW_FAILED', mode: { timeoutMs: 300 }, msg: /did not answer within 300 ms/ },
  ];

  for (const c of cases) {
    test(`rejects: ${c.name}`, async () => {
      handler = c.handler;
      await rejects(attestor(c.mode).attest({ token: TOKEN }), c.code, c.msg, TOKEN);
    });
  }

  test('HTTP 200 and 299 count as answers; the request says it sends and accepts JSON, with its length', async () => {
    for (const status of [200, 299]) {
      handler = (_req, _body, res) => json(res, status, authenticated(TOKEN));
      assert.equal((await attestor().attest({ token: TOKEN })).spiffeId.id, `spiffe://${TD}/ns/shop/sa/web`, String(status));
    }
    assert.equal(seen?.headers.accept, 'application/json');
    assert.equal(seen?.headers['content-length'], String(Buffer.byteLength(seen!.body)));
  });

  test('HTTP failures and timeouts carry the status or the deadline in details', async () => {
    handler = (_q, _b, res) => json(res, 503, '{}');
    await assert.rejects(attestor().attest({ token: TOKEN }), (e: unknown) => e instanceof TollgateError && JSON.stringify(e.details) === '{"http_status":503}');
    handler = (_q, _b, res) => json(res, 201, 'nope');
    await assert.rejects(attestor().attest({ token: TOKEN }), (e: unknown) => e instanceof TollgateError && JSON.stringify(e.details) === '{"http_status":201}');
    handler = () => {};
    await assert.rejects(attestor({ timeoutMs: 20 }).attest({ token: TOKEN }), (e: unknown) => e instanceof TollgateError && JSON.stringify(e.details) === '{"timeout_ms":20}');
  });

  test('a response of exactly 1 MiB is read; one byte more is refused', async () => {
    const body = authenticated(TOKEN);
    handler = (_req, _body, res) => json(res, 201, body + ' '.repeat(1024 * 1024 - Buffer.byteLength(body)));
    assert.equal((await attestor().attest({ token: TOKEN })).spiffeId.id, `spiffe://${TD}/ns/shop/sa/web`);
    handler = (_req, _body, res) => json(res, 201, body + ' '.repeat(1024 * 1024 + 1 - Buffer.byteLength(body)));
    await rejects(attestor().attest({ token: TOKEN }), 'TG_TOKEN_REVIEW_FAILED', /^TokenReview response exceeds 1048576 bytes$/);
  });

  test('an apiServer URL with a path keeps it (trailing slashes dropped)', async () => {
    handler = (_req, _body, res) => json(res, 201, authenticated(TOKEN));
    await attestor({ apiServer: `https://127.0.0.1:${port}/k8s//` }).attest({ token: TOKEN });
    assert.equal(seen?.url, '/k8s/apis/authentication.k8s.io/v1/tokenreviews');
  });

  test('a timed-out review closes its connection', async () => {
    let closed = false;
    handler = (req) => req.socket.on('close', () => (closed = true));
    await rejects(attestor({ timeoutMs: 50 }).attest({ token: TOKEN }), 'TG_TOKEN_REVIEW_FAILED', /^TokenReview at 127\.0\.0\.1:\d+ did not answer within 50 ms$/);
    for (let i = 0; i < 10_000 && !closed; i++) await new Promise((r) => setImmediate(r)); // bounded: the FIN is already on its way
    assert.ok(closed, 'the CA hung up');
  });

  test('a response cut off mid-body is TG_TOKEN_REVIEW_FAILED', async () => {
    handler = (_req, _body, res) => {
      res.writeHead(201, { 'Content-Type': 'application/json', 'Content-Length': '1000' });
      res.write('{"status":', () => res.socket?.destroy());
    };
    await rejects(attestor().attest({ token: TOKEN }), 'TG_TOKEN_REVIEW_FAILED', /^TokenReview response failed: /);
  });

  test('rejects: API server not reachable (closed port)', async () => {
    const probe = createNetServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const closed = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const att = new K8sTokenAttestor({ trustDomain: TD, clock, mode: { kind: 'token-review', apiServer: `https://127.0.0.1:${closed}`, caCert: cert, bearerToken: () => CA_BEARER, timeoutMs: 2000 } });
    await rejects(att.attest({ token: TOKEN }), 'TG_TOKEN_REVIEW_FAILED', /could not reach.*ECONNREFUSED/, TOKEN);
  });

  test('rejects a non-https apiServer at construction', () => {
    assert.throws(
      () => new K8sTokenAttestor({ trustDomain: TD, clock, mode: { kind: 'token-review', apiServer: 'http://127.0.0.1:6443', bearerToken: () => 'x' } }),
      (e: unknown) => e instanceof TollgateError && e.code === 'TG_CONFIG_INVALID' && /^k8s_token: apiServer must be an https URL$/.test(e.message),
    );
    assert.throws(
      () => new K8sTokenAttestor({ trustDomain: TD, clock, mode: { kind: 'token-review', apiServer: 'kubernetes.default.svc', bearerToken: () => 'x' } }),
      (e: unknown) => e instanceof TollgateError && e.code === 'TG_CONFIG_INVALID' && /^k8s_token: apiServer "kubernetes\.default\.svc" is not a URL$/.test(e.message),
    );
  });
});
