// The deny-list with real processes (issue 13 problem 4): a CA and two sidecars (web -> orders).
// After `tollgate ca deny add --serial <web's serial>`, web's next new connection to orders is refused
// once orders holds the pushed bundle (reason "denied"), and web's renewal is refused (TG_DENIED).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { metricSample, shopId, startWebOrdersMesh, type WebOrdersMesh } from './helpers/mesh-fixture.ts';
import { tollgate } from './helpers/procs.ts';
import { waitFor } from './helpers/sidecar-fixture.ts';
import { oneRequest } from './helpers/traffic.ts';

let mesh: WebOrdersMesh | undefined;
after(() => mesh?.stop());

const BUNDLE = 'tollgate_sidecar_bundle_version';
const issuedToWeb = (m: WebOrdersMesh) => m.ca.auditLines().filter((l) => l.event === 'svid_issued' && l.spiffe_id === shopId('web'));

test('ca deny add --serial: the peer is refused within one bundle push and its renewal is refused', async () => {
  // 10 s SVIDs: web renews within the test (its renewal, due at 4-6 s, is what gets refused; renewal runs
  // on the real clock of a separate process); --store-poll 1s: the CA sees the store change quickly.
  mesh = await startWebOrdersMesh({ caArgs: ['--default-ttl', '10s', '--store-poll', '1s'], ttl: '10s' });
  const m = mesh;
  assert.ok(await oneRequest(m.web.outboundPort, 1), 'web reaches orders before the deny');
  const versionBefore = metricSample(await m.orders.metrics(), BUNDLE);

  // Deny web's current serial; if web renewed in between, deny the new one too (bounded).
  let serial = '';
  for (let i = 0; i < 3; i++) {
    const issued = issuedToWeb(m);
    serial = String(issued.at(-1)!.serial);
    const r = tollgate(['ca', 'deny', 'add', '--dir', m.ca.dir, '--serial', serial, '--reason', 'test: stolen', '--json']);
    assert.equal(r.code, 0, r.stderr);
    if (issuedToWeb(m).length === issued.length) break;
  }
  const listed = JSON.parse(tollgate(['ca', 'deny', 'list', '--dir', m.ca.dir, '--json']).stdout) as { bundle_version: number; denied: Array<{ kind: string; value: string; reason?: string }> };
  assert.ok(listed.denied.some((d) => d.kind === 'serial' && d.value === serial.toLowerCase() && d.reason === 'test: stolen'));
  assert.ok(listed.bundle_version > versionBefore, 'a deny-list change bumps the bundle version');

  // One push: orders holds the new bundle, and refuses web's next new connection.
  await waitFor(async () => metricSample(await m.orders.metrics(), BUNDLE) >= listed.bundle_version, 'orders to receive the pushed bundle', 15_000);
  assert.equal(await oneRequest(m.web.outboundPort, 2), false, 'a new connection from the denied serial is refused');
  assert.ok(metricSample(await m.orders.metrics(), 'tollgate_inbound_connections_total{result="refused",reason="denied"}') >= 1, await m.orders.metrics());

  // Web's renewal with the denied certificate is refused, audited.
  await waitFor(() => m.ca.auditLines().some((l) => l.event === 'svid_refused' && l.code === 'TG_DENIED' && l.spiffe_id === shopId('web')), 'web\'s renewal to be refused with TG_DENIED', 15_000);
  assert.equal(issuedToWeb(m).at(-1)!.serial, serial, 'no SVID was issued to the denied certificate');
});
