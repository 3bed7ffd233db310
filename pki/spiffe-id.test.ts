import { test } from 'node:test';
import assert from 'node:assert/strict';
import { caSpiffeId, isReservedId, kubernetesSpiffeId, parseSpiffeId, parseTrustDomain, parseWorkloadId, refuseReservedId, spiffeIdProblem, trustDomainId } from './spiffe-id.ts';
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

const failsWith = (code: string, message: string | RegExp, reason?: string) => (e: unknown): boolean => {
  assert.ok(e instanceof TollgateError, String(e));
  assert.equal(e.code, code);
  if (typeof message === 'string') assert.equal(e.message, message);
  else assert.match(e.message, message);
  if (reason !== undefined) assert.equal(e.details['reason'], reason);
  return true;
};

// Exact words, boundaries and the reason kept in details (policy files and `policy check` quote it).
const exact: Array<[string, string]> = [
  ['https://example.org/a', '"https://example.org/a" is not a SPIFFE ID: it must start with "spiffe://"'],
  ['Spiffe://example.org/a', '"Spiffe://example.org/a" has an upper-case scheme; it must start with "spiffe://"'],
  ['spiffe://example.org/', '"spiffe://example.org/" ends with "/"; remove the trailing slash'],
  ['spiffe://Aexample.org/a', '"spiffe://Aexample.org/a" has an upper-case trust domain; trust domains are lower-case'],
  ['spiffe://exampleZ.org/a', '"spiffe://exampleZ.org/a" has an upper-case trust domain; trust domains are lower-case'],
  ['spiffe://example[.org/a', '"spiffe://example[.org/a" trust domain has the character "[", which is not allowed (allowed: a-z 0-9 . - _)'],
  ['spiffe://ex:80/a', '"spiffe://ex:80/a" has a port, which SPIFFE IDs may not have'],
  ['spiffe://u@ex/a', '"spiffe://u@ex/a" has userinfo ("@"), which SPIFFE IDs may not have'],
  ['spiffe://example.org/a/b?c', '"spiffe://example.org/a/b?c" path has a query ("?"), which SPIFFE IDs may not have (allowed: a-z A-Z 0-9 . - _)'],
  ['spiffe://example.org/a#b', '"spiffe://example.org/a#b" path has a fragment ("#"), which SPIFFE IDs may not have (allowed: a-z A-Z 0-9 . - _)'],
  ['spiffe://example.org/a%41', '"spiffe://example.org/a%41" path has percent-encoding, which SPIFFE IDs may not have (allowed: a-z A-Z 0-9 . - _)'],
  ['spiffe://example.org/a/[', '"spiffe://example.org/a/[" path has the character "[", which is not allowed (allowed: a-z A-Z 0-9 . - _)'],
  ['spiffe://example.org/a/..', '"spiffe://example.org/a/.." has a ".." path segment, which SPIFFE IDs may not have'],
  ['spiffe://example.org/a//b', '"spiffe://example.org/a//b" has an empty path segment ("//")'],
  ['spiffe:///a', '"spiffe:///a" has no trust domain'],
];


test('parseSpiffeId: a value that is not a string is refused as empty, not crashed on', () => {
  assert.throws(() => parseSpiffeId(undefined as unknown as string), failsWith('TG_SPIFFE_ID_INVALID', '"undefined" is not a SPIFFE ID: it is empty'));
  assert.throws(() => parseSpiffeId(42 as unknown as string), failsWith('TG_SPIFFE_ID_INVALID', '"42" is not a SPIFFE ID: it is empty'));
});

test('lengths: a 255-character trust domain and a 2048-byte ID are accepted, one more is not', () => {
  const td255 = 'a'.repeat(255);
  assert.equal(parseSpiffeId(`spiffe://${td255}/x`).trustDomain, td255);
  assert.throws(() => parseSpiffeId(`spiffe://${td255}a/x`), failsWith('TG_SPIFFE_ID_INVALID', /has a trust domain longer than 255 characters$/));
  const id2048 = `spiffe://td/${'a'.repeat(2048 - 12)}`;
  assert.equal(id2048.length, 2048);
  assert.equal(parseSpiffeId(id2048).id, id2048);
  assert.throws(() => parseSpiffeId(`${id2048}a`), failsWith('TG_SPIFFE_ID_INVALID', /is longer than 2048 bytes$/));
  assert.equal(parseTrustDomain(td255), td255);
  assert.throws(() => parseTrustDomain(`${td255}a`), failsWith('TG_TRUST_DOMAIN_INVALID', /is longer than 255 characters$/, 'is longer than 255 characters'));
});

test('messages quote at most 120 characters of the input', () => {
  const at120 = `spiffe://td/${'a'.repeat(107)}/`;
  assert.equal(at120.length, 120);
  assert.throws(() => parseSpiffeId(at120), failsWith('TG_SPIFFE_ID_INVALID', `${JSON.stringify(at120)} ends with "/"; remove the trailing slash`));
  const at121 = `spiffe://td/${'a'.repeat(108)}/`;
  assert.throws(() => parseSpiffeId(at121), failsWith('TG_SPIFFE_ID_INVALID', `${JSON.stringify(`${at121.slice(0, 117)}...`)} ends with "/"; remove the trailing slash`));
});

const tdExact: Array<[string, string]> = [
  ['', '"" is not a trust domain: it is empty'],
  ['spiffe://td/a', '"spiffe://td/a" is a SPIFFE ID with a path, not a trust domain'],
  ['Aa', '"Aa" has an upper-case trust domain; trust domains are lower-case'],
  ['aZ', '"aZ" has an upper-case trust domain; trust domains are lower-case'],
  ['a:80', '"a:80" has a port, which trust domains may not have'],
  ['u@a', '"u@a" has userinfo ("@"), which trust domains may not have'],
  ['a[', '"a[" trust domain has the character "[", which is not allowed (allowed: a-z 0-9 . - _)'],
  ['a?', '"a?" trust domain has a query ("?"), which SPIFFE IDs may not have (allowed: a-z 0-9 . - _)'],
];

// details.reason is the message without the quoted input: policy files and `policy check` quote it.
for (const [parse, code, table] of [[parseSpiffeId, 'TG_SPIFFE_ID_INVALID', exact], [parseTrustDomain, 'TG_TRUST_DOMAIN_INVALID', tdExact]] as const) {
  for (const [input, message] of table) {
    test(`${parse.name} says: ${message}`, () => {
      assert.throws(() => parse(input), failsWith(code, message, message.slice(JSON.stringify(input).length + 1)));
    });
  }
}

test('trustDomainId and caSpiffeId validate the name first', () => {
  assert.equal(trustDomainId('example.org'), 'spiffe://example.org');
  assert.equal(trustDomainId('spiffe://example.org'), 'spiffe://example.org');
  assert.throws(() => trustDomainId('Example.org'), failsWith('TG_TRUST_DOMAIN_INVALID', /upper-case/));
  assert.throws(() => caSpiffeId('a:1'), failsWith('TG_TRUST_DOMAIN_INVALID', /port/));
});

test('kubernetes form: each name is checked, and the message says which', () => {
  assert.throws(() => kubernetesSpiffeId('td', 'Shop', 'web'), failsWith('TG_SPIFFE_ID_INVALID', 'namespace "Shop" is not a valid Kubernetes name'));
  assert.throws(() => kubernetesSpiffeId('td', 'shop', 'web_'), failsWith('TG_SPIFFE_ID_INVALID', 'service account "web_" is not a valid Kubernetes name'));
  assert.throws(() => kubernetesSpiffeId('Td', 'shop', 'web'), failsWith('TG_TRUST_DOMAIN_INVALID', /upper-case/));
  assert.equal(kubernetesSpiffeId('td', 'a', `b${'c'.repeat(251)}d`).path, `/ns/a/sa/b${'c'.repeat(251)}d`);
});

test('refuseReservedId hands a workload ID back unchanged and names the reserved one in details', () => {
  const id = parseSpiffeId('spiffe://td/ns/a/sa/b');
  assert.equal(refuseReservedId(id, 'a join token'), id);
  assert.throws(() => refuseReservedId(parseSpiffeId('spiffe://td/tollgate/x'), 'a join token'), (e: unknown) => {
    assert.ok(e instanceof TollgateError && e.code === 'TG_RESERVED_ID');
    assert.equal(e.message, 'a join token asks for spiffe://td/tollgate/x, which is reserved for Tollgate itself (everything under /tollgate/ is never issued to a workload); use a workload ID such as spiffe://td/ns/NS/sa/SA');
    assert.deepEqual({ ...e.details }, { spiffe_id: 'spiffe://td/tollgate/x' });
    return true;
  });
  assert.equal(isReservedId(parseSpiffeId('spiffe://td/tollgate')), true);
});

test('spiffeIdProblem: null for a valid ID, else the words parseSpiffeId uses after the quoted input', () => {
  assert.equal(spiffeIdProblem('spiffe://td/a'), null);
  assert.equal(spiffeIdProblem('spiffe://td'), null);
  assert.equal(spiffeIdProblem('spiffe://td/a/'), 'ends with "/"; remove the trailing slash');
  assert.equal(spiffeIdProblem('http://td/a'), 'is not a SPIFFE ID: it must start with "spiffe://"');
});
