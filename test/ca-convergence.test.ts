// Convergence over the real gRPC API: only authenticated reports count (a token-attested issue, a
// renewal, a GetBundle that presents a valid SVID), and GET /status on the admin port shows them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { certsToPem } from '../pki/pem.ts';
import type { CaStatus } from '../ca/status.ts';
import { caForFile, createJoinToken, newKey } from './helpers/ca-fixture.ts';
import { httpGet } from './helpers/procs.ts';

const file = caForFile();

async function status(): Promise<CaStatus> {
  const r = await httpGet(`http://127.0.0.1:${file.ca.adminPort}/status`);
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body) as CaStatus;
}

/** Reports on GetBundle are counted just after the answer: poll (bounded) until `ok`. */
async function until(ok: (s: CaStatus) => boolean): Promise<CaStatus> {
  let s = await status();
  for (let i = 0; i < 100 && !ok(s); i++) {
    await new Promise((r) => setTimeout(r, 20));
    s = await status();
  }
  return s;
}

test('GET /status: authorities, health, and convergence from authenticated reports only', async () => {
  const s0 = await status();
  assert.equal(s0.trust_domain, 'example.org');
  assert.deepEqual(s0.authorities.map((a) => `${a.kind}/${a.slot}`), ['root/active', 'intermediate/active']);
  assert.equal(s0.health.state, 'ok');
  assert.equal(s0.automatic_rotation, true);
  assert.equal(s0.max_leaf_ttl_seconds, 86400);
  assert.equal(s0.next_automatic_step?.action, 'none');
  assert.deepEqual([s0.convergence!.clients, s0.convergence!.ratio], [0, 1]);
  const int = s0.authorities[1]!.id;

  const a = newKey();
  const svidA = await file.ca.client().issue({ csr: a.csr, token: createJoinToken(file.ca.dir, 'spiffe://example.org/ns/shop/sa/web'), report: { bundle_version: 1, serial: '' } });
  const b = newKey();
  const svidB = await file.ca.client().issue({ csr: b.csr, token: createJoinToken(file.ca.dir, 'spiffe://example.org/ns/shop/sa/orders') });
  let s = await status();
  assert.deepEqual([s.convergence!.clients, s.convergence!.on_current_bundle], [2, 1], 'B has not said which bundle it holds');

  // Anonymous reports are answered but never counted.
  await file.ca.client().getBundle({ bundle_version: 1, serial: 'ffff' });
  await file.ca.client().getBundle({ bundle_version: 1, serial: 'eeee' });
  // B reports over mTLS with its SVID.
  const asB = file.ca.client({ certChainPem: certsToPem(svidB.certChain), keyPem: b.keyPem });
  await asB.getBundle({ bundle_version: 1, serial: 'ignored: the presented certificate counts' });
  s = await until((x) => x.convergence!.on_current_bundle === 2);
  assert.deepEqual([s.convergence!.clients, s.convergence!.on_current_bundle, s.convergence!.ratio], [2, 2, 1]);
  assert.deepEqual(s.convergence!.live_leaves_by_authority, { [int]: 2 });
  assert.equal(s.convergence!.stale_after_seconds, 64800, '3/4 of the default --max-ttl (24 h)');

  // A renews: its old certificate is replaced, not counted twice.
  const asA = file.ca.client({ certChainPem: certsToPem(svidA.certChain), keyPem: a.keyPem });
  await asA.issue({ csr: newKey().csr, report: { bundle_version: 1, serial: 'x' } });
  s = await status();
  assert.equal(s.convergence!.clients, 2);
  const m = await httpGet(`http://127.0.0.1:${file.ca.adminPort}/metrics`);
  assert.match(m.body, /tollgate_ca_clients_on_current_bundle_ratio 1/);
  assert.match(m.body, /tollgate_rotation_phase\{kind="root"\} 0/);
  assert.match(m.body, /tollgate_ca_expiry_warning 0/);
  assert.match((await httpGet(`http://127.0.0.1:${file.ca.adminPort}/nope`)).body, /\/status/);
});
