import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TollgateError } from '../common/errors.ts';
import { sidecarEnvVars } from '../common/sidecar-runtime.ts';
import { certsToPem } from '../pki/pem.ts';
import { testChain } from '../pki/test-chain.ts';
import { parseSidecarConfig } from '../sidecar/config.ts';
import { applyPatch } from '../test/helpers/json-patch.ts';
import { validateStrict } from '../test/helpers/kube-schema.ts';
import { parseInjectorConfig, type InjectorConfig } from './config.ts';
import { injectPod, type InjectOptions, type InjectResult } from './inject.ts';
import type { Json } from './pod-parts.ts';

const config = (extra = ''): InjectorConfig =>
  parseInjectorConfig(`trustDomain: cluster.local\ncaAddress: tollgate-ca.tollgate-system.svc:8443\ncaSpiffeId: spiffe://cluster.local/tollgate/ca\nimage: ghcr.io/tollgate/tollgate:0.1.0\n${extra}`, { source: 'config.yaml' });
const NATIVE = config();
const FALLBACK = config('nativeSidecar: false\n');
const BUNDLE = certsToPem([testChain('cluster.local').root]);

const ANNOTATED = {
  'tollgate.io/inject': 'enabled',
  'tollgate.io/inbound-ports': '8080,9000',
  'tollgate.io/upstreams': 'orders=spiffe://cluster.local/ns/shop/sa/orders@orders.shop.svc:8080, cart-v2=spiffe://cluster.local/ns/shop/sa/cart@[fd00::7]:9000',
  'tollgate.io/policy-configmap': 'web-policy',
};

function pod(annotations: Record<string, string> | undefined = ANNOTATED, spec: Json = {}): Json {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-1', namespace: 'shop', labels: { app: 'web' }, ...(annotations ? { annotations: { ...annotations } } : {}) },
    spec: { serviceAccountName: 'web', containers: [{ name: 'web', image: 'web:1', ports: [{ containerPort: 8080 }] }, { name: 'logger', image: 'logger:1', env: [{ name: 'A', value: 'b' }] }], ...spec },
  };
}

const opts = (over: Partial<InjectOptions> = {}): InjectOptions => ({ config: NATIVE, bundlePem: BUNDLE, namespace: 'shop', namespaceLabels: {}, ...over });

/** Inject, and check what must hold for every injection: the patch turns the original into `pod`. */
function inject(p: unknown, o: InjectOptions = opts()): InjectResult {
  const before = structuredClone(p);
  const r = injectPod(p, o);
  assert.deepEqual(p, before, 'injectPod must not modify its input');
  if (r.decision === 'injected') assert.deepEqual(applyPatch(p, r.patch as never), r.pod);
  else assert.deepEqual(r.patch, []);
  return r;
}

const containers = (p: Json, list: 'containers' | 'initContainers'): Json[] => ((p['spec'] as Json)[list] as Json[] | undefined) ?? [];
const named = (p: Json, name: string): Json => [...containers(p, 'initContainers'), ...containers(p, 'containers')].find((c) => c['name'] === name)!;

type Row = [name: string, annotation: string | undefined, nsLabel: string | undefined, namespace: string, expected: 'injected' | 'skipped', reason: RegExp];
const matrix: Row[] = [
  ['namespace label only', undefined, 'enabled', 'shop', 'injected', /^namespace label: native sidecar/],
  ['pod annotation only', 'enabled', undefined, 'shop', 'injected', /^pod annotation: native sidecar, capture iptables, 2 inbound port\(s\), 2 upstream\(s\)$/],
  ['pod annotation in a namespace labelled disabled', 'enabled', 'disabled', 'shop', 'injected', /^pod annotation/],
  ['opted out in an opted-in namespace', 'disabled', 'enabled', 'shop', 'skipped', /^pod annotation tollgate\.io\/inject is disabled$/],
  ['neither', undefined, undefined, 'shop', 'skipped', /^not opted in/],
  ['namespace label not "enabled"', undefined, 'true', 'shop', 'skipped', /^not opted in/],
  ['kube-system, even opted in', 'enabled', 'enabled', 'kube-system', 'skipped', /^namespace kube-system is never injected$/],
  ['kube-public', 'enabled', 'enabled', 'kube-public', 'skipped', /^namespace kube-public is never injected$/],
  ['kube-node-lease', 'enabled', 'enabled', 'kube-node-lease', 'skipped', /^namespace kube-node-lease is never injected$/],
  ["Tollgate's own namespace", 'enabled', 'enabled', 'tollgate-system', 'skipped', /^namespace tollgate-system is never injected$/],
];

for (const [name, annotation, nsLabel, namespace, expected, reason] of matrix) {
  test(`opt-in: ${name} → ${expected}`, () => {
    const { 'tollgate.io/inject': _, ...rest } = ANNOTATED;
    const r = inject(pod(annotation ? { ...rest, 'tollgate.io/inject': annotation } : rest), opts({ namespace, namespaceLabels: nsLabel ? { 'tollgate.io/inject': nsLabel } : {} }));
    assert.equal(r.decision, expected);
    assert.match(r.reason, reason);
  });
}

test("opt-in: Tollgate's namespace is the configured one, and the pod's own namespace counts when the request has none", () => {
  const c = parseInjectorConfig('trustDomain: cluster.local\ncaAddress: a:1\nimage: i\n', { source: 'x', systemNamespace: 'mesh' });
  assert.match(inject(pod(), opts({ config: c, namespace: 'mesh' })).reason, /namespace mesh is never injected/);
  assert.equal(inject(pod(), opts({ config: c, namespace: 'tollgate-system' })).decision, 'injected');
  assert.match(inject(pod(), opts({ namespace: '', config: NATIVE })).reason, /^pod annotation/);
  const inSystem = pod();
  (inSystem['metadata'] as Json)['namespace'] = 'kube-system';
  assert.match(inject(inSystem, opts({ namespace: '' })).reason, /namespace kube-system is never injected/);
});

test('a host-network pod is skipped', () => {
  assert.match(inject(pod(ANNOTATED, { hostNetwork: true })).reason, /host network/);
});

test('native sidecar: init container tollgate-init, then tollgate-proxy with restartPolicy Always, before the app\'s own init containers', () => {
  const r = inject(pod(ANNOTATED, { initContainers: [{ name: 'migrate', image: 'm:1' }], volumes: [{ name: 'data', emptyDir: {} }] }));
  const p = r.pod!;
  assert.deepEqual(containers(p, 'initContainers').map((c) => c['name']), ['tollgate-init', 'tollgate-proxy', 'migrate']);
  assert.deepEqual(containers(p, 'containers').map((c) => c['name']), ['web', 'logger']);
  const proxy = named(p, 'tollgate-proxy');
  assert.equal(proxy['restartPolicy'], 'Always');
  assert.deepEqual(proxy['args'], ['sidecar', 'run', '--config-env', 'TOLLGATE_SIDECAR_CONFIG']);
  assert.equal(proxy['image'], 'ghcr.io/tollgate/tollgate:0.1.0');
  assert.deepEqual(proxy['startupProbe'], { httpGet: { path: '/readyz', port: 15020 }, periodSeconds: 1, failureThreshold: 120, timeoutSeconds: 1 });
  assert.deepEqual((proxy['readinessProbe'] as Json)['httpGet'], { path: '/readyz', port: 15020 });
  assert.deepEqual((proxy['livenessProbe'] as Json)['httpGet'], { path: '/healthz', port: 15020 });
  assert.equal(proxy['lifecycle'], undefined);
  assert.deepEqual(proxy['securityContext'], {
    runAsUser: 2102, runAsGroup: 2102, runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
  });
  assert.deepEqual(proxy['resources'], { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } });
  assert.deepEqual(proxy['volumeMounts'], [
    { name: 'tollgate-token', mountPath: '/var/run/secrets/tollgate', readOnly: true },
    { name: 'tollgate-policy', mountPath: '/etc/tollgate/policy', readOnly: true },
  ]);
  const init = named(p, 'tollgate-init');
  assert.deepEqual(init['args'], ['capture', '--inbound', '8080:15006,9000:15007', '--exclude-uid', '2102']);
  const sc = init['securityContext'] as Json;
  assert.deepEqual([sc['runAsUser'], sc['runAsNonRoot'], sc['capabilities']], [0, false, { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] }]);
  assert.deepEqual((p['spec'] as Json)['volumes'], [
    { name: 'data', emptyDir: {} },
    { name: 'tollgate-token', projected: { sources: [{ serviceAccountToken: { audience: 'tollgate-ca', expirationSeconds: 3600, path: 'token' } }] } },
    { name: 'tollgate-policy', configMap: { name: 'web-policy', items: [{ key: 'policy.yaml', path: 'policy.yaml' }] } },
    { name: 'tollgate-xtables-lock', emptyDir: {} },
  ]);
  const meta = p['metadata'] as { annotations: Record<string, string> };
  assert.equal(meta.annotations['tollgate.io/injected'], 'true');
  assert.equal(meta.annotations['kubectl.kubernetes.io/default-container'], 'web');
  // Every app container learns each upstream's local address; an existing env list is kept.
  for (const name of ['web', 'logger']) {
    const env = named(p, name)['env'] as Json[];
    assert.deepEqual(env.filter((e) => String(e['name']).startsWith('TOLLGATE_')), [
      { name: 'TOLLGATE_UPSTREAM_ORDERS', value: '127.0.0.1:15101' },
      { name: 'TOLLGATE_UPSTREAM_CART_V2', value: '127.0.0.1:15102' },
    ]);
  }
  assert.deepEqual((named(p, 'logger')['env'] as Json[])[0], { name: 'A', value: 'b' });
  assert.deepEqual(r.warnings, []);
});

test('the sidecar container carries the sidecar\'s memory settings (NODE_OPTIONS, GLIBC_TUNABLES) after its config', () => {
  const proxy = named(inject(pod()).pod!, 'tollgate-proxy');
  const env = proxy['env'] as { name: string; value: string }[];
  assert.deepEqual(env.map((e) => e.name), ['TOLLGATE_SIDECAR_CONFIG', 'NODE_OPTIONS', 'GLIBC_TUNABLES']);
  assert.deepEqual(env.slice(1), sidecarEnvVars());
  assert.deepEqual(sidecarEnvVars().map((e) => e.value), ['--max-semi-space-size=1', 'glibc.malloc.arena_max=1:glibc.malloc.trim_threshold=131072:glibc.malloc.mmap_threshold=131072']);
});

test("the sidecar's config (TOLLGATE_SIDECAR_CONFIG) is one the sidecar accepts, with every listener where CONTRACT.md puts it", () => {
  const proxy = named(inject(pod()).pod!, 'tollgate-proxy');
  const [env] = proxy['env'] as { name: string; value: string }[];
  assert.equal(env!.name, 'TOLLGATE_SIDECAR_CONFIG');
  const c = parseSidecarConfig(env!.value, { source: 'env' });
  assert.equal(c.trustDomain, 'cluster.local');
  assert.deepEqual(c.ca, { address: { host: 'tollgate-ca.tollgate-system.svc', port: 8443 }, spiffeId: 'spiffe://cluster.local/tollgate/ca', bundlePem: BUNDLE });
  assert.deepEqual(c.attestation, { kind: 'k8s', tokenFile: '/var/run/secrets/tollgate/token' });
  assert.deepEqual(c.inbound.map((l) => [l.listen, l.appPort, l.appHost]), [[{ host: '0.0.0.0', port: 15006 }, 8080, '127.0.0.1'], [{ host: '0.0.0.0', port: 15007 }, 9000, '127.0.0.1']]);
  assert.deepEqual(c.outbound, [
    { listen: { host: '127.0.0.1', port: 15101 }, upstream: { host: 'orders.shop.svc', port: 8080 }, spiffeId: 'spiffe://cluster.local/ns/shop/sa/orders' },
    { listen: { host: '127.0.0.1', port: 15102 }, upstream: { host: 'fd00::7', port: 9000 }, spiffeId: 'spiffe://cluster.local/ns/shop/sa/cart' },
  ]);
  assert.deepEqual(c.policy, { file: '/etc/tollgate/policy/policy.yaml' });
  assert.deepEqual(c.admin.listen, { host: '0.0.0.0', port: 15020 });
  // The sidecar knows its ports are captured, so it does not report the app's 0.0.0.0 as exposed.
  assert.equal(c.capture, 'iptables');
  // Without inbound ports the sidecar needs no policy, and no capture container is added.
  const outboundOnly = inject(pod({ 'tollgate.io/inject': 'enabled', 'tollgate.io/upstreams': ANNOTATED['tollgate.io/upstreams'] })).pod!;
  const c2 = parseSidecarConfig(((named(outboundOnly, 'tollgate-proxy')['env'] as { value: string }[])[0]!).value, { source: 'env' });
  assert.deepEqual([c2.inbound, c2.policy], [[], null]);
  assert.deepEqual(containers(outboundOnly, 'initContainers').map((c) => c['name']), ['tollgate-proxy']);
});

test('pre-1.29 fallback: the sidecar is the first regular container, held ready by a postStart `tollgate sidecar wait`', () => {
  const p = inject(pod(), opts({ config: FALLBACK })).pod!;
  assert.deepEqual(containers(p, 'containers').map((c) => c['name']), ['tollgate-proxy', 'web', 'logger']);
  assert.deepEqual(containers(p, 'initContainers').map((c) => c['name']), ['tollgate-init']);
  const proxy = named(p, 'tollgate-proxy');
  assert.equal(proxy['restartPolicy'], undefined);
  assert.deepEqual(proxy['lifecycle'], { postStart: { exec: { command: ['tollgate', 'sidecar', 'wait', '--admin', '127.0.0.1:15020', '--timeout', '60s'] } } });
  assert.equal((p['metadata'] as { annotations: Record<string, string> }).annotations['kubectl.kubernetes.io/default-container'], 'web');
  // The upstream variables went to the app containers, not to the sidecar inserted before them.
  assert.ok((named(p, 'web')['env'] as Json[]).some((e) => e['name'] === 'TOLLGATE_UPSTREAM_ORDERS'));
  assert.ok(!(proxy['env'] as Json[]).some((e) => e['name'] === 'TOLLGATE_UPSTREAM_ORDERS'));
});

test('capture none (config or annotation): no tollgate-init and no lock volume', () => {
  for (const [o, annotations] of [[opts({ config: config('capture: none\n') }), ANNOTATED], [opts(), { ...ANNOTATED, 'tollgate.io/capture': 'none' }]] as const) {
    const r = inject(pod(annotations), o);
    assert.deepEqual(containers(r.pod!, 'initContainers').map((c) => c['name']), ['tollgate-proxy']);
    assert.ok(!((r.pod!['spec'] as Json)['volumes'] as Json[]).some((v) => v['name'] === 'tollgate-xtables-lock'));
    assert.match(r.reason, /capture none/);
    // ...and the sidecar is told, so it checks that the app listens on loopback only.
    const proxy = named(r.pod!, 'tollgate-proxy');
    assert.equal(parseSidecarConfig((proxy['env'] as { value: string }[])[0]!.value, { source: 'env' }).capture, 'none');
  }
  // The annotation can also turn capture on where the config defaults to none.
  const on = inject(pod({ ...ANNOTATED, 'tollgate.io/capture': 'iptables' }), opts({ config: config('capture: none\n') }));
  assert.equal(containers(on.pod!, 'initContainers')[0]!['name'], 'tollgate-init');
});

type Shape = [name: string, input: Json];
const shapes: Shape[] = [
  ['no annotations (opted in by its namespace)', pod(undefined)],
  ['no metadata at all', { spec: { containers: [{ name: 'a', image: 'a' }] } }],
  ['annotation keys with "/" and "~"', pod({ ...ANNOTATED, 'example.com/a~b': 'x' })],
  ['existing init containers, volumes and env', pod(ANNOTATED, { initContainers: [{ name: 'i', image: 'i' }], volumes: [{ name: 'v', emptyDir: {} }] })],
  ['null lists and an empty env', pod(ANNOTATED, { initContainers: null, volumes: null, containers: [{ name: 'a', image: 'a', env: [] }] })],
  ['a default container already chosen', pod({ ...ANNOTATED, 'kubectl.kubernetes.io/default-container': 'logger' })],
  ['an upstream variable the app sets itself', pod(ANNOTATED, { containers: [{ name: 'a', image: 'a', env: [{ name: 'TOLLGATE_UPSTREAM_ORDERS', value: 'mine' }] }] })],
];

for (const [name, input] of shapes) {
  for (const [mode, o] of [['native', opts({ namespaceLabels: { 'tollgate.io/inject': 'enabled' } })], ['fallback', opts({ config: FALLBACK, namespaceLabels: { 'tollgate.io/inject': 'enabled' } })]] as const) {
    test(`the JSON patch applies cleanly and gives the returned pod: ${name} (${mode})`, async () => {
      const r = inject(input, o); // asserts applyPatch(input, patch) equals r.pod
      assert.equal(r.decision, 'injected');
      await validateStrict('v1/Pod', { apiVersion: 'v1', kind: 'Pod', ...r.pod });
    });
  }
}

test('the patch keeps what it must not touch: an existing default container and an app-set upstream variable', () => {
  const p1 = inject(pod({ ...ANNOTATED, 'kubectl.kubernetes.io/default-container': 'logger' })).pod!;
  assert.equal((p1['metadata'] as { annotations: Record<string, string> }).annotations['kubectl.kubernetes.io/default-container'], 'logger');
  const p2 = inject(pod(ANNOTATED, { containers: [{ name: 'a', image: 'a', env: [{ name: 'TOLLGATE_UPSTREAM_ORDERS', value: 'mine' }] }] })).pod!;
  assert.deepEqual(named(p2, 'a')['env'], [{ name: 'TOLLGATE_UPSTREAM_ORDERS', value: 'mine' }, { name: 'TOLLGATE_UPSTREAM_CART_V2', value: '127.0.0.1:15102' }]);
});

test('idempotent: an injected pod (native or fallback) is skipped with no patch, so reinvocation is safe', () => {
  for (const o of [opts(), opts({ config: FALLBACK })]) {
    const once = inject(pod(), o).pod!;
    const again = inject(once, o);
    assert.deepEqual([again.decision, again.reason, again.patch], ['skipped', 'already injected', []]);
  }
  // The sidecar container alone marks a pod as injected (someone stripped the annotation).
  const stripped = inject(pod(), opts()).pod!;
  delete (stripped['metadata'] as { annotations: Record<string, string> }).annotations['tollgate.io/injected'];
  assert.equal(inject(stripped).reason, 'already injected');
});

test('a pod with only generateName (as controllers create them) is injected like any other', () => {
  const p = pod();
  const meta = p['metadata'] as Json;
  delete meta['name'];
  meta['generateName'] = 'web-5d8f9c-';
  const r = inject(p);
  assert.equal(r.decision, 'injected');
  assert.equal((r.pod!['metadata'] as Json)['generateName'], 'web-5d8f9c-');
  assert.equal((r.pod!['metadata'] as Json)['name'], undefined);
});

test('every injected pod is valid under the current Pod schema, unknown fields rejected (native, fallback, capture none)', async () => {
  for (const o of [opts(), opts({ config: FALLBACK }), opts({ config: config('capture: none\nimagePullPolicy: Always\n') })]) {
    await validateStrict('v1/Pod', inject(pod(), o).pod);
  }
  // The check has teeth: a misspelt field is caught.
  const p = inject(pod()).pod!;
  (named(p, 'tollgate-proxy') as Json)['restartPolicyy'] = 'Always';
  await assert.rejects(validateStrict('v1/Pod', p), /unknown field \/spec\/initContainers\/1\/restartPolicyy/);
});

type BadAnnotation = [name: string, annotations: Record<string, string>, message: RegExp];
const up = (v: string): Record<string, string> => ({ ...ANNOTATED, 'tollgate.io/upstreams': v });
const badAnnotations: BadAnnotation[] = [
  ['inject value', { ...ANNOTATED, 'tollgate.io/inject': 'true' }, /^annotation tollgate\.io\/inject: "true" must be "enabled" or "disabled"$/],
  ['port not a number', { ...ANNOTATED, 'tollgate.io/inbound-ports': '8080,http' }, /^annotation tollgate\.io\/inbound-ports: "8080,http" has "http", which is not a port number 1\.\.65535; write the app's ports separated by commas, e\.g\. "8080,9000"/],
  ['port out of range', { ...ANNOTATED, 'tollgate.io/inbound-ports': '70000' }, /has "70000", which is not a port number 1\.\.65535/],
  ['port zero', { ...ANNOTATED, 'tollgate.io/inbound-ports': '0' }, /has "0", which is not a port number/],
  ['empty port entry', { ...ANNOTATED, 'tollgate.io/inbound-ports': '8080,,9000' }, /has an empty entry; write the app's ports separated by commas/],
  ['duplicate port', { ...ANNOTATED, 'tollgate.io/inbound-ports': '8080, 8080' }, /lists 8080 twice; list each port once/],
  ["a sidecar's port", { ...ANNOTATED, 'tollgate.io/inbound-ports': '15020' }, /has 15020, in 15000-15199, the ports the sidecar uses; move the app to another port/],
  ['too many ports', { ...ANNOTATED, 'tollgate.io/inbound-ports': Array.from({ length: 15 }, (_, i) => 8000 + i).join(',') }, /lists 15 ports; a pod can have at most 14/],
  ['inbound ports without a policy', { 'tollgate.io/inject': 'enabled', 'tollgate.io/inbound-ports': '8080' }, /^annotation tollgate\.io\/inbound-ports needs tollgate\.io\/policy-configmap: .*name a ConfigMap with the key policy\.yaml/],
  ['upstream without "="', up('spiffe://cluster.local/ns/shop/sa/orders@orders:8080'), /has "spiffe:\/\/cluster\.local\/ns\/shop\/sa\/orders@orders:8080", which is not NAME=SPIFFE-ID@HOST:PORT; write NAME=SPIFFE-ID@HOST:PORT separated by commas, e\.g\. "orders=spiffe:\/\/cluster\.local\/ns\/shop\/sa\/orders@orders\.shop\.svc:8080"/],
  ['upstream without "@"', up('orders=spiffe://cluster.local/ns/shop/sa/orders'), /which is not NAME=SPIFFE-ID@HOST:PORT/],
  ['upstream name', up('Orders=spiffe://cluster.local/ns/shop/sa/orders@orders:8080'), /has the name "Orders"; a name is lower-case letters, digits and "-", starting with a letter/],
  ['upstream SPIFFE ID malformed', up('orders=spiffe://cluster.local/ns/shop/sa/orders/@orders:8080'), /has the SPIFFE ID "spiffe:\/\/cluster\.local\/ns\/shop\/sa\/orders\/" for orders, which ends with "\/"; remove the trailing slash; write the upstream's identity, e\.g\. spiffe:\/\/cluster\.local\/ns\/NAMESPACE\/sa\/SERVICE-ACCOUNT/],
  ['upstream SPIFFE ID in another trust domain', up('orders=spiffe://other.org/ns/shop/sa/orders@orders:8080'), /for orders, which is not in the mesh's trust domain "cluster\.local"/],
  ['upstream SPIFFE ID without a path', up('orders=spiffe://cluster.local@orders:8080'), /for orders, which is a trust-domain ID/],
  ['upstream not a SPIFFE ID', up('orders=https://orders@orders:8080'), /for orders, which is not a SPIFFE ID: it must start with "spiffe:\/\/"/],
  ['upstream address without port', up('orders=spiffe://cluster.local/ns/shop/sa/orders@orders.shop.svc'), /has the address "orders\.shop\.svc" for orders: "orders\.shop\.svc" is not HOST:PORT/],
  ['upstream port 0', up('orders=spiffe://cluster.local/ns/shop/sa/orders@orders:0'), /has the address "orders:0" for orders: "orders:0" has no valid port; use 1\.\.65535/],
  ['upstream named twice', up('a=spiffe://cluster.local/x@a:1,a=spiffe://cluster.local/y@b:1'), /names "a" twice; give each upstream its own name/],
  ['empty upstream entry', up('a=spiffe://cluster.local/x@a:1,,b=spiffe://cluster.local/y@b:1'), /has an empty entry/],
  ['policy ConfigMap name', { ...ANNOTATED, 'tollgate.io/policy-configmap': 'Web_Policy' }, /^annotation tollgate\.io\/policy-configmap: "Web_Policy" is not a ConfigMap name; write the name of a ConfigMap in the pod's namespace that has the key policy\.yaml/],
  ['capture value', { ...ANNOTATED, 'tollgate.io/capture': 'nft' }, /^annotation tollgate\.io\/capture: "nft" must be "iptables" \(redirect the inbound ports to the sidecar\) or "none"/],
  ['misspelt Tollgate annotation', { ...ANNOTATED, 'tollgate.io/inbound-port': '8080' }, /^annotation tollgate\.io\/inbound-port is not a Tollgate annotation \(did you mean tollgate\.io\/inbound-ports\?\); known: /],
];

for (const [name, annotations, message] of badAnnotations) {
  test(`a bad annotation refuses the pod with what to write instead: ${name}`, () => {
    assert.throws(() => injectPod(pod(annotations), opts()), (e: unknown) => {
      assert.ok(e instanceof TollgateError && e.code === 'TG_ANNOTATION_INVALID', String(e));
      assert.match(e.message, message);
      return true;
    });
  });
}

test('annotations are read only from pods that are opted in (a typo elsewhere does not block unrelated pods)', () => {
  assert.equal(inject(pod({ 'tollgate.io/inbound-ports': 'x' })).decision, 'skipped');
  assert.equal(inject(pod({ 'tollgate.io/inject': 'disabled', 'tollgate.io/capture': 'x' })).decision, 'skipped');
});

test('upstream lists may be written one per line (a YAML block scalar), with a trailing newline', () => {
  const r = inject(pod(up('orders=spiffe://cluster.local/ns/shop/sa/orders@orders:8080\ncart=spiffe://cluster.local/ns/shop/sa/cart@cart:8080\n')));
  assert.deepEqual((named(r.pod!, 'web')['env'] as Json[]).map((e) => e['name']), ['TOLLGATE_UPSTREAM_ORDERS', 'TOLLGATE_UPSTREAM_CART']);
});

type BadPod = [name: string, input: unknown, message: RegExp];
const badPods: BadPod[] = [
  ['not a mapping', [], /the object is not a mapping/],
  ['no spec', { metadata: { annotations: { 'tollgate.io/inject': 'enabled' } } }, /the pod has no spec/],
  ['no containers', { spec: { containers: [] } }, /the pod has no containers/],
  ['containers not a list', { spec: { containers: { name: 'a' } } }, /spec\.containers must be a list of mappings/],
  ['a container without a name', { spec: { containers: [{ image: 'a' }] } }, /every container needs a name/],
  ['annotations not strings', { metadata: { annotations: { a: 1 } }, spec: { containers: [{ name: 'a' }] } }, /metadata\.annotations must map names to strings/],
  ['env not a list', { spec: { containers: [{ name: 'a', env: 'x' }] } }, /container a: env must be a list of mappings/],
  ['a volume named like ours', pod(ANNOTATED, { volumes: [{ name: 'tollgate-token', emptyDir: {} }] }), /already has a volume named tollgate-token, a name Tollgate's sidecar uses; rename it/],
  ['a container named tollgate-init', pod(ANNOTATED, { initContainers: [{ name: 'tollgate-init', image: 'x' }] }), /already has a container named tollgate-init/],
];

for (const [name, input, message] of badPods) {
  test(`a malformed pod is refused, not a crash: ${name}`, () => {
    assert.throws(() => injectPod(input, opts({ namespaceLabels: { 'tollgate.io/inject': 'enabled' } })), (e: unknown) => e instanceof TollgateError && e.code === 'TG_POD_INVALID' && message.test(e.message) || assert.fail(String(e)));
  });
}

test('warnings: a kubelet probe on a port the sidecar fronts could never pass', () => {
  const r = inject(pod(ANNOTATED, {
    containers: [{
      name: 'web', image: 'w', ports: [{ name: 'http', containerPort: 8080 }, { name: 'admin', containerPort: 8081 }],
      readinessProbe: { httpGet: { path: '/ready', port: 'http' } }, livenessProbe: { tcpSocket: { port: 9000 } }, startupProbe: { httpGet: { path: '/s', port: 'admin' } },
    }],
  }));
  assert.deepEqual(r.warnings, [
    'container web: readinessProbe checks port 8080, which the sidecar fronts with mutual TLS; the kubelet\'s plain probe will fail there. Probe a port not in tollgate.io/inbound-ports, or use an exec probe',
    'container web: livenessProbe checks port 9000, which the sidecar fronts with mutual TLS; the kubelet\'s plain probe will fail there. Probe a port not in tollgate.io/inbound-ports, or use an exec probe',
  ]);
});

test('a pod that names no service account gets "default" (what the ServiceAccount admission plugin would name), since the token volume needs one', () => {
  const p = pod();
  delete (p['spec'] as Json)['serviceAccountName'];
  assert.equal(((inject(p).pod!)['spec'] as Json)['serviceAccountName'], 'default');
  assert.equal(((inject(pod()).pod!)['spec'] as Json)['serviceAccountName'], 'web');
  const legacy = pod(ANNOTATED, { serviceAccountName: undefined, serviceAccount: 'old' });
  assert.equal(((inject(legacy).pod!)['spec'] as Json)['serviceAccountName'], undefined);
});
