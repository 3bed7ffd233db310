import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certsToPem } from '../pki/pem.ts';
import { leafFrom, p256, testChain } from '../pki/test-chain.ts';
import { startKubeStub, type KubeStub } from '../test/helpers/kube-stub.ts';
import { TollgateError } from './errors.ts';
import { KubeApiError, KubeClient, inClusterNamespace, inClusterOptions, kubeClientOptions } from './kube-client.ts';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-kube-client-'));
let stub: KubeStub;
before(async () => {
  stub = await startKubeStub({ token: 'token-1' });
  writeFileSync(join(dir, 'ca.crt'), stub.cert.caPem);
  writeFileSync(join(dir, 'token'), 'token-1\n');
  writeFileSync(join(dir, 'namespace'), 'mesh\n');
});
after(async () => {
  await stub.close();
  rmSync(dir, { recursive: true, force: true });
});

const CM = '/api/v1/namespaces/mesh/configmaps';
const client = (): KubeClient => new KubeClient(kubeClientOptions({ server: stub.url, caFile: join(dir, 'ca.crt'), tokenFile: join(dir, 'token') }));

async function refused(p: Promise<unknown>, code: string, status: number, reason: string): Promise<KubeApiError> {
  let err: unknown;
  await p.then(() => assert.fail('expected a refusal'), (e: unknown) => (err = e));
  assert.ok(err instanceof KubeApiError, String(err));
  assert.deepEqual([err.code, err.status, err.reason], [code, status, reason]);
  return err;
}

test('post, get, put with resourceVersion, merge and JSON patch, delete; a stale resourceVersion is TG_KUBE_CONFLICT', async () => {
  const k = client();
  try {
    const made = await k.post<{ metadata: { resourceVersion: string } }>(CM, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'bundle' }, data: { a: '1' } });
    await refused(k.post(CM, { metadata: { name: 'bundle' } }), 'TG_KUBE_CONFLICT', 409, 'AlreadyExists');
    const got = await k.get<{ data: Record<string, string>; metadata: { resourceVersion: string } }>(`${CM}/bundle`);
    assert.deepEqual(got.data, { a: '1' });
    assert.equal(got.metadata.resourceVersion, made.metadata.resourceVersion);
    const put = await k.put<{ metadata: { resourceVersion: string } }>(`${CM}/bundle`, { ...got, data: { a: '2' } });
    const e = await refused(k.put(`${CM}/bundle`, { ...got, data: { a: '3' } }), 'TG_KUBE_CONFLICT', 409, 'Conflict');
    assert.match(e.message, /^PUT \/api\/v1\/namespaces\/mesh\/configmaps\/bundle: 409 Conflict: the object has been modified/);
    assert.notEqual(put.metadata.resourceVersion, got.metadata.resourceVersion);
    await k.patch(`${CM}/bundle`, { data: { b: '2' } }, 'merge');
    await k.patch(`${CM}/bundle`, [{ op: 'add', path: '/data/c', value: '3' }], 'json');
    assert.deepEqual((await k.get<{ data: Record<string, string> }>(`${CM}/bundle`)).data, { a: '2', b: '2', c: '3' });
    await refused(k.patch(`${CM}/bundle`, [{ op: 'test', path: '/data/a', value: 'x' }], 'json'), 'TG_KUBE_API', 422, 'Invalid');
    await k.delete(`${CM}/bundle`);
    await refused(k.get(`${CM}/bundle`), 'TG_KUBE_NOT_FOUND', 404, 'NotFound');
    const types = stub.requests.filter((r) => r.method === 'PATCH').map((r) => r.contentType);
    assert.deepEqual(types, ['application/merge-patch+json', 'application/json-patch+json', 'application/json-patch+json']);
  } finally {
    k.close();
  }
});

test('the token file is read for every request (the kubelet rotates it); a refused token is TG_KUBE_API 401', async () => {
  const k = client();
  try {
    await refused(k.get('/api/v1/namespaces/none'), 'TG_KUBE_NOT_FOUND', 404, 'NotFound');
    writeFileSync(join(dir, 'token'), 'token-2\n');
    await refused(k.get('/api/v1/namespaces/none'), 'TG_KUBE_API', 401, 'Unauthorized');
    assert.deepEqual(stub.requests.slice(-2).map((r) => r.authorization), ['Bearer token-1', 'Bearer token-2']);
  } finally {
    writeFileSync(join(dir, 'token'), 'token-1\n');
    k.close();
  }
});

test('a client certificate authenticates too (as tests against a loopback API server do)', async () => {
  const clients = testChain('example.org', Date.now());
  const key = p256();
  const adminCert = leafFrom(clients, { subject: 'admin', spki: key.spki });
  const s = await startKubeStub({ clientCa: certsToPem([clients.root]) });
  const k = new KubeClient({ server: s.url, caPem: s.cert.caPem, clientCert: { certPem: certsToPem([adminCert, clients.intermediate]), keyPem: key.key.export({ format: 'pem', type: 'pkcs8' }) } });
  try {
    await refused(k.get('/api/v1/namespaces/none'), 'TG_KUBE_NOT_FOUND', 404, 'NotFound');
    assert.equal(s.requests[0]!.clientCertCn, 'admin');
  } finally {
    k.close();
    await s.close();
  }
});

test('an unreachable server or an untrusted certificate is TG_UNAVAILABLE', async () => {
  const closed = await startKubeStub({ token: 't' });
  await closed.close();
  const k = new KubeClient({ server: closed.url, caPem: closed.cert.caPem, token: () => 't' });
  await refused(k.get('/api'), 'TG_UNAVAILABLE', 0, '');
  k.close();
  const untrusting = new KubeClient({ server: stub.url, caPem: closed.cert.caPem, token: () => 'token-1' });
  const e = await refused(untrusting.get('/api'), 'TG_UNAVAILABLE', 0, '');
  assert.match(e.message, /GET \/api: the API server cannot be reached: .*certificate/);
  untrusting.close();
});

test('in-cluster options come from KUBERNETES_SERVICE_HOST/PORT and the service-account files', async () => {
  const port = new URL(stub.url).port;
  const o = inClusterOptions({ KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: port }, dir);
  assert.equal(o.server, stub.url);
  assert.equal(o.token?.(), 'token-1');
  const k = new KubeClient(o);
  await refused(k.get('/api/v1/namespaces/none'), 'TG_KUBE_NOT_FOUND', 404, 'NotFound');
  k.close();
  assert.equal(inClusterOptions({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, dir).server, 'https://[fd00::1]:443');
  assert.equal(inClusterNamespace(dir), 'mesh');
  assert.equal(inClusterNamespace(join(dir, 'nope')), null);
  assert.throws(() => inClusterOptions({}, dir), (e: unknown) => e instanceof TollgateError && e.code === 'TG_CONFIG_INVALID' && /not running in a Kubernetes pod/.test(e.message));
  assert.throws(() => inClusterOptions({ KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '1' }, join(dir, 'nope')), /cannot read the API token .*nope\/token/);
});

test('kubeClientOptions refuses what cannot work', () => {
  assert.throws(() => kubeClientOptions({ server: 'http://127.0.0.1:8080' }), /must be https:\/\//);
  assert.throws(() => kubeClientOptions({ server: 'kubernetes' }), /is not a URL/);
  assert.throws(() => kubeClientOptions({ server: 'https://a', certFile: 'x' }), /needs both its certificate and key files/);
});
