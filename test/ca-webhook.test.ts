// `tollgate ca serve --webhook-listen`: the real CA process serves the injection webhook with a
// serving certificate chained to its own root, injects its own bundle, and writes that bundle into
// the MutatingWebhookConfiguration's caBundle through the API. The API here is the loopback
// stand-in of test/helpers/kube-stub.ts (the real API server's tier is test/kube/).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseSidecarConfig } from '../sidecar/config.ts';
import { initCa, startCa, type RunningTestCa } from './helpers/ca-fixture.ts';
import { applyPatch } from './helpers/json-patch.ts';
import { startKubeStub, type KubeStub } from './helpers/kube-stub.ts';
import { tempDir, tollgate } from './helpers/procs.ts';

const exec = promisify(execFile);
const tmp = tempDir();
const MWC = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/tollgate-sidecar-injector';
let stub: KubeStub;
let ca: RunningTestCa;
let port: number;
const caDir = join(tmp.dir, 'ca');

before(async () => {
  stub = await startKubeStub({ token: 'ca-sa-token' });
  stub.objects.set(MWC, { metadata: { name: 'tollgate-sidecar-injector' }, webhooks: [{ name: 'sidecar-injector.tollgate.io', clientConfig: { url: 'https://127.0.0.1/inject' } }] });
  stub.objects.set('/api/v1/namespaces/shop', { metadata: { name: 'shop', labels: { 'tollgate.io/inject': 'enabled' } } });
  writeFileSync(join(tmp.dir, 'api-ca.pem'), stub.cert.caPem);
  writeFileSync(join(tmp.dir, 'token'), 'ca-sa-token\n');
  writeFileSync(join(tmp.dir, 'injector.yaml'), 'trustDomain: cluster.local\ncaAddress: tollgate-ca.mesh.svc:8443\nimage: tollgate:test\n');
  initCa(caDir, 'cluster.local');
  ca = await startCa(caDir, [
    '--webhook-listen', '127.0.0.1:0', '--webhook-ip-sans', '127.0.0.1', '--webhook-dns-names', 'tollgate-ca.mesh.svc',
    '--injector-config', join(tmp.dir, 'injector.yaml'), '--namespace', 'mesh',
    '--k8s-api-server', stub.url, '--k8s-ca-file', join(tmp.dir, 'api-ca.pem'), '--k8s-token-file', join(tmp.dir, 'token'),
  ]);
  port = ca.proc.ready['webhook_port'] as number;
});
after(async () => {
  await ca?.stop();
  await stub?.close();
  tmp.cleanup();
});

async function poll<T>(what: string, get: () => T | undefined): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = get();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${what} did not happen`);
}

test('the caBundle of the webhook configuration becomes the CA\'s bundle, through the API with the CA\'s token', async () => {
  const bundle = readFileSync(join(caDir, 'bundle.pem'), 'utf8');
  const want = Buffer.from(bundle).toString('base64');
  await poll('caBundle update', () => ((stub.objects.get(MWC)!['webhooks'] as { clientConfig: { caBundle?: string } }[])[0]!.clientConfig.caBundle === want ? true : undefined));
  const patch = stub.requests.find((r) => r.method === 'PATCH' && r.path === MWC)!;
  assert.equal(patch.authorization, 'Bearer ca-sa-token');
  assert.equal(patch.contentType, 'application/json-patch+json');
});

test('the webhook answers over TLS that curl verifies against the CA\'s bundle, and injects that bundle', async () => {
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'web-', namespace: 'shop' }, spec: { containers: [{ name: 'web', image: 'web:1' }] } };
  const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u-1', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, namespace: 'shop', operation: 'CREATE', object: pod } };
  writeFileSync(join(tmp.dir, 'review.json'), JSON.stringify(review));
  const { stdout } = await exec('curl', ['-sS', '--fail', '--cacert', join(caDir, 'bundle.pem'), '--resolve', `tollgate-ca.mesh.svc:${port}:127.0.0.1`,
    '-H', 'content-type: application/json', '--data-binary', `@${join(tmp.dir, 'review.json')}`, `https://tollgate-ca.mesh.svc:${port}/inject`]);
  const response = (JSON.parse(stdout) as { response: { uid: string; allowed: boolean; patch: string } }).response;
  assert.deepEqual([response.uid, response.allowed], ['u-1', true]);
  const injected = applyPatch(pod, JSON.parse(Buffer.from(response.patch, 'base64').toString()) as never) as unknown as { spec: { initContainers: { name: string; env: { value: string }[] }[] } };
  const proxy = injected.spec.initContainers.find((c) => c.name === 'tollgate-proxy')!;
  const config = parseSidecarConfig(proxy.env[0]!.value, { source: 'env' });
  assert.equal(config.ca.bundlePem, readFileSync(join(caDir, 'bundle.pem'), 'utf8'));
  assert.equal(config.ca.address.host, 'tollgate-ca.mesh.svc');
  // The namespace's opt-in label was read through the API.
  assert.ok(stub.requests.some((r) => r.method === 'GET' && r.path === '/api/v1/namespaces/shop'));
  const metrics = await (await fetch(`http://127.0.0.1:${ca.adminPort}/metrics`)).text();
  assert.match(metrics, /tollgate_injector_admissions_total\{decision="injected"\} 1/);
  assert.match(metrics, /tollgate_webhook_cabundle_syncs_total\{result="updated"\} 1/);
  assert.match(metrics, /tollgate_webhook_certificate_expiry_timestamp_seconds \d+/);
});

test('the CA\'s own namespace (--namespace) is never injected', async () => {
  const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u-2', kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: 'mesh', operation: 'CREATE', object: { metadata: { annotations: { 'tollgate.io/inject': 'enabled' } }, spec: { containers: [{ name: 'a' }] } } } };
  const { stdout } = await exec('curl', ['-sS', '--cacert', join(caDir, 'bundle.pem'), '--data-binary', JSON.stringify(review), `https://127.0.0.1:${port}/inject`]);
  assert.deepEqual(JSON.parse(stdout), { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u-2', allowed: true } });
  assert.match(ca.proc.stderr(), /"decision":"skipped".*"reason":"namespace mesh is never injected"/);
});

test('ca serve refuses a webhook without an injector config, a certificate name or a valid resync period (exit 2)', () => {
  const a = tollgate(['ca', 'serve', '--dir', caDir, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--webhook-listen', '127.0.0.1:0']);
  assert.equal(a.code, 2);
  assert.match(a.stderr, /TG_USAGE: --webhook-listen needs --injector-config FILE/);
  const b = tollgate(['ca', 'serve', '--dir', caDir, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--webhook-listen', '127.0.0.1:0', '--injector-config', join(tmp.dir, 'injector.yaml'),
    '--k8s-api-server', stub.url, '--k8s-ca-file', join(tmp.dir, 'api-ca.pem'), '--k8s-token-file', join(tmp.dir, 'token')]);
  assert.equal(b.code, 2);
  assert.match(b.stderr, /TG_USAGE: the webhook certificate needs a name: give --webhook-dns-names/);
  const c = tollgate(['ca', 'serve', '--dir', caDir, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--webhook-listen', '127.0.0.1:0', '--injector-config', join(tmp.dir, 'injector.yaml'), '--webhook-cabundle-resync', 'soon']);
  assert.equal(c.code, 2);
  assert.match(c.stderr, /TG_USAGE: --webhook-cabundle-resync "soon" is not a duration/);
});
