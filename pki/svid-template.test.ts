import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createCsr, parseCsr } from './csr.ts';
import { TollgateError } from './errors.ts';
import { LeafTemplate, newSerial } from './svid-template.ts';
import { checkLeafProfile, verifySvidChain } from './svid-validate.ts';
import { p256, testChain } from './test-chain.ts';
import { parseCertificate, authorityKeyId, subjectKeyId, keyIdentifier } from './x509.ts';

const chain = testChain();
const template = new LeafTemplate({ issuerCertificate: chain.intermediate, issuerKey: chain.intermediateKey.key });

test('template leaves verify with node:crypto and pass our own profile check', () => {
  const k = p256();
  const leaf = template.issue({ spki: k.spki, spiffeId: 'spiffe://example.org/ns/a/sa/b', notBefore: chain.now - 30_000, notAfter: chain.now + 3600_000 });
  const x = new X509Certificate(leaf.der);
  assert.ok(x.verify(new X509Certificate(chain.intermediate).publicKey));
  assert.ok(x.checkIssued(new X509Certificate(chain.intermediate)));
  const p = parseCertificate(leaf.der);
  assert.equal(p.serialHex, leaf.serialHex);
  assert.equal(p.serialHex.length, 32);
  assert.deepEqual(subjectKeyId(p), keyIdentifier(k.spki));
  assert.deepEqual(authorityKeyId(p), keyIdentifier(chain.intermediateKey.spki));
  assert.equal(p.notBefore, chain.now - 30_000);
  assert.equal(checkLeafProfile(p, { now: chain.now }).id, 'spiffe://example.org/ns/a/sa/b');
  verifySvidChain({ leaf: leaf.der, intermediates: [chain.intermediate], roots: [chain.root], now: chain.now });
});

test('dates past 2049 use GeneralizedTime and still round-trip', () => {
  const far = Date.UTC(2051, 0, 2, 3, 4, 5);
  const c = testChain('example.org', far - 86_400_000);
  const t = new LeafTemplate({ issuerCertificate: c.intermediate, issuerKey: c.intermediateKey.key });
  const leaf = t.issue({ spki: p256().spki, spiffeId: 'spiffe://example.org/x', notBefore: far - 1000, notAfter: far });
  assert.equal(parseCertificate(leaf.der).notAfter, far);
  assert.equal(new X509Certificate(leaf.der).validTo, 'Jan  2 03:04:05 2051 GMT');
});

test('a leaf never outlives its issuer', () => {
  assert.throws(
    () => template.issue({ spki: p256().spki, spiffeId: 'spiffe://example.org/x', notBefore: chain.now, notAfter: chain.now + 400 * 86_400_000 }),
    (e: unknown) => e instanceof TollgateError && e.code === 'TG_AUTHORITY_EXPIRED',
  );
});

test('the template refuses an invalid SPIFFE ID', () => {
  assert.throws(() => template.issue({ spki: p256().spki, spiffeId: 'spiffe://example.org/', notBefore: chain.now, notAfter: chain.now + 1000 }), /trailing slash/);
});

test('serials: 128 bits, top bit set, distinct', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const s = newSerial();
    assert.equal(s.length, 16);
    assert.ok(s[0]! & 0x80);
    seen.add(s.toString('hex'));
  }
  assert.equal(seen.size, 1000);
});

test('CSR round trip: createCsr → parseCsr gives the same public key', () => {
  const k = p256();
  assert.deepEqual(parseCsr(createCsr(k.key)).spki, k.spki);
});

const csrRejects: Array<[string, () => Buffer, string]> = [
  ['empty', () => Buffer.alloc(0), 'TG_CSR_INVALID'],
  ['not DER', () => Buffer.from('hello world'), 'TG_CSR_INVALID'],
  ['truncated', () => createCsr(p256().key).subarray(0, 60), 'TG_CSR_INVALID'],
  ['trailing bytes', () => Buffer.concat([createCsr(p256().key), Buffer.from([0])]), 'TG_CSR_INVALID'],
  ['flipped signature byte', () => { const c = createCsr(p256().key); c[c.length - 3]! ^= 1; return c; }, 'TG_CSR_INVALID'],
  ['too large', () => Buffer.alloc(5000, 0x30), 'TG_CSR_INVALID'],
];
for (const [name, make, code] of csrRejects) {
  test(`CSR rejects: ${name}`, () => {
    assert.throws(() => parseCsr(make()), (e: unknown) => e instanceof TollgateError && e.code === code);
  });
}
