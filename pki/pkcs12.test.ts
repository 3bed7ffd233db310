import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIntermediate, createRoot, type Authority } from '../ca/authority.ts';
import { ManualClock } from '../common/clock.ts';
import { createCsr, parseCsr } from './csr.ts';
import { isTollgateError } from '../common/errors.ts';
import { toPem } from './pem.ts';
import { toPkcs12 } from './pkcs12.ts';
import { LeafTemplate } from './svid-template.ts';

const clock = new ManualClock(Date.now());
let dir: string;
let root: Authority;
let inter: Authority;
let leafDer: Buffer;
let keyPkcs8: Buffer;
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tg-p12-'));
  root = await createRoot({ trustDomain: 'example.org', clock });
  inter = await createIntermediate({ trustDomain: 'example.org', root, clock });
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  keyPkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  const t = new LeafTemplate({ issuerCertificate: inter.certificate, issuerKey: inter.key });
  const now = clock.now();
  leafDer = t.issue({ spki: parseCsr(createCsr(privateKey)).spki, spiffeId: 'spiffe://example.org/ns/shop/sa/web', notBefore: now - 30_000, notAfter: now + 3_600_000 }).der;
});

after(() => rmSync(dir, { recursive: true, force: true }));

function openssl(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8', ...(input === undefined ? {} : { input }) });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function writeP12(name: string, password: string, friendlyName?: string): string {
  const p12 = toPkcs12({ keyPkcs8Der: keyPkcs8, chainDer: [leafDer, inter.certificate], password, ...(friendlyName ? { friendlyName } : {}) });
  const file = join(dir, name);
  writeFileSync(file, p12);
  return file;
}

function pemBlocks(text: string, label: string): string[] {
  return [...text.matchAll(new RegExp(`-----BEGIN ${label}-----[\\s\\S]*?-----END ${label}-----\\n?`, 'g'))].map((m) => m[0]);
}

test('openssl 3 reads the PFX without -legacy: leaf, intermediate and the matching key', { skip: !hasOpenssl && 'no openssl' }, () => {
  const file = writeP12('web.p12', 'hunter2', 'web');
  const r = openssl(['pkcs12', '-in', file, '-passin', 'pass:hunter2', '-nodes', '-info']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /MAC: sha256, Iteration 2048/);
  assert.match(r.stderr, /Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256/);
  const certs = pemBlocks(r.stdout, 'CERTIFICATE');
  assert.deepEqual(certs.map((c) => c.replace(/\r/g, '')), [toPem('CERTIFICATE', leafDer), toPem('CERTIFICATE', inter.certificate)]);
  assert.match(r.stdout, /friendlyName: web/);
  assert.match(r.stdout, /localKeyID: ([0-9A-F]{2} ){19}[0-9A-F]{2}/);
  const keys = pemBlocks(r.stdout, 'PRIVATE KEY');
  assert.equal(keys.length, 1);
  // The extracted key's public half is the leaf's public key, compared by openssl itself.
  const fromKey = openssl(['pkey', '-pubout'], keys[0]);
  assert.equal(fromKey.status, 0, fromKey.stderr);
  const fromCert = openssl(['x509', '-noout', '-pubkey'], certs[0]);
  assert.equal(fromCert.status, 0, fromCert.stderr);
  assert.equal(fromKey.stdout, fromCert.stdout);
  assert.equal(fromKey.stdout, createPublicKey(createPrivateKey({ key: keyPkcs8, format: 'der', type: 'pkcs8' })).export({ format: 'pem', type: 'spki' }));
});

test('a non-ASCII password works with openssl (UTF-8 for PBES2, BMPString for the MAC)', { skip: !hasOpenssl && 'no openssl' }, () => {
  const pw = 'pässwörd-€';
  const file = writeP12('utf8.p12', pw);
  const r = openssl(['pkcs12', '-in', file, '-passin', `pass:${pw}`, '-nodes']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(pemBlocks(r.stdout, 'PRIVATE KEY').length, 1);
});

test('a wrong password makes openssl fail MAC verification', { skip: !hasOpenssl && 'no openssl' }, () => {
  const file = writeP12('wrong.p12', 'right-password');
  const r = openssl(['pkcs12', '-in', file, '-passin', 'pass:wrong-password', '-nodes']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /mac verify/i);
  assert.doesNotMatch(r.stdout, /PRIVATE KEY/);
});

test('each file gets fresh salts', () => {
  const a = toPkcs12({ keyPkcs8Der: keyPkcs8, chainDer: [leafDer], password: 'pw' });
  const b = toPkcs12({ keyPkcs8Der: keyPkcs8, chainDer: [leafDer], password: 'pw' });
  assert.notDeepEqual(a, b);
});

test('an empty password is refused with TG_USAGE', () => {
  assert.throws(
    () => toPkcs12({ keyPkcs8Der: keyPkcs8, chainDer: [leafDer], password: '' }),
    (e: unknown) => isTollgateError(e, 'TG_USAGE') && e.message === '--password is required with --p12',
  );
});

test('an empty chain is TG_CERT_INVALID', () => {
  assert.throws(() => toPkcs12({ keyPkcs8Der: keyPkcs8, chainDer: [], password: 'pw' }), (e: unknown) => isTollgateError(e, 'TG_CERT_INVALID') && /chain is empty/.test(e.message));
});

test('an unreadable key is TG_CERT_INVALID', () => {
  assert.throws(
    () => toPkcs12({ keyPkcs8Der: Buffer.from('not a key'), chainDer: [leafDer], password: 'pw' }),
    (e: unknown) => isTollgateError(e, 'TG_CERT_INVALID') && /private key/.test(e.message),
  );
});

test('a key that does not match the leaf is TG_CERT_INVALID', () => {
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'der', type: 'pkcs8' });
  assert.throws(() => toPkcs12({ keyPkcs8Der: other, chainDer: [leafDer], password: 'pw' }), (e: unknown) => isTollgateError(e, 'TG_CERT_INVALID') && /does not match/.test(e.message));
});

test('a garbage certificate in the chain is TG_CERT_INVALID', () => {
  assert.throws(
    () => toPkcs12({ keyPkcs8Der: keyPkcs8, chainDer: [leafDer, Buffer.from([0x30, 0x03, 0x01])], password: 'pw' }),
    (e: unknown) => isTollgateError(e, 'TG_CERT_INVALID') && /certificate 1/.test(e.message),
  );
});

const hasKeytool = spawnSync('keytool', ['-help']).status === 0;
// On a laptop without Java the test skips; in CI (.ci/run installs default-jre-headless and sets CI=true) it must run.
const inCi = process.env.CI === 'true';

test('Java keytool lists one PrivateKeyEntry with the whole chain under the friendly name', { skip: !hasKeytool && !inCi && 'no keytool (install a headless JRE, e.g. Debian default-jre-headless)' }, () => {
  assert.ok(hasKeytool, 'CI=true but keytool is missing: .ci/run installs default-jre-headless for this test');
  const file = writeP12('java.p12', 'changeit', 'web');
  const r = spawnSync('keytool', ['-list', '-v', '-keystore', file, '-storetype', 'PKCS12', '-storepass', 'changeit'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /Alias name: web/);
  assert.match(r.stdout, /Entry type: PrivateKeyEntry/);
  assert.match(r.stdout, /Certificate chain length: 2/);
});
