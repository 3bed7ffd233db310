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
  let attestor: K8sTokenAttestor;

  before(async () => {
    const r = await generateKeyPair('RS256');
    const e = await generateKeyPair('ES256');
    stranger = (await generateKeyPair('RS256')).privateKey;
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
    const second = await generateKeyPair('RS256');
    const keys: JWK[] = [
      { ...(await exportJWK((await generateKeyPair('RS256')).publicKey)), kid: 'old', alg: 'RS256' },
      { ...(await exportJWK(second.publicKey)), kid: 'new', alg: 'RS256' },
    ];
    const multi = new K8sTokenAttestor({ trustDomain: TD, clock, mode: { kind: 'jwks', issuer: ISSUER, jwks: { keys } } });
    const unkeyed = (k: CryptoKey) => new SignJWT(projectedClaims()).setProtectedHeader({ alg: 'RS256' }).sign(k);
    assert.equal((await multi.attest({ token: await unkeyed(second.privateKey) })).spiffeId.id, `spiffe://${TD}/ns/shop/sa/web`);
    await rejects(multi.attest({ token: await unkeyed(stranger) }), 'TG_TOKEN_INVALID', /any key/);
  });

  test('rejects a malformed JWKS or empty issuer at construction', () => {
    const bad: K8sTokenAttestorOptions['mode'][] = [
      { kind: 'jwks', issuer: ISSUER, jwks: { keys: 'nope' as unknown as JWK[] } },
      { kind: 'jwks', issuer: '', jwks: { keys: [] } },
    ];
    for (const mode of bad) {
      assert.throws(() => new K8sTokenAttestor({ trustDomain: TD, clock, mode }), (e: unknown) => e instanceof TollgateError && e.code === 'TG_CONFIG_INVALID');
    }
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
    { name: 'bearerToken throws', handler: () => {}, code: 'TG_TOKEN_REVIEW_FAILED', mode: { bearerToken: () => { throw new Error('ENOENT token file'); } }, msg: /credential/ },
    { name: 'server never answers (timeout)', handler: () => {}, code: 'TG_TOKEN_REVIEW_FAILED', mode: { timeoutMs: 300 }, msg: /did not answer within 300 ms/ },
  ];

  for (const c of cases) {
    test(`rejects: ${c.name}`, async () => {
      handler = c.handler;
      await rejects(attestor(c.mode).attest({ token: TOKEN }), c.code, c.msg, TOKEN);
    });
  }

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
      (e: unknown) => e instanceof TollgateError && e.code === 'TG_CONFIG_INVALID',
    );
  });
});
