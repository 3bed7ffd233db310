// A real CA process: join-token issue, then renewal over mTLS with that SVID; every issued chain is
// checked by the openssl CLI, not by our own parser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { certsToPem } from '../pki/pem.ts';
import { caForFile, createJoinToken, newKey } from './helpers/ca-fixture.ts';
import type { BundleResponse } from '../common/ca-client.ts';
import { httpGet, run, tollgate } from './helpers/procs.ts';
import { waitFor } from './helpers/sidecar-fixture.ts';

const WEB = 'spiffe://example.org/ns/shop/sa/web';
const file = caForFile();

/** Check one issued chain with openssl: verify, and every leaf profile item of PRODUCT.md §3. */
function opensslChecks(chain: Buffer[], name: string, spiffeId: string): string {
  const crt = join(file.tmp, `${name}.crt`);
  const leafOnly = join(file.tmp, `${name}-leaf.crt`);
  const inter = join(file.tmp, `${name}-int.crt`);
  writeFileSync(crt, certsToPem(chain));
  writeFileSync(leafOnly, certsToPem([chain[0]!]));
  writeFileSync(inter, certsToPem(chain.slice(1)));
  const v = run('openssl', ['verify', '-CAfile', join(file.ca.dir, 'root.crt'), '-untrusted', inter, leafOnly]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /: OK/);
  const purpose = run('openssl', ['verify', '-purpose', 'sslclient', '-CAfile', join(file.ca.dir, 'root.crt'), '-untrusted', inter, leafOnly]);
  assert.equal(purpose.code, 0, purpose.stderr);
  const text = run('openssl', ['x509', '-in', leafOnly, '-noout', '-text']).stdout;
  assert.match(text, /Version: 3/);
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
  assert.match(text, /Subject: *\n/, 'subject is empty');
  assert.match(text, /ASN1 OID: prime256v1/);
  assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
  assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\s*\n/, 'digitalSignature only');
  assert.doesNotMatch(text, /Certificate Sign|CRL Sign/);
  assert.match(text, /X509v3 Extended Key Usage:\s*\n\s+TLS Web Server Authentication, TLS Web Client Authentication/);
  assert.match(text, new RegExp(`X509v3 Subject Alternative Name: critical\\s+URI:${spiffeId.replace(/[/.]/g, '\\$&')}\\s*\\n`));
  assert.equal((text.match(/URI:/g) ?? []).length, 1, 'exactly one URI SAN');
  assert.match(text, /X509v3 Subject Key Identifier/);
  assert.match(text, /X509v3 Authority Key Identifier/);
  const serial = run('openssl', ['x509', '-in', leafOnly, '-noout', '-serial']).stdout.trim().replace('serial=', '');
  assert.equal(serial.length, 32, `128-bit serial, got ${serial}`);
  const dates = run('openssl', ['x509', '-in', leafOnly, '-noout', '-startdate', '-enddate']).stdout;
  const nb = Date.parse(/notBefore=(.*)/.exec(dates)![1]!);
  const na = Date.parse(/notAfter=(.*)/.exec(dates)![1]!);
  assert.ok(nb <= Date.now() - 25_000, 'backdated by the skew allowance');
  const interText = run('openssl', ['x509', '-in', inter, '-noout', '-enddate']).stdout;
  assert.ok(na <= Date.parse(/notAfter=(.*)/.exec(interText)![1]!), 'leaf never outlives its issuer');
  return serial;
}

test('join token issue, then renewal over mTLS keeps the attested identity', async () => {
  const token = createJoinToken(file.ca.dir, WEB);
  const k = newKey();
  const first = await file.ca.client().issue({ csr: k.csr, token });
  assert.equal(first.spiffeId, WEB);
  assert.equal(first.certChain.length, 2);
  const serial1 = opensslChecks(first.certChain, 'first', WEB);
  const na = run('openssl', ['x509', '-noout', '-enddate', '-in', join(file.tmp, 'first-leaf.crt')]).stdout;
  const lifetime = Date.parse(/notAfter=(.*)/.exec(na)![1]!) - Date.now();
  assert.ok(lifetime > 3500_000 && lifetime <= 3600_000, `default TTL 1h, got ${lifetime} ms`);

  // Renewal: present the SVID over mTLS, no token. The CSR is for a new key.
  const k2 = newKey();
  const renewer = file.ca.client({ certChainPem: certsToPem(first.certChain), keyPem: k.keyPem });
  const second = await renewer.issue({ csr: k2.csr, ttlSeconds: 600, report: { bundle_version: first.bundleVersion, serial: serial1 } });
  assert.equal(second.spiffeId, WEB);
  const serial2 = opensslChecks(second.certChain, 'second', WEB);
  assert.notEqual(serial1, serial2);
  assert.ok(second.expiresAt - Date.now() / 1000 <= 601);

  const lines = file.ca.auditLines().filter((l) => l.event === 'svid_issued');
  assert.deepEqual(lines.map((l) => l.attestation), ['join_token', 'svid']);
  assert.equal(lines[0]!.serial, serial1.toLowerCase());
  for (const l of lines) {
    assert.equal(l.spiffe_id, WEB);
    assert.ok(l.not_after && l.time && l.peer);
  }
});

test('TTL requests above the maximum are capped at 24h', async () => {
  const token = createJoinToken(file.ca.dir, WEB);
  const res = await file.ca.client().issue({ csr: newKey().csr, token, ttlSeconds: 7 * 24 * 3600 });
  const life = res.expiresAt - Date.now() / 1000;
  assert.ok(life <= 24 * 3600 + 1 && life > 24 * 3600 - 60, `capped lifetime, got ${life}s`);
});

test('GetBundle and WatchBundle serve the roots of bundle.pem', async () => {
  const client = file.ca.client();
  const b = await client.getBundle();
  assert.equal(b.trustDomain, 'example.org');
  assert.deepEqual(b.roots, file.ca.roots);
  const watched = await new Promise<number>((resolve, reject) => {
    const cancel = client.watchBundle(undefined, (x) => {
      cancel();
      resolve(x.version);
    }, (e) => e && reject(e));
  });
  assert.equal(watched, b.version);
});

test('WatchBundle pushes a second message on the same stream when the bundle changes (ca deny add)', async () => {
  const client = file.ca.client();
  const got: BundleResponse[] = [];
  let ended: unknown = null;
  const cancel = client.watchBundle(undefined, (b) => got.push(b), (e) => (ended = e ?? 'ended'));
  try {
    await waitFor(() => got.length >= 1, 'the first message (the current bundle)');
    const first = got[0]!;
    assert.equal(first.deniedSerials?.includes('deadbeef01'), false);
    const r = tollgate(['ca', 'deny', 'add', '--dir', file.ca.dir, '--serial', 'deadbeef01', '--reason', 'test: second push', '--json']);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(() => got.length >= 2 || ended !== null, 'a second message on the stream', 15_000);
    assert.equal(ended, null, 'the stream stayed open');
    const second = got[1]!;
    assert.ok(second.version > first.version, `version ${first.version} -> ${second.version}`);
    assert.ok(second.deniedSerials?.includes('deadbeef01'), 'the push carries the new deny-list');
    assert.deepEqual(second.roots, first.roots);
  } finally {
    cancel();
  }
});

test('the CA proves its own SPIFFE ID; a client expecting another ID refuses it', async () => {
  const { connectCa } = await import('../pki/ca-connect.ts');
  const wrong = connectCa({ address: `127.0.0.1:${file.ca.grpcPort}`, roots: file.ca.roots, serverId: 'spiffe://example.org/ns/evil/sa/ca', deadlineMs: 3000 });
  await assert.rejects(wrong.getBundle(), (e: Error & { code?: string }) => e.code === 'TG_UNAVAILABLE');
  wrong.close();
  const s = run('openssl', ['s_client', '-connect', `127.0.0.1:${file.ca.grpcPort}`, '-alpn', 'h2', '-CAfile', join(file.ca.dir, 'root.crt'), '-showcerts'], { input: '' });
  assert.match(s.stdout, /Verify return code: 0 \(ok\)/);
  assert.match(run('openssl', ['x509', '-noout', '-ext', 'subjectAltName'], { input: s.stdout }).stdout, /URI:spiffe:\/\/example\.org\/tollgate\/ca/);
});

test('admin endpoints: healthz, readyz, metrics', async () => {
  const base = `http://127.0.0.1:${file.ca.adminPort}`;
  assert.equal((await httpGet(`${base}/healthz`)).status, 200);
  const ready = await httpGet(`${base}/readyz`);
  assert.equal(ready.status, 200, ready.body);
  const m = await httpGet(`${base}/metrics`);
  assert.match(m.body, /tollgate_ca_issued_total\{attestation="join_token"\} \d+/);
  assert.match(m.body, /tollgate_authority_expiry_timestamp_seconds\{kind="intermediate",slot="active"\} \d+/);
  assert.match(m.body, /tollgate_authority_expiry_timestamp_seconds\{kind="root",slot="active"\} \d+/);
  assert.doesNotMatch(m.body, /spiffe:\/\//, 'no SPIFFE ID as a label');
});
