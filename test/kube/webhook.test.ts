// The injection webhook against a real kube-apiserver v1.20 with kube-controller-manager: a real
// `tollgate ca serve --webhook-listen` process whose API credential is a TokenRequest token of the
// ServiceAccount tollgate-system/tollgate-ca, bound to the RBAC the chart renders for
// webhook.scope=all-namespaces (so RBAC is real), and the chart's own MutatingWebhookConfiguration
// with clientConfig.service swapped for a url (a Service cannot reach a local process) and no
// caBundle: the CA's keeper has to write it. The API server applies the webhook's patches itself.
//
// v1.20 drops restartPolicy: Always from init containers and then refuses their probes, so the
// registered CA runs with nativeSidecar: false; a second replica with nativeSidecar: true is asked
// directly with an AdmissionReview, and its pod validated against current schemas instead.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { injectPod } from '../../injector/inject.ts';
import { loadInjectorConfig } from '../../injector/config.ts';
import { parseSidecarConfig } from '../../sidecar/config.ts';
import { initCa, startCa, type RunningTestCa } from '../helpers/ca-fixture.ts';
import { findObject, renderObjects } from '../helpers/chart.ts';
import { applyPatch, type Op } from '../helpers/json-patch.ts';
import { kubeTierMissing, startKubeCluster, type KubeCluster } from '../helpers/kube-cluster.ts';
import type { KubeObject } from '../helpers/kube-client.ts';
import { deploymentFor } from '../helpers/kube-workload.ts';
import { validateStrict } from '../helpers/kube-schema.ts';
import { tempDir } from '../helpers/procs.ts';

const skip = kubeTierMissing();
// Every test is bounded: a hang shows as a failure naming the test.
const opts = { skip, timeout: 90_000 };
const TD = 'cluster.local';
const MWC_NAME = 'tollgate-sidecar-injector';
const MWC_PATH = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${MWC_NAME}`;
const WEBHOOK = 'sidecar-injector.tollgate.io';
const ORDERS = `spiffe://${TD}/ns/shop/sa/orders`;
const MESH_ANNOTATIONS = {
  'tollgate.io/inbound-ports': '8080',
  'tollgate.io/upstreams': `orders=${ORDERS}@orders.shop.svc:8080`,
  'tollgate.io/policy-configmap': 'web-policy',
};
// The caBundle keeper re-reads the configuration every minute by default; tests do not wait that long.
const RESYNC = '1s';

let tmp: ReturnType<typeof tempDir>;
let cluster: KubeCluster;
let ca: RunningTestCa;
let caDir: string;
let bundlePem: string;
let webhookPort: number;
let caToken: string;
const files: Record<string, string> = {};

type Pod = KubeObject & { spec: { containers: Container[]; initContainers?: Container[]; volumes?: Record<string, any>[]; serviceAccountName?: string } };
type Container = { name: string; args?: string[]; env?: { name: string; value: string }[]; [k: string]: any };

/** The chart's objects for a webhook scope (release namespace tollgate-system). */
const chart = (scope: 'all-namespaces' | 'labelled-namespaces'): KubeObject[] => renderObjects({ set: [`webhook.scope=${scope}`] }) as KubeObject[];

/** The chart's MutatingWebhookConfiguration, pointed at the local webhook by url. */
function chartWebhook(scope: 'all-namespaces' | 'labelled-namespaces'): KubeObject {
  const mwc = structuredClone(findObject(chart(scope) as never, 'MutatingWebhookConfiguration', MWC_NAME)) as KubeObject;
  mwc.webhooks[0].clientConfig = { url: `https://127.0.0.1:${webhookPort}/inject` };
  return mwc;
}

function caArgs(injectorConfig: string): string[] {
  return [
    '--k8s-api-server', cluster.server, '--k8s-ca-file', cluster.caFile, '--k8s-token-file', files.token!,
    '--webhook-listen', '127.0.0.1:0', '--webhook-ip-sans', '127.0.0.1', '--webhook-config-name', MWC_NAME,
    '--webhook-cabundle-resync', RESYNC, '--injector-config', injectorConfig, '--namespace', 'tollgate-system',
  ];
}

function injectorConfig(name: string, nativeSidecar: boolean): string {
  const file = join(tmp.dir, name);
  writeFileSync(file, `trustDomain: ${TD}\ncaAddress: tollgate-ca.tollgate-system.svc:8443\nimage: ghcr.io/tollgate/tollgate:0.1.0\nnativeSidecar: ${nativeSidecar}\n`);
  return file;
}

/** The admission decisions a CA process logged. */
type Admission = { decision: string; namespace: string; pod: string; reason: string; uid?: string };
/** The first admission decision a CA process logged that matches (polled: its stderr arrives through a pipe). */
function admission(p: RunningTestCa, match: (a: Admission) => boolean): Promise<Admission> {
  const logged = (): Admission[] => p.proc.stderr().split('\n').filter((l) => l.includes('"event":"admission"')).map((l) => JSON.parse(l) as Admission);
  return cluster.waitFor(() => logged().find(match), 'the admission log line', 10_000);
}

const pod = (namespace: string, name: string, annotations: Record<string, string> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace, annotations },
  spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
});

const createPod = (p: KubeObject, query = ''): Promise<{ status: number; body: any }> => cluster.post(`/api/v1/namespaces/${p.metadata.namespace}/pods${query}`, p);
const names = (cs: Container[] | undefined): string[] => (cs ?? []).map((c) => c.name);
const isUntouched = (p: Pod): boolean => !names([...p.spec.containers, ...(p.spec.initContainers ?? [])]).some((n) => n.startsWith('tollgate-')) && !p.metadata.annotations?.['tollgate.io/injected'];

/** POST an AdmissionReview to a webhook over HTTPS, trusting only the CA's bundle. */
function askWebhook(port: number, review: unknown): Promise<{ status: number; body: any }> {
  const payload = JSON.stringify(review);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/inject', method: 'POST', ca: bundlePem, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
        } catch {
          resolve({ status: res.statusCode ?? 0, body: text });
        }
      });
    });
    req.setTimeout(15_000, () => req.destroy(new Error('no answer from the webhook within 15 s')));
    req.on('error', reject);
    req.end(payload);
  });
}

before(async () => {
  if (skip) return;
  tmp = tempDir('tollgate-kube-webhook-');
  // The token controller is not needed (no pod mounts a legacy token Secret); controllers act as admin.
  cluster = await startKubeCluster({ controllerManager: { controllers: ['*', '-serviceaccount-token'] } });
  for (const [name, labels] of [['tollgate-system', {}], ['shop', { 'tollgate.io/inject': 'enabled' }], ['plain', {}]] as const) {
    await cluster.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
  }
  // The CA's ServiceAccount and RBAC exactly as the chart renders them for this scope.
  for (const o of chart('all-namespaces').filter((x) => ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(x.kind))) await cluster.apply(o);
  caToken = (await cluster.tokenRequest({ namespace: 'tollgate-system', serviceAccount: 'tollgate-ca' })).token;
  files.token = join(tmp.dir, 'ca-sa-token');
  writeFileSync(files.token, caToken, { mode: 0o600 });
  caDir = join(tmp.dir, 'ca');
  initCa(caDir, TD);
  bundlePem = readFileSync(join(caDir, 'bundle.pem'), 'utf8');
  files.legacy = injectorConfig('injector-legacy.yaml', false);
  ca = await startCa(caDir, caArgs(files.legacy));
  webhookPort = ca.proc.ready['webhook_port'] as number;
});

after(async () => {
  await ca?.stop();
  await cluster?.stop();
  tmp?.cleanup();
});

test("the chart's webhook, registered without a caBundle, gets the CA's bundle from the CA's keeper", opts, async () => {
  const mwc = chartWebhook('all-namespaces');
  assert.equal(mwc.webhooks[0].failurePolicy, 'Fail');
  assert.equal(mwc.webhooks[0].reinvocationPolicy, 'IfNeeded');
  const created = await cluster.create(mwc);
  assert.equal(created.webhooks[0].clientConfig.caBundle, undefined);
  const caBundle = await cluster.waitFor(async () => (await cluster.get(MWC_PATH)).body.webhooks[0].clientConfig.caBundle as string | undefined, 'caBundle written by the CA');
  assert.equal(Buffer.from(caBundle, 'base64').toString(), bundlePem);
});

test("the CA's token gets what the chart's RBAC grants and nothing more", opts, async () => {
  const asCa = cluster.clientWithToken(caToken);
  assert.equal((await asCa.get('/api/v1/namespaces/shop')).status, 200);
  assert.equal((await asCa.get(MWC_PATH)).status, 200);
  assert.equal((await asCa.get('/api/v1/namespaces')).status, 403);
  assert.equal((await asCa.get('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations')).status, 403);
  assert.equal((await asCa.patch('/api/v1/namespaces/shop', { metadata: { labels: { x: 'y' } } })).status, 403);
  assert.equal((await asCa.get('/api/v1/namespaces/shop/secrets')).status, 403);
});

test('a Deployment in a labelled namespace yields a Pod the API server injected: sidecar, capture, token volume, upstream env, marker', opts, async () => {
  await cluster.apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'web', namespace: 'shop' } });
  await cluster.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'web-policy', namespace: 'shop' }, data: { 'policy.yaml': `ports:\n  "8080":\n    allow: ["spiffe://${TD}/ns/shop/sa/orders"]\n` } });
  await cluster.apply(deploymentFor('shop', 'web', { annotations: MESH_ANNOTATIONS, ports: [8080] }));
  const p = await cluster.waitFor(async () => (await cluster.get('/api/v1/namespaces/shop/pods?labelSelector=app%3Dweb')).body.items[0] as Pod | undefined, 'a pod of Deployment web');
  // The ReplicaSet controller sends generateName only; the name is set after admission.
  const decision = await admission(ca, (a) => a.namespace === 'shop' && a.decision === 'injected');
  assert.match(decision.pod, /^web-[a-z0-9]+-$/);
  assert.ok(p.metadata.name!.startsWith(decision.pod));

  assert.equal(p.metadata.annotations!['tollgate.io/injected'], 'true');
  assert.equal(p.metadata.annotations!['kubectl.kubernetes.io/default-container'], 'app');
  // nativeSidecar: false: the sidecar is the first regular container, the capture container the only init container.
  assert.deepEqual(names(p.spec.containers), ['tollgate-proxy', 'app']);
  assert.deepEqual(names(p.spec.initContainers), ['tollgate-init']);
  const [proxy, app] = p.spec.containers as [Container, Container];
  const init = p.spec.initContainers![0]!;
  assert.deepEqual(init.args, ['capture', '--inbound', '8080:15006', '--exclude-uid', '2102']);
  assert.deepEqual(init.securityContext.capabilities, { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] });
  assert.deepEqual(proxy.args, ['sidecar', 'run', '--config-env', 'TOLLGATE_SIDECAR_CONFIG']);
  assert.deepEqual(proxy.lifecycle.postStart.exec.command, ['tollgate', 'sidecar', 'wait', '--admin', '127.0.0.1:15020', '--timeout', '60s']);
  assert.equal(proxy.securityContext.runAsUser, 2102);
  assert.deepEqual(app.env, [{ name: 'TOLLGATE_UPSTREAM_ORDERS', value: '127.0.0.1:15101' }]);
  const token = p.spec.volumes!.find((v) => v.name === 'tollgate-token')!;
  assert.deepEqual(token.projected.sources, [{ serviceAccountToken: { audience: 'tollgate-ca', expirationSeconds: 3600, path: 'token' } }]);
  assert.deepEqual(proxy.volumeMounts.find((m: { name: string }) => m.name === 'tollgate-token'), { name: 'tollgate-token', mountPath: '/var/run/secrets/tollgate', readOnly: true });
  assert.deepEqual(p.spec.volumes!.find((v) => v.name === 'tollgate-policy')!.configMap, { name: 'web-policy', items: [{ key: 'policy.yaml', path: 'policy.yaml' }], defaultMode: 420 });
  assert.equal(p.spec.serviceAccountName, 'web');
  // managedFields holds free-form field sets the schema walker cannot see into; the rest is checked.
  await validateStrict('v1/Pod', { ...p, metadata: { ...p.metadata, managedFields: undefined } });
  // Only pods are injected: the Deployment's template stays as written.
  const d = (await cluster.read({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop' } }))!;
  assert.deepEqual(names(d.spec.template.spec.containers), ['app']);

  // The injected config is one the sidecar's own parser accepts, with the CA's bundle inline.
  const env = proxy.env!.find((e) => e.name === 'TOLLGATE_SIDECAR_CONFIG')!;
  const c = parseSidecarConfig(env.value, { source: 'env TOLLGATE_SIDECAR_CONFIG' });
  assert.equal(c.trustDomain, TD);
  assert.deepEqual(c.ca, { address: { host: 'tollgate-ca.tollgate-system.svc', port: 8443 }, spiffeId: `spiffe://${TD}/tollgate/ca`, bundlePem });
  assert.deepEqual(c.attestation, { kind: 'k8s', tokenFile: '/var/run/secrets/tollgate/token' });
  assert.deepEqual(c.inbound.map((l) => [l.listen, l.appPort]), [[{ host: '0.0.0.0', port: 15006 }, 8080]]);
  assert.deepEqual(c.outbound, [{ listen: { host: '127.0.0.1', port: 15101 }, upstream: { host: 'orders.shop.svc', port: 8080 }, spiffeId: ORDERS }]);
  assert.deepEqual(c.policy, { file: '/etc/tollgate/policy/policy.yaml' });
  assert.deepEqual([c.admin.listen, c.capture], [{ host: '0.0.0.0', port: 15020 }, 'iptables']);
});

test('an opted-out pod, a kube-system pod and a pod of a plain namespace are created untouched', opts, async () => {
  const cases = [
    [pod('shop', 'opted-out', { 'tollgate.io/inject': 'disabled', ...MESH_ANNOTATIONS }), 'pod annotation tollgate.io/inject is disabled'],
    [pod('kube-system', 'system', { 'tollgate.io/inject': 'enabled' }), 'namespace kube-system is never injected'],
    [pod('plain', 'plain'), /^not opted in/],
  ] as const;
  for (const [p, reason] of cases) {
    const res = await createPod(p);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.ok(isUntouched(res.body as Pod), `${p.metadata.namespace}/${p.metadata.name} was changed: ${JSON.stringify(res.body.spec)}`);
    // The webhook was asked (v1.20 has no kubernetes.io/metadata.name label to exclude kube-system by) and declined.
    const a = await admission(ca, (x) => x.namespace === p.metadata.namespace && x.pod === p.metadata.name);
    assert.equal(a.decision, 'skipped');
    if (typeof reason === 'string') assert.equal(a.reason, reason);
    else assert.match(a.reason, reason);
  }
});

test("a pod with a bad annotation is refused with the injector's own message", opts, async () => {
  const bad = pod('shop', 'bad-port', { 'tollgate.io/inbound-ports': 'http', 'tollgate.io/policy-configmap': 'web-policy' });
  const res = await createPod(bad);
  const local = (() => {
    try {
      injectPod(bad, { config: loadInjectorConfig(files.legacy!), bundlePem, namespace: 'shop', namespaceLabels: { 'tollgate.io/inject': 'enabled' } });
    } catch (e) {
      return (e as Error).message;
    }
    return 'injectPod accepted it';
  })();
  assert.equal(res.status, 400, JSON.stringify(res.body));
  assert.equal(res.body.message, `admission webhook "${WEBHOOK}" denied the request: Tollgate cannot inject this pod: ${local}`);
  assert.match(local, /^annotation tollgate\.io\/inbound-ports: "http"/);
  assert.equal((await cluster.get('/api/v1/namespaces/shop/pods/bad-port')).status, 404);
});

test('a pod annotated tollgate.io/inject: enabled in a plain namespace is injected (labels read with the CA\'s RBAC)', opts, async () => {
  const res = await createPod(pod('plain', 'opted-in', { 'tollgate.io/inject': 'enabled' }));
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const p = res.body as Pod;
  assert.deepEqual(names(p.spec.containers), ['tollgate-proxy', 'app']);
  assert.equal(p.spec.initContainers, undefined, 'no inbound port: nothing to capture');
  assert.equal(p.spec.serviceAccountName, 'default');
  assert.equal((await admission(ca, (a) => a.pod === 'opted-in')).reason, 'pod annotation: sidecar container (pre-1.29 fallback), capture none, 0 inbound port(s), 0 upstream(s)');
  const c = parseSidecarConfig(p.spec.containers[0]!.env![0]!.value, { source: 'env' });
  assert.deepEqual([c.inbound, c.policy, c.capture], [[], null, 'none']);
});

test('nativeSidecar: true (a second replica, asked directly): the patch carries restartPolicy Always and a startup probe; the pod passes the current schema; v1.20 refuses it', opts, async (t) => {
  const native = await startCa(caDir, caArgs(injectorConfig('injector-native.yaml', true)));
  try {
    const object = { apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'web-5d8c-', namespace: 'shop', annotations: MESH_ANNOTATIONS }, spec: { serviceAccountName: 'web', containers: [{ name: 'web', image: 'registry.invalid/web:1' }] } };
    const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'native-1', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, namespace: 'shop', operation: 'CREATE', object } };
    const { status, body } = await askWebhook(native.proc.ready['webhook_port'] as number, review);
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual([body.response.uid, body.response.allowed, body.response.patchType], ['native-1', true, 'JSONPatch']);
    const patch = JSON.parse(Buffer.from(body.response.patch, 'base64').toString()) as Op[];
    const added = patch.find((op) => op.path === '/spec/initContainers') as { value: Container[] };
    assert.deepEqual(names(added.value), ['tollgate-init', 'tollgate-proxy']);
    const proxy = added.value[1]!;
    assert.equal(proxy.restartPolicy, 'Always');
    assert.deepEqual(proxy.startupProbe.httpGet, { path: '/readyz', port: 15020 });
    const injected = applyPatch(object, patch) as unknown as Pod;
    assert.deepEqual(names(injected.spec.containers), ['web']);
    await validateStrict('v1/Pod', injected);
    // The namespace's label came through the API (the review does not carry it).
    assert.match((await admission(native, (a) => a.uid === 'native-1')).reason, /^namespace label: native sidecar, capture iptables/);
    // What v1.20 makes of it (why the registered CA runs with nativeSidecar: false).
    const res = await createPod({ ...injected, metadata: { ...injected.metadata, name: 'native' } } as KubeObject, '?dryRun=All');
    t.diagnostic(`v1.20 on the native-sidecar pod: HTTP ${res.status}: ${res.body.message}`);
    assert.equal(res.status, 422);
    assert.match(res.body.message, /spec\.initContainers\[1\]\.startupProbe: Invalid value/);
  } finally {
    await native.stop();
  }
});

test('a corrupted caBundle is restored by the keeper', opts, async () => {
  const before = (await cluster.get(MWC_PATH)).body.webhooks[0].clientConfig.caBundle as string;
  const stale = Buffer.from(cluster.caPem).toString('base64');
  const res = await cluster.patch(MWC_PATH, [{ op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: stale }], 'json');
  assert.equal(res.status, 200, res.text);
  await cluster.waitFor(async () => (await cluster.get(MWC_PATH)).body.webhooks[0].clientConfig.caBundle === before, 'caBundle restored');
  assert.match(ca.proc.stderr(), /"msg":"webhook caBundle updated to the current bundle".*"webhooks":\["sidecar-injector.tollgate.io"\]/);
});

test('with the webhook down and failurePolicy Fail, pods it would be asked about are refused with a message naming it', opts, async (t) => {
  await ca.stop();
  const refused = async (p: KubeObject): Promise<string> => {
    const res = await createPod(p);
    assert.equal(res.status, 500, `${p.metadata.namespace}/${p.metadata.name}: ${JSON.stringify(res.body)}`);
    assert.match(res.body.message, new RegExp(`^Internal error occurred: failed calling webhook "${WEBHOOK.replace(/\./g, '\\.')}": Post "https://127\\.0\\.0\\.1:${webhookPort}/inject\\?timeout=10s": dial tcp 127\\.0\\.0\\.1:${webhookPort}: connect: connection refused$`));
    return res.body.message as string;
  };
  t.diagnostic(`webhook down: ${await refused(pod('shop', 'down-1'))}`);
  // all-namespaces sends every namespace the selector does not exclude: with Fail, an outage blocks all
  // of them (README: pair that scope with Ignore). The exclusions work by kubernetes.io/metadata.name,
  // which v1.20 does not set, so there even kube-system is blocked until it carries the label (1.21+ do).
  await refused(pod('plain', 'down-2'));
  await refused(pod('kube-system', 'down-3'));
  await cluster.patch('/api/v1/namespaces/kube-system', { metadata: { labels: { 'kubernetes.io/metadata.name': 'kube-system' } } });
  // The API server matches selectors against its informer's copy of namespaces and webhook
  // configurations, which follows a change after a moment: poll.
  const created = (p: KubeObject): Promise<unknown> => cluster.waitFor(async () => (await createPod(p)).status === 201, `${p.metadata.namespace}/${p.metadata.name} created`, 10_000);
  await created(pod('kube-system', 'down-4'));
  // Before 1.21, the operator's way out: label the namespace tollgate.io/inject=disabled (the selector's NotIn).
  await refused(pod('kube-public', 'down-4a'));
  await cluster.patch('/api/v1/namespaces/kube-public', { metadata: { labels: { 'tollgate.io/inject': 'disabled' } } });
  await created(pod('kube-public', 'down-4b'));
  // The chart's default scope (labelled-namespaces): a plain namespace is not sent, so it is not blocked.
  const labelled = chartWebhook('labelled-namespaces');
  const res = await cluster.patch(MWC_PATH, { webhooks: [{ ...labelled.webhooks[0], clientConfig: { ...labelled.webhooks[0].clientConfig, caBundle: Buffer.from(bundlePem).toString('base64') } }] }, 'merge');
  assert.equal(res.status, 200, res.text);
  await created(pod('plain', 'down-5'));
  assert.ok(isUntouched((await cluster.get('/api/v1/namespaces/plain/pods/down-5')).body as Pod));
  await refused(pod('shop', 'down-6'));
});
