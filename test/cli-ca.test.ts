// The CLI as an operator uses it: the README's "done when" flow, checked with openssl, and bad input
// with exit codes 0 ok / 1 failure / 2 usage or bad input.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { run, tempDir, tollgate } from './helpers/procs.ts';

const tmp = tempDir();
after(() => tmp.cleanup());
const T = tmp.dir;
const WEB = 'spiffe://example.org/ns/shop/sa/web';

test('ca init, cert issue, openssl verify, cert inspect --json', () => {
  const init = tollgate(['ca', 'init', '--trust-domain', 'example.org', '--dir', `${T}/ca`]);
  assert.equal(init.code, 0, init.stderr);
  for (const f of ['root.crt', 'root.key', 'intermediate.crt', 'intermediate.key', 'bundle.pem']) assert.ok(existsSync(`${T}/ca/${f}`), f);
  assert.equal(statSync(`${T}/ca/root.key`).mode & 0o777, 0o600);
  assert.equal(statSync(`${T}/ca/intermediate.key`).mode & 0o777, 0o600);
  assert.equal(statSync(`${T}/ca`).mode & 0o777, 0o700);

  const issue = tollgate(['cert', 'issue', '--ca-dir', `${T}/ca`, '--spiffe-id', WEB, '--out', `${T}/web`]);
  assert.equal(issue.code, 0, issue.stderr);
  assert.equal(statSync(`${T}/web.key`).mode & 0o777, 0o600);
  const v = run('openssl', ['verify', '-CAfile', `${T}/ca/root.crt`, '-untrusted', `${T}/ca/intermediate.crt`, `${T}/web.crt`]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /web\.crt: OK/);
  // PREFIX.crt is leaf then intermediate.
  const blocks = readFileSync(`${T}/web.crt`, 'utf8').match(/BEGIN CERTIFICATE/g);
  assert.equal(blocks?.length, 2);
  // The key matches the leaf (openssl compares the public keys).
  const k = run('openssl', ['pkey', '-in', `${T}/web.key`, '-pubout']).stdout;
  const c = run('openssl', ['x509', '-in', `${T}/web.crt`, '-noout', '-pubkey']).stdout;
  assert.equal(k, c);

  const inspect = tollgate(['cert', 'inspect', `${T}/web.crt`, '--json', '--bundle', `${T}/ca/bundle.pem`]);
  assert.equal(inspect.code, 0, inspect.stderr);
  const j = JSON.parse(inspect.stdout) as { spiffe_id: string; chain: unknown[]; verification: { ok: boolean } };
  assert.equal(j.spiffe_id, WEB);
  assert.equal(j.chain.length, 2);
  assert.equal(j.verification.ok, true);
  const audit = readFileSync(`${T}/ca/audit.log`, 'utf8');
  assert.match(audit, /"event":"svid_issued".*"spiffe_id":"spiffe:\/\/example.org\/ns\/shop\/sa\/web"/);
});

test('cert issue --p12 writes a PKCS#12 that openssl reads', () => {
  const r = tollgate(['cert', 'issue', '--ca-dir', `${T}/ca`, '--spiffe-id', WEB, '--out', `${T}/legacy`, '--p12', '--password', 'pw123', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const o = run('openssl', ['pkcs12', '-in', `${T}/legacy.p12`, '-passin', 'pass:pw123', '-nodes']);
  assert.equal(o.code, 0, o.stderr);
  assert.match(o.stdout, /BEGIN PRIVATE KEY/);
  assert.match(o.stdout, /BEGIN CERTIFICATE/);
  assert.equal(tollgate(['cert', 'issue', '--ca-dir', `${T}/ca`, '--spiffe-id', WEB, '--out', `${T}/x`, '--p12']).code, 2, '--p12 without --password');
});

test('bad input: exit codes and messages that say what to do', () => {
  const dir = `${T}/ca-bad`;
  assert.equal(tollgate(['ca', 'init', '--trust-domain', 'example.org', '--dir', dir]).code, 0);
  const again = tollgate(['ca', 'init', '--trust-domain', 'example.org', '--dir', dir]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /TG_STORE_EXISTS: .*--force/);

  const badTd = tollgate(['ca', 'init', '--trust-domain', 'Example.ORG', '--dir', `${T}/ca2`]);
  assert.equal(badTd.code, 2);
  assert.match(badTd.stderr, /TG_TRUST_DOMAIN_INVALID: .*upper-case/);

  for (const bad of ['spiffe://example.org/ns/shop/sa/web/', 'https://example.org/web', 'spiffe://example.org', 'spiffe://example.org/a/../b']) {
    const r = tollgate(['cert', 'issue', '--ca-dir', dir, '--spiffe-id', bad, '--out', `${T}/bad`]);
    assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
    assert.match(r.stderr, /TG_SPIFFE_ID_INVALID/);
  }
  const foreign = tollgate(['cert', 'issue', '--ca-dir', dir, '--spiffe-id', 'spiffe://other.org/x', '--out', `${T}/bad`]);
  assert.equal(foreign.code, 2);
  assert.match(foreign.stderr, /not in this CA's trust domain/);

  const missing = tollgate(['cert', 'issue', '--ca-dir', `${T}/nothing`, '--spiffe-id', WEB, '--out', `${T}/bad`]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /TG_STORE_MISSING: .*tollgate ca init/);

  const usage = tollgate(['cert', 'issue', '--ca-dir', dir]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /required option/);
  assert.equal(tollgate(['frobnicate']).code, 2);
  assert.equal(tollgate(['cert', 'issue', '--ca-dir', dir, '--spiffe-id', WEB, '--out', `${T}/b`, '--ttl', 'soon']).code, 2);
  assert.equal(tollgate(['cert', 'inspect', `${T}/does-not-exist.crt`]).code, 2);
});

test('reserved IDs: cert issue and token create refuse anything under /tollgate/ (exit 2), and audit it', () => {
  const dir = `${T}/ca-reserved`;
  assert.equal(tollgate(['ca', 'init', '--trust-domain', 'example.org', '--dir', dir]).code, 0);
  for (const id of ['spiffe://example.org/tollgate/ca', 'spiffe://example.org/tollgate/x']) {
    const issue = tollgate(['cert', 'issue', '--ca-dir', dir, '--spiffe-id', id, '--out', `${T}/reserved`]);
    assert.equal(issue.code, 2, issue.stderr);
    assert.match(issue.stderr, /TG_RESERVED_ID: `cert issue` asks for .* reserved for Tollgate itself/);
    const token = tollgate(['ca', 'token', 'create', '--dir', dir, '--spiffe-id', id]);
    assert.equal(token.code, 2, token.stderr);
    assert.match(token.stderr, /TG_RESERVED_ID/);
  }
  assert.equal(existsSync(`${T}/reserved.crt`), false);
  const audit = readFileSync(`${dir}/audit.log`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(audit.map((l) => `${l.event} ${l.code}`), ['svid_refused TG_RESERVED_ID', 'join_token_refused TG_RESERVED_ID', 'svid_refused TG_RESERVED_ID', 'join_token_refused TG_RESERVED_ID']);
});

test('a corrupt store file is named in the error', () => {
  const dir = `${T}/corrupt`;
  assert.equal(tollgate(['ca', 'init', '--trust-domain', 'example.org', '--dir', dir]).code, 0);
  // intermediate.key is a view for openssl; Tollgate reads the authority's own key file.
  const records = JSON.parse(readFileSync(join(dir, 'records.json'), 'utf8')) as { authorities: Array<{ id: string; kind: string; slot: string }> };
  const int = records.authorities.find((a) => a.kind === 'intermediate' && a.slot === 'active')!;
  writeFileSync(join(dir, 'authorities', `${int.id}.key`), 'not a key');
  const r = tollgate(['cert', 'issue', '--ca-dir', dir, '--spiffe-id', WEB, '--out', `${T}/c`]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`TG_STORE_CORRUPT: cannot read .*authorities/${int.id}\\.key`));
  writeFileSync(join(dir, 'records.json'), '{"revision": 3, "format": 2');
  const r2 = tollgate(['cert', 'issue', '--ca-dir', dir, '--spiffe-id', WEB, '--out', `${T}/c`]);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /TG_STORE_CORRUPT: cannot read .*records\.json/);
});

test('every command has --help with examples', () => {
  for (const cmd of [[], ['ca', 'init'], ['ca', 'serve'], ['ca', 'token', 'create'], ['ca', 'rotate'], ['ca', 'status'], ['cert', 'issue'], ['cert', 'inspect'], ['cert', 'expiry']]) {
    const r = tollgate([...cmd, '--help']);
    assert.equal(r.code, 0, cmd.join(' '));
    assert.match(r.stdout, /Examples:/, cmd.join(' '));
  }
});
