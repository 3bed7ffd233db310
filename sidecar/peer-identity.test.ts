import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isTollgateError, type ErrorCode } from '../common/errors.ts';
import type { CertSpec } from '../pki/test-chain.ts';
import { Oid, parseCertificate } from '../pki/x509.ts';
import { trustBundleOf } from './svid-source.ts';
import { testPki } from '../test/helpers/sidecar-fixture.ts';
import { checkPeerLeaf } from './peer-identity.ts';

const NOW = Date.UTC(2026, 5, 1);
const ID = 'spiffe://example.org/ns/shop/sa/web';

describe('checkPeerLeaf', () => {
  const pki = testPki({ now: NOW });
  const leaf = (over: Partial<CertSpec> = {}, id = ID): Buffer => pki.issue(id, over).certChain[0]!;

  test('returns the SPIFFE ID and notAfter of a valid client leaf', () => {
    const der = leaf();
    const id = checkPeerLeaf(der, { now: NOW, bundle: pki.bundle, usage: 'client' });
    assert.deepEqual(id, { trustDomain: 'example.org', path: '/ns/shop/sa/web', id: ID, notAfter: parseCertificate(der).notAfter });
  });

  test('accepts a leaf without extKeyUsage for either role', () => {
    for (const usage of ['client', 'server'] as const) {
      assert.equal(checkPeerLeaf(leaf({ eku: null }), { now: NOW, bundle: pki.bundle, usage }).id, ID);
    }
  });

  test('refuses a peer on the deny-list, by SPIFFE ID or by serial, with reason denied', () => {
    const der = leaf();
    const serial = parseCertificate(der).serialHex.toLowerCase();
    for (const denied of [{ ids: [ID] }, { serials: [serial] }]) {
      const bundle = trustBundleOf(pki.bundle.version + 1, 'example.org', pki.bundle.roots, denied);
      assert.throws(() => checkPeerLeaf(der, { now: NOW, bundle, usage: 'client' }), (e: unknown) => isTollgateError(e, 'TG_DENIED') && e.details.reason === 'denied');
    }
    const others = trustBundleOf(pki.bundle.version + 1, 'example.org', pki.bundle.roots, { ids: ['spiffe://example.org/ns/shop/sa/api'], serials: ['80'] });
    assert.equal(checkPeerLeaf(der, { now: NOW, bundle: others, usage: 'server' }).id, ID);
  });

  const other = testPki({ trustDomain: 'other.org', now: NOW });
  const cases: Array<{ name: string; der: () => Buffer; code: ErrorCode; usage?: 'client' | 'server'; now?: number }> = [
    { name: 'cA=true leaf', der: () => leaf({ ca: true }), code: 'TG_SVID_INVALID' },
    { name: 'no digitalSignature', der: () => leaf({ keyUsage: [0x03, 0x08] }), code: 'TG_SVID_INVALID' },
    { name: 'keyCertSign on a leaf', der: () => leaf({ keyUsage: [0x01, 0x86] }), code: 'TG_SVID_INVALID' },
    { name: 'no keyUsage', der: () => leaf({ keyUsage: null }), code: 'TG_SVID_INVALID' },
    { name: 'two URI SANs', der: () => leaf({ uris: [ID, 'spiffe://example.org/ns/shop/sa/api'] }), code: 'TG_SVID_INVALID' },
    { name: 'no URI SAN', der: () => leaf({ uris: [] }), code: 'TG_SVID_INVALID' },
    { name: 'a trust-domain ID (no path)', der: () => leaf({}, 'spiffe://example.org'), code: 'TG_SVID_INVALID' },
    { name: 'an upper-case trust domain', der: () => leaf({}, 'spiffe://Example.org/ns/a/sa/b'), code: 'TG_SVID_INVALID' },
    { name: 'not a spiffe:// URI', der: () => leaf({}, 'https://example.org/ns/a/sa/b'), code: 'TG_SVID_INVALID' },
    { name: 'X.509 v1', der: () => leaf({ version: 1 }), code: 'TG_SVID_INVALID' },
    { name: 'clientAuth missing for a client', der: () => leaf({ eku: [Oid.serverAuth] }), code: 'TG_SVID_INVALID', usage: 'client' },
    { name: 'serverAuth missing for a server', der: () => leaf({ eku: [Oid.clientAuth] }), code: 'TG_SVID_INVALID', usage: 'server' },
    { name: 'expired', der: () => leaf(), code: 'TG_SVID_EXPIRED', now: NOW + 2 * 3600_000 },
    { name: 'not yet valid', der: () => leaf(), code: 'TG_SVID_EXPIRED', now: NOW - 3600_000 },
    { name: 'another trust domain', der: () => other.issue('spiffe://other.org/ns/shop/sa/web').certChain[0]!, code: 'TG_SVID_UNTRUSTED' },
    { name: 'bytes that are not DER', der: () => Buffer.from('not a certificate'), code: 'TG_SVID_INVALID' },
    { name: 'a certificate with trailing bytes', der: () => Buffer.concat([leaf(), Buffer.from([0])]), code: 'TG_SVID_INVALID' },
  ];
  for (const c of cases) {
    test(`refuses ${c.name} with ${c.code}`, () => {
      assert.throws(
        () => checkPeerLeaf(c.der(), { now: c.now ?? NOW, bundle: pki.bundle, usage: c.usage ?? 'client' }),
        (e: unknown) => isTollgateError(e, c.code),
      );
    });
  }
});

describe('checkPeerLeaf: what the operator reads', () => {
  const pki = testPki({ now: NOW });
  const opts = { now: NOW, bundle: pki.bundle, usage: 'client' as const };
  const says = (code: ErrorCode, m: RegExp) => (e: unknown): boolean => isTollgateError(e, code) && m.test(e.message);

  test('bytes that are not DER: TG_SVID_INVALID naming the DER problem', () => {
    assert.throws(() => checkPeerLeaf(Buffer.from([0x30, 0x05, 0x02]), opts), says('TG_SVID_INVALID', /^peer certificate is not valid DER: truncated DER/));
    assert.throws(
      () => checkPeerLeaf(Buffer.from([0x30, 0x05, 0x02]), opts),
      (e: unknown) => e instanceof Error && e.cause instanceof Error && /truncated DER/.test(e.cause.message),
      "the parser's own error is kept as the cause (debug logs show it)",
    );
  });

  test('an extension that does not parse (keyUsage not a BIT STRING) is TG_SVID_INVALID, its cause kept', () => {
    const der = Buffer.from(pki.issue(ID).certChain[0]!);
    const at = der.indexOf(Buffer.from([0x04, 0x04, 0x03, 0x02, 0x07, 0x80]));
    assert.ok(at > 0, 'the keyUsage value is where the test expects it');
    der[at + 2] = 0x04; // BIT STRING -> OCTET STRING of the same length
    assert.throws(() => checkPeerLeaf(der, opts), (e: unknown) => {
      assert.ok(says('TG_SVID_INVALID', /^peer certificate is not a valid X\.509-SVID: invalid DER: expected keyUsage$/)(e), String(e));
      assert.ok(isTollgateError((e as Error).cause, 'TG_CERT_INVALID'));
      return true;
    });
  });

  test('profile and validity errors pass through with their own code and words', () => {
    assert.throws(() => checkPeerLeaf(pki.issue(ID, { ca: true }).certChain[0]!, opts), says('TG_SVID_INVALID', /^leaf certificate has basicConstraints cA=true/));
    assert.throws(() => checkPeerLeaf(pki.issue(ID).certChain[0]!, { ...opts, now: NOW + 2 * 3600_000 }), says('TG_SVID_EXPIRED', /^certificate expired at /));
  });

  test('another trust domain: the message names both, details carry the peer ID', () => {
    const other = testPki({ trustDomain: 'other.org', now: NOW });
    assert.throws(() => checkPeerLeaf(other.issue('spiffe://other.org/ns/a/sa/b').certChain[0]!, opts), (e: unknown) =>
      says('TG_SVID_UNTRUSTED', /^peer spiffe:\/\/other\.org\/ns\/a\/sa\/b belongs to trust domain other\.org, but this sidecar's bundle is for example\.org$/)(e) &&
      (e as { details: Record<string, unknown> }).details['peer_id'] === 'spiffe://other.org/ns/a/sa/b');
  });

  test('deny-list by serial matches the lower-case hex the CA publishes, and the message names the serial', () => {
    const der = pki.issue(ID, { serial: 0xab }).certChain[0]!;
    assert.equal(parseCertificate(der).serialHex, '01ab');
    const bundle = trustBundleOf(pki.bundle.version + 1, 'example.org', pki.bundle.roots, { serials: ['01ab'] });
    assert.throws(() => checkPeerLeaf(der, { ...opts, bundle }), (e: unknown) =>
      says('TG_DENIED', /^peer spiffe:\/\/example\.org\/ns\/shop\/sa\/web \(serial 01ab\) is on the CA's deny-list$/)(e) &&
      (e as { details: Record<string, unknown> }).details['peer_id'] === ID);
    const byId = trustBundleOf(pki.bundle.version + 1, 'example.org', pki.bundle.roots, { ids: [ID] });
    assert.throws(() => checkPeerLeaf(der, { ...opts, bundle: byId }), says('TG_DENIED', /\(serial 01ab\)/));
  });
});
