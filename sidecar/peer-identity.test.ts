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
