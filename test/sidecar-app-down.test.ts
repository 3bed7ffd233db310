// The app behind a sidecar goes down, then comes back (issue 14, reliability suite: faults). A real CA,
// a real `sidecar run` (orders) in front of an echo backend, and an allowed mTLS peer (web, node:tls).
//  - app down: the peer's connection is closed at once (no hang, no bytes back); the sidecar stays
//    healthy and ready; every such connection is counted {result="error",reason="app_unreachable"}
//    and logged with a TG_ code and the app's address;
//  - the app back on its port: the next connection goes through, nothing restarted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { initCa, startCa, type RunningTestCa } from './helpers/ca-fixture.ts';
import { metricSample, shopId, startSidecar, type RunningSidecar } from './helpers/mesh-fixture.ts';
import { issuedIdentity, latencySummary, peerRequest, type PeerIdentity } from './helpers/peer.ts';
import { tempDir } from './helpers/procs.ts';
import { startBackend, type TestBackend } from './helpers/sidecar-fixture.ts';

const UNREACHABLE = 'tollgate_inbound_connections_total{result="error",reason="app_unreachable"}';
let tmp: ReturnType<typeof tempDir>;
let ca: RunningTestCa;
let backend: TestBackend;
let orders: RunningSidecar;
let web: PeerIdentity;
let appPort: number;

before(async () => {
  tmp = tempDir();
  initCa(join(tmp.dir, 'ca'));
  ca = await startCa(join(tmp.dir, 'ca'));
  backend = await startBackend();
  appPort = backend.port;
  orders = await startSidecar(tmp.dir, ca, { name: 'orders', spiffeId: shopId('orders'), inbound: { appPort }, policy: `ports:\n  "${appPort}":\n    allow: [${shopId('web')}]\n` });
  web = issuedIdentity(ca.dir, tmp.dir, shopId('web'));
});

after(async () => {
  await orders?.proc.stop();
  await backend?.close();
  await ca?.stop();
  tmp?.cleanup();
});

test('app down: the peer is closed at once with no bytes, the sidecar stays healthy and counts each one', async (t) => {
  assert.equal((await peerRequest({ port: orders.inboundPort, identity: web, line: 'before\n' })).end, 'echoed');
  await backend.close();
  const counted = metricSample(await orders.metrics(), UNREACHABLE);
  const results = [];
  for (let i = 0; i < 5; i++) results.push(await peerRequest({ port: orders.inboundPort, identity: web, line: `down ${i}\n`, timeoutMs: 10_000 }));
  for (const r of results) {
    assert.equal(r.end, 'closed', `the peer's connection ends by itself, no hang: ${JSON.stringify(r)}`);
    assert.equal(r.received, '', 'no bytes back');
  }
  assert.equal(metricSample(await orders.metrics(), UNREACHABLE) - counted, 5, 'each one counted with reason app_unreachable');
  assert.equal((await fetch(`http://127.0.0.1:${orders.adminPort}/healthz`)).status, 200);
  assert.equal((await orders.readiness()).status, 200, 'a down app does not make the sidecar unready (its SVID is fine)');
  const lines = orders.proc.stderr().split('\n').filter((l) => l.includes('"event":"inbound_app_unreachable"'));
  assert.ok(lines.length >= 1, 'logged');
  for (const l of lines) {
    const j = JSON.parse(l) as { code: string; error: string };
    assert.match(j.code, /^TG_/, `a TG_ code in the log line: ${l}`);
    assert.ok(j.error.includes(`127.0.0.1:${appPort}`), `names the app's address: ${l}`);
  }
  const s = latencySummary(results.map((r) => r.ms));
  t.diagnostic(`app down: ${results.length} connections closed by the sidecar, 0 bytes back; connect-to-close p50 ${s.p50} ms, max ${s.max} ms; log line: ${lines[0]}`);
});

test('the app back on its port: traffic flows again without touching the sidecar', async () => {
  backend = await startBackend({ port: appPort });
  const r = await peerRequest({ port: orders.inboundPort, identity: web, line: 'back\n' });
  assert.equal(r.end, 'echoed', JSON.stringify(r));
  assert.equal(backend.connections, 1);
  assert.equal(backend.bytes, 'back\n'.length);
});
