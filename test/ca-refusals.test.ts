// Bad input against a real CA process: each refusal carries a stable code, writes one audit line,
// and the CA keeps serving. The identity always comes from attestation, never from the CSR.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { JoinTokenAttestor } from '../ca/attestation/join-token.ts';
import { DirectoryStore } from '../ca/store.ts';
import { CertificateAuthorityClientCtor, type CertificateAuthorityClient } from '../common/ca-api.ts';
import { ManualClock } from '../common/clock.ts';
import { certsToPem, parsePemBlocks } from '../pki/pem.ts';
import { LeafTemplate } from '../pki/svid-template.ts';
import { parseCsr } from '../pki/csr.ts';
import { createJoinToken, initCa, newKey, startCa, type RunningTestCa } from './helpers/ca-fixture.ts';
import { run, tempDir, tollgate } from './helpers/procs.ts';

const TD = 'example.org';
const WEB = `spiffe://${TD}/ns/shop/sa/web`;
const ISSUER = 'https://kubernetes.default.svc.cluster.local';
let tmp: ReturnType<typeof tempDir>;
let ca: RunningTestCa;
let signingKey: CryptoKey;
let strangerKey: CryptoKey;

before(async () => {
  tmp = tempDir();
  const dir = join(tmp.dir, 'ca');
  initCa(dir, TD);
  const kp = await generateKeyPair('ES256');
  signingKey = kp.privateKey as CryptoKey;
  strangerKey = (await generateKeyPair('ES256')).privateKey as CryptoKey;
  const jwk = { ...(await exportJWK(kp.publicKey)), kid: 'cluster-key', alg: 'ES256', use: 'sig' };
  writeFileSync(join(tmp.dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
  ca = await startCa(dir, ['--audit-aggregate', '0', '--k8s-issuer', ISSUER, '--k8s-jwks', join(tmp.dir, 'jwks.json')]);
});

after(async () => {
  await ca?.stop();
  tmp?.cleanup();
});

function k8sToken(options: { key?: CryptoKey; aud?: string; exp?: number; iss?: string; ns?: string; sa?: string } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const ns = options.ns ?? 'shop';
  const sa = options.sa ?? 'web';
  return new SignJWT({
    'kubernetes.io': {
      namespace: ns,
      pod: { name: 'web-7d4b9c-x2x', uid: '0f6d1b7e-1111-2222-3333-444455556666' },
      serviceaccount: { name: sa, uid: '9a1c2d3e-1111-2222-3333-444455556666' },
    },
  })
    .setProtectedHeader({ alg: 'ES256', kid: 'cluster-key' })
    .setIssuer(options.iss ?? ISSUER)
    .setAudience(options.aud ?? 'tollgate-ca')
    .setSubject(`system:serviceaccount:${ns}:${sa}`)
    .setIssuedAt(now - 60)
    .setNotBefore(now - 60)
    .setExpirationTime(options.exp ?? now + 600)
    .sign(options.key ?? signingKey);
}

function opensslCsr(keyArgs: string[], extra: string[] = []): Buffer {
  const key = join(tmp.dir, `k-${Math.random().toString(36).slice(2)}.pem`);
  const g = run('openssl', ['genpkey', ...keyArgs, '-out', key]);
  assert.equal(g.code, 0, g.stderr);
  const r = run('openssl', ['req', '-new', '-key', key, '-subj', '/CN=whoever', '-outform', 'PEM', ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return parsePemBlocks(r.stdout)[0]!.der;
}

async function refused(p: Promise<unknown>, code: string): Promise<void> {
  const before = ca.auditLines().length;
  await assert.rejects(p, (e: Error & { code?: string }) => {
    assert.equal(e.code, code, e.message);
    return true;
  });
  const lines = ca.auditLines().slice(before);
  assert.equal(lines.length, 1, `one audit line for ${code}`);
  assert.equal(lines[0]!.event, 'svid_refused');
  assert.equal(lines[0]!.code, code);
  assert.ok(lines[0]!.peer);
  // ...and the CA keeps serving.
  assert.equal((await ca.client().getBundle()).trustDomain, TD);
}

test('malformed DER CSR', async () => {
  await refused(ca.client().issue({ csr: Buffer.from('30820101deadbeef', 'hex'), token: createJoinToken(ca.dir, WEB) }), 'TG_CSR_INVALID');
});

test('CSR with a bad self-signature', async () => {
  const csr = Buffer.from(newKey().csr);
  csr[csr.length - 5]! ^= 0xff;
  await refused(ca.client().issue({ csr, token: createJoinToken(ca.dir, WEB) }), 'TG_CSR_INVALID');
});

test('CSR with an RSA key (made by openssl)', async () => {
  const csr = opensslCsr(['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']);
  await refused(ca.client().issue({ csr, token: createJoinToken(ca.dir, WEB) }), 'TG_CSR_KEY_UNSUPPORTED');
});

test('CSR with a P-384 key (made by openssl)', async () => {
  const csr = opensslCsr(['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384']);
  await refused(ca.client().issue({ csr, token: createJoinToken(ca.dir, WEB) }), 'TG_CSR_KEY_UNSUPPORTED');
});

test('a CSR asking for another identity gets the attested one', async () => {
  const csr = opensslCsr(['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['-addext', `subjectAltName=URI:spiffe://${TD}/ns/kube-system/sa/admin`]);
  assert.doesNotThrow(() => parseCsr(csr));
  const res = await ca.client().issue({ csr, token: createJoinToken(ca.dir, WEB) });
  assert.equal(res.spiffeId, WEB);
  const text = run('openssl', ['x509', '-noout', '-text'], { input: certsToPem([res.certChain[0]!]) }).stdout;
  assert.match(text, /URI:spiffe:\/\/example\.org\/ns\/shop\/sa\/web/);
  assert.doesNotMatch(text, /admin|whoever/);
});

test('join token: reused, unknown, expired', async () => {
  const token = createJoinToken(ca.dir, WEB);
  await ca.client().issue({ csr: newKey().csr, token });
  await refused(ca.client().issue({ csr: newKey().csr, token }), 'TG_TOKEN_REUSED');
  await refused(ca.client().issue({ csr: newKey().csr, token: `tgjoin.${'A'.repeat(43)}` }), 'TG_TOKEN_UNKNOWN');
  // A token created an hour ago with a 10-minute TTL (the store's clock is injected, not slept through).
  const past = new ManualClock(Date.now() - 3600_000);
  const old = await new JoinTokenAttestor({ dir: join(ca.dir, 'tokens'), clock: past, trustDomain: TD }).create({ spiffeId: WEB, ttlMs: 600_000 });
  await refused(ca.client().issue({ csr: newKey().csr, token: old.token }), 'TG_TOKEN_EXPIRED');
});

test('no attestation at all', async () => {
  await refused(ca.client().issue({ csr: newKey().csr }), 'TG_TOKEN_MISSING');
});

test('Kubernetes token: valid one issues the service-account identity', async () => {
  const res = await ca.client().issue({ csr: newKey().csr, token: await k8sToken({ ns: 'orders', sa: 'api' }) });
  assert.equal(res.spiffeId, `spiffe://${TD}/ns/orders/sa/api`);
  assert.equal(ca.auditLines().at(-1)!.attestation, 'k8s_token');
});

test('Kubernetes token: unknown key, wrong audience, expired, wrong issuer, alg none', async () => {
  await refused(ca.client().issue({ csr: newKey().csr, token: await k8sToken({ key: strangerKey }) }), 'TG_TOKEN_INVALID');
  await refused(ca.client().issue({ csr: newKey().csr, token: await k8sToken({ aud: 'vault' }) }), 'TG_TOKEN_AUDIENCE');
  await refused(ca.client().issue({ csr: newKey().csr, token: await k8sToken({ exp: Math.floor(Date.now() / 1000) - 120 }) }), 'TG_TOKEN_EXPIRED');
  await refused(ca.client().issue({ csr: newKey().csr, token: await k8sToken({ iss: 'https://evil.example' }) }), 'TG_TOKEN_ISSUER');
  const valid = await k8sToken();
  const [, payload] = valid.split('.');
  const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`;
  await refused(ca.client().issue({ csr: newKey().csr, token: none }), 'TG_TOKEN_INVALID');
});

test('renewal with an expired certificate', async () => {
  const store = new DirectoryStore({ dir: ca.dir }).load();
  const k = newKey();
  const t = new LeafTemplate({ issuerCertificate: store.intermediate.certificate, issuerKey: store.intermediate.key });
  const now = Date.now();
  const leaf = t.issue({ spki: parseCsr(k.csr).spki, spiffeId: WEB, notBefore: now - 7200_000, notAfter: now - 3600_000 });
  const c = ca.client({ certChainPem: certsToPem([leaf.der, store.intermediate.certificate]), keyPem: k.keyPem });
  await refused(c.issue({ csr: newKey().csr }), 'TG_SVID_EXPIRED');
});

test('renewal with a certificate from another CA', async () => {
  const other = join(tmp.dir, 'other-ca');
  initCa(other, TD);
  const out = join(tmp.dir, 'foreign');
  assert.equal(tollgate(['cert', 'issue', '--ca-dir', other, '--spiffe-id', WEB, '--out', out]).code, 0);
  const c = ca.client({ certChainPem: readFileSync(`${out}.crt`, 'utf8'), keyPem: readFileSync(`${out}.key`, 'utf8') });
  await refused(c.issue({ csr: newKey().csr }), 'TG_SVID_UNTRUSTED');
});

test('oversized requests: a CSR over 4 KiB is refused and audited; a message over 64 KiB is cut off by gRPC', async () => {
  await refused(ca.client().issue({ csr: Buffer.alloc(10_000, 0x30), token: createJoinToken(ca.dir, WEB) }), 'TG_REQUEST_TOO_LARGE');
  const before = ca.auditLines().length;
  await assert.rejects(ca.client().issue({ csr: Buffer.alloc(200_000, 1) }), (e: Error & { code?: string }) => e.code === 'TG_REQUEST_TOO_LARGE');
  assert.equal(ca.auditLines().length, before, 'rejected by the transport before any decision');
  assert.equal((await ca.client().getBundle()).trustDomain, TD);
});

// Our own client caps what it sends at 64 KiB, so the test above never reaches the server's cap. A raw
// gRPC client whose send cap is raised shows that the CA itself refuses a 200 KB message.
test('the CA refuses a message over 64 KiB itself (a raw client with its own cap raised): RESOURCE_EXHAUSTED, no audit line', async () => {
  const creds = grpc.credentials.createSsl(readFileSync(join(ca.dir, 'bundle.pem')), null, null, { checkServerIdentity: () => undefined });
  const raw = new CertificateAuthorityClientCtor(`127.0.0.1:${ca.grpcPort}`, creds, {
    'grpc.max_send_message_length': 16 * 1024 * 1024,
    'grpc.ssl_target_name_override': 'tollgate-ca',
  }) as unknown as CertificateAuthorityClient;
  try {
    const before = ca.auditLines().length;
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      raw.IssueSVID({ csr: Buffer.alloc(200_000, 1), token: createJoinToken(ca.dir, WEB), ttl_seconds: 0, report: null }, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (e: grpc.ServiceError | null) => resolve(e));
    });
    assert.ok(err, 'the 200 KB request was answered');
    assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED, `status ${err.code}: ${err.details}`);
    assert.match(err.details, /Received message larger than max \(\d+ vs 65536\)/, 'refused by the server\'s receive cap');
    assert.equal(ca.auditLines().length, before, 'refused by the transport before any decision');
  } finally {
    raw.close();
  }
});

test('the audit log never holds tokens', async () => {
  const token = createJoinToken(ca.dir, WEB);
  await ca.client().issue({ csr: newKey().csr, token });
  const jwt = await k8sToken();
  await ca.client().issue({ csr: newKey().csr, token: jwt });
  const text = readFileSync(join(ca.dir, 'audit-serve.log'), 'utf8');
  assert.ok(!text.includes(token.slice(7)) && !text.includes(jwt.split('.')[2]!));
  assert.doesNotMatch(text, /PRIVATE KEY|tgjoin\./);
});
