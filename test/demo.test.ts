// `tollgate demo --once --json`, the README's first command: a CA, web and orders with their sidecars on
// loopback; the allowed call succeeds with the caller's identity and every refusal leaves orders untouched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tollgate } from './helpers/procs.ts';

test('demo --once --json: allowed call carries the caller identity, three refusals reach nothing', () => {
  const r = tollgate(['demo', '--once', '--json']);
  assert.equal(r.code, 0, `demo failed:\n${r.stdout}\n${r.stderr}`);
  const out = JSON.parse(r.stdout) as { ok: boolean; checks: Array<{ name: string; ok: boolean; observed: string }> };
  assert.equal(out.ok, true);
  assert.equal(out.checks.length, 4);
  for (const c of out.checks) assert.ok(c.ok, `${c.name}: ${c.observed}`);
  assert.match(out.checks[0]!.observed, /caller spiffe:\/\/example\.org\/ns\/shop\/sa\/web/);
  assert.match(out.checks[1]!.observed, /reason no_rule, app saw 0 conn/);
  assert.match(out.checks[2]!.observed, /reason no_client_cert, app saw 0 conn/);
  assert.match(out.checks[3]!.observed, /app saw 0 conn/);
});

test('demo --help names --once and --json', () => {
  const r = tollgate(['demo', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /--once/);
  assert.match(r.stdout, /--json/);
});
