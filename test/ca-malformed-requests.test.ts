// Malformed requests against a real `tollgate ca serve` over real gRPC on loopback (issue 13: "no
// input crashes or hangs the CA, every refusal carries a TG_ code"). A bounded fast-check run of
// IssueSVID calls — arbitrary CSRs, tokens (garbage, JWT-shaped, reused join tokens, Kubernetes
// tokens with odd claims or a stranger's signature), ttl_seconds and reports — over connections with
// no client certificate, the CA's own SVID, and wrong ones (self-signed, another CA's, expired, a CA
// certificate); then raw HTTP/2 requests whose gRPC bodies are not the API's messages. Every call
// settles within a generous gRPC deadline (liveness, not speed); every refusal the CA makes carries
// its code in the `tollgate-error-code` trailer and at the head of `details`, with the gRPC status
// ca/grpc-errors.ts maps it to. Then the process is alive and a join-token issue and a renewal
// over mTLS still succeed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { JoinTokenAttestor } from '../ca/attestation/join-token.ts';
import { grpcStatusFor } from '../ca/grpc-errors.ts';
import { CertificateAuthorityClientCtor, ERROR_CODE_KEY, type CertificateAuthorityClient, type IssueSVIDRequestMsg, type IssueSVIDResponseMsg } from '../common/ca-api.ts';
import { systemClock } from '../common/clock.ts';
import { ErrorCodes, type ErrorCode } from '../common/errors.ts';
import { certsToPem } from '../pki/pem.ts';
import { verifySvidChain } from '../pki/svid-validate.ts';
import { buildCert, p256, testChain } from '../pki/test-chain.ts';
import { Oid } from '../pki/x509.ts';
import { csrArb, garbageTokenArb, k8sNameArb, ttlArb } from './helpers/ca-arbitraries.ts';
import { initCa, newKey, startCa, type RunningTestCa } from './helpers/ca-fixture.ts';
import { tempDir } from './helpers/procs.ts';

const TD = 'example.org';
const WEB = `spiffe://${TD}/ns/shop/sa/web`;
const K8S_ISSUER = 'https://kubernetes.default.svc.cluster.local';
const NUM_RUNS = 300;
const RAW_RUNS = 200;
/** Liveness: a call still open after this long is a hang (gRPC deadline; raw HTTP/2 timer). */
const DEADLINE_MS = 60_000;
const SERVICE = '/tollgate.ca.v1.CertificateAuthority';

let tmp: ReturnType<typeof tempDir>;
let ca: RunningTestCa;
let tokens: JoinTokenAttestor;
let clusterKey: CryptoKey;
let strangerKey: CryptoKey;

before(async () => {
  tmp = tempDir('tollgate-malformed-');
  const dir = join(tmp.dir, 'ca');
  initCa(dir, TD);
  const kp = await generateKeyPair('ES256');
  clusterKey = kp.privateKey as CryptoKey;
  strangerKey = (await generateKeyPair('ES256')).privateKey as CryptoKey;
  writeFileSync(join(tmp.dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(kp.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
  ca = await startCa(dir, ['--k8s-issuer', K8S_ISSUER, '--k8s-jwks', join(tmp.dir, 'jwks.json')]);
  tokens = new JoinTokenAttestor({ dir: join(dir, 'tokens'), clock: systemClock, trustDomain: TD });
});

after(async () => {
  for (const c of rawClients) c.close();
  await ca?.stop();
  tmp?.cleanup();
});

// ---- clients: the raw generated stub, so any field value goes on the wire ----
type Identity = { keyPem: string; certChainPem: string } | undefined;
const rawClients: CertificateAuthorityClient[] = [];

function rawClient(identity: Identity): CertificateAuthorityClient {
  const creds = grpc.credentials.createSsl(
    Buffer.from(certsToPem(ca.roots)),
    identity ? Buffer.from(identity.keyPem) : null,
    identity ? Buffer.from(identity.certChainPem) : null,
    { checkServerIdentity: () => undefined },
  );
  const c = new CertificateAuthorityClientCtor(`127.0.0.1:${ca.grpcPort}`, creds, {
    'grpc.use_local_subchannel_pool': 1,
    'grpc.ssl_target_name_override': 'tollgate-ca',
    'grpc.default_authority': 'tollgate-ca',
    'grpc.max_send_message_length': -1,
  }) as unknown as CertificateAuthorityClient;
  rawClients.push(c);
  return c;
}

type Outcome = { ok: true; res: IssueSVIDResponseMsg } | { ok: false; err: grpc.ServiceError };

function issue(client: CertificateAuthorityClient, req: IssueSVIDRequestMsg): Promise<Outcome> {
  return new Promise((resolve) => {
    client.IssueSVID(req, new grpc.Metadata(), { deadline: Date.now() + DEADLINE_MS }, (err, res) => resolve(err ? { ok: false, err } : { ok: true, res: res! }));
  });
}

/** A refusal as the CA makes it: TG_ code in the trailer and at the head of details, its mapped status. */
function assertTgRefusal(err: grpc.ServiceError, what: string): ErrorCode {
  assert.notEqual(err.code, grpc.status.DEADLINE_EXCEEDED, `${what}: did not settle within ${DEADLINE_MS} ms`);
  const code = err.metadata?.get(ERROR_CODE_KEY)?.[0];
  assert.ok(typeof code === 'string' && code in ErrorCodes, `${what}: status ${err.code} "${err.details}" carries no TG_ code`);
  const c = code as ErrorCode;
  assert.notEqual(c, 'TG_INTERNAL', `${what}: ${err.details}`);
  assert.equal(err.code, grpcStatusFor(c), `${what}: ${c} with status ${err.code}`);
  assert.ok(err.details.startsWith(`${c}: `), err.details);
  return c;
}

function k8sToken(o: { key: CryptoKey; ns: string; sa: string; expIn: number }): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ aud: 'tollgate-ca', 'kubernetes.io': { namespace: o.ns, serviceaccount: { name: o.sa, uid: 'u1' }, pod: { name: 'p', uid: 'p1' } } })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(K8S_ISSUER)
    .setSubject(`system:serviceaccount:${o.ns}:${o.sa}`)
    .setIssuedAt(now - 60)
    .setExpirationTime(now + o.expIn)
    .sign(o.key);
}

const pemKey = (k: ReturnType<typeof p256>) => k.key.export({ format: 'pem', type: 'pkcs8' }) as string;

/** Wrong client certificates, each with its key (TLS needs it): self-signed, another CA's, expired, a CA certificate. */
function wrongIdentities(): Identity[] {
  const now = Date.now();
  const foreign = testChain(TD, now);
  const leaf = (over: { notBefore?: number; notAfter?: number } = {}) => {
    const k = p256();
    const cert = buildCert({
      issuerName: 'Test Intermediate', issuerKey: foreign.intermediateKey.key, issuerSpki: foreign.intermediateKey.spki, spki: k.spki,
      notBefore: now - 60_000, notAfter: now + 3600_000, ca: false, eku: [Oid.serverAuth, Oid.clientAuth], uris: [WEB], ...over,
    });
    return { keyPem: pemKey(k), certChainPem: certsToPem([cert, foreign.intermediate]) };
  };
  const self = p256();
  const selfSigned = buildCert({ issuerName: 'me', issuerKey: self.key, issuerSpki: self.spki, spki: self.spki, notBefore: now - 60_000, notAfter: now + 3600_000, ca: false, eku: [Oid.clientAuth], uris: [WEB] });
  return [
    { keyPem: pemKey(self), certChainPem: certsToPem([selfSigned]) },
    leaf(),
    leaf({ notBefore: now - 7200_000, notAfter: now - 3600_000 }),
    { keyPem: pemKey(foreign.rootKey), certChainPem: certsToPem([foreign.root]) },
  ];
}

test(`${NUM_RUNS} arbitrary IssueSVID calls over gRPC, then ${RAW_RUNS} raw malformed bodies: all settle, every refusal has its TG_ code, the CA still issues and renews`, { timeout: 600_000 }, async (t) => {
  const started = performance.now();
  // One real SVID for renewal attempts: its line of renewals soon hits the per-certificate rate limit,
  // which is one more refusal with a code.
  const holder = newKey();
  const first = await ca.client().issue({ csr: holder.csr, token: (await tokens.create({ spiffeId: WEB, ttlMs: 600_000 })).token });
  const holderIdentity = { keyPem: holder.keyPem, certChainPem: certsToPem(first.certChain) };
  const clients = [rawClient(undefined), rawClient(holderIdentity), ...wrongIdentities().map(rawClient)];
  const { goodCsrs, arb: csrs } = csrArb();
  const used: string[] = [];
  const tokenArb = fc.oneof(
    fc.constant(undefined),
    garbageTokenArb,
    fc.constant('join'),
    fc.constant('join-reused'),
    fc.record({ key: fc.constantFrom('cluster', 'stranger'), ns: k8sNameArb, sa: k8sNameArb, expIn: fc.integer({ min: -3600, max: 3600 }) }),
  );
  const tally = { issued: 0, refused: new Map<string, number>() };
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        client: fc.nat({ max: clients.length - 1 }),
        csr: csrs,
        token: tokenArb,
        ttl: ttlArb,
        report: fc.option(fc.record({ bundle_version: fc.nat(), serial: fc.string({ maxLength: 40 }) }), { nil: null }),
      }),
      async (r) => {
        let token: string | undefined;
        if (r.token === 'join') token = (await tokens.create({ spiffeId: WEB, ttlMs: 600_000 })).token;
        else if (r.token === 'join-reused') token = used.at(-1) ?? 'tgjoin.none';
        else if (typeof r.token === 'object') token = await k8sToken({ ...r.token, key: r.token.key === 'cluster' ? clusterKey : strangerKey });
        else token = r.token;
        const out = await issue(clients[r.client]!, { csr: r.csr, token: token ?? '', ttl_seconds: r.ttl ?? 0, report: r.report });
        if (out.ok) {
          tally.issued++;
          if (token?.startsWith('tgjoin.')) used.push(token);
          const v = verifySvidChain({ leaf: out.res.cert_chain[0]!, intermediates: out.res.cert_chain.slice(1), roots: ca.roots, now: Date.now(), usage: 'client', trustDomain: TD });
          assert.equal(v.spiffeId.id, out.res.spiffe_id);
          return;
        }
        const code = assertTgRefusal(out.err, `IssueSVID ${JSON.stringify({ client: r.client, token: r.token, ttl: r.ttl })}`);
        tally.refused.set(code, (tally.refused.get(code) ?? 0) + 1);
      },
    ),
    { numRuns: NUM_RUNS },
  );
  const grpcMs = performance.now() - started;
  assert.equal(ca.proc.proc.exitCode, null, 'the CA process is alive');

  // Raw HTTP/2: bodies that are not (or not only) one well-formed message of the API.
  const rawStarted = performance.now();
  const rawTally = new Map<string, number>();
  // The counterexample that found the bug (grpc-js answered INTERNAL "Error deserializing request",
  // no TG_ code, not counted): a framed message whose bytes are not protobuf, on each method.
  for (const method of ['IssueSVID', 'GetBundle', 'WatchBundle']) {
    const r = await rawCall(`${SERVICE}/${method}`, frame(0, Buffer.from([0xff, 0xff, 0xff])));
    assert.equal(r.code, 'TG_REQUEST_INVALID', `${method}: ${JSON.stringify(r)}`);
    assert.equal(r.status, grpc.status.INVALID_ARGUMENT);
  }
  // The compressed flag without a grpc-encoding: the bytes are read as they are, and refused the same way.
  assert.equal((await rawCall(`${SERVICE}/IssueSVID`, frame(1, Buffer.from([1, 2, 3])))).code, 'TG_REQUEST_INVALID');
  // Refused by grpc-js before any CA code runs (documented in the README): over the 64 KiB transport
  // cap, and a unary call with no or two messages.
  for (const [body, status] of [
    [frame(0, Buffer.alloc(70_000)), grpc.status.RESOURCE_EXHAUSTED],
    [Buffer.from([0, 0xff, 0xff, 0xff, 0xff, 0]), grpc.status.RESOURCE_EXHAUSTED],
    [Buffer.alloc(0), grpc.status.UNIMPLEMENTED],
    [Buffer.concat([frame(0, Buffer.alloc(0)), frame(0, Buffer.alloc(0))]), grpc.status.UNIMPLEMENTED],
  ] as const) {
    const r = await rawCall(`${SERVICE}/IssueSVID`, body);
    assert.equal(r.status, status, JSON.stringify(r));
  }
  await fc.assert(
    fc.asyncProperty(fc.constantFrom('IssueSVID', 'GetBundle'), fc.uint8Array({ maxLength: 2000 }), fc.boolean(), async (method, bytes, framed) => {
      const body = framed ? frame(bytes[0] === 1 ? 1 : 0, Buffer.from(bytes)) : Buffer.from(bytes);
      const r = await rawCall(`${SERVICE}/${method}`, body);
      if (r.status === grpc.status.OK) return; // a GetBundle whose bytes happened to decode
      if (r.code === undefined) {
        // Only grpc-js's own framing refusals come without a code.
        assert.ok(r.status === grpc.status.UNIMPLEMENTED || r.status === grpc.status.RESOURCE_EXHAUSTED, `${method} ${Buffer.from(bytes).toString('hex')}: ${JSON.stringify(r)}`);
        rawTally.set(`grpc-js status ${r.status}`, (rawTally.get(`grpc-js status ${r.status}`) ?? 0) + 1);
        return;
      }
      assert.ok(r.code in ErrorCodes && r.code !== 'TG_INTERNAL', JSON.stringify(r));
      assert.equal(r.status, grpcStatusFor(r.code as ErrorCode), JSON.stringify(r));
      rawTally.set(r.code, (rawTally.get(r.code) ?? 0) + 1);
    }),
    { numRuns: RAW_RUNS },
  );
  const rawMs = performance.now() - rawStarted;
  assert.equal(ca.proc.proc.exitCode, null, 'the CA process is alive');

  // And it still serves: a join-token issue, then a renewal over mTLS with what it issued.
  const fresh = newKey();
  const issued = await ca.client().issue({ csr: fresh.csr, token: (await tokens.create({ spiffeId: WEB, ttlMs: 600_000 })).token });
  assert.equal(issued.spiffeId, WEB);
  const renewed = await ca.client({ keyPem: fresh.keyPem, certChainPem: certsToPem(issued.certChain) }).issue({ csr: goodCsrs[0]! });
  assert.equal(renewed.spiffeId, WEB);
  assert.equal(ca.proc.proc.exitCode, null);

  const fmt = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ');
  t.diagnostic(`gRPC: ${NUM_RUNS} calls in ${Math.round(grpcMs)} ms, issued ${tally.issued}; refused ${fmt(tally.refused)}`);
  t.diagnostic(`raw HTTP/2: ${RAW_RUNS} bodies in ${Math.round(rawMs)} ms: ${fmt(rawTally)}`);
});

/** A gRPC length-prefixed message: flag byte, 4-byte big-endian length, bytes. */
function frame(flag: number, body: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h[0] = flag;
  h.writeUInt32BE(body.length, 1);
  return Buffer.concat([h, body]);
}

/** POST `body` as a gRPC request over TLS (no client certificate); the status and TG_ code it got. */
function rawCall(path: string, body: Buffer): Promise<{ status: number | undefined; code: string | undefined; message: string | undefined }> {
  const session = h2connect(`https://127.0.0.1:${ca.grpcPort}`, { ca: certsToPem(ca.roots), servername: 'tollgate-ca', checkServerIdentity: () => undefined });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`${path}: no status within ${DEADLINE_MS} ms`));
    }, DEADLINE_MS);
    const seen: Record<string, string | undefined> = {};
    const take = (h: Record<string, unknown>) => {
      for (const k of ['grpc-status', 'grpc-message', ERROR_CODE_KEY]) if (h[k] !== undefined) seen[k] = String(h[k]);
    };
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
    req.on('response', take);
    req.on('trailers', take);
    req.on('data', () => {});
    req.on('error', () => {});
    req.on('close', () => {
      clearTimeout(timer);
      session.close();
      resolve({ status: seen['grpc-status'] === undefined ? undefined : Number(seen['grpc-status']), code: seen[ERROR_CODE_KEY], message: seen['grpc-message'] });
    });
    req.end(body);
  });
}
