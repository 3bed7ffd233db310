import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';
import { TollgateError } from '../common/errors.ts';
import { certsToPem } from '../pki/pem.ts';
import { testChain } from '../pki/test-chain.ts';
import { validateStrict } from '../test/helpers/kube-schema.ts';
import { parseInjectorConfig } from './config.ts';
import { injectPod } from './inject.ts';
import { injectManifest, trustDomainOfBundle, type ManifestOptions } from './manifest.ts';

const config = parseInjectorConfig('trustDomain: example.org\ncaAddress: tollgate-ca.tollgate-system.svc:8443\nimage: tollgate:dev\n', { source: 'x' });
const bundlePem = certsToPem([testChain('example.org').root]);
const options: ManifestOptions = { config, bundlePem, source: 'app.yaml' };

const podSpec = `
      containers:
        - name: app # the app
          image: app:1`;
const workload = (kind: string, apiVersion: string, name: string): string =>
  `apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: {name: ${name}, namespace: shop}\nspec:\n${apiVersion === 'apps/v1' ? `  selector: {matchLabels: {app: ${name}}}\n` : ''}  template:\n    metadata:\n      labels: {app: ${name}}\n    spec:${podSpec}\n`;

const MANIFEST = [
  '# the whole app\n' + workload('Deployment', 'apps/v1', 'web'),
  workload('StatefulSet', 'apps/v1', 'db'),
  workload('DaemonSet', 'apps/v1', 'agent'),
  workload('ReplicaSet', 'apps/v1', 'rs'),
  workload('ReplicationController', 'v1', 'rc'),
  workload('Job', 'batch/v1', 'migrate'),
  `apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: nightly, namespace: shop}\nspec:\n  schedule: "@daily"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          containers: [{name: app, image: app:1}]\n`,
  `apiVersion: v1\nkind: Pod\nmetadata:\n  name: debug\n  namespace: shop\nspec:${podSpec.replace(/\n {6}/g, '\n  ')}\n`,
  'apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: 80}]   # untouched\n',
  'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n',
].join('---\n');

const WORKLOAD_MODELS: Record<string, string> = {
  Deployment: 'apps/v1/Deployment', StatefulSet: 'apps/v1/StatefulSet', DaemonSet: 'apps/v1/DaemonSet', ReplicaSet: 'apps/v1/ReplicaSet',
  ReplicationController: 'v1/ReplicationController', Job: 'batch/v1/Job', CronJob: 'batch/v1/CronJob', Pod: 'v1/Pod',
};

test('every kind with a pod template is injected, other kinds are untouched, comments stay; each object is valid under its current schema', async () => {
  const r = injectManifest(MANIFEST, options);
  assert.deepEqual(r.objects.map((o) => [o.object, o.decision]), [
    ['deployment/web', 'injected'], ['statefulset/db', 'injected'], ['daemonset/agent', 'injected'], ['replicaset/rs', 'injected'],
    ['replicationcontroller/rc', 'injected'], ['job/migrate', 'injected'], ['cronjob/nightly', 'injected'], ['pod/debug', 'injected'],
  ]);
  assert.match(r.text, /^# the whole app\n/);
  assert.match(r.text, /- name: app # the app\n/);
  assert.match(r.text, /ports: \[ \{ port: 80 \} \] # untouched\n/);
  const docs = parseAllDocuments(r.text) as ReturnType<typeof parseAllDocuments> & unknown[];
  const before = (parseAllDocuments(MANIFEST) as unknown[] as { toJS(): Record<string, unknown> }[]).map((d) => d.toJS());
  for (const [i, doc] of (docs as unknown as { toJS(): Record<string, unknown> }[]).entries()) {
    const obj = doc.toJS();
    const kind = String(obj['kind']);
    if (!WORKLOAD_MODELS[kind]) {
      assert.deepEqual(obj, before[i], `${kind} untouched`);
      continue;
    }
    await validateStrict(WORKLOAD_MODELS[kind], obj);
    // The tree edit gives the same template injectPod gives.
    const path = kind === 'Pod' ? [] : kind === 'CronJob' ? ['spec', 'jobTemplate', 'spec', 'template'] : ['spec', 'template'];
    const at = (o: unknown): Record<string, unknown> => path.reduce((x, k) => (x as Record<string, unknown>)[k], o) as Record<string, unknown>;
    const expected = injectPod(at(before[i]), { config, bundlePem, namespace: 'shop', namespaceLabels: { 'tollgate.io/inject': 'enabled' } }).pod;
    assert.deepEqual(at(obj), expected, kind);
  }
});

test('running it twice changes nothing', () => {
  const once = injectManifest(MANIFEST, options).text;
  const twice = injectManifest(once, options);
  assert.equal(twice.text, once);
  assert.ok(twice.objects.every((o) => o.decision === 'skipped' && o.reason === 'already injected'));
});

test('the items of a kind: List (kubectl get -o yaml) are injected', () => {
  const list = `apiVersion: v1\nkind: List\nitems:\n- ${workload('Deployment', 'apps/v1', 'web').replace(/\n/g, '\n  ').trimEnd()}\n`;
  const r = injectManifest(list, options);
  assert.deepEqual(r.objects.map((o) => o.decision), ['injected']);
  const items = (parseAllDocuments(r.text) as unknown as { toJS(): { items: { spec: { template: { spec: { initContainers: { name: string }[] } } } }[] } }[])[0]!.toJS().items;
  assert.deepEqual(items[0]!.spec.template.spec.initContainers.map((c) => c.name), ['tollgate-proxy']);
});

test('opt-out, never-injected namespaces and --force', () => {
  const optedOut = workload('Deployment', 'apps/v1', 'web').replace('labels: {app: web}', 'labels: {app: web}\n      annotations: {tollgate.io/inject: disabled}');
  assert.deepEqual(injectManifest(optedOut, options).objects.map((o) => [o.decision, o.reason]), [['skipped', 'pod annotation tollgate.io/inject is disabled']]);
  const forced = injectManifest(optedOut, { ...options, force: true }).objects[0]!;
  assert.equal(forced.decision, 'injected');
  assert.match(forced.reason, /^forced despite the opt-out/);
  const system = workload('Deployment', 'apps/v1', 'dns').replace('namespace: shop', 'namespace: kube-system');
  assert.deepEqual(injectManifest(system, { ...options, force: true }).objects.map((o) => o.reason), ['namespace kube-system is never injected']);
});

test('bad input names the object or the line', () => {
  const refuse = (text: string, code: string, message: RegExp): void => {
    assert.throws(() => injectManifest(text, options), (e: unknown) => e instanceof TollgateError && e.code === code && message.test(e.message) || assert.fail(String(e)));
  };
  refuse(workload('Deployment', 'apps/v1', 'web').replace('labels: {app: web}', 'labels: {app: web}\n      annotations: {tollgate.io/inbound-ports: "80,x"}'), 'TG_ANNOTATION_INVALID', /^deployment\/web: annotation tollgate\.io\/inbound-ports: "80,x" has "x"/);
  refuse('apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 1}\n', 'TG_POD_INVALID', /^deployment\/web: has no spec\.template \(its pod template\)$/);
  refuse('kind: Pod\nmetadata: {name: p}\nspec:\n  containers: []\n', 'TG_POD_INVALID', /^pod\/p: cannot inject: the pod has no containers$/);
  refuse('a: 1\n---\nkind: Pod\nspec: [\n', 'TG_CONFIG_INVALID', /^cannot read manifest app\.yaml line 4: invalid YAML/);
});

test('an empty manifest or one of only comments prints as it came', () => {
  for (const text of ['', '# nothing\n', '---\n']) assert.equal(injectManifest(text, options).text.trim(), text.trim());
});

test('trustDomainOfBundle reads the roots\' spiffe:// URI SAN', () => {
  assert.equal(trustDomainOfBundle(bundlePem, 'b'), 'example.org');
  assert.throws(() => trustDomainOfBundle('nothing', 'bundle.pem'), /bundle\.pem holds no PEM "CERTIFICATE" block/);
});
