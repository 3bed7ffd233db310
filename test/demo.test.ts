// `tollgate demo --once --json`, the README's first command: a CA, web and orders with their sidecars on
// loopback; the allowed call succeeds with the caller's identity and every refusal leaves orders untouched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tollgate } from './helpers/procs.ts';

// The refusals are judged on the orders app's own counters (connections and bytes it received), not on
// the demo's ok flags: a demo that misjudged its checks would still be caught here.
test('demo --once --json: allowed call carries the caller identity, three refusals reach nothing', () => {
  const r = tollgate(['demo', '--once', '--json']);
  assert.equal(r.code, 0, `demo failed:\n${r.stdout}\n${r.stderr}`);
  type Check = { name: string; observed: string; orders_app: { connections: number; bytes: number } };
  const out = JSON.parse(r.stdout) as { checks: Check[] };
  assert.equal(out.checks.length, 4);
  const [allowed, ...refusals] = out.checks as [Check, ...Check[]];
  assert.match(allowed.observed, /caller spiffe:\/\/example\.org\/ns\/shop\/sa\/web/);
  assert.equal(allowed.orders_app.connections, 1, 'the allowed call reached the orders app once');
  assert.ok(allowed.orders_app.bytes > 0, 'and carried its request bytes');
  for (const c of refusals) assert.deepEqual(c.orders_app, allowed.orders_app, `${c.name}: the orders app saw no new connection and no byte`);
  assert.match(refusals[0]!.observed, /reason no_rule/);
  assert.match(refusals[1]!.observed, /reason no_client_cert/);
});

test('demo --help names --once and --json', () => {
  const r = tollgate(['demo', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /--once/);
  assert.match(r.stdout, /--json/);
});
