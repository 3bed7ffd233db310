// First start on an empty cluster: two `tollgate ca serve --store kubernetes --init-if-empty`
// processes started together on one namespace, each with the chart's RBAC and a token of the CA's
// ServiceAccount, create exactly one CA (one root, one intermediate, records at revision 1), serve
// the same bundle over gRPC, and publish it to ConfigMap tollgate-bundle. A third process told
// another trust domain refuses to serve this store; a fourth that never polls follows a commit
// made by `ca rotate` through its watch alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bundleOf } from '../../ca/slots.ts';
import { certsToPem } from '../../pki/pem.ts';
import { CA_NAMESPACE, kubeCaForFile, kubeStoreFlags, kubeStoreFor, startKubeCa } from '../helpers/kube-ca.ts';
import { kubeTierMissing } from '../helpers/kube-cluster.ts';
import { startTollgate, tollgate } from '../helpers/procs.ts';

const skip = kubeTierMissing();
const TD = 'cluster.local';
const file = kubeCaForFile({ prefix: 'tollgate-kube-first-', set: [`trustDomain=${TD}`] });

test('two replicas starting together on an empty namespace create exactly one CA and serve the same bundle', { skip }, async () => {
  const { cluster, rbac } = file;
  const start = async (name: string) => file.track(await startKubeCa(cluster, { tokenFile: rbac.tokenFile, dir: file.dir, name, extra: ['--init-if-empty', '--trust-domain', TD] }));
  const cas = await Promise.all([start('a'), start('b')]);

  const { store, client } = kubeStoreFor(cluster, { token: rbac.token });
  try {
    const { revision, records } = await store.read();
    assert.equal(revision, 1, 'one commit: the loser of the create wrote nothing');
    assert.deepEqual(records.authorities.map((a) => `${a.kind}/${a.slot}`).sort(), ['intermediate/active', 'root/active']);
    assert.equal(records.trustDomain, TD);
    const created = cas.filter((c) => c.proc.stderr().includes('created the CA: the store held none'));
    assert.equal(created.length, 1, cas.map((c) => c.proc.stderr()).join('\n---\n'));

    // Both serve that root, over gRPC, as the bundle.
    const root = await store.certificate(bundleOf(records).rootIds[0]!);
    for (const ca of cas) {
      const b = await ca.client([root]).getBundle();
      assert.deepEqual(b.roots, [root]);
      assert.equal(b.version, records.bundleVersion);
      assert.equal((await ca.status()).store_revision, 1);
    }
    // The public copy for clients outside the mesh.
    const cm = await cluster.waitFor(async () => {
      const res = await cluster.get(`/api/v1/namespaces/${CA_NAMESPACE}/configmaps/tollgate-bundle`);
      return res.status === 200 ? res.body : undefined;
    }, 'ConfigMap tollgate-bundle');
    assert.equal(cm.data['bundle.pem'], certsToPem([root]));
    assert.equal(cm.metadata.annotations['tollgate.io/bundle-version'], String(records.bundleVersion));
    // The Secret holds the records and each authority's certificate and key, nothing else.
    const secret = (await cluster.get(`/api/v1/namespaces/${CA_NAMESPACE}/secrets/tollgate-ca`)).body;
    assert.deepEqual(Object.keys(secret.data).sort(), [...records.authorities.flatMap((a) => [`${a.id}.crt`, `${a.id}.key`]), 'records.json'].sort());
    // Keys never reach a log.
    for (const ca of cas) assert.ok(!/PRIVATE KEY|BEGIN/.test(ca.proc.stderr()), 'no PEM in the log');
  } finally {
    client.close();
  }
});

test('a replica told another trust domain refuses the store; ca init refuses to replace it; ca status reads it', { skip }, async () => {
  const flags = kubeStoreFlags(file.cluster, { tokenFile: file.rbac.tokenFile });
  const again = tollgate(['ca', 'init', ...flags, '--trust-domain', TD]);
  assert.equal(again.code, 1, again.stderr);
  assert.match(again.stderr, /TG_STORE_EXISTS: a CA already exists in Secret tollgate-system\/tollgate-ca; pass --force/);
  const status = tollgate(['ca', 'status', ...flags, '--json']);
  assert.equal(status.code, 0, status.stderr);
  assert.equal((JSON.parse(status.stdout) as { trust_domain: string }).trust_domain, TD);
  await assert.rejects(
    startTollgate(['ca', 'serve', ...kubeStoreFlags(file.cluster, { tokenFile: file.rbac.tokenFile }), '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--init-if-empty', '--trust-domain', 'other.example'], 30_000),
    /is for trust domain cluster\.local, not other\.example/,
  );
});

test('a replica that does not poll (--store-poll 1h) still follows a commit: through its watch on the Secret', { skip }, async () => {
  const { cluster, rbac } = file;
  const c = file.track(await startKubeCa(cluster, { tokenFile: rbac.tokenFile, dir: file.dir, name: 'c', extra: ['--trust-domain', TD, '--store-poll', '1h', '--no-auto-rotate'] }));
  const before = (await c.status()).store_revision as number;
  const rotated = tollgate(['ca', 'rotate', 'intermediate', ...kubeStoreFlags(cluster, { tokenFile: rbac.tokenFile }), '--force', '--max-leaf-ttl', '1s', '--json']);
  assert.equal(rotated.code, 0, rotated.stderr);
  const { store, client } = kubeStoreFor(cluster, { token: rbac.token });
  try {
    const now = (await store.read()).revision;
    assert.equal(now, before + 3, 'prepare, activate, retire');
    await cluster.waitFor(async () => (await c.status()).store_revision === now, 'the watching replica on the new revision');
  } finally {
    client.close();
  }
});
