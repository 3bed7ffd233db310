// The harness the real-API-server tier stands on (test/helpers/kube-cluster.ts): a control plane with
// kube-controller-manager turns a Deployment into Pods, client identities get exactly what RBAC
// grants them, kubectl works with the admin kubeconfig, and stop() leaves no process or directory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { kubeTierMissing, startKubeCluster, type KubeCluster } from '../helpers/kube-cluster.ts';
import { deploymentFor, workload } from '../helpers/kube-workload.ts';

const skip = kubeTierMissing();
let cluster: KubeCluster;

before(async () => {
  if (skip) return;
  cluster = await startKubeCluster({ controllerManager: true });
});

after(async () => {
  await cluster?.stop();
});

test('kube-controller-manager: a Deployment becomes a ReplicaSet and Pods (Pending: no scheduler)', { skip }, async () => {
  await workload(cluster, 'shop', 'web');
  await cluster.apply(deploymentFor('shop', 'web', { replicas: 2 }));
  const pods = await cluster.waitFor(async () => {
    const items = (await cluster.get('/api/v1/namespaces/shop/pods?labelSelector=app%3Dweb')).body.items as Array<{ metadata: { name: string }; status: { phase: string } }>;
    return items.length === 2 ? items : undefined;
  }, 'two pods of Deployment web');
  assert.ok(pods.every((p) => p.metadata.name.startsWith('web-') && p.status.phase === 'Pending'));
  // The namespace got its default ServiceAccount from the serviceaccount controller.
  assert.ok(await cluster.waitFor(() => cluster.read({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: 'shop' } }), 'default SA in shop'));
});

test('a client-certificate user has no rights until a RoleBinding grants them', { skip }, async () => {
  await workload(cluster, 'shop', 'web');
  const alice = cluster.clientFor('alice', ['shop-devs']);
  assert.equal((await alice.get('/api/v1/namespaces/shop/pods')).status, 403);
  await cluster.apply({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'devs-view', namespace: 'shop' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'shop-devs' }],
  });
  assert.equal((await alice.get('/api/v1/namespaces/shop/pods')).status, 200);
  assert.equal((await alice.get('/api/v1/namespaces/default/pods')).status, 403);
  // Her kubeconfig carries the same identity for kubectl and helm.
  const whoami = cluster.kubectl(['--kubeconfig', alice.kubeconfig, 'auth', 'can-i', 'list', 'pods', '-n', 'shop']);
  assert.equal(whoami.stdout.trim(), 'yes', whoami.stderr);
});

test('kubectl and helm with the admin kubeconfig reach the cluster', { skip }, async () => {
  const r = cluster.kubectl(['get', 'namespace', 'kube-system', '-o', 'jsonpath={.status.phase}']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Active');
  const h = cluster.helm(['list', '--all-namespaces', '-o', 'json']);
  assert.equal(h.code, 0, h.stderr);
  assert.deepEqual(JSON.parse(h.stdout), []);
});

test('stop() ends every component and removes the temporary directory', { skip }, async () => {
  const second = await startKubeCluster();
  const pids = Object.keys(second.rss());
  assert.deepEqual(pids.sort(), ['etcd', 'kube-apiserver']);
  assert.ok(Object.values(second.rss()).every((b) => b > 0));
  await second.stop();
  assert.ok(Object.values(second.rss()).every((b) => b === 0), JSON.stringify(second.rss()));
  assert.equal(existsSync(second.dir), false);
});
