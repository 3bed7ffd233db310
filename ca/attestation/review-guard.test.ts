// Issue 13, problem 7: garbage, expired, wrong-audience or unbound tokens cost no API-server call;
// a refused token is not reviewed again for NEGATIVE_CACHE_MS; reviews in flight never exceed the
// cap. The API server is a real HTTPS endpoint on loopback that counts TokenReview calls.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../common/clock.ts';
import { TollgateError } from '../../common/errors.ts';
import { unsignedProjectedJwt } from '../../test/helpers/k8s-token.ts';
import { testServerCert } from '../../test/helpers/tls-test-cert.ts';
import { K8sTokenAttestor } from './k8s-token.ts';
import { cachedTokenFile, NEGATIVE_CACHE_MS, REVIEW_MAX_WAITING } from './review-guard.ts';

const NOW_S = 1_767_225_600;
const jwt = (over?: Record<string, unknown>, header?: Record<string, unknown>): string => unsignedProjectedJwt(NOW_S, over, header);
const AUTHENTICATED = JSON.stringify({
  status: {
    authenticated: true, audiences: ['tollgate-ca'],
    user: { username: 'system:serviceaccount:shop:web', extra: { 'authentication.kubernetes.io/pod-name': ['web-1'], 'authentication.kubernetes.io/pod-uid': ['u-1'] } },
  },
});
const REFUSED = JSON.stringify({ status: { authenticated: false, error: '[invalid bearer token, square/go-jose: error in cryptographic primitive]' } });

describe('TokenReview guard', () => {
  const clock = new ManualClock(NOW_S * 1000);
  let dir: string;
  let cert: string;
  let server: Server;
  let port: number;
  let calls = 0;
  let inFlight = 0;
  let peak = 0;
  let hold: Array<() => void> | undefined;
  let answer = AUTHENTICATED;

  const attestor = (maxInFlight?: number) =>
    new K8sTokenAttestor({ trustDomain: 'example.org', clock, mode: { kind: 'token-review', apiServer: `https://127.0.0.1:${port}`, caCert: cert, bearerToken: () => 'ca', maxInFlight } });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tg-review-guard-'));
    const tls = await testServerCert({ now: Date.now() });
    cert = tls.caPem;
    server = createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res: ServerResponse) => {
      calls++;
      inFlight++;
      peak = Math.max(peak, inFlight);
      req.resume();
      req.on('end', () => {
        const reply = (): void => {
          inFlight--;
          res.writeHead(201, { 'Content-Type': 'application/json' });
          res.end(answer);
        };
        if (hold) hold.push(reply);
        else reply();
      });
    });
    await once(server.listen(0, '127.0.0.1'), 'listening');
    port = (server.address() as AddressInfo).port;
  });

  after(() => {
    server.close().closeAllConnections();
    rmSync(dir, { recursive: true, force: true });
  });

  const code = (c: string) => (e: unknown) => e instanceof TollgateError && e.code === c;

  test('garbage, unsigned, expired, not-yet-valid, wrong-audience and unbound tokens are refused with 0 API calls', async () => {
    const a = attestor();
    calls = 0;
    const cases: Array<[string, string]> = [
      ['aaaa.bbbb.cccc', 'TG_TOKEN_INVALID'],
      [jwt({}, { alg: 'none' }), 'TG_TOKEN_INVALID'],
      [jwt().replace(/\.c2ln$/, '.'), 'TG_TOKEN_INVALID'],
      [jwt({ exp: NOW_S - 60 }), 'TG_TOKEN_EXPIRED'],
      [jwt({ exp: undefined }), 'TG_TOKEN_CLAIMS'],
      [jwt({ nbf: NOW_S + 600 }), 'TG_TOKEN_EXPIRED'],
      [jwt({ aud: ['https://kubernetes.default.svc'] }), 'TG_TOKEN_AUDIENCE'],
      [jwt({ 'kubernetes.io': { namespace: 'shop', serviceaccount: { name: 'web' } } }), 'TG_TOKEN_CLAIMS'],
      [jwt({ sub: 'system:serviceaccount:kube-system:admin' }), 'TG_TOKEN_CLAIMS'],
    ];
    for (const [token, c] of cases) await assert.rejects(a.attest({ token }), code(c), token);
    assert.equal(calls, 0, 'no TokenReview for any of them');
    assert.equal((await a.attest({ token: jwt() })).spiffeId.id, 'spiffe://example.org/ns/shop/sa/web');
    assert.equal(calls, 1, 'a well-formed token is reviewed');
  });

  test(`a token the API server refused is refused from cache for ${NEGATIVE_CACHE_MS / 1000} s, then reviewed again`, async () => {
    const a = attestor();
    answer = REFUSED;
    calls = 0;
    const forged = jwt({ jti: 'forged' });
    for (let i = 0; i < 20; i++) await assert.rejects(a.attest({ token: forged }), code('TG_TOKEN_INVALID'));
    assert.equal(calls, 1);
    clock.advance(NEGATIVE_CACHE_MS);
    await assert.rejects(a.attest({ token: forged }), code('TG_TOKEN_INVALID'));
    assert.equal(calls, 2);
    answer = AUTHENTICATED;
  });

  test('reviews in flight never exceed the cap; beyond the waiting queue callers get TG_RATE_LIMITED', async () => {
    const a = attestor(4);
    calls = 0;
    peak = 0;
    hold = [];
    const total = 100;
    const results = Array.from({ length: total }, (_, i) => a.attest({ token: jwt({ jti: `t-${i}` }) }).then(() => 'ok', (e: TollgateError) => e.code));
    // Release the held answers as they arrive until every call has settled (bounded by `total`).
    let settled = false;
    const all = Promise.all(results).finally(() => (settled = true));
    // Answers are held until the cap's worth has arrived (or nothing more arrives), so the peak shows.
    for (let rounds = 0, idle = 0; !settled && rounds < total * 1000; rounds++) {
      await new Promise((r) => setImmediate(r));
      idle = hold.length >= 4 ? 0 : idle + 1;
      if (hold.length < 4 && idle < 200) continue;
      idle = 0;
      for (const reply of hold.splice(0)) reply();
    }
    const codes = await all;
    hold = undefined;
    assert.equal(peak, 4, 'the API server never saw more than 4 reviews at once');
    assert.equal(codes.filter((c) => c === 'ok').length, 4 + REVIEW_MAX_WAITING);
    assert.equal(codes.filter((c) => c === 'TG_RATE_LIMITED').length, total - 4 - REVIEW_MAX_WAITING);
    assert.equal(calls, 4 + REVIEW_MAX_WAITING);
  });

  test("the CA's own token file is read asynchronously and reused for a minute", async () => {
    const file = join(dir, 'token');
    writeFileSync(file, 'first\n');
    const read = cachedTokenFile(file, clock);
    assert.equal(await read(), 'first');
    writeFileSync(file, 'second\n');
    assert.equal(await read(), 'first');
    clock.advance(60_000);
    assert.equal(await read(), 'second');
  });
});
