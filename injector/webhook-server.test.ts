// The webhook over real HTTPS with curl as the API server's stand-in: what it answers, what it
// refuses, what it logs and counts, and a certificate swapped in place.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { createLogger } from '../common/log.ts';
import { certsToPem } from '../pki/pem.ts';
import { testChain } from '../pki/test-chain.ts';
import { applyPatch } from '../test/helpers/json-patch.ts';
import { testServerCert, type TestServerCert } from '../test/helpers/tls-test-cert.ts';
import { parseInjectorConfig } from './config.ts';
import { ADMISSIONS_METRIC, startWebhookServer, type WebhookServer } from './webhook-server.ts';

const exec = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'tollgate-webhook-'));
const DNS = 'tollgate-ca.tollgate-system.svc';
const config = parseInjectorConfig('trustDomain: cluster.local\ncaAddress: tollgate-ca.tollgate-system.svc:8443\nimage: tollgate:dev\n', { source: 'x' });
const bundle = certsToPem([testChain('cluster.local').root]);

let cert: TestServerCert;
let tls: { cert: string; key: string };
let server: WebhookServer;
const logLines: Record<string, unknown>[] = [];
const registry = new Registry();

before(async () => {
  cert = await testServerCert({ dnsNames: [DNS], ipAddresses: ['127.0.0.1'] });
  tls = { cert: cert.certPem, key: cert.keyPem };
  writeFileSync(join(dir, 'ca.pem'), cert.caPem);
  server = await startWebhookServer({
    host: '127.0.0.1',
    port: 0,
    tls: () => tls,
    config,
    bundlePem: () => bundle,
    namespaceLabels: async (ns): Promise<Record<string, string>> => {
      if (ns === 'broken') throw new Error('API server unreachable');
      return ns === 'shop' ? { 'tollgate.io/inject': 'enabled' } : {};
    },
    logger: createLogger({ out: { write: (s: string) => logLines.push(JSON.parse(s) as Record<string, unknown>) } }),
    registry,
    maxBodyBytes: 64 * 1024,
  });
});
after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Curl {
  status: number;
  body: string;
}

/** curl, trusting only the test root; the last line of output is the HTTP status. */
async function curl(args: string[], ca = join(dir, 'ca.pem')): Promise<Curl> {
  const { stdout } = await exec('curl', ['-sS', '--cacert', ca, '-w', '\n%{http_code}', ...args], { maxBuffer: 8 * 1024 * 1024 });
  const i = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(i + 1)), body: stdout.slice(0, i).replace(/\n$/, '') };
}

function post(body: string, path = '/inject'): Promise<Curl> {
  const file = join(dir, `body-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, body);
  return curl(['-H', 'content-type: application/json', '--data-binary', `@${file}`, `https://127.0.0.1:${server.port}${path}`]);
}

const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'web-5d8f9c-', namespace: 'shop' }, spec: { containers: [{ name: 'web', image: 'web:1' }] } };
const review = (request: Record<string, unknown>): string => JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request });
const podRequest = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  uid: 'uid-1', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, namespace: 'shop', operation: 'CREATE', object: pod, ...over,
});

test('POST /inject: an opted-in pod comes back allowed with a JSONPatch; logged as one JSON line and counted', async () => {
  const r = await post(review(podRequest()));
  assert.equal(r.status, 200);
  const answer = JSON.parse(r.body) as { response: { uid: string; allowed: boolean; patchType: string; patch: string } };
  assert.deepEqual([answer.response.uid, answer.response.allowed, answer.response.patchType], ['uid-1', true, 'JSONPatch']);
  const patched = applyPatch(pod, JSON.parse(Buffer.from(answer.response.patch, 'base64').toString()) as never) as unknown as { spec: { initContainers: { name: string }[] } };
  assert.deepEqual(patched.spec.initContainers.map((c) => c.name), ['tollgate-proxy']);
  const line = logLines.find((l) => l['uid'] === 'uid-1')!;
  assert.deepEqual([line['msg'], line['event'], line['namespace'], line['pod'], line['decision']], ['admission', 'admission', 'shop', 'web-5d8f9c-', 'injected']);
  assert.match(String(line['reason']), /^namespace label: native sidecar/);
});

test('the DNS name from the certificate works too (as the API server reaches the Service)', async () => {
  const r = await curl(['--resolve', `${DNS}:${server.port}:127.0.0.1`, `https://${DNS}:${server.port}/healthz`]);
  assert.deepEqual(r, { status: 200, body: 'ok' });
});

type Row = [name: string, body: string, status: number, check: (c: Curl) => void];
const rows: Row[] = [
  ['a ConfigMap is allowed untouched', review(podRequest({ uid: 'cm', kind: { group: '', version: 'v1', kind: 'ConfigMap' }, resource: { group: '', version: 'v1', resource: 'configmaps' }, object: {} })), 200,
    (c) => assert.deepEqual(JSON.parse(c.body), { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'cm', allowed: true } })],
  ['a bad annotation is denied with a message', review(podRequest({ uid: 'bad', object: { ...pod, metadata: { ...pod.metadata, annotations: { 'tollgate.io/upstreams': 'orders' } } } })), 200,
    (c) => {
      const r = (JSON.parse(c.body) as { response: { uid: string; allowed: boolean; status: { message: string } } }).response;
      assert.deepEqual([r.uid, r.allowed], ['bad', false]);
      assert.match(r.status.message, /annotation tollgate\.io\/upstreams: "orders" has "orders", which is not NAME=SPIFFE-ID@HOST:PORT/);
    }],
  ['a body that is not JSON → 400 with what to send', '{"apiVersion": "admission', 400, (c) => assert.match(c.body, /^the body is not JSON .*; send an admission\.k8s\.io\/v1 AdmissionReview$/)],
  ['a v1beta1 review → 400', JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'x' } }), 400, (c) => assert.match(c.body, /speaks admission\.k8s\.io\/v1 only/)],
  ['a review without uid → 400', review({ operation: 'CREATE' }), 400, (c) => assert.match(c.body, /request has no uid/)],
  ['a body over the cap → 413', review(podRequest({ object: { ...pod, metadata: { ...pod.metadata, annotations: { big: 'x'.repeat(70 * 1024) } } } })), 413, (c) => assert.match(c.body, /larger than 65536 bytes/)],
  ['namespace labels unreadable → 500, so the failurePolicy decides', review(podRequest({ uid: 'ns', namespace: 'broken' })), 500, (c) => assert.match(c.body, /cannot decide: API server unreachable/)],
];

for (const [name, body, status, check] of rows) {
  test(`POST /inject: ${name}`, async () => {
    const c = await post(body);
    assert.equal(c.status, status, c.body);
    check(c);
  });
}

test('other paths and methods; /healthz', async () => {
  const base = `https://127.0.0.1:${server.port}`;
  assert.deepEqual(await curl([`${base}/healthz`]), { status: 200, body: 'ok' });
  assert.equal((await curl([`${base}/inject`])).status, 405);
  assert.equal((await curl(['-X', 'POST', `${base}/healthz`])).status, 405);
  assert.match((await curl([`${base}/mutate`])).body, /^not found: the webhook is POST \/inject/);
});

test('every decision is counted by kind', async () => {
  const text = await registry.getSingleMetricAsString(ADMISSIONS_METRIC);
  for (const d of ['injected', 'ignored', 'refused', 'invalid', 'error']) assert.match(text, new RegExp(`decision="${d}"} [1-9]`), d);
  assert.match(text, /decision="skipped"} 0/);
  // Refusals of undecodable bodies are logged too, as warnings.
  assert.ok(logLines.some((l) => l['decision'] === 'invalid' && l['level'] === 'warn' && /not JSON/.test(String(l['reason']))));
});

/** The serial of the certificate the server presents now. */
function servedSerial(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: server.port, servername: DNS, rejectUnauthorized: false }, () => {
      resolve(s.getPeerCertificate().serialNumber.toLowerCase());
      s.end();
    });
    s.on('error', reject);
  });
}

test('reloadTls swaps the certificate in place; a broken one keeps the current', async () => {
  assert.equal(await servedSerial(), cert.serialHex);
  const next = await testServerCert({ dnsNames: [DNS], ipAddresses: ['127.0.0.1'] });
  tls = { cert: next.certPem, key: next.keyPem };
  server.reloadTls();
  assert.equal(await servedSerial(), next.serialHex);
  writeFileSync(join(dir, 'next-ca.pem'), next.caPem);
  assert.equal((await curl([`https://127.0.0.1:${server.port}/healthz`], join(dir, 'next-ca.pem'))).status, 200);
  await assert.rejects(curl([`https://127.0.0.1:${server.port}/healthz`]), /SSL certificate problem/);
  tls = { cert: 'not a certificate', key: next.keyPem };
  server.reloadTls();
  assert.equal(await servedSerial(), next.serialHex);
  assert.ok(logLines.some((l) => l['level'] === 'error' && /keeping the current one/.test(String(l['msg']))));
});
