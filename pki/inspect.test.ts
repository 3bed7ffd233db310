import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { createIntermediate, createRoot, type Authority } from '../ca/authority.ts';
import { ManualClock } from '../common/clock.ts';
import { createCsr, parseCsr } from './csr.ts';
import { isTollgateError } from '../common/errors.ts';
import { describeCertificates, fetchPeerChain, formatInspection, loadCertificateFile, parseTarget } from './inspect.ts';
import { certsToPem, toPem } from './pem.ts';
import { LeafTemplate } from './svid-template.ts';

// Certificates are issued at T0 on a ManualClock; T0 is the real time (to the second, as X.509 stores
// it) only because the TLS tests' servers check client certificates against the real clock.
const T0 = Math.floor(Date.now() / 1000) * 1000;
const clock = new ManualClock(T0);
const NOW = T0 + 2 * 60_000; // two minutes after issuance
const ID = 'spiffe://example.org/ns/shop/sa/web';

let dir: string;
let root: Authority;
let inter: Authority;
let otherRoot: Authority;
let template: LeafTemplate;
let leaf: { der: Buffer; serialHex: string; key: KeyObject };
let leafFile: string;
let rootFile: string;
let otherRootFile: string;

function issue(spiffeId: string, notBefore: number, notAfter: number): { der: Buffer; serialHex: string; key: KeyObject } {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const issued = template.issue({ spki: parseCsr(createCsr(privateKey)).spki, spiffeId, notBefore, notAfter });
  return { ...issued, key: privateKey };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tg-inspect-'));
  root = await createRoot({ trustDomain: 'example.org', clock });
  inter = await createIntermediate({ trustDomain: 'example.org', root, clock });
  otherRoot = await createRoot({ trustDomain: 'example.org', clock });
  template = new LeafTemplate({ issuerCertificate: inter.certificate, issuerKey: inter.key });
  leaf = issue(ID, T0, T0 + 3_600_000);
  leafFile = join(dir, 'svid.pem');
  writeFileSync(leafFile, certsToPem([leaf.der, inter.certificate]));
  rootFile = join(dir, 'bundle.pem');
  writeFileSync(rootFile, toPem('CERTIFICATE', root.certificate));
  otherRootFile = join(dir, 'other-bundle.pem');
  writeFileSync(otherRootFile, toPem('CERTIFICATE', otherRoot.certificate));
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('describes a leaf + intermediate chain', () => {
  const i = describeCertificates(loadCertificateFile(leafFile), { now: NOW });
  assert.equal(i.spiffe_id, ID);
  assert.equal(i.chain.length, 2);
  const [l, c] = i.chain;
  assert.equal(l!.subject, '');
  assert.equal(l!.issuer, c!.subject);
  assert.match(c!.subject, /CN=Tollgate Intermediate CA/);
  assert.equal(l!.serial, leaf.serialHex);
  assert.equal(l!.not_before, new Date(T0).toISOString());
  assert.equal(l!.not_after, new Date(T0 + 3_600_000).toISOString());
  assert.equal(l!.expires_in_seconds, 3600 - 120);
  assert.equal(l!.is_ca, false);
  assert.equal(c!.is_ca, true);
  assert.equal(l!.key, 'ECDSA P-256');
  assert.deepEqual(l!.uri_sans, [ID]);
  assert.deepEqual(c!.uri_sans, ['spiffe://example.org']);
  assert.deepEqual(l!.dns_sans, []);
  assert.deepEqual(l!.key_usage, ['digitalSignature']);
  assert.deepEqual(c!.key_usage, ['keyCertSign', 'cRLSign']);
  assert.deepEqual(l!.ext_key_usage, ['serverAuth', 'clientAuth']);
  assert.equal(l!.fingerprint_sha256, new X509Certificate(leaf.der).fingerprint256);
  assert.deepEqual(l!.profile, { ok: true });
  assert.deepEqual(c!.profile, { ok: true });
  assert.deepEqual(i.verification, { checked: false });
  assert.deepEqual(JSON.parse(JSON.stringify(i)), i);
});

test('verifies against the right bundle', () => {
  const i = describeCertificates(loadCertificateFile(leafFile), { now: NOW, bundle: loadCertificateFile(rootFile) });
  assert.deepEqual(i.verification, { checked: true, ok: true });
});

test('another CA\'s root gives TG_SVID_UNTRUSTED', () => {
  const i = describeCertificates(loadCertificateFile(leafFile), { now: NOW, bundle: loadCertificateFile(otherRootFile) });
  assert.equal(i.verification.checked, true);
  assert.equal(i.verification.ok, false);
  assert.equal(i.verification.code, 'TG_SVID_UNTRUSTED');
  assert.match(formatInspection(i), /Verification: FAILED TG_SVID_UNTRUSTED: certificate does not chain/);
});

test('an expired leaf gives TG_SVID_EXPIRED and a negative expires_in_seconds', () => {
  const old = issue(ID, T0, T0 + 60_000);
  const i = describeCertificates([old.der, inter.certificate], { now: T0 + 3 * 3_600_000, bundle: [root.certificate] });
  assert.equal(i.verification.code, 'TG_SVID_EXPIRED');
  assert.equal(i.verification.error, `certificate expired at ${new Date(T0 + 60_000).toISOString()}`);
  assert.equal(i.chain[0]!.expires_in_seconds, -(3 * 3600 - 60));
  assert.deepEqual(i.chain[0]!.profile, { ok: true }); // the profile is about shape, not time
  assert.match(formatInspection(i), /EXPIRED 2h59m ago/);
});

test('a CA certificate given as the leaf fails the leaf profile', () => {
  const i = describeCertificates([inter.certificate], { now: NOW, bundle: [root.certificate] });
  assert.equal(i.chain[0]!.profile.ok, false);
  assert.match(i.chain[0]!.profile.error!, /cA=true/);
  assert.equal(i.verification.ok, false);
  assert.equal(i.verification.code, 'TG_SVID_INVALID');
  assert.match(formatInspection(i), /Profile: +INVALID: leaf certificate has basicConstraints cA=true/);
});

test('a leaf given in the intermediate position fails the signing profile', () => {
  const i = describeCertificates([leaf.der, leaf.der], { now: NOW });
  assert.equal(i.chain[1]!.profile.ok, false);
  assert.match(i.chain[1]!.profile.error!, /not a CA/);
});

test('formatInspection: SPIFFE ID first, validity, profile, verification', () => {
  const text = formatInspection(describeCertificates([leaf.der, inter.certificate], { now: NOW, bundle: [root.certificate] }));
  assert.ok(text.startsWith(`SPIFFE ID: ${ID}\n`), text);
  assert.match(text, /Certificate 0 \(leaf\)/);
  assert.match(text, /Certificate 1 \(CA\)/);
  assert.match(text, /Subject: +\(empty\)/);
  assert.match(text, /\(expires in 58m\)/);
  assert.match(text, /Key: +ECDSA P-256/);
  assert.match(text, /Profile: +OK \(X\.509-SVID leaf\)/);
  assert.match(text, /Verification: OK against bundle/);
  const unchecked = formatInspection(describeCertificates([leaf.der], { now: NOW }));
  assert.match(unchecked, /Verification: not checked/);
});

test('describeCertificates refuses an empty chain and garbage', () => {
  assert.throws(() => describeCertificates([], { now: NOW }), (e: unknown) => isTollgateError(e, 'TG_CERT_INVALID'));
  assert.throws(() => describeCertificates([leaf.der, Buffer.from([0x30, 0x00])], { now: NOW }), (e: unknown) => isTollgateError(e, 'TG_CERT_INVALID') && /certificate 1/.test(e.message));
});

test('loadCertificateFile reads PEM bundles and single DER certificates, and names the path on errors', () => {
  assert.deepEqual(loadCertificateFile(leafFile), [leaf.der, inter.certificate]);
  const derFile = join(dir, 'leaf.der');
  writeFileSync(derFile, leaf.der);
  assert.deepEqual(loadCertificateFile(derFile), [leaf.der]);
  const missing = join(dir, 'missing.pem');
  assert.throws(() => loadCertificateFile(missing), (e: unknown) => isTollgateError(e, 'TG_CERT_INVALID') && e.message.includes(missing));
  const junk = join(dir, 'junk.txt');
  writeFileSync(junk, 'hello');
  assert.throws(() => loadCertificateFile(junk), (e: unknown) => isTollgateError(e, 'TG_CERT_INVALID') && e.message.includes(junk));
});

test('parseTarget: an existing file wins, else HOST:PORT, else TG_USAGE', () => {
  assert.deepEqual(parseTarget(leafFile), { kind: 'file', path: leafFile });
  assert.deepEqual(parseTarget('web.shop.svc:8443'), { kind: 'network', host: 'web.shop.svc', port: 8443 });
  assert.deepEqual(parseTarget('127.0.0.1:443'), { kind: 'network', host: '127.0.0.1', port: 443 });
  assert.deepEqual(parseTarget('[::1]:443'), { kind: 'network', host: '::1', port: 443 });
  for (const bad of ['missing.pem', 'host:http', 'host:0', 'host:70000', '::1:443', dir]) {
    assert.throws(() => parseTarget(bad), (e: unknown) => isTollgateError(e, 'TG_USAGE') && /is neither a readable file nor HOST:PORT/.test(e.message), bad);
  }
});

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

async function close(server: net.Server): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

function serverOptions(extra: tls.TlsOptions = {}): tls.TlsOptions {
  return {
    key: leaf.key.export({ format: 'pem', type: 'pkcs8' }),
    cert: certsToPem([leaf.der, inter.certificate]),
    ...extra,
  };
}

test('fetchPeerChain returns the served leaf and intermediate in order', async () => {
  const server = tls.createServer(serverOptions(), (s) => s.end());
  const port = await listen(server);
  try {
    const chain = await fetchPeerChain(`127.0.0.1:${port}`);
    assert.deepEqual(chain, [leaf.der, inter.certificate]);
    const i = describeCertificates(chain, { now: NOW, bundle: [root.certificate] });
    assert.equal(i.spiffe_id, ID);
    assert.equal(i.verification.ok, true);
  } finally {
    await close(server);
  }
});

test('fetchPeerChain stops at a self-signed root the server also sends', async () => {
  const server = tls.createServer(serverOptions({ cert: certsToPem([leaf.der, inter.certificate, root.certificate]) }), (s) => s.end());
  const port = await listen(server);
  try {
    assert.deepEqual(await fetchPeerChain(`127.0.0.1:${port}`), [leaf.der, inter.certificate, root.certificate]);
  } finally {
    await close(server);
  }
});

test('fetchPeerChain reads the chain of a TLS 1.3 server that demands a client certificate', async () => {
  const server = tls.createServer(serverOptions({ requestCert: true, rejectUnauthorized: true, ca: [toPem('CERTIFICATE', root.certificate)], minVersion: 'TLSv1.3' }));
  server.on('tlsClientError', () => {});
  const port = await listen(server);
  try {
    assert.deepEqual(await fetchPeerChain(`127.0.0.1:${port}`), [leaf.der, inter.certificate]);
  } finally {
    await close(server);
  }
});

test('over TLS 1.2 a server that demands a client certificate: TG_UNAVAILABLE with a hint, or success with one', async () => {
  const server = tls.createServer(serverOptions({ requestCert: true, rejectUnauthorized: true, ca: [certsToPem([root.certificate, inter.certificate])], maxVersion: 'TLSv1.2' }), (s) => s.end());
  server.on('tlsClientError', () => {});
  const port = await listen(server);
  try {
    await assert.rejects(fetchPeerChain(`127.0.0.1:${port}`), (e: unknown) => isTollgateError(e, 'TG_UNAVAILABLE') && /may require a client certificate/.test(e.message));
    const client = issue('spiffe://example.org/ns/ops/sa/admin', T0, T0 + 3_600_000);
    const chain = await fetchPeerChain(`127.0.0.1:${port}`, {
      clientCertPem: certsToPem([client.der, inter.certificate]),
      clientKeyPem: client.key.export({ format: 'pem', type: 'pkcs8' }) as string,
    });
    assert.deepEqual(chain, [leaf.der, inter.certificate]);
  } finally {
    await close(server);
  }
});

test('a closed port gives TG_UNAVAILABLE naming the target', async () => {
  const server = net.createServer();
  const port = await listen(server);
  await close(server);
  await assert.rejects(fetchPeerChain(`127.0.0.1:${port}`), (e: unknown) => isTollgateError(e, 'TG_UNAVAILABLE') && e.message.startsWith(`cannot connect to 127.0.0.1:${port}: `) && /ECONNREFUSED/.test(e.message));
});

test('a server that never answers the handshake times out with TG_UNAVAILABLE', async () => {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => sockets.push(s));
  const port = await listen(server);
  try {
    await assert.rejects(fetchPeerChain(`127.0.0.1:${port}`, { timeoutMs: 100 }), (e: unknown) => isTollgateError(e, 'TG_UNAVAILABLE') && /timed out after 100 ms/.test(e.message));
  } finally {
    for (const s of sockets) s.destroy();
    await close(server);
  }
});

test('fetchPeerChain refuses a target that is not HOST:PORT', async () => {
  await assert.rejects(fetchPeerChain('no-port'), (e: unknown) => isTollgateError(e, 'TG_USAGE'));
});
