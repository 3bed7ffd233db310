// Real processes: a CA, the orders sidecar (inbound, allow-list: web only) in front of a counting echo
// backend, and the web sidecar (outbound to orders). Outside clients are the openssl CLI with
// certificates from `tollgate cert issue`. Every refused peer must leave the backend at zero
// connections and zero bytes (PRODUCT.md §10 invariant 1) and be counted with its reason (invariant 6).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { initCa, type RunningTestCa } from './helpers/ca-fixture.ts';
import { metricSample, shopId, startSidecar, startWebOrdersMesh, type RunningSidecar, type WebOrdersMesh } from './helpers/mesh-fixture.ts';
import { tollgate } from './helpers/procs.ts';
import { sClient, waitFor, type TestBackend } from './helpers/sidecar-fixture.ts';

const ID = shopId;
let mesh: WebOrdersMesh;
let tmpDir: string;
let ca: RunningTestCa;
let backend: TestBackend;
let orders: RunningSidecar;
let web: RunningSidecar;

/** A leaf from `tollgate cert issue`; `args` present it with s_client (-cert sends only the leaf, -cert_chain adds the intermediate). */
function issue(caDir: string, sa: string, trustDomain = 'example.org'): { cert: string; key: string; args: string[] } {
  const out = join(tmpDir, `${trustDomain}-${sa}`);
  const r = tollgate(['cert', 'issue', '--ca-dir', caDir, '--spiffe-id', `spiffe://${trustDomain}/ns/shop/sa/${sa}`, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  return { cert: `${out}.crt`, key: `${out}.key`, args: ['-cert', `${out}.crt`, '-cert_chain', `${out}.crt`, '-key', `${out}.key`] };
}

before(async () => {
  mesh = await startWebOrdersMesh();
  ({ ca, backend, orders, web } = mesh);
  tmpDir = mesh.dir;
});

after(() => mesh?.stop());

test('both sidecars are ready and say so on /readyz', async () => {
  for (const s of [orders, web]) {
    const r = await s.readiness();
    assert.equal(r.status, 200, r.body);
  }
  assert.equal(orders.proc.ready.spiffe_id, ID('orders'));
});

test('allowed peer (openssl s_client, cert from `tollgate cert issue`): bytes reach the app and come back', async () => {
  const c = issue(ca.dir, 'web');
  const before = backend.connections;
  const r = await sClient(orders.inboundPort, [...c.args, '-CAfile', join(ca.dir, 'bundle.pem')], { input: 'hello orders\n', until: 'hello orders' });
  assert.match(r.stdout, /hello orders/);
  assert.equal(backend.connections, before + 1);
});

test('web app -> web sidecar outbound (plaintext) -> mTLS -> orders sidecar -> app', async () => {
  const s = connect(web.outboundPort, '127.0.0.1');
  let got = '';
  s.setEncoding('utf8').on('data', (d: string) => (got += d));
  s.write('order 1042\n');
  await waitFor(() => got.includes('order 1042'), 'echo through both sidecars');
  s.destroy();
});

const refusals: Array<{ name: string; args: () => string[]; reason: string }> = [
  { name: 'no client certificate', args: () => ['-CAfile', join(ca.dir, 'bundle.pem')], reason: 'no_client_cert' },
  {
    name: 'certificate from another CA',
    args: () => {
      initCa(join(tmpDir, 'other-ca'));
      const c = issue(join(tmpDir, 'other-ca'), 'web');
      return c.args;
    },
    reason: 'untrusted',
  },
  {
    name: 'valid certificate not on the allow-list',
    args: () => {
      const c = issue(ca.dir, 'intruder');
      return [...c.args, '-CAfile', join(ca.dir, 'bundle.pem')];
    },
    reason: 'no_rule',
  },
  {
    name: 'TLS 1.1 offered',
    args: () => {
      const c = issue(ca.dir, 'web');
      return ['-tls1_1', ...c.args, '-cipher', 'DEFAULT@SECLEVEL=0'];
    },
    reason: 'protocol_version',
  },
  {
    name: 'TLS 1.2 offered (minimum is 1.3)',
    args: () => {
      const c = issue(ca.dir, 'web');
      return ['-tls1_2', ...c.args];
    },
    reason: 'protocol_version',
  },
];

for (const r of refusals) {
  test(`refused: ${r.name}; the app gets 0 connections and 0 bytes; counted as ${r.reason}`, async () => {
    const conns = backend.connections;
    const bytes = backend.bytes;
    const sample = `tollgate_inbound_connections_total{result="refused",reason="${r.reason}"}`;
    const counted = metricSample(await orders.metrics(), sample);
    const run = await sClient(orders.inboundPort, r.args(), { input: 'GET / HTTP/1.0\r\n\r\n', timeoutMs: 10_000 });
    assert.equal(run.stdout.includes('GET /'), false, 'nothing echoed back');
    await waitFor(async () => metricSample(await orders.metrics(), sample) === counted + 1, `${sample} to grow`);
    assert.equal(backend.connections, conns, 'the app saw no connection');
    assert.equal(backend.bytes, bytes, 'the app got no byte');
  });
}

test('outbound to a server with the wrong SPIFFE ID: the client sees the connection closed, nothing reaches the app', async (t) => {
  const wrong = await startSidecar(tmpDir, ca, { name: 'web-wrong', spiffeId: ID('web'), outbound: { upstreamPort: orders.inboundPort, spiffeId: ID('payments') } });
  t.after(() => wrong.proc.stop());
  const conns = backend.connections;
  const s = connect(wrong.outboundPort, '127.0.0.1');
  let got = '';
  s.setEncoding('utf8').on('data', (d: string) => (got += d));
  s.on('error', () => undefined);
  s.write('secret order\n');
  await new Promise<void>((resolve) => s.on('close', () => resolve()));
  assert.equal(got, '');
  assert.equal(backend.connections, conns);
  await waitFor(async () => metricSample(await wrong.metrics(), 'tollgate_outbound_connections_total{result="refused",reason="wrong_identity"}') === 1, 'wrong_identity counted');
});
