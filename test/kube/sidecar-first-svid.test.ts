// The whole first-issue path against a real kube-apiserver: a `tollgate ca serve --k8s-api-server`
// process whose own credential is a ServiceAccount token allowed only to create tokenreviews, and a
// `tollgate sidecar run` process whose attestation.tokenFile holds a pod-bound token minted by the
// real TokenRequest API (audience tollgate-ca), as the kubelet would project it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initCa, startCa, type RunningTestCa } from '../helpers/ca-fixture.ts';
import { kubeTierMissing, startKubeCluster, type KubeCluster } from '../helpers/kube-cluster.ts';
import { grantTokenReview, workload } from '../helpers/kube-workload.ts';
import { startTollgate, tempDir, type Started } from '../helpers/procs.ts';

const skip = kubeTierMissing();
const TD = 'cluster.local';
let tmp: ReturnType<typeof tempDir>;
let cluster: KubeCluster;
let ca: RunningTestCa;
let sidecar: Started | undefined;

before(async () => {
  if (skip) return;
  tmp = tempDir('tollgate-kube-sidecar-');
  cluster = await startKubeCluster();
  await workload(cluster, 'shop', 'web', ['web-7d4b9c-x2x7q']);
  const caTokenFile = join(tmp.dir, 'ca-sa-token');
  writeFileSync(caTokenFile, await grantTokenReview(cluster, { namespace: 'tollgate-system', serviceAccount: 'tollgate-ca' }), { mode: 0o600 });
  const dir = join(tmp.dir, 'ca');
  initCa(dir, TD);
  ca = await startCa(dir, ['--k8s-api-server', cluster.server, '--k8s-ca-file', cluster.caFile, '--k8s-token-file', caTokenFile]);
});

after(async () => {
  await sidecar?.stop();
  await ca?.stop();
  await cluster?.stop();
  tmp?.cleanup();
});

test('a sidecar with a TokenRequest-minted pod token gets its first SVID from a CA that asks the real API server', { skip }, async () => {
  const pod = (await cluster.read({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-7d4b9c-x2x7q', namespace: 'shop' } }))!;
  const tokenFile = join(tmp.dir, 'token');
  const { token } = await cluster.tokenRequest({ namespace: 'shop', serviceAccount: 'web', audience: 'tollgate-ca', boundPod: 'web-7d4b9c-x2x7q', expirationSeconds: 3600 });
  writeFileSync(tokenFile, token, { mode: 0o600 });
  const config = join(tmp.dir, 'sidecar.yaml');
  writeFileSync(config, [
    `trustDomain: ${TD}`,
    `ca: { address: "127.0.0.1:${ca.grpcPort}", spiffeId: "${ca.serverId}", bundleFile: ${JSON.stringify(join(ca.dir, 'bundle.pem'))} }`,
    `attestation: { tokenFile: ${JSON.stringify(tokenFile)} }`,
    'inbound: []',
    'outbound: []',
    'admin: { listen: "127.0.0.1:0" }',
  ].join('\n'));

  sidecar = await startTollgate(['sidecar', 'run', '--config', config]);
  assert.equal(sidecar.ready.spiffe_id, `spiffe://${TD}/ns/shop/sa/web`);
  const readyz = await fetch(`http://127.0.0.1:${sidecar.ready.admin_port as number}/readyz`);
  assert.equal(readyz.status, 200, await readyz.text());

  // The CA's audit line shows the decision came from the API server's view of the pod.
  const issued = ca.auditLines().filter((l) => l.event === 'svid_issued');
  assert.equal(issued.length, 1, JSON.stringify(ca.auditLines()));
  assert.equal(issued[0]!.attestation, 'k8s_token');
  assert.equal(issued[0]!.spiffe_id, `spiffe://${TD}/ns/shop/sa/web`);
  assert.deepEqual(issued[0]!.details, { namespace: 'shop', service_account: 'web', pod: 'web-7d4b9c-x2x7q', pod_uid: pod.metadata.uid });
  assert.ok(!JSON.stringify(ca.auditLines()).includes(token), 'the token must never reach the audit log');
});
