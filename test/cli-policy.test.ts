// `tollgate policy check` as an operator runs it, against examples/policy.yaml: decisions, the rule
// or the reason, JSON, the all-ports table, and exit codes 0 allowed / 1 denied / 2 usage or bad file.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir, tollgate } from './helpers/procs.ts';

const tmp = tempDir();
after(() => tmp.cleanup());
const POLICY = 'examples/policy.yaml';
const check = (...args: string[]) => tollgate(['policy', 'check', '--policy', POLICY, ...args]);

type Case = [name: string, peer: string, port: string, code: number, stdout: RegExp];
const cases: Case[] = [
  ['allowed, exact rule', 'spiffe://example.org/ns/shop/sa/web', '8080', 0,
    /^allowed: spiffe:\/\/example\.org\/ns\/shop\/sa\/web matches spiffe:\/\/example\.org\/ns\/shop\/sa\/web \(ports\.8080\.allow\[0\]\) on port 8080\n$/],
  ['allowed, wildcard rule', 'spiffe://example.org/ns/shop/sa/cart', '9000', 0,
    /^allowed: spiffe:\/\/example\.org\/ns\/shop\/sa\/cart matches spiffe:\/\/example\.org\/ns\/shop\/sa\/\* \(ports\.9000\.allow\[0\]\) on port 9000\n$/],
  ['allowed by the default section', 'spiffe://example.org/ns/ops/sa/console', '1234', 0, /\(default\.allow\[0\]\) on port 1234/],
  ['denied, no rule', 'spiffe://example.org/ns/shop/sa/cart', '8080', 1,
    /^denied: spiffe:\/\/example\.org\/ns\/shop\/sa\/cart on port 8080 \(reason: no_rule\)\n {2}no rule in ports\.8080\.allow matches; add .* to ports\.8080\.allow in examples\/policy\.yaml/],
  ['denied, explicit deny-all port', 'spiffe://example.org/ns/shop/sa/web', '9090', 1, /reason: no_rule\)\n {2}ports\.9090\.allow is empty/],
  ['denied, trust domain', 'spiffe://evil.com/ns/shop/sa/web', '8080', 1,
    /^denied: .* \(reason: trust_domain\)\n {2}peers from trust domain "evil\.com" are not accepted \(accepted: example\.org\); add it to trustDomains/],
  ['denied, invalid ID', 'spiffe://example.org/ns/shop/sa/web/', '8080', 1, /\(reason: invalid_id\)\n {2}"spiffe:\/\/example\.org\/ns\/shop\/sa\/web\/" ends with "\/"/],
];
for (const [name, peer, port, code, stdout] of cases) {
  test(`policy check --port: ${name}`, () => {
    const r = check('--peer', peer, '--port', port);
    assert.equal(r.code, code, r.stderr);
    assert.match(r.stdout, stdout);
  });
}

test('policy check --json with --port: one decision', () => {
  const r = check('--peer', 'spiffe://example.org/ns/shop/sa/cart', '--port', '9000', '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    policy: POLICY,
    peer: 'spiffe://example.org/ns/shop/sa/cart',
    trust_domain: 'example.org',
    trust_domains: ['example.org'],
    port: 9000,
    allowed: true,
    reason: 'allowed',
    rule: 'spiffe://example.org/ns/shop/sa/* (ports.9000.allow[0])',
    hint: null,
  });
  const denied = check('--peer', 'spiffe://evil.com/a', '--port', '8080', '--json');
  assert.equal(denied.code, 1);
  const j = JSON.parse(denied.stdout) as { allowed: boolean; reason: string; rule: null; hint: string };
  assert.deepEqual([j.allowed, j.reason, j.rule], [false, 'trust_domain', null]);
  assert.match(j.hint, /add it to trustDomains/);
});

test('policy check without --port: every listed port plus default', () => {
  const r = check('--peer', 'spiffe://example.org/ns/shop/sa/web');
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout.split('\n').filter((l) => /^ {2}(\d+|default) /.test(l)).map((l) => l.trim().split(/\s+/).slice(0, 3));
  assert.deepEqual(rows, [
    ['8080', 'allowed', 'allowed'],
    ['9000', 'allowed', 'allowed'],
    ['9090', 'denied', 'no_rule'],
    ['default', 'denied', 'no_rule'],
  ]);
  assert.match(r.stdout, /^ {2}PORT +DECISION +REASON +RULE$/m);
  assert.match(r.stdout, /allowed on 8080, 9000\n$/);

  const json = check('--peer', 'spiffe://example.org/ns/ops/sa/console', '--json');
  assert.equal(json.code, 0, json.stderr);
  const j = JSON.parse(json.stdout) as { allowed: boolean; ports: { port: number | string; allowed: boolean; rule: string | null }[] };
  assert.equal(j.allowed, true);
  assert.deepEqual(j.ports.map((p) => [p.port, p.allowed]), [[8080, false], [9000, false], [9090, false], ['default', true]]);
  assert.equal(j.ports[3]!.rule, 'spiffe://example.org/ns/ops/sa/console (default.allow[0])');

  const nowhere = check('--peer', 'spiffe://evil.com/ns/shop/sa/web');
  assert.equal(nowhere.code, 1);
  assert.match(nowhere.stdout, /denied on every port\n {2}peers from trust domain "evil\.com"/);
});

test('policy check: a bad policy file is exit 2 with its file and line', () => {
  const bad = join(tmp.dir, 'bad.yaml');
  writeFileSync(bad, 'trustDomains: [example.org]\nports:\n  8080:\n    allow:\n      - spiffe://example.org/ns/shop/sa/web-*\n');
  const r = tollgate(['policy', 'check', '--policy', bad, '--peer', 'spiffe://example.org/a', '--port', '8080']);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, new RegExp(`TG_CONFIG_INVALID: cannot read policy ${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} line 5: .*inside the segment "web-\\*"`));
});

test('policy check: a policy without trustDomains needs --trust-domain', () => {
  const own = join(tmp.dir, 'own.yaml');
  writeFileSync(own, 'ports:\n  8080:\n    allow: [spiffe://example.org/ns/shop/sa/web]\n');
  const without = tollgate(['policy', 'check', '--policy', own, '--peer', 'spiffe://example.org/ns/shop/sa/web', '--port', '8080']);
  assert.equal(without.code, 2);
  assert.match(without.stderr, /has no "trustDomains".*--trust-domain TD/);
  const withTd = tollgate(['policy', 'check', '--policy', own, '--trust-domain', 'example.org', '--peer', 'spiffe://example.org/ns/shop/sa/web', '--port', '8080']);
  assert.equal(withTd.code, 0, withTd.stderr);
});

type Usage = [name: string, args: string[], stderr: RegExp];
const usage: Usage[] = [
  ['missing --peer', ['--policy', POLICY, '--port', '8080'], /required option '--peer <id>' not specified/],
  ['missing --policy', ['--peer', 'spiffe://example.org/a'], /required option '--policy <file>' not specified/],
  ['port out of range', ['--policy', POLICY, '--peer', 'spiffe://example.org/a', '--port', '0'], /TG_USAGE: --port "0" is not a port number/],
  ['port not a number', ['--policy', POLICY, '--peer', 'spiffe://example.org/a', '--port', 'http'], /TG_USAGE: --port "http"/],
  ['missing policy file', ['--policy', join(tmp.dir, 'none.yaml'), '--peer', 'spiffe://example.org/a'], /TG_CONFIG_INVALID: cannot read policy .*none\.yaml: the file does not exist/],
  ['bad --trust-domain', ['--policy', POLICY, '--trust-domain', 'Example.org', '--peer', 'spiffe://example.org/a'], /TG_TRUST_DOMAIN_INVALID/],
];
for (const [name, args, stderr] of usage) {
  test(`policy check usage: ${name} → exit 2`, () => {
    const r = tollgate(['policy', 'check', ...args]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, stderr);
  });
}

test('policy check --help documents exit codes and examples', () => {
  const r = tollgate(['policy', 'check', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /without --port, 0 if the peer is allowed on\s+at\s+least one port/);
  assert.match(r.stdout, /Examples:\n {2}\$ tollgate policy check --policy examples\/policy\.yaml/);
});
