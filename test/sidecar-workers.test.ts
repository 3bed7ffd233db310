// Real processes: `tollgate sidecar run --workers 2` on both sides (orders: inbound in front of a
// counting echo backend; web: outbound to orders). Connections go through both sidecars' workers, the
// primary's /metrics sums the workers' counters, a refused peer still leaves the app at zero
// connections and bytes, and SIGTERM drains every worker and exits 0.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { RunningTestCa } from './helpers/ca-fixture.ts';
import { metricSample, shopId, startWebOrdersMesh, type RunningSidecar, type WebOrdersMesh } from './helpers/mesh-fixture.ts';
import { sClient, waitFor, type TestBackend } from './helpers/sidecar-fixture.ts';

const ID = shopId;
const ALLOWED = 'tollgate_inbound_connections_total{result="allowed",reason="allowed"}';
let mesh: WebOrdersMesh;
let ca: RunningTestCa;
let backend: TestBackend;
let orders: RunningSidecar;
let web: RunningSidecar;

before(async () => {
  mesh = await startWebOrdersMesh({ sidecarArgs: ['--workers', '2'] });
  ({ ca, backend, orders, web } = mesh);
});

after(() => mesh?.stop());

test('the ready line reports 2 workers and one shared port (configured as port 0); /readyz is 200', async () => {
  for (const s of [orders, web]) {
    assert.equal(s.proc.ready.workers, 2);
    assert.equal((await s.readiness()).status, 200);
  }
  assert.ok(orders.inboundPort > 0 && web.outboundPort > 0);
  assert.equal(orders.proc.ready.spiffe_id, ID('orders'));
});

test('50 sequential connections through both sidecars; /metrics on the primary sums the workers', async () => {
  const before = backend.connections;
  const counted = metricSample(await orders.metrics(), ALLOWED);
  for (let i = 0; i < 50; i++) {
    const s = connect(web.outboundPort, '127.0.0.1');
    let got = '';
    s.setEncoding('utf8').on('data', (d: string) => (got += d));
    s.write(`order ${i}\n`);
    await waitFor(() => got.includes(`order ${i}\n`), `echo ${i} through both sidecars`);
    await new Promise<void>((resolve) => {
      s.once('close', () => resolve());
      s.end();
    });
  }
  assert.equal(backend.connections, before + 50);
  await waitFor(async () => metricSample(await orders.metrics(), ALLOWED) === counted + 50, `${ALLOWED} summed to ${counted + 50}`);
  const text = await orders.metrics();
  assert.equal(text.split('\n').filter((l) => l.startsWith('# TYPE tollgate_inbound_connections_total ')).length, 1, 'one family, not one per worker');
  assert.ok(metricSample(text, 'tollgate_svid_expiry_timestamp_seconds') > Date.now() / 1000, 'the primary\'s SVID expiry, not a worker\'s 0');
  const outbound = metricSample(await web.metrics(), 'tollgate_outbound_connections_total{result="allowed",reason="allowed"}');
  assert.equal(outbound, 50);
});

test('refused: no client certificate; the app gets 0 connections and 0 bytes', async () => {
  const conns = backend.connections;
  const bytes = backend.bytes;
  const sample = 'tollgate_inbound_connections_total{result="refused",reason="no_client_cert"}';
  const counted = metricSample(await orders.metrics(), sample);
  const run = await sClient(orders.inboundPort, ['-CAfile', join(ca.dir, 'bundle.pem')], { input: 'GET / HTTP/1.0\r\n\r\n', timeoutMs: 10_000 });
  assert.equal(run.stdout.includes('GET /'), false, 'nothing echoed back');
  await waitFor(async () => metricSample(await orders.metrics(), sample) === counted + 1, `${sample} to grow`);
  assert.equal(backend.connections, conns, 'the app saw no connection');
  assert.equal(backend.bytes, bytes, 'the app got no byte');
});

test('SIGTERM: every worker drains and the primary exits 0', async () => {
  assert.equal(await web.proc.stop('SIGTERM'), 0);
  assert.equal(await orders.proc.stop('SIGTERM'), 0);
});
