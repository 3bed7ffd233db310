import { test } from 'node:test';
import assert from 'node:assert/strict';
import { caSpiffeId, isReservedId, kubernetesSpiffeId, parseSpiffeId, parseTrustDomain, parseWorkloadId, refuseReservedId } from './spiffe-id.ts';
import fc from 'fast-check';
import { TollgateError } from '../common/errors.ts';

const accepts: Array<[string, string, string]> = [
  ['spiffe://example.org', 'example.org', ''],
  ['spiffe://example.org/ns/shop/sa/web', 'example.org', '/ns/shop/sa/web'],
  ['spiffe://a-b_c.d0/x', 'a-b_c.d0', '/x'],
  ['spiffe://td/Mixed.Case-seg_1', 'td', '/Mixed.Case-seg_1'],
  ['spiffe://td/...', 'td', '/...'], // only exactly "." and ".." are forbidden
  ['spiffe://td/.hidden', 'td', '/.hidden'],
  ['spiffe://1.2.3.4/a', '1.2.3.4', '/a'],
];

for (const [input, td, path] of accepts) {
  test(`accepts ${input}`, () => {
    const id = parseSpiffeId(input);
    assert.equal(id.trustDomain, td);
    assert.equal(id.path, path);
    assert.equal(id.id, input);
  });
}

const rejects: Array<[string, RegExp]> = [
  ['', /empty/],
  ['example.org/ns/a', /must start with "spiffe:\/\/"/],
  ['https://example.org/a', /must start with "spiffe:\/\/"/],
  ['SPIFFE://example.org/a', /upper-case scheme/],
  ['spiffe:/example.org/a', /must start with/],
  ['spiffe://', /no trust domain/],
  ['spiffe:///a', /no trust domain/],
  ['spiffe://Example.org/a', /upper-case trust domain/],
  ['spiffe://example.org:8443/a', /port/],
  ['spiffe://user@example.org/a', /userinfo/],
  ['spiffe://exa mple.org/a', /not allowed/],
  ['spiffe://example.org/', /trailing slash/],
  ['spiffe://example.org/a/', /trailing slash/],
  ['spiffe://example.org//a', /empty path segment/],
  ['spiffe://example.org/a//b', /empty path segment/],
  ['spiffe://example.org/./a', /"\." path segment/],
  ['spiffe://example.org/a/..', /"\.\." path segment/],
  ['spiffe://example.org/a?x=1', /query/],
  ['spiffe://example.org/a#frag', /fragment/],
  ['spiffe://example.org?x', /query/],
  ['spiffe://example.org/a%20b', /percent-encoding/],
  ['spiffe://example.org/a b', /not allowed/],
  ['spiffe://example.org/a:b', /not allowed/],
  ['spiffe://example.org/ü', /not allowed/],
  [`spiffe://${'a'.repeat(256)}/x`, /longer than 255/],
  [`spiffe://td/${'a'.repeat(2048)}`, /longer than 2048/],
];

for (const [input, why] of rejects) {
  test(`rejects ${JSON.stringify(input.slice(0, 40))}`, () => {
    assert.throws(
      () => parseSpiffeId(input),
      (e: unknown) => e instanceof TollgateError && e.code === 'TG_SPIFFE_ID_INVALID' && why.test(e.message),
    );
  });
}

test('workload IDs need a path', () => {
  assert.equal(parseWorkloadId('spiffe://td/a').path, '/a');
  assert.throws(() => parseWorkloadId('spiffe://td'), /needs a path/);
});

test('trust domains: bare names and trust-domain IDs', () => {
  assert.equal(parseTrustDomain('example.org'), 'example.org');
  assert.equal(parseTrustDomain('spiffe://example.org'), 'example.org');
  for (const bad of ['', 'Example.org', 'ex:80', 'a@b', 'a/b', 'spiffe://td/path']) {
    assert.throws(() => parseTrustDomain(bad), (e: unknown) => e instanceof TollgateError && e.code === 'TG_TRUST_DOMAIN_INVALID', bad);
  }
});

test('kubernetes form', () => {
  assert.equal(kubernetesSpiffeId('cluster.local', 'shop', 'web').id, 'spiffe://cluster.local/ns/shop/sa/web');
  assert.throws(() => kubernetesSpiffeId('cluster.local', 'sh/op', 'web'));
});

test('reserved IDs: everything under /tollgate/ (the CA is spiffe://<td>/tollgate/ca), nothing a Kubernetes name can make', () => {
  assert.equal(caSpiffeId('example.org'), 'spiffe://example.org/tollgate/ca');
  for (const id of ['spiffe://td/tollgate', 'spiffe://td/tollgate/ca', 'spiffe://td/tollgate/a/b']) assert.equal(isReservedId(id), true, id);
  for (const id of ['spiffe://td/tollgatex', 'spiffe://td/ns/tollgate/sa/ca', 'spiffe://td/Tollgate/ca', 'spiffe://td/x/tollgate']) assert.equal(isReservedId(id), false, id);
  assert.throws(() => refuseReservedId(parseSpiffeId('spiffe://td/tollgate/ca'), 'a test'), (e: unknown) => e instanceof TollgateError && e.code === 'TG_RESERVED_ID' && /a test asks for spiffe:\/\/td\/tollgate\/ca/.test(e.message));
  // Kubernetes attestation makes only ns/<ns>/sa/<sa>: no namespace or service account reaches /tollgate/.
  const name = fc.stringMatching(/^[a-z0-9]([-a-z0-9.]{0,20}[a-z0-9])?$/);
  fc.assert(fc.property(name, name, (ns, sa) => !isReservedId(kubernetesSpiffeId('td', ns, sa))));
  assert.equal(isReservedId(kubernetesSpiffeId('td', 'tollgate', 'ca')), false);
});
