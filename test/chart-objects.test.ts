// What charts/tollgate's objects say (rendered by the real helm, no API server): the PDB only with
// more than one replica, restricted Pod Security on every container, the CA's args and mounts as
// CONTRACT.md says, RBAC named by resource except `create`, a webhook that never sees the system
// namespaces, the injector config in the contract's schema, and the optional objects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { chartDir, findObject, helm, releaseNamespace, renderObjects, selectorMatches, type LabelSelector } from './helpers/chart.ts';
import type { KubeObject } from './helpers/kube-schema.ts';

const fullValues = 'test/golden/values-full.yaml';
const defaults = renderObjects();
const full = renderObjects({ valuesFiles: [fullValues] });

/* eslint-disable @typescript-eslint/no-explicit-any -- rendered objects are walked as plain data */
type Any = any;

function podSpecs(objects: KubeObject[]): [string, Any][] {
  return objects.filter((o) => (o as Any).spec?.template?.spec).map((o) => [`${o.kind}/${o.metadata?.name}`, (o as Any).spec.template.spec]);
}

test('PodDisruptionBudget: absent with one replica, present with two, selecting the CA pods', () => {
  assert.equal(renderObjects({ set: ['replicas=1'] }).filter((o) => o.kind === 'PodDisruptionBudget').length, 0);
  const two = renderObjects({ set: ['replicas=2'] });
  const pdb = findObject(two, 'PodDisruptionBudget', 'tollgate-ca') as Any;
  assert.equal(pdb.spec.maxUnavailable, 1);
  const podLabels = (findObject(two, 'Deployment', 'tollgate-ca') as Any).spec.template.metadata.labels;
  assert.ok(selectorMatches(pdb.spec.selector, podLabels));
  assert.equal((findObject(full, 'PodDisruptionBudget', 'tollgate-ca') as Any).spec.maxUnavailable, 2);
});

for (const [label, objects] of [['default values', defaults], ['every option set', full]] as const) {
  test(`restricted Pod Security on every pod and container (${label})`, () => {
    const specs = podSpecs(objects);
    assert.ok(specs.length > 0);
    for (const [where, spec] of specs) {
      const pod = spec.securityContext ?? {};
      assert.equal(pod.runAsNonRoot, true, where);
      assert.equal(pod.seccompProfile?.type, 'RuntimeDefault', where);
      assert.ok(Number.isInteger(pod.runAsUser) && pod.runAsUser > 0, `${where}: fixed non-root UID`);
      for (const host of ['hostNetwork', 'hostPID', 'hostIPC']) assert.equal(spec[host] ?? false, false, `${where}: ${host}`);
      // The volume types the restricted profile allows.
      const allowed = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];
      for (const v of spec.volumes ?? []) assert.ok(Object.keys(v).every((k) => k === 'name' || allowed.includes(k)), `${where}: volume ${v.name}`);
      for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
        const sc = c.securityContext ?? {};
        const at = `${where} container ${c.name}`;
        assert.equal(sc.allowPrivilegeEscalation, false, at);
        assert.equal(sc.readOnlyRootFilesystem, true, at);
        assert.equal(sc.privileged ?? false, false, at);
        assert.deepEqual(sc.capabilities?.drop, ['ALL'], at);
        assert.equal(sc.capabilities?.add, undefined, at);
        assert.equal(sc.runAsNonRoot ?? pod.runAsNonRoot, true, at);
        assert.notEqual(sc.runAsUser ?? pod.runAsUser, 0, at);
        assert.equal((sc.seccompProfile ?? pod.seccompProfile)?.type, 'RuntimeDefault', at);
        assert.ok((c.ports ?? []).every((p: Any) => p.hostPort === undefined), `${at}: no hostPort`);
        assert.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory && c.resources?.limits?.memory, `${at}: requests and limits`);
      }
    }
  });
}

test('CA Deployment: args, ports, probes, mounts and identity exactly as CONTRACT.md says', () => {
  for (const ns of [releaseNamespace, 'mesh']) {
    const d = findObject(renderObjects({ namespace: ns }), 'Deployment', 'tollgate-ca') as Any;
    const spec = d.spec.template.spec;
    const [ca] = spec.containers;
    assert.equal(spec.containers.length, 1);
    assert.deepEqual(ca.args, [
      'ca', 'serve', '--store', 'kubernetes', '--namespace', ns, '--secret', 'tollgate-ca', '--trust-domain', 'cluster.local', '--init-if-empty',
      '--listen', '0.0.0.0:8443', '--admin', '0.0.0.0:15021',
      '--k8s-api-server', 'https://kubernetes.default.svc', '--webhook-listen', '0.0.0.0:9443',
      '--webhook-config-name', 'tollgate-sidecar-injector',
      '--webhook-dns-names', `tollgate-ca.${ns}.svc,tollgate-ca.${ns}.svc.cluster.local`,
      '--injector-config', '/etc/tollgate/injector/config.yaml',
    ]);
    assert.equal(ca.command, undefined, 'the image entrypoint is `tollgate`; args are CLI args');
    assert.equal(ca.image, 'ghcr.io/tollgate/tollgate:0.1.0');
    assert.equal(d.spec.replicas, 2);
    assert.equal(spec.serviceAccountName, 'tollgate-ca');
    assert.equal(spec.automountServiceAccountToken, true, 'the store, TokenReview and the caBundle PATCH need the token');
    const ports: Record<string, number> = Object.fromEntries(ca.ports.map((p: Any) => [p.name, p.containerPort]));
    assert.deepEqual([ca.livenessProbe.httpGet.path, ports[ca.livenessProbe.httpGet.port]], ['/healthz', 15021]);
    assert.deepEqual([ca.readinessProbe.httpGet.path, ports[ca.readinessProbe.httpGet.port]], ['/readyz', 15021]);
    assert.deepEqual(ports, { grpc: 8443, webhook: 9443, admin: 15021 });
    const mounts = Object.fromEntries(ca.volumeMounts.map((m: Any) => [m.mountPath, m]));
    const volumes = Object.fromEntries(spec.volumes.map((v: Any) => [v.name, v]));
    assert.ok(!spec.volumes.some((v: Any) => v.secret), 'no Secret is mounted: the CA reads its store through the API');
    assert.equal(mounts['/etc/tollgate/injector'].readOnly, true);
    assert.equal(volumes[mounts['/etc/tollgate/injector'].name].configMap.name, 'tollgate-injector');
    assert.ok(volumes[mounts['/tmp'].name].emptyDir, '/tmp is an emptyDir (read-only root filesystem)');
    const anti = spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm;
    assert.equal(anti.topologyKey, 'kubernetes.io/hostname');
    assert.ok(selectorMatches(anti.labelSelector, d.spec.template.metadata.labels));
  }
  const fullCa = (findObject(full, 'Deployment', 'tollgate-ca') as Any).spec.template.spec;
  assert.equal(fullCa.containers[0].image, 'registry.example.org:5000/mesh/tollgate:0.1.0-rc.1');
  const fullArgs: string[] = fullCa.containers[0].args;
  assert.equal(fullArgs[fullArgs.indexOf('--secret') + 1], 'mesh-ca');
  assert.equal(fullArgs[fullArgs.indexOf('--trust-domain') + 1], 'example.org');
  assert.ok(!fullArgs.includes('--init-if-empty'), 'ca.initIfEmpty false: the CA must exist before install');
});

test('Service tollgate-ca: grpc 8443 -> 8443, webhook 443 -> 9443, selecting the CA pods; ServiceAccount tollgate-ca', () => {
  const svc = findObject(defaults, 'Service', 'tollgate-ca') as Any;
  const d = findObject(defaults, 'Deployment', 'tollgate-ca') as Any;
  const containerPorts = Object.fromEntries(d.spec.template.spec.containers[0].ports.map((p: Any) => [p.name, p.containerPort]));
  const ports = svc.spec.ports.map((p: Any) => [p.name, p.port, containerPorts[p.targetPort] ?? p.targetPort]);
  assert.deepEqual(ports, [['grpc', 8443, 8443], ['webhook', 443, 9443]]);
  assert.ok(selectorMatches({ matchLabels: svc.spec.selector }, d.spec.template.metadata.labels));
  const sa = findObject(defaults, 'ServiceAccount', 'tollgate-ca') as Any;
  assert.equal(sa.metadata.namespace, releaseNamespace);
});

function rbacRules(objects: KubeObject[]): [string, Any][] {
  return objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role').flatMap((r) => (r as Any).rules.map((rule: Any) => [r.kind, rule]));
}

test('RBAC: every rule names its resources, except `create` (which Kubernetes cannot scope by name) and `get namespaces`', () => {
  for (const objects of [defaults, renderObjects({ set: ['webhook.scope=labelled-namespaces', 'ca.secretName=other'] })]) {
    for (const [kind, rule] of rbacRules(objects)) {
      if (rule.resourceNames || (kind === 'ClusterRole' && rule.resources.join() === 'namespaces')) continue;
      assert.deepEqual(rule.verbs, ['create'], `${kind} rule without resourceNames: ${JSON.stringify(rule)}`);
    }
  }
  const SHARDS = [...'0123456789abcdef'].map((d) => `tollgate-join-tokens-${d}`).join();
  const grantsOf = (objects: KubeObject[]) => new Set(rbacRules(objects).flatMap(([kind, r]) => r.verbs.flatMap((v: string) => r.resources.map((res: string) => `${kind} ${v} ${res}${r.resourceNames ? `/${r.resourceNames.join()}` : ''}`))));
  const expected = [
    'ClusterRole create tokenreviews',
    'ClusterRole get mutatingwebhookconfigurations/tollgate-sidecar-injector',
    'ClusterRole patch mutatingwebhookconfigurations/tollgate-sidecar-injector',
    'ClusterRole get namespaces',
    'Role get secrets/tollgate-ca', 'Role list secrets/tollgate-ca', 'Role watch secrets/tollgate-ca', 'Role update secrets/tollgate-ca',
    `Role get secrets/${SHARDS}`, `Role patch secrets/${SHARDS}`,
    'Role get configmaps/tollgate-bundle', 'Role update configmaps/tollgate-bundle',
    'Role get configmaps/tollgate-injector', 'Role list configmaps/tollgate-injector', 'Role watch configmaps/tollgate-injector',
    'Role create secrets', 'Role create configmaps',
  ];
  // Exactly these, in both webhook scopes: the webhook reads namespace labels in either (a pod's
  // annotation opt-in is judged with its namespace's label), so `get namespaces` is in both.
  for (const [objects, secret] of [[defaults, 'tollgate-ca'], [full, 'mesh-ca']] as const) {
    assert.deepEqual([...grantsOf(objects)].sort(), expected.map((g) => g.replace('secrets/tollgate-ca', `secrets/${secret}`)).sort());
  }
  const unnamed = rbacRules(full).filter(([, r]) => !r.resourceNames && !(r.verbs.length === 1 && r.verbs[0] === 'create'));
  assert.deepEqual(unnamed.map(([kind, r]) => `${kind} ${r.verbs.join()} ${r.resources.join()}`), ['ClusterRole get namespaces']);
  for (const b of defaults.filter((o) => o.kind.endsWith('Binding')) as Any[]) {
    assert.deepEqual(b.subjects, [{ kind: 'ServiceAccount', name: 'tollgate-ca', namespace: releaseNamespace }]);
    assert.equal(b.roleRef.kind, b.kind.replace('Binding', ''));
  }
});

const excluded = ['kube-system', 'kube-public', 'kube-node-lease', releaseNamespace];
/** A namespace's labels as Kubernetes >= 1.21 sets them, plus `extra`. */
const ns = (name: string, extra: Record<string, string> = {}) => ({ 'kubernetes.io/metadata.name': name, ...extra });

test('webhook: AdmissionReview v1, pods CREATE at /inject on Service port 443, values applied, caBundle left to the CA', () => {
  const w = (findObject(defaults, 'MutatingWebhookConfiguration', 'tollgate-sidecar-injector') as Any).webhooks;
  assert.equal(w.length, 1);
  const [h] = w;
  assert.equal(h.name, 'sidecar-injector.tollgate.io');
  assert.deepEqual(h.admissionReviewVersions, ['v1']);
  assert.deepEqual(h.clientConfig, { service: { name: 'tollgate-ca', namespace: releaseNamespace, path: '/inject', port: 443 } });
  assert.deepEqual(h.rules, [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }]);
  assert.deepEqual([h.failurePolicy, h.timeoutSeconds, h.reinvocationPolicy, h.sideEffects], ['Fail', 10, 'IfNeeded', 'None']);
  assert.equal(h.objectSelector, undefined);
  const f = (findObject(full, 'MutatingWebhookConfiguration', 'tollgate-sidecar-injector') as Any).webhooks[0];
  assert.deepEqual([f.failurePolicy, f.timeoutSeconds], ['Ignore', 5]);
});

test('webhook: never sent a pod of kube-system, kube-public, kube-node-lease or the release namespace', () => {
  const labelled = { 'tollgate.io/inject': 'enabled' };
  for (const [label, objects, plainMatches] of [['labelled-namespaces', defaults, false], ['all-namespaces', full, true]] as const) {
    const sel: LabelSelector = (findObject(objects, 'MutatingWebhookConfiguration', 'tollgate-sidecar-injector') as Any).webhooks[0].namespaceSelector;
    for (const name of excluded) {
      assert.equal(selectorMatches(sel, ns(name)), false, `${label}: ${name}`);
      assert.equal(selectorMatches(sel, ns(name, labelled)), false, `${label}: ${name} even when labelled`);
    }
    assert.equal(selectorMatches(sel, ns('shop', labelled)), true, `${label}: an opted-in namespace`);
    assert.equal(selectorMatches(sel, ns('plain')), plainMatches, `${label}: an unlabelled namespace`);
    assert.equal(selectorMatches(sel, ns('quiet', { 'tollgate.io/inject': 'disabled' })), false, `${label}: an opted-out namespace`);
  }
});

test('injector ConfigMap: config.yaml has exactly the CONTRACT.md schema, from values', () => {
  const config = (o: KubeObject[]) => parse((findObject(o, 'ConfigMap', 'tollgate-injector') as Any).data['config.yaml']);
  assert.deepEqual(config(defaults), {
    trustDomain: 'cluster.local',
    caAddress: 'tollgate-ca.tollgate-system.svc:8443',
    caSpiffeId: 'spiffe://cluster.local/tollgate/ca',
    image: 'ghcr.io/tollgate/tollgate:0.1.0',
    imagePullPolicy: 'IfNotPresent',
    nativeSidecar: true,
    capture: 'iptables',
    tokenExpirationSeconds: 3600,
    logLevel: 'info',
    resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
  });
  assert.deepEqual(config(full), {
    trustDomain: 'example.org',
    caAddress: 'tollgate-ca.tollgate-system.svc:8443',
    caSpiffeId: 'spiffe://example.org/tollgate/ca',
    image: 'registry.example.org:5000/mesh/tollgate:0.1.0-rc.1',
    imagePullPolicy: 'Always',
    nativeSidecar: false,
    capture: 'none',
    tokenExpirationSeconds: 600,
    logLevel: 'debug',
    resources: { requests: { cpu: '20m', memory: '32Mi' }, limits: { cpu: '500m', memory: '128Mi' } },
  });
  // A trust domain YAML would read as a number stays a string.
  assert.equal(config(renderObjects({ set: ['trustDomain=1.5'] })).trustDomain, '1.5');
});

test('NetworkPolicy: only when enabled; gRPC 8443, webhook 9443, admin 15021 from their own sources', () => {
  assert.equal(defaults.filter((o) => o.kind === 'NetworkPolicy').length, 0);
  const np = findObject(full, 'NetworkPolicy', 'tollgate-ca') as Any;
  const podLabels = (findObject(full, 'Deployment', 'tollgate-ca') as Any).spec.template.metadata.labels;
  assert.ok(selectorMatches(np.spec.podSelector, podLabels));
  assert.deepEqual(np.spec.policyTypes, ['Ingress']);
  const values = parse(readFileSync(join(chartDir, '../../', fullValues), 'utf8')).networkPolicy;
  assert.deepEqual(np.spec.ingress.map((r: Any) => [r.ports, r.from]), [
    [[{ port: 8443, protocol: 'TCP' }], values.grpcFrom],
    [[{ port: 9443, protocol: 'TCP' }], values.webhookFrom],
    [[{ port: 15021, protocol: 'TCP' }], values.adminFrom],
  ]);
  const open = findObject(renderObjects({ set: ['networkPolicy.enabled=true'] }), 'NetworkPolicy', 'tollgate-ca') as Any;
  assert.deepEqual(open.spec.ingress.map((r: Any) => r.from), [[{ namespaceSelector: {} }], undefined, undefined], 'an empty list admits any source');
});

test('ServiceMonitor: only when enabled; scrapes the CA admin port through its own Service', () => {
  assert.equal(defaults.filter((o) => o.kind === 'ServiceMonitor' || o.metadata?.name === 'tollgate-ca-metrics').length, 0);
  const sm = findObject(full, 'ServiceMonitor', 'tollgate-ca') as Any;
  const svc = findObject(full, 'Service', 'tollgate-ca-metrics') as Any;
  assert.equal(sm.metadata.labels.release, 'prometheus');
  assert.ok(selectorMatches(sm.spec.selector, svc.metadata.labels));
  assert.ok(!selectorMatches(sm.spec.selector, (findObject(full, 'Service', 'tollgate-ca') as Any).metadata.labels), 'not the mesh Service');
  assert.deepEqual(sm.spec.namespaceSelector, { matchNames: [releaseNamespace] });
  const port = svc.spec.ports.find((p: Any) => p.name === sm.spec.endpoints[0].port);
  assert.deepEqual([port?.port, sm.spec.endpoints[0].path, sm.spec.endpoints[0].interval], [15021, '/metrics', '15s']);
});

test('Grafana dashboard ConfigMap: labelled for the sidecar, a panel for every PRODUCT.md §8 metric', () => {
  assert.equal(renderObjects({ set: ['dashboard.enabled=false'] }).filter((o) => o.metadata?.name === 'tollgate-dashboard').length, 0);
  const cm = findObject(full, 'ConfigMap', 'tollgate-dashboard') as Any;
  assert.equal(cm.metadata.labels.grafana_dashboard, '1');
  assert.equal(cm.metadata.annotations.grafana_folder, 'Mesh');
  const dash = JSON.parse(cm.data['tollgate.json']);
  assert.deepEqual(dash, JSON.parse(readFileSync(join(chartDir, 'dashboards/tollgate.json'), 'utf8')));
  const panels = dash.panels.filter((p: Any) => p.type !== 'row');
  const ids = dash.panels.map((p: Any) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const exprs = panels.flatMap((p: Any) => p.targets.map((t: Any) => t.expr)).join('\n');
  for (const metric of [
    'tollgate_ca_issued_total', 'tollgate_ca_refused_total', 'tollgate_authority_expiry_timestamp_seconds',
    'tollgate_svid_expiry_timestamp_seconds', 'tollgate_inbound_connections_total', 'tollgate_handshake_seconds_bucket',
    'tollgate_bytes_total', 'tollgate_config_reload_failures_total', 'tollgate_rotation_phase',
  ]) assert.ok(exprs.includes(metric), `no panel queries ${metric}`);
  for (const by of ['by (attestation)', 'by (code)', 'by (result, reason)', 'by (direction)', 'histogram_quantile(0.5,', 'histogram_quantile(0.99,']) {
    assert.ok(exprs.includes(by), `no panel breaks down ${by}`);
  }
  for (const p of panels) assert.equal(p.datasource.uid, '${datasource}', `${p.title}: uses the dashboard's data source variable`);
});

test('NOTES.txt says what to do next: the CA Secret and its backup, label a namespace, an allow-list, check a pod', () => {
  const r = helm(['install', 'tollgate', chartDir, '--namespace', releaseNamespace, '--dry-run=client']);
  assert.equal(r.status, 0, r.stderr);
  const notes = r.stdout.slice(r.stdout.indexOf('NOTES:'));
  for (const want of [
    'Secret tollgate-ca (created on first start for cluster.local)',
    'back it up encrypted',
    'kubectl -n tollgate-system get configmap tollgate-bundle',
    'kubectl label namespace shop tollgate.io/inject=enabled',
    'tollgate.io/policy-configmap',
    'spiffe://cluster.local/ns/shop/sa/web',
    'get pod POD -o yaml',
    'tollgate cert inspect',
    '/readyz',
  ]) assert.ok(notes.includes(want), `NOTES lacks ${want}:\n${notes}`);
});
