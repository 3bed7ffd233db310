// RBAC: the CA does all of its work with exactly the chart's ServiceAccount, Role, ClusterRole and
// bindings (rendered by helm from charts/tollgate with the default values, applied as they are) and a
// TokenRequest token of that ServiceAccount, and can do nothing else. One CA process on an empty
// namespace: it creates its store (Secret, then ConfigMap), watches it, takes join tokens made by
// `ca token create` with the same credential, verifies a pod-bound token with TokenReview, keeps the
// webhook's caBundle, reads a namespace's labels for an admission (the default webhook.scope, which
// once lacked `get namespaces` and so refused every pod), and follows a root rotation that
// `ca rotate` commits with the same credential. No call is refused on the way.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:https';
import { certsToPem } from '../../pki/pem.ts';
import { findObject, renderObjects } from '../helpers/chart.ts';
import { newKey } from '../helpers/ca-fixture.ts';
import { CA_NAMESPACE, installChartRbac, kubeStoreFlags, rootsOf, startKubeCa, type KubeCa } from '../helpers/kube-ca.ts';
import { kubeTierMissing, startKubeCluster, type KubeCluster } from '../helpers/kube-cluster.ts';
import { workload } from '../helpers/kube-workload.ts';
import { tempDir, tollgate } from '../helpers/procs.ts';

const skip = kubeTierMissing();
const TD = 'cluster.local';
let tmp: ReturnType<typeof tempDir>;
let cluster: KubeCluster;
let ca: KubeCa;
let rbac: Awaited<ReturnType<typeof installChartRbac>>;
const MWC = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/tollgate-sidecar-injector';

before(async () => {
  if (skip) return;
  tmp = tempDir('tollgate-kube-rbac-');
  cluster = await startKubeCluster();
  // The workload first: once the chart's webhook configuration is in, pods of the labelled
  // namespace go through a Service this cluster cannot reach.
  await workload(cluster, 'shop', 'web', ['web-1']);
  await cluster.patch('/api/v1/namespaces/shop', { metadata: { labels: { 'tollgate.io/inject': 'enabled' } } });
  rbac = await installChartRbac(cluster, { dir: tmp.dir });
  const rendered = renderObjects({ namespace: CA_NAMESPACE });
  await cluster.apply(findObject(rendered, 'MutatingWebhookConfiguration', 'tollgate-sidecar-injector') as never);
  const injectorConfig = join(tmp.dir, 'injector.yaml');
  writeFileSync(injectorConfig, (findObject(rendered, 'ConfigMap', 'tollgate-injector') as unknown as { data: Record<string, string> }).data['config.yaml']!);
  ca = await startKubeCa(cluster, {
    tokenFile: rbac.tokenFile, dir: tmp.dir, name: 'ca',
    extra: ['--init-if-empty', '--trust-domain', TD, '--webhook-listen', '127.0.0.1:0', '--webhook-ip-sans', '127.0.0.1', '--webhook-dns-names', `tollgate-ca.${CA_NAMESPACE}.svc`, '--injector-config', injectorConfig, '--store-poll', '1s'],
  });
});

after(async () => {
  await ca?.stop();
  await cluster?.stop();
  tmp?.cleanup();
});

const bundlePem = async (): Promise<string> => (await cluster.get(`/api/v1/namespaces/${CA_NAMESPACE}/configmaps/tollgate-bundle`)).body?.data?.['bundle.pem'];

function admit(port: number, caPem: string, review: object): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/inject', method: 'POST', ca: caPem, headers: { 'content-type': 'application/json' }, checkServerIdentity: () => undefined }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // an error text: shown as it is
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('error', reject);
    req.end(JSON.stringify(review));
  });
}

test('the CA works with exactly the chart\'s RBAC: store, join tokens, TokenReview, caBundle, namespace labels, rotation', { skip, timeout: 180_000 }, async () => {
  const pem = await cluster.waitFor(bundlePem, 'the bundle ConfigMap (created by the CA)');
  const roots = rootsOf(pem);
  const client = ca.client(roots);

  // A join token made by `ca token create` with the CA's credential (creates and patches a shard).
  const made = tollgate(['ca', 'token', 'create', ...kubeStoreFlags(cluster, rbac), '--spiffe-id', `spiffe://${TD}/vm/billing`, '--json']);
  assert.equal(made.code, 0, made.stderr);
  const viaToken = await client.issue({ csr: newKey().csr, token: (JSON.parse(made.stdout) as { token: string }).token });
  assert.equal(viaToken.spiffeId, `spiffe://${TD}/vm/billing`);

  // TokenReview of a pod-bound projected token (the ClusterRole's create on tokenreviews).
  const { token } = await cluster.tokenRequest({ namespace: 'shop', serviceAccount: 'web', audience: 'tollgate-ca', boundPod: 'web-1' });
  assert.equal((await client.issue({ csr: newKey().csr, token })).spiffeId, `spiffe://${TD}/ns/shop/sa/web`);

  // The webhook configuration's caBundle (get and patch by name).
  await cluster.waitFor(async () => (await cluster.get(MWC)).body.webhooks[0].clientConfig.caBundle === Buffer.from(pem).toString('base64'), 'caBundle written by the CA');

  // An admission for a pod of the labelled namespace: the webhook reads the namespace (get namespaces).
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'web-', namespace: 'shop' }, spec: { serviceAccountName: 'web', containers: [{ name: 'web', image: 'web:1' }] } };
  const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u-1', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, namespace: 'shop', operation: 'CREATE', object: pod } };
  const admitted = await admit(ca.proc.ready.webhook_port as number, pem, review);
  assert.equal(admitted.status, 200, JSON.stringify(admitted.body));
  assert.deepEqual([admitted.body.response.allowed, admitted.body.response.patchType], [true, 'JSONPatch']);

  // A root rotation committed by `ca rotate` with the same credential; the CA follows its watch and
  // updates the bundle ConfigMap.
  const rotated = tollgate(['ca', 'rotate', 'root', ...kubeStoreFlags(cluster, rbac), '--force', '--settle', '0s', '--max-leaf-ttl', '1s', '--json']);
  assert.equal(rotated.code, 0, rotated.stderr + rotated.stdout);
  const after = await cluster.waitFor(async () => {
    const p = await bundlePem();
    return p !== pem && rootsOf(p).length === 1 ? p : undefined;
  }, 'the bundle ConfigMap moves to the new root');
  const status = await cluster.waitFor(async () => {
    const s = await ca.status();
    return s.bundle_version >= 4 ? s : undefined;
  }, 'the CA follows the rotation');
  assert.equal(certsToPem(rootsOf(after)), after);
  assert.equal(status.rotation.phase, 'done');

  assert.ok(!/Forbidden|\b403\b/.test(ca.proc.stderr()), `no call of the CA was refused:\n${ca.proc.stderr()}`);
});

test('and nothing more: the CA\'s credential is refused everything else', { skip }, async () => {
  const sa = cluster.clientWithToken(rbac.token);
  const ns = `/api/v1/namespaces/${CA_NAMESPACE}`;
  await cluster.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'someone-else', namespace: CA_NAMESPACE }, stringData: { k: 'v' } });
  const refused: Array<[string, Promise<{ status: number }>]> = [
    ['list secrets without naming one', sa.get(`${ns}/secrets`)],
    ['read another Secret in its namespace', sa.get(`${ns}/secrets/someone-else`)],
    ['read a Secret it created but is not named', sa.post(`${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'made-by-ca' } }).then(() => sa.get(`${ns}/secrets/made-by-ca`))],
    ['delete its own Secret', sa.delete(`${ns}/secrets/tollgate-ca`)],
    ['patch its own Secret (it updates with a resourceVersion)', sa.patch(`${ns}/secrets/tollgate-ca`, { metadata: { labels: { x: 'y' } } })],
    ['write the injector config', sa.patch(`${ns}/configmaps/tollgate-injector`, { data: { x: 'y' } })],
    ['read Secrets of another namespace', sa.get('/api/v1/namespaces/shop/secrets/anything')],
    ['create Secrets in another namespace', sa.post('/api/v1/namespaces/shop/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x' } })],
    ['touch a Lease', sa.get(`/apis/coordination.k8s.io/v1/namespaces/${CA_NAMESPACE}/leases/tollgate-ca`)],
    ['list namespaces', sa.get('/api/v1/namespaces')],
    ['patch another webhook configuration', sa.patch('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/other', { metadata: { labels: { x: 'y' } } })],
    ['read pods', sa.get('/api/v1/namespaces/shop/pods')],
  ];
  for (const [what, p] of refused) assert.equal((await p).status, 403, what);
});
