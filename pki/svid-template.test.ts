import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync, sign } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCsr, parseCsr } from './csr.ts';
import { Tag, encodeOid, encodeTime, tlv } from './der.ts';
import { certsToPem } from './pem.ts';
import { TollgateError } from '../common/errors.ts';
import { LeafTemplate, attestedUntilOf, newSerial } from './svid-template.ts';
import { checkLeafProfile, verifySvidChain } from './svid-validate.ts';
import { p256, testChain } from './test-chain.ts';
import { Oid, parseCertificate, authorityKeyId, subjectKeyId, keyIdentifier } from './x509.ts';

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

// The builder LeafTemplate had before it wrote by offsets: nested tlv() calls. The template must
// produce exactly these bytes for the same inputs.
function referenceTbs(issuerCertificate: Buffer, r: { spki: Buffer; spiffeId: string; notBefore: number; notAfter: number; serial: Buffer }): Buffer {
  const ext = (oid: string, critical: boolean, value: Buffer): Buffer =>
    critical ? tlv(Tag.SEQUENCE, encodeOid(oid), Buffer.from([1, 1, 0xff]), tlv(Tag.OCTET_STRING, value)) : tlv(Tag.SEQUENCE, encodeOid(oid), tlv(Tag.OCTET_STRING, value));
  const issuer = parseCertificate(issuerCertificate);
  const fixed = Buffer.concat([
    ext(Oid.basicConstraints, true, Buffer.from([0x30, 0x00])),
    ext(Oid.keyUsage, true, Buffer.from([0x03, 0x02, 0x07, 0x80])),
    ext(Oid.extKeyUsage, false, tlv(Tag.SEQUENCE, encodeOid(Oid.serverAuth), encodeOid(Oid.clientAuth))),
  ]);
  const san = ext(Oid.subjectAltName, true, tlv(Tag.SEQUENCE, tlv(0x86, Buffer.from(r.spiffeId, 'ascii'))));
  const ski = Buffer.concat([Buffer.from([0x30, 0x1d]), encodeOid(Oid.subjectKeyId), Buffer.from([0x04, 0x16, 0x04, 0x14]), keyIdentifier(r.spki)]);
  const aki = ext(Oid.authorityKeyId, false, tlv(Tag.SEQUENCE, tlv(0x80, subjectKeyId(issuer) ?? keyIdentifier(issuer.spki))));
  return tlv(
    Tag.SEQUENCE,
    Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]),
    tlv(Tag.INTEGER, Buffer.from([0]), r.serial),
    tlv(Tag.SEQUENCE, encodeOid(Oid.ecdsaWithSha256)),
    issuer.subject,
    tlv(Tag.SEQUENCE, encodeTime(r.notBefore), encodeTime(r.notAfter)),
    Buffer.from([0x30, 0x00]),
    r.spki,
    tlv(Tag.CTX3, tlv(Tag.SEQUENCE, fixed, san, ski, aki)),
  );
}

test('the template writes the same bytes as the previous builder (IDs, dates, key types)', () => {
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'der', type: 'spki' });
  const keys = [p256().spki, p256().spki, p384];
  // ID lengths around every DER length-encoding boundary of the SAN's nested elements, up to the
  // 2048-byte maximum of a SPIFFE ID.
  const ids = [22, 100, 110, 120, 126, 127, 128, 129, 240, 250, 256, 300, 1000, 2048].map((n) => `spiffe://example.org/${'a'.repeat(n - 21)}`);
  const times = [
    [chain.now - 30_000, chain.now + 3600_000],
    [chain.now - 30_500, chain.now + 3600_999], // same seconds: the cached validity must still be right
    [chain.now, chain.now + 86_400_000],
  ];
  for (const spki of keys) {
    for (const spiffeId of ids) {
      for (const [notBefore, notAfter] of times) {
        const serial = newSerial();
        const leaf = template.issue({ spki, spiffeId, notBefore: notBefore!, notAfter: notAfter!, serial });
        const parsed = parseCertificate(leaf.der);
        assert.deepEqual(parsed.tbs, referenceTbs(chain.intermediate, { spki, spiffeId, notBefore: notBefore!, notAfter: notAfter!, serial }), `${spiffeId.length} bytes`);
        const sig = parsed.signatureBits.subarray(1);
        assert.deepEqual(leaf.der, tlv(Tag.SEQUENCE, parsed.tbs, tlv(Tag.SEQUENCE, encodeOid(Oid.ecdsaWithSha256)), tlv(Tag.BIT_STRING, Buffer.from([0]), sig)));
        assert.equal(leaf.serialHex, serial.toString('hex'));
      }
    }
  }
  // GeneralizedTime (2050 on) and a validity that straddles the switch.
  const far = Date.UTC(2050, 0, 1, 0, 0, 30);
  const c = testChain('example.org', far);
  const t = new LeafTemplate({ issuerCertificate: c.intermediate, issuerKey: c.intermediateKey.key });
  for (const [nb, na] of [[far - 60_000, far + 1000], [far, far + 3600_000]]) {
    const serial = newSerial();
    const r = { spki: keys[0]!, spiffeId: 'spiffe://example.org/ns/a/sa/b', notBefore: nb!, notAfter: na!, serial };
    assert.deepEqual(parseCertificate(t.issue(r).der).tbs, referenceTbs(c.intermediate, r));
  }
});

test('leaves do not share memory: a later leaf leaves an earlier one intact', () => {
  const a = template.issue({ spki: p256().spki, spiffeId: 'spiffe://example.org/a', notBefore: chain.now, notAfter: chain.now + 1000 });
  const copy = Buffer.from(a.der);
  template.issue({ spki: p256().spki, spiffeId: 'spiffe://example.org/b', notBefore: chain.now + 5000, notAfter: chain.now + 9000 });
  assert.deepEqual(a.der, copy);
  assert.ok(new X509Certificate(a.der).verify(new X509Certificate(chain.intermediate).publicKey));
});

test('openssl accepts template leaves for client and server use, with every profile item', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-template-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'root.pem'), certsToPem([chain.root]));
  writeFileSync(join(dir, 'inter.pem'), certsToPem([chain.intermediate]));
  for (const spiffeId of ['spiffe://example.org/ns/shop/sa/web', `spiffe://example.org/${'x'.repeat(2027)}`]) {
    const leaf = template.issue({ spki: p256().spki, spiffeId, notBefore: chain.now - 30_000, notAfter: chain.now + 3600_000 });
    writeFileSync(join(dir, 'leaf.pem'), certsToPem([leaf.der]));
    for (const purpose of ['sslclient', 'sslserver']) {
      const v = spawnSync('openssl', ['verify', '-attime', String(Math.floor(chain.now / 1000)), '-purpose', purpose, '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'inter.pem'), join(dir, 'leaf.pem')], { encoding: 'utf8' });
      assert.equal(v.status, 0, v.stdout + v.stderr);
      assert.match(v.stdout, /leaf\.pem: OK/);
    }
    const text = spawnSync('openssl', ['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-text'], { encoding: 'utf8' }).stdout;
    assert.match(text, /X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/example\.org\//);
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\n/);
    assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(text, /X509v3 Subject Key Identifier/);
    assert.match(text, /X509v3 Authority Key Identifier/);
  }
});

test('a CSR whose key is not a point on P-256 is refused', () => {
  const k = p256();
  const bad = Buffer.from(k.spki);
  bad[bad.length - 1]! ^= 1; // Y no longer matches X
  const info = tlv(Tag.SEQUENCE, Buffer.from([0x02, 0x01, 0x00]), Buffer.from([0x30, 0x00]), bad, Buffer.from([0xa0, 0x00]));
  const csr = tlv(Tag.SEQUENCE, info, tlv(Tag.SEQUENCE, encodeOid(Oid.ecdsaWithSha256)), tlv(Tag.BIT_STRING, Buffer.from([0]), sign('sha256', info, k.key)));
  assert.throws(() => parseCsr(csr), (e: unknown) => e instanceof TollgateError && e.code === 'TG_CSR_INVALID' && /not a valid P-256 point/.test(e.message));
});

// --- The request checks, the "attested until" extension, the serial pool and the per-second caches.
const req = (over: Partial<Parameters<LeafTemplate['issue']>[0]> = {}) => ({ spki: p256().spki, spiffeId: 'spiffe://example.org/ns/a/sa/b', notBefore: chain.now, notAfter: chain.now + 3600_000, ...over });
const issuerNotAfter = parseCertificate(chain.intermediate).notAfter;

test('validity bounds: notAfter may equal the issuer\'s notAfter, not pass it; it must be after notBefore', () => {
  assert.equal(template.issuerNotAfter, issuerNotAfter);
  assert.equal(template.issuerNotBefore, parseCertificate(chain.intermediate).notBefore);
  assert.equal(parseCertificate(template.issue(req({ notAfter: issuerNotAfter })).der).notAfter, issuerNotAfter);
  assert.throws(() => template.issue(req({ notAfter: issuerNotAfter + 1 })), (e: unknown) => e instanceof TollgateError && e.code === 'TG_AUTHORITY_EXPIRED' && /^a leaf may not outlive its issuer: notAfter is past the intermediate's notAfter$/.test(e.message));
  assert.throws(() => template.issue(req({ notAfter: chain.now })), (e: unknown) => e instanceof TollgateError && e.code === 'TG_TTL_INVALID' && /^notAfter must be after notBefore$/.test(e.message));
  assert.throws(() => template.issue(req({ notAfter: chain.now - 1000 })), (e: unknown) => e instanceof TollgateError && e.code === 'TG_TTL_INVALID');
  assert.equal(parseCertificate(template.issue(req({ notAfter: chain.now + 1000 })).der).notAfter, chain.now + 1000);
});

test('a given serial must be 16 bytes with the top bit set', () => {
  const internal = (e: unknown): boolean => e instanceof TollgateError && e.code === 'TG_INTERNAL' && /^serial must be 16 bytes with the top bit set$/.test(e.message);
  assert.throws(() => template.issue(req({ serial: Buffer.alloc(15, 0x80) })), internal);
  assert.throws(() => template.issue(req({ serial: Buffer.alloc(17, 0x80) })), internal);
  assert.throws(() => template.issue(req({ serial: Buffer.alloc(16, 0x7f) })), internal);
  assert.equal(template.issue(req({ serial: Buffer.alloc(16, 0x80) })).serialHex, '80'.repeat(16));
});

test('serials from the pool: top bit set, distinct, across a refill of the pool (256 per refill)', () => {
  const t = new LeafTemplate({ issuerCertificate: chain.intermediate, issuerKey: chain.intermediateKey.key });
  const spki = p256().spki;
  const seen = new Set<string>();
  for (let i = 0; i < 300; i++) {
    const { der, serialHex } = t.issue(req({ spki }));
    assert.equal(parseCertificate(der).serialHex, serialHex);
    assert.match(serialHex, /^[89a-f][0-9a-f]{31}$/);
    seen.add(serialHex);
  }
  assert.equal(seen.size, 300);
});

test('attested until: written as a non-critical GeneralizedTime at whole seconds, read back by attestedUntilOf', () => {
  const t = new LeafTemplate({ issuerCertificate: chain.intermediate, issuerKey: chain.intermediateKey.key });
  const until = Date.UTC(2026, 6, 1, 12, 30, 45) + 999;
  const a = parseCertificate(t.issue(req({ attestedUntil: until })).der);
  assert.equal(attestedUntilOf(a), Date.UTC(2026, 6, 1, 12, 30, 45));
  const ext = a.extensions.get(Oid.tollgateAttestedUntil)!;
  assert.equal(ext.critical, false);
  assert.deepEqual(ext.value, Buffer.concat([Buffer.from([0x18, 15]), Buffer.from('20260701123045Z')]));
  // the same second again, then a later one: each leaf carries its own
  assert.equal(attestedUntilOf(parseCertificate(t.issue(req({ attestedUntil: until - 500 })).der)), Date.UTC(2026, 6, 1, 12, 30, 45));
  assert.equal(attestedUntilOf(parseCertificate(t.issue(req({ attestedUntil: until + 1 })).der)), Date.UTC(2026, 6, 1, 12, 30, 46));
  assert.equal(attestedUntilOf(parseCertificate(t.issue(req()).der)), undefined);
  assert.equal(checkLeafProfile(a, { now: chain.now }).id, 'spiffe://example.org/ns/a/sa/b');
  verifySvidChain({ leaf: t.issue(req({ attestedUntil: until })).der, intermediates: [chain.intermediate], roots: [chain.root], now: chain.now });
});

test('attestedUntilOf refuses an extension that is not a GeneralizedTime (TG_SVID_INVALID)', () => {
  const good = parseCertificate(template.issue(req({ attestedUntil: chain.now })).der);
  const withValue = (value: Buffer) => ({ ...good, extensions: new Map([...good.extensions, [Oid.tollgateAttestedUntil, { ...good.extensions.get(Oid.tollgateAttestedUntil)!, value }]]) });
  const invalid = (e: unknown): boolean => e instanceof TollgateError && e.code === 'TG_SVID_INVALID';
  assert.throws(() => attestedUntilOf(withValue(encodeTime(chain.now))), (e: unknown) => invalid(e) && /expected attested-until time/.test((e as Error).message));
  assert.throws(() => attestedUntilOf(withValue(Buffer.concat([Buffer.from([0x18, 3]), Buffer.from('bad')]))), (e: unknown) => invalid(e) && /invalid DER time "bad"/.test((e as Error).message));
  assert.throws(() => attestedUntilOf(withValue(Buffer.from([0x18]))), invalid);
});

test('validity is re-encoded when either end changes, even within the same second of the other', () => {
  const t = new LeafTemplate({ issuerCertificate: chain.intermediate, issuerKey: chain.intermediateKey.key });
  const spki = p256().spki;
  const times: Array<[number, number]> = [
    [chain.now, chain.now + 60_000],
    [chain.now, chain.now + 120_000],
    [chain.now + 1000, chain.now + 120_000],
    [chain.now + 1000, chain.now + 120_500],
  ];
  for (const [nb, na] of times) {
    const p = parseCertificate(t.issue(req({ spki, notBefore: nb, notAfter: na })).der);
    assert.deepEqual([p.notBefore, p.notAfter], [Math.floor(nb / 1000) * 1000, Math.floor(na / 1000) * 1000]);
  }
});

test('an issuer certificate without a subjectKeyIdentifier: the AKI is the RFC 5280 key identifier of its key', () => {
  const cert = parseCertificate(chain.intermediate);
  // Drop the SKI extension by renaming its OID (same length), so the template must compute the identifier.
  const der = Buffer.from(chain.intermediate);
  const ski = encodeOid(Oid.subjectKeyId);
  const at = der.indexOf(ski);
  der[at + ski.length - 1] = 0x63; // 2.5.29.14 -> 2.5.29.99
  const p = parseCertificate(der);
  assert.equal(subjectKeyId(p), undefined);
  const t = new LeafTemplate({ issuerCertificate: der, issuerKey: chain.intermediateKey.key });
  assert.deepEqual(authorityKeyId(parseCertificate(t.issue(req()).der)), keyIdentifier(cert.spki));
});

test('a leaf larger than the 4 KiB scratch buffer (a 2048-byte ID and a large key) is written whole', () => {
  const bigSpki = tlv(Tag.SEQUENCE, tlv(Tag.SEQUENCE, encodeOid('1.2.840.113549.1.1.1'), Buffer.from([0x05, 0x00])), tlv(Tag.BIT_STRING, Buffer.from([0]), Buffer.alloc(2100, 0x5a)));
  const spiffeId = `spiffe://example.org/${'a'.repeat(2048 - 21)}`;
  const t = new LeafTemplate({ issuerCertificate: chain.intermediate, issuerKey: chain.intermediateKey.key });
  const leaf = t.issue(req({ spki: bigSpki, spiffeId }));
  assert.ok(leaf.der.length > 4096);
  const p = parseCertificate(leaf.der);
  assert.deepEqual(p.spki, bigSpki);
  assert.ok(new X509Certificate(leaf.der).verify(new X509Certificate(chain.intermediate).publicKey));
  // and the buffer, once grown, still serves small leaves
  assert.equal(checkLeafProfile(parseCertificate(t.issue(req()).der), { now: chain.now }).id, 'spiffe://example.org/ns/a/sa/b');
});
