import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { authorize, checkPeer, firstUnlistedPort, parsePolicy, type AuthorizeReason, type Policy } from './policy.ts';
import { TollgateError } from '../common/errors.ts';

const SOURCE = '/etc/tollgate/policy.yaml';
const parse = (text: string, ownTrustDomain = 'example.org'): Policy => parsePolicy(text, { source: SOURCE, ownTrustDomain });

const MAIN = `trustDomains: [example.org, partner.io]
ports:
  "8080":
    allow:
      - spiffe://example.org/ns/shop/sa/web
      - spiffe://example.org/ns/shop/sa/*
      - spiffe://partner.io/ns/*/sa/billing
  9090:
    allow: []       # explicit deny-all
  7070:
    allow:
      - spiffe://example.org/ns/shop/sa/web
default:
  allow:
    - spiffe://example.org/ns/ops/sa/admin
`;

const NO_DEFAULT = `ports:
  8080:
    allow: [spiffe://example.org/ns/shop/sa/web]
`;

type Case = [name: string, policy: string, peer: string, port: number, reason: AuthorizeReason, rule: string | null];
const cases: Case[] = [
  ['exact match', MAIN, 'spiffe://example.org/ns/shop/sa/web', 8080, 'allowed', 'spiffe://example.org/ns/shop/sa/web (ports.8080.allow[0])'],
  ['wildcard match', MAIN, 'spiffe://example.org/ns/shop/sa/cart', 8080, 'allowed', 'spiffe://example.org/ns/shop/sa/* (ports.8080.allow[1])'],
  ['wildcard in the middle', MAIN, 'spiffe://partner.io/ns/eu/sa/billing', 8080, 'allowed', 'spiffe://partner.io/ns/*/sa/billing (ports.8080.allow[2])'],
  ['wildcard does not match two segments', MAIN, 'spiffe://example.org/ns/shop/sa/web/extra', 8080, 'no_rule', null],
  ['wildcard does not match zero segments', MAIN, 'spiffe://example.org/ns/shop/sa', 8080, 'no_rule', null],
  ['wildcard does not match another prefix', MAIN, 'spiffe://example.org/ns/shopx/sa/web', 8080, 'no_rule', null],
  ['exact is case-sensitive in the path', MAIN, 'spiffe://example.org/ns/shop/SA/web', 8080, 'no_rule', null],
  ['explicit empty allow denies everyone', MAIN, 'spiffe://example.org/ns/ops/sa/admin', 9090, 'no_rule', null],
  ['listed port does not fall back to default', MAIN, 'spiffe://example.org/ns/ops/sa/admin', 7070, 'no_rule', null],
  ['default section for an unlisted port', MAIN, 'spiffe://example.org/ns/ops/sa/admin', 1234, 'allowed', 'spiffe://example.org/ns/ops/sa/admin (default.allow[0])'],
  ['default section does not allow others', MAIN, 'spiffe://example.org/ns/shop/sa/web', 1234, 'no_rule', null],
  ['default deny without a default section', NO_DEFAULT, 'spiffe://example.org/ns/shop/sa/web', 1234, 'no_rule', null],
  ['port out of range has no rules', MAIN, 'spiffe://example.org/ns/ops/sa/admin', 70000, 'no_rule', null],
  ['non-integer port has no rules', MAIN, 'spiffe://example.org/ns/ops/sa/admin', 80.5, 'no_rule', null],
  ['foreign trust domain', MAIN, 'spiffe://evil.com/ns/shop/sa/web', 8080, 'trust_domain', null],
  ['trust domain defaults to own only', NO_DEFAULT, 'spiffe://partner.io/ns/shop/sa/web', 8080, 'trust_domain', null],
  ['accepted trust domain without a rule', MAIN, 'spiffe://partner.io/ns/eu/sa/other', 8080, 'no_rule', null],
  ['trust-domain-only peer ID', MAIN, 'spiffe://example.org', 8080, 'no_rule', null],
  ['invalid: empty', MAIN, '', 8080, 'invalid_id', null],
  ['invalid: not spiffe', MAIN, 'https://example.org/ns/shop/sa/web', 8080, 'invalid_id', null],
  ['invalid: trailing slash', MAIN, 'spiffe://example.org/ns/shop/sa/web/', 8080, 'invalid_id', null],
  ['invalid: empty segment', MAIN, 'spiffe://example.org/ns/shop/sa//web', 8080, 'invalid_id', null],
  ['invalid: literal * is not a wildcard peer', MAIN, 'spiffe://example.org/ns/shop/sa/*', 8080, 'invalid_id', null],
  ['invalid: upper-case trust domain', MAIN, 'spiffe://Example.org/ns/shop/sa/web', 8080, 'invalid_id', null],
  ['invalid: dot segment', MAIN, 'spiffe://example.org/ns/shop/sa/..', 8080, 'invalid_id', null],
  ['invalid: query', MAIN, 'spiffe://example.org/ns/shop/sa/web?x=1', 8080, 'invalid_id', null],
];

for (const [name, text, peer, port, reason, rule] of cases) {
  test(`authorize: ${name}`, () => {
    const d = authorize(parse(text), peer, port);
    assert.deepEqual({ ...d }, { allowed: reason === 'allowed', rule, reason });
  });
}

test('authorize: an exact rule wins over an earlier wildcard; first wildcard wins among wildcards', () => {
  const p = parse(`ports:
  1:
    allow:
      - spiffe://example.org/a/*
      - spiffe://example.org/*/b
      - spiffe://example.org/a/b
`);
  assert.equal(authorize(p, 'spiffe://example.org/a/b', 1).rule, 'spiffe://example.org/a/b (ports.1.allow[2])');
  assert.equal(authorize(p, 'spiffe://example.org/a/c', 1).rule, 'spiffe://example.org/a/* (ports.1.allow[0])');
  assert.equal(authorize(p, 'spiffe://example.org/z/b', 1).rule, 'spiffe://example.org/*/b (ports.1.allow[1])');
});

test('authorize: all-wildcard pattern matches exactly its segment count', () => {
  const p = parse('ports:\n  443:\n    allow: ["spiffe://example.org/*/*"]\n');
  assert.equal(authorize(p, 'spiffe://example.org/x/y', 443).allowed, true);
  assert.equal(authorize(p, 'spiffe://example.org/x', 443).allowed, false);
  assert.equal(authorize(p, 'spiffe://example.org/x/y/z', 443).allowed, false);
});

test('parsePolicy: string and number port keys, rules with locations and lines, trust domains', () => {
  const p = parse(MAIN);
  assert.deepEqual(Object.keys(p.ports).sort(), ['7070', '8080', '9090']);
  assert.deepEqual(p.trustDomains, ['example.org', 'partner.io']);
  assert.deepEqual(p.ports['8080']!.allow[1], {
    pattern: 'spiffe://example.org/ns/shop/sa/*',
    location: 'ports.8080.allow[1]',
    line: 6,
  });
  assert.deepEqual(p.ports['9090']!.allow, []);
  assert.equal(p.default?.allow[0]?.line, 15);
  assert.equal(p.source, SOURCE);
  assert.deepEqual(parse(NO_DEFAULT).trustDomains, ['example.org']);
  assert.equal(parse(NO_DEFAULT).default, null);
});

test('parsePolicy: result is deeply frozen', () => {
  const p = parse(MAIN);
  const walk = (v: unknown, at: string): void => {
    if (v === null || typeof v !== 'object') return;
    assert.ok(Object.isFrozen(v), `${at} is not frozen`);
    for (const [k, child] of Object.entries(v)) walk(child, `${at}.${k}`);
  };
  walk(p, 'policy');
  assert.throws(() => (p.trustDomains as string[]).push('evil.com'), TypeError);
  assert.throws(() => ((p.ports as Record<string, unknown>)['1'] = { allow: [] }), TypeError);
  // decisions handed out are frozen too
  assert.ok(Object.isFrozen(authorize(p, 'spiffe://example.org/ns/shop/sa/web', 8080)));
  assert.ok(Object.isFrozen(authorize(p, 'nope', 8080)));
});

test('parsePolicy: an empty ports mapping is allowed and denies everything', () => {
  const p = parse('ports: {}\n');
  assert.equal(authorize(p, 'spiffe://example.org/a', 1).reason, 'no_rule');
});

const port = (key: string): string => `ports:\n  ${key}:\n    allow: []\n`;
const rule = (pattern: string, extra = ''): string => `${extra}ports:\n  8080:\n    allow:\n      - ${JSON.stringify(pattern)}\n`;

type Bad = [name: string, text: string, line: number, message: RegExp];
const bad: Bad[] = [
  ['bad YAML syntax', 'ports:\n  8080:\n    allow: [a, b\n', 3, /invalid YAML/],
  ['tab indentation', 'ports:\n\t8080: {}\n', 2, /invalid YAML: Tabs/],
  ['unknown top-level key', 'trustDomains: [example.org]\nprots: {}\n', 2, /unknown key "prots" in the policy; allowed keys are: trustDomains, ports, default/],
  ['unknown section key', 'ports:\n  8080:\n    allow: []\n    deny: []\n', 4, /unknown key "deny" in ports\.8080/],
  ['unknown default key', 'ports: {}\ndefault:\n  allow: []\n  alow: []\n', 4, /unknown key "alow" in default/],
  ['missing ports', 'trustDomains: [example.org]\n', 1, /no "ports" mapping/],
  ['empty file', '', 1, /must be a mapping with a "ports" key/],
  ['top level is a list', '- a\n', 1, /must be a mapping/],
  ['section without allow', 'ports:\n  8080: {}\n', 2, /has no "allow" list; write "allow: \[\]"/],
  ['section is null', 'ports:\n  8080:\n', 2, /ports\.8080 must be a mapping with an "allow" list/],
  ['allow is not a list', 'ports:\n  8080:\n    allow: spiffe://example.org/a\n', 3, /ports\.8080\.allow must be a list/],
  ['allow item is not a string', 'ports:\n  8080:\n    allow:\n      - 42\n', 4, /ports\.8080\.allow\[0\] must be a string/],
  ['port 0', port('0'), 2, /port 0 is out of range; use an integer 1\.\.65535/],
  ['port 70000', port('70000'), 2, /port 70000 is out of range/],
  ['port "abc"', port('"abc"'), 2, /port "abc" is not a port number/],
  ['port -1', port('-1'), 2, /port -1 is out of range/],
  ['port 80.5', port('80.5'), 2, /port 80\.5 is out of range/],
  ['port "080"', port('"080"'), 2, /port "080" is not a port number/],
  ['duplicate port 8080 and "8080"', 'ports:\n  8080:\n    allow: []\n  "8080":\n    allow: []\n', 4, /duplicate key "8080" \(first on line 2\)/],
  ['duplicate top-level key', 'ports: {}\nports: {}\n', 2, /duplicate key "ports"/],
  ['pattern with * inside a segment', rule('spiffe://td/ns/*x'), 4, /"spiffe:\/\/td\/ns\/\*x" has "\*" inside the segment "\*x"; "\*" must stand for a whole path segment/],
  ['pattern ab*', rule('spiffe://example.org/ns/ab*'), 4, /inside the segment "ab\*"/],
  ['pattern **', rule('spiffe://example.org/ns/**'), 4, /uses "\*\*", which is not supported/],
  ['* in the trust domain', rule('spiffe://*.example.org/ns/a'), 4, /has "\*" in the trust domain/],
  ['upper-case trust domain', rule('spiffe://Shop/ns/a'), 4, /"spiffe:\/\/Shop\/ns\/a" has an upper-case trust domain; trust domains are lower-case/],
  ['trailing slash', rule('spiffe://example.org/ns/shop/'), 4, /ends with "\/"; remove the trailing slash/],
  ['trailing slash after *', rule('spiffe://example.org/ns/*/'), 4, /remove the trailing slash/],
  ['empty segment', rule('spiffe://example.org/ns//a'), 4, /empty path segment/],
  ['not a SPIFFE ID', rule('example.org/ns/a'), 4, /must start with "spiffe:\/\/"/],
  ['no path', rule('spiffe://example.org'), 4, /has no path/],
  ['pattern outside accepted trust domains', rule('spiffe://other.org/ns/a'), 4, /trust domain "other\.org", which is not accepted \(accepted: example\.org\); add it to trustDomains/],
  ['bad trustDomains entry', 'trustDomains:\n  - example.org\n  - Bad.org\nports: {}\n', 3, /"Bad\.org" has an upper-case trust domain/],
  ['empty trustDomains', 'trustDomains: []\nports: {}\n', 1, /trustDomains must list at least one trust domain/],
  ['pattern in the default section', 'ports: {}\ndefault:\n  allow:\n    - spiffe://example.org/a/\n', 4, /remove the trailing slash/],
];

for (const [name, text, line, message] of bad) {
  test(`parsePolicy rejects: ${name} (line ${line})`, () => {
    assert.throws(
      () => parse(text),
      (e: unknown) => {
        assert.ok(e instanceof TollgateError, `not a TollgateError: ${String(e)}`);
        assert.equal(e.code, 'TG_CONFIG_INVALID');
        assert.ok(e.message.startsWith(`cannot read policy ${SOURCE} line ${line}: `), e.message);
        assert.match(e.message, message);
        assert.equal(e.details['line'], line);
        return true;
      },
    );
  });
}

test('parsePolicy: an invalid ownTrustDomain is refused', () => {
  assert.throws(() => parse('ports: {}\n', 'Bad'), (e: unknown) => e instanceof TollgateError && e.code === 'TG_TRUST_DOMAIN_INVALID');
});

const segment = fc.stringMatching(/^[a-zA-Z0-9._-]{1,20}$/).filter((s) => s !== '.' && s !== '..');

test('property: spiffe://td/a/* matches exactly one more segment', () => {
  const p = parsePolicy('ports:\n  80:\n    allow: ["spiffe://td/a/*"]\n', { source: 'prop', ownTrustDomain: 'td' });
  fc.assert(
    fc.property(segment, segment, (seg, seg2) => {
      const one = authorize(p, `spiffe://td/a/${seg}`, 80);
      assert.equal(one.allowed, true);
      assert.equal(one.rule, 'spiffe://td/a/* (ports.80.allow[0])');
      assert.equal(authorize(p, `spiffe://td/a/${seg}/${seg2}`, 80).allowed, false);
      assert.equal(authorize(p, `spiffe://td/${seg}`, 80).allowed, false); // zero segments after /a
    }),
    { numRuns: 500 },
  );
});

test('property: exact rules match only themselves', () => {
  fc.assert(
    fc.property(fc.array(segment, { minLength: 1, maxLength: 4 }), fc.array(segment, { minLength: 1, maxLength: 4 }), (a, b) => {
      const id = `spiffe://td/${a.join('/')}`;
      const other = `spiffe://td/${b.join('/')}`;
      const p = parsePolicy(`ports:\n  80:\n    allow: [${JSON.stringify(id)}]\n`, { source: 'prop', ownTrustDomain: 'td' });
      assert.equal(authorize(p, id, 80).allowed, true);
      assert.equal(authorize(p, other, 80).allowed, id === other);
    }),
    { numRuns: 200 },
  );
});

test('examples/policy.yaml parses and means what its comments say', () => {
  const text = readFileSync(new URL('../examples/policy.yaml', import.meta.url), 'utf8');
  const p = parsePolicy(text, { source: 'examples/policy.yaml', ownTrustDomain: 'example.org' });
  assert.equal(authorize(p, 'spiffe://example.org/ns/shop/sa/web', 8080).allowed, true);
  assert.equal(authorize(p, 'spiffe://example.org/ns/shop/sa/cart', 9000).allowed, true);
  assert.equal(authorize(p, 'spiffe://example.org/ns/shop/sa/web', 9090).allowed, false);
  assert.equal(authorize(p, 'spiffe://example.org/ns/ops/sa/console', 1234).allowed, true);
});

// checkPeer: the decisions and hints `tollgate policy check` prints.
const WEB = 'spiffe://example.org/ns/shop/sa/web';
const ADMIN = 'spiffe://example.org/ns/ops/sa/admin';
type Check = [name: string, policy: string, peer: string, port: number | undefined, want: Array<[number | 'default', AuthorizeReason, string | null]>];
const checks: Check[] = [
  ['every listed port ascending, then default', MAIN, WEB, undefined, [
    [7070, 'allowed', null],
    [8080, 'allowed', null],
    [9090, 'no_rule', `ports.9090.allow is empty, so the port denies everyone; add ${WEB} to it in ${SOURCE} if the peer should connect`],
    ['default', 'no_rule', `no rule in default.allow matches; add ${WEB} (or a pattern with "*" for one segment) to default.allow in ${SOURCE}`],
  ]],
  ['one listed port whose rules do not match', MAIN, ADMIN, 8080, [
    [8080, 'no_rule', `no rule in ports.8080.allow matches; add ${ADMIN} (or a pattern with "*" for one segment) to ports.8080.allow in ${SOURCE}`],
  ]],
  ['an unlisted port under a default section', MAIN, WEB, 1234, [
    [1234, 'no_rule', `port 1234 is not listed, so default.allow applies and no rule there matches; add a "1234" section under ports (or the peer to default.allow) in ${SOURCE}`],
  ]],
  ['an unlisted port allowed by default', MAIN, ADMIN, 1234, [[1234, 'allowed', null]]],
  ['an unlisted port without a default section', NO_DEFAULT, WEB, 1234, [
    [1234, 'no_rule', `port 1234 is not listed and the policy has no default section (default deny); add a "1234" section under ports in ${SOURCE} with allow: [${WEB}]`],
  ]],
  ['default without a default section', NO_DEFAULT, WEB, undefined, [
    [8080, 'allowed', null],
    ['default', 'no_rule', `the policy has no default section, so ports it does not list deny everyone; add "default: {allow: [${WEB}]}" to ${SOURCE} if that is meant`],
  ]],
  ['a foreign trust domain', MAIN, 'spiffe://evil.com/ns/shop/sa/web', 8080, [
    [8080, 'trust_domain', `peers from trust domain "evil.com" are not accepted (accepted: example.org, partner.io); add it to trustDomains in ${SOURCE}, and a rule for the peer`],
  ]],
  ['an invalid ID says why, in the parser\'s words', MAIN, 'spiffe://example.org/ns/shop/sa/web/', 8080, [
    [8080, 'invalid_id', '"spiffe://example.org/ns/shop/sa/web/" ends with "/"; remove the trailing slash; a peer is named by its SPIFFE ID, e.g. spiffe://TD/ns/NS/sa/SA'],
  ]],
];

for (const [name, text, peer, port, want] of checks) {
  test(`checkPeer: ${name}`, () => {
    const got = checkPeer(parse(text), peer, port);
    assert.deepEqual(
      got.map((c) => [c.port, c.decision.reason, c.hint]),
      want,
    );
    for (const c of got) {
      assert.equal(c.decision.allowed, c.decision.reason === 'allowed');
      assert.ok(Object.isFrozen(c));
    }
  });
}

test('checkPeer: "default" is decided on the first port the policy does not list', () => {
  // Ports 1 and 2 listed (deny-all), default allows: "default" must be asked of port 3, not 1.
  const p = parse(`ports:\n  1:\n    allow: []\n  2:\n    allow: []\ndefault:\n  allow: [${WEB}]\n`);
  assert.deepEqual(checkPeer(p, WEB).map((c) => [c.port, c.decision.reason, c.decision.rule]), [
    [1, 'no_rule', null],
    [2, 'no_rule', null],
    ['default', 'allowed', `${WEB} (default.allow[0])`],
  ]);
});

test('authorize: ports 1 and 65535 have rules, 0 and 65536 none (not even default)', () => {
  const p = parse(`ports:\n  1:\n    allow: [${WEB}]\n  65535:\n    allow: [${WEB}]\ndefault:\n  allow: [${WEB}, "spiffe://example.org/ns/*/sa/*"]\n`);
  for (const port of [1, 65535, 2, 65534]) assert.equal(authorize(p, WEB, port).allowed, true, String(port));
  for (const port of [0, 65536, -1]) {
    assert.deepEqual({ ...authorize(p, WEB, port) }, { allowed: false, rule: null, reason: 'no_rule' }, String(port));
    assert.equal(authorize(p, ADMIN, port).reason, 'no_rule', String(port));
  }
});

test('authorize: the same exact pattern twice is reported at its first location', () => {
  const p = parse(`ports:\n  80:\n    allow: [${WEB}, ${ADMIN}, ${WEB}]\n`);
  assert.equal(authorize(p, WEB, 80).rule, `${WEB} (ports.80.allow[0])`);
  assert.equal(authorize(p, ADMIN, 80).rule, `${ADMIN} (ports.80.allow[1])`);
});

test('authorize: a Policy object not made by parsePolicy is compiled on first use', () => {
  const p: Policy = {
    source: 'inline',
    trustDomains: ['example.org'],
    ports: { '80': { allow: [{ pattern: 'spiffe://example.org/ns/*/sa/web', location: 'ports.80.allow[0]', line: 1 }] } },
    default: null,
  };
  assert.equal(authorize(p, WEB, 80).rule, 'spiffe://example.org/ns/*/sa/web (ports.80.allow[0])');
  assert.equal(authorize(p, WEB, 81).reason, 'no_rule');
});

// policy-parse.ts: shapes and trust domains beyond the table above.
const more: Bad[] = [
  ['* at the end of the trust domain, no path', rule('spiffe://example.org*'), 4, /"spiffe:\/\/example\.org\*" has "\*" in the trust domain; wildcards may only be whole path segments/],
  ['ports is a list', 'ports: []\n', 1, /: ports must be a mapping$/],
  ['default is a number', 'ports: {}\ndefault: 5\n', 2, /: default must be a mapping with an "allow" list \(e\.g\. "allow: \[\]" to deny everyone\)$/],
  ['trustDomains is a string', 'trustDomains: example.org\nports: {}\n', 1, /: trustDomains must be a list$/],
  ['a trust domain that is a number', 'trustDomains: [5]\nports: {}\n', 1, /: trustDomains\[0\] must be a string$/],
  ['a trust domain with a path', 'trustDomains:\n  - spiffe://example.org/a\nports: {}\n', 2, /: "spiffe:\/\/example\.org\/a" is a SPIFFE ID with a path, not a trust domain$/],
  ['port 65536', port('65536'), 2, /: port 65536 is out of range; use an integer 1\.\.65535$/],
  ['port "0"', port('"0"'), 2, /: port "0" is out of range/],
  ['port "65536"', port('"65536"'), 2, /: port "65536" is out of range/],
];

for (const [name, text, line, message] of more) {
  test(`parsePolicy rejects: ${name} (line ${line})`, () => {
    assert.throws(() => parse(text), (e: unknown) => e instanceof TollgateError && e.code === 'TG_CONFIG_INVALID' && e.message.startsWith(`cannot read policy ${SOURCE} line ${line}: `) && message.test(e.message));
  });
}

test('parsePolicy: port keys at the ends of the range, as numbers or strings', () => {
  const p = parse('ports:\n  1:\n    allow: []\n  "65535":\n    allow: []\n  "8080":\n    allow: []\n');
  assert.deepEqual(Object.keys(p.ports), ['1', '8080', '65535']);
});

test('parsePolicy: a refused rule carries its pattern in the error details', () => {
  assert.throws(() => parse(rule('spiffe://other.org/ns/a')), (e: unknown) => e instanceof TollgateError && e.details['pattern'] === 'spiffe://other.org/ns/a' && e.details['line'] === 4);
});

test('parsePolicy: trustDomains are normalised (a trust-domain ID is its name) and listed once', () => {
  const p = parse('trustDomains: [example.org, "spiffe://partner.io", partner.io, example.org]\nports: {}\n');
  assert.deepEqual(p.trustDomains, ['example.org', 'partner.io']);
});

test('parsePolicy: the file\'s trustDomains replace the sidecar\'s own; without them the own one is needed', () => {
  assert.deepEqual(parse('trustDomains: [partner.io]\nports: {}\n', 'example.org').trustDomains, ['partner.io']);
  assert.deepEqual(parsePolicy('trustDomains: [partner.io]\nports: {}\n', { source: SOURCE }).trustDomains, ['partner.io']);
  assert.throws(() => parsePolicy('ports: {}\n', { source: SOURCE }), (e: unknown) => e instanceof TollgateError && e.code === 'TG_CONFIG_INVALID' &&
    e.message === `cannot read policy ${SOURCE} line 1: the policy has no "trustDomains", so it accepts only the sidecar's own trust domain, which was not given; pass it (tollgate policy check --trust-domain TD) or add "trustDomains: [TD]" to the file`);
  assert.deepEqual(parse('ports: {}\n', 'spiffe://own.example').trustDomains, ['own.example']);
});

test('authorize: a trust-domain-only peer never matches a one-segment wildcard', () => {
  const p = parse('ports:\n  80:\n    allow: ["spiffe://example.org/*"]\n');
  assert.equal(authorize(p, 'spiffe://example.org/a', 80).allowed, true);
  assert.deepEqual({ ...authorize(p, 'spiffe://example.org', 80) }, { allowed: false, rule: null, reason: 'no_rule' });
});

test('firstUnlistedPort: where "default" is decided; none when every port 1..65535 is listed', () => {
  const ports: Record<string, { allow: [] }> = {};
  const policy = (): Policy => ({ source: SOURCE, trustDomains: ['example.org'], ports, default: null });
  assert.equal(firstUnlistedPort(policy()), 1);
  for (let port = 1; port <= 65535; port++) ports[String(port)] = { allow: [] };
  assert.equal(firstUnlistedPort(policy()), null);
  delete ports['65535'];
  assert.equal(firstUnlistedPort(policy()), 65535);
  delete ports['2'];
  assert.equal(firstUnlistedPort(policy()), 2);
});

const patterns: Bad[] = [
  ['not a SPIFFE ID, with "*" where a segment would be', rule('https://example.org/ns/ab*'), 4, /: "https:\/\/example\.org\/ns\/ab\*" is not a SPIFFE ID: it must start with "spiffe:\/\/"$/],
  ['outside two accepted trust domains', rule('spiffe://other.org/ns/a', 'trustDomains: [example.org, partner.io]\n'), 5, /which is not accepted \(accepted: example\.org, partner\.io\); add it to trustDomains or remove the rule$/],
  ['port true', 'ports:\n  true:\n    allow: []\n', 2, /: port true is not a port number; use an integer 1\.\.65535 \(e\.g\. "8080"\)$/],
  ['port null', 'ports:\n  ~:\n    allow: []\n', 2, /: port null is not a port number/],
  ['port "a80"', port('"a80"'), 2, /: port "a80" is not a port number/],
  ['port "80a"', port('"80a"'), 2, /: port "80a" is not a port number/],
];

for (const [name, text, line, message] of patterns) {
  test(`parsePolicy rejects: ${name} (line ${line})`, () => {
    assert.throws(() => parse(text), (e: unknown) => e instanceof TollgateError && e.code === 'TG_CONFIG_INVALID' && e.message.startsWith(`cannot read policy ${SOURCE} line ${line}: `) && message.test(e.message));
  });
}
