// Offline root on the Kubernetes store, as the README's install steps make it: `tollgate ca init
// --dir ca --offline-root --root-key-out FILE` on the operator's machine, then
// `kubectl create secret generic tollgate-ca --from-file=ca/records.json --from-file=ca/authorities/`.
// The CA serves it without ever holding the root key and does not rotate by itself; `tollgate ca
// rotate intermediate --store kubernetes --root-key FILE` commits the new intermediate, which the
// running CA picks up through its watch; the root key never enters the Secret. A Secret made the old
// way (`--from-file=ca/`: records.json plus the root.*/intermediate.* views) is read too, and the
// first commit rewrites it in the store's own layout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { active } from '../../ca/slots.ts';
import { initCa, newKey } from '../helpers/ca-fixture.ts';
import { installChartRbac, kubeStoreFlags, kubeStoreFor, startKubeCa, type KubeCa } from '../helpers/kube-ca.ts';
import { kubeTierMissing, startKubeCluster, type KubeCluster } from '../helpers/kube-cluster.ts';
import { tempDir, tollgate } from '../helpers/procs.ts';

const skip = kubeTierMissing();
const TD = 'cluster.local';
let tmp: ReturnType<typeof tempDir>;
let cluster: KubeCluster;
const cas: KubeCa[] = [];

before(async () => {
  if (skip) return;
  tmp = tempDir('tollgate-kube-offline-');
  cluster = await startKubeCluster();
});

after(async () => {
  await Promise.all(cas.map((c) => c.stop()));
  await cluster?.stop();
  tmp?.cleanup();
});

const secretOf = async (ns: string): Promise<Record<string, string>> => (await cluster.get(`/api/v1/namespaces/${ns}/secrets/tollgate-ca`)).body.data;

test('an offline-root CA made with `ca init --dir` and kubectl serves from the Secret and rotates only with the key at hand', { skip, timeout: 120_000 }, async () => {
  const ns = 'tollgate-system';
  const rbac = await installChartRbac(cluster, { namespace: ns, dir: tmp.dir, set: ['ca.initIfEmpty=false'] });
  const dir = join(tmp.dir, 'ca');
  const rootKey = join(tmp.dir, 'root.key');
  const init = tollgate(['ca', 'init', '--trust-domain', TD, '--dir', dir, '--offline-root', '--root-key-out', rootKey]);
  assert.equal(init.code, 0, init.stderr);
  const made = cluster.kubectl(['-n', ns, 'create', 'secret', 'generic', 'tollgate-ca', `--from-file=${dir}/records.json`, `--from-file=${dir}/authorities/`]);
  assert.equal(made.code, 0, made.stderr);
  assert.ok(!Object.keys(await secretOf(ns)).some((k) => k.startsWith('root-') && k.endsWith('.key')), 'no root key in the Secret');

  const ca = await startKubeCa(cluster, { tokenFile: rbac.tokenFile, dir: tmp.dir, name: 'offline', namespace: ns, extra: ['--trust-domain', TD, '--store-poll', '1s'] });
  cas.push(ca);
  const before = await ca.status();
  assert.equal(before.automatic_rotation, false, 'no root key: no automatic rotation');
  const { store, client } = kubeStoreFor(cluster, { token: rbac.token, namespace: ns });
  try {
    const records = (await store.read()).records;
    const root = await store.certificate(active(records).root.id);
    const token = tollgate(['ca', 'token', 'create', ...kubeStoreFlags(cluster, { tokenFile: rbac.tokenFile, namespace: ns }), '--spiffe-id', `spiffe://${TD}/vm/a`, '--json']);
    assert.equal(token.code, 0, token.stderr);
    const first = await ca.client([root]).issue({ csr: newKey().csr, token: (JSON.parse(token.stdout) as { token: string }).token });

    // Without the key the rotation is refused; with it, it is committed to the Secret.
    const refused = tollgate(['ca', 'rotate', 'intermediate', ...kubeStoreFlags(cluster, { tokenFile: rbac.tokenFile, namespace: ns }), '--force', '--json']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /TG_ROOT_KEY_MISSING/);
    const rotated = tollgate(['ca', 'rotate', 'intermediate', ...kubeStoreFlags(cluster, { tokenFile: rbac.tokenFile, namespace: ns }), '--root-key', rootKey, '--force', '--max-leaf-ttl', '1s', '--json']);
    assert.equal(rotated.code, 0, rotated.stderr);
    const after = await store.read();
    const newInt = active(after.records).intermediate.id;
    assert.notEqual(newInt, active(records).intermediate.id);
    assert.ok(!Object.keys(await secretOf(ns)).some((k) => k.startsWith('root-') && k.endsWith('.key')), 'still no root key in the Secret');

    // The running CA follows and issues from the new intermediate.
    await cluster.waitFor(async () => (await ca.status()).store_revision === after.revision, 'the CA on the new revision');
    const token2 = JSON.parse(tollgate(['ca', 'token', 'create', ...kubeStoreFlags(cluster, { tokenFile: rbac.tokenFile, namespace: ns }), '--spiffe-id', `spiffe://${TD}/vm/a`, '--json']).stdout) as { token: string };
    const second = await ca.client([root]).issue({ csr: newKey().csr, token: token2.token });
    assert.ok(second.certChain[1]!.equals(await store.certificate(newInt)));
    assert.ok(!second.certChain[1]!.equals(first.certChain[1]!));
  } finally {
    client.close();
  }
});

test('a Secret made with --from-file=ca/ (the directory views) is served, and rewritten in the store layout by the first commit', { skip, timeout: 120_000 }, async () => {
  const ns = 'legacy';
  const rbac = await installChartRbac(cluster, { namespace: ns, dir: tmp.dir });
  const dir = join(tmp.dir, 'legacy-ca');
  initCa(dir, TD);
  assert.equal(cluster.kubectl(['-n', ns, 'create', 'secret', 'generic', 'tollgate-ca', `--from-file=${dir}/`]).code, 0);
  const viewKeys = Object.keys(await secretOf(ns));
  assert.ok(viewKeys.includes('intermediate.key') && !viewKeys.some((k) => k.startsWith('int-')), 'views only');
  const ca = await startKubeCa(cluster, { tokenFile: rbac.tokenFile, dir: tmp.dir, name: 'legacy', namespace: ns, extra: ['--trust-domain', TD, '--no-auto-rotate'] });
  cas.push(ca);
  const rotated = tollgate(['ca', 'rotate', 'intermediate', ...kubeStoreFlags(cluster, { tokenFile: rbac.tokenFile, namespace: ns }), '--force', '--max-leaf-ttl', '1s', '--json']);
  assert.equal(rotated.code, 0, rotated.stderr);
  const { store, client } = kubeStoreFor(cluster, { token: rbac.token, namespace: ns });
  try {
    const { records } = await store.read();
    const keys = Object.keys(await secretOf(ns)).sort();
    assert.deepEqual(keys, ['records.json', ...records.authorities.flatMap((a) => [`${a.id}.crt`, `${a.id}.key`])].sort(), 'views gone, every authority under its id');
  } finally {
    client.close();
  }
});
