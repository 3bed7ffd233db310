import { test } from 'node:test';
import assert from 'node:assert/strict';
import { certsToPem } from '../pki/pem.ts';
import { testChain } from '../pki/test-chain.ts';
import { applyPatch } from '../test/helpers/json-patch.ts';
import { admit, decodeReview, type AdmissionRequest, type AdmitContext } from './admission.ts';
import { parseInjectorConfig } from './config.ts';

const ctx: AdmitContext = {
  config: parseInjectorConfig('trustDomain: cluster.local\ncaAddress: tollgate-ca.tollgate-system.svc:8443\nimage: tollgate:dev\n', { source: 'x' }),
  bundlePem: certsToPem([testChain('cluster.local').root]),
  namespaceLabels: async (ns): Promise<Record<string, string>> => (ns === 'shop' ? { 'tollgate.io/inject': 'enabled' } : {}),
};

const POD_RESOURCE = { group: '', version: 'v1', resource: 'pods' };
const POD_KIND = { group: '', version: 'v1', kind: 'Pod' };
const pod = (annotations: Record<string, string> = {}): Record<string, unknown> => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { generateName: 'web-5d8f9c-', namespace: 'shop', annotations },
  spec: { containers: [{ name: 'web', image: 'web:1' }] },
});
const request = (over: Partial<AdmissionRequest> = {}): AdmissionRequest => ({
  uid: '7c3e-uid', kind: POD_KIND, resource: POD_RESOURCE, namespace: 'shop', operation: 'CREATE', object: pod(), ...over,
});
const review = (r: unknown): string => JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: r });

test('an opted-in pod is allowed with a base64 JSONPatch that applies to it; the uid is echoed', async () => {
  const a = await admit(request(), ctx);
  assert.equal(a.decision, 'injected');
  assert.deepEqual([a.namespace, a.pod], ['shop', 'web-5d8f9c-']);
  const response = a.review['response'] as Record<string, unknown>;
  assert.deepEqual([a.review['apiVersion'], a.review['kind'], response['uid'], response['allowed'], response['patchType']], ['admission.k8s.io/v1', 'AdmissionReview', '7c3e-uid', true, 'JSONPatch']);
  const patch = JSON.parse(Buffer.from(String(response['patch']), 'base64').toString()) as never;
  const patched = applyPatch(pod(), patch) as { spec: { initContainers: { name: string; restartPolicy?: string }[] } };
  assert.deepEqual(patched.spec.initContainers.map((c) => [c.name, c.restartPolicy]), [['tollgate-proxy', 'Always']]);
});

type Row = [name: string, req: AdmissionRequest, decision: string, reason: RegExp];
const rows: Row[] = [
  ['a ConfigMap', request({ kind: { group: '', version: 'v1', kind: 'ConfigMap' }, resource: { group: '', version: 'v1', resource: 'configmaps' }, object: { data: {} } }), 'ignored', /^not a pod \(ConfigMap\)$/],
  ['a Deployment', request({ kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, resource: { group: 'apps', version: 'v1', resource: 'deployments' } }), 'ignored', /^not a pod \(Deployment\)$/],
  ['a pod subresource (ephemeral containers)', request({ subResource: 'ephemeralcontainers' }), 'ignored', /^not a pod \(pods\/ephemeralcontainers\)$/],
  ['a pod UPDATE', request({ operation: 'UPDATE' }), 'ignored', /^operation UPDATE: only CREATE is injected$/],
  ['a pod in a plain namespace', request({ namespace: 'plain', object: { ...pod(), metadata: { name: 'p', namespace: 'plain' } } }), 'skipped', /^not opted in/],
  ['a pod that opts out', request({ object: pod({ 'tollgate.io/inject': 'disabled' }) }), 'skipped', /disabled/],
  ['a kube-system pod', request({ namespace: 'kube-system' }), 'skipped', /never injected/],
];

for (const [name, req, decision, reason] of rows) {
  test(`${name}: allowed, no patch (${decision})`, async () => {
    const a = await admit(req, ctx);
    assert.equal(a.decision, decision);
    assert.match(a.reason, reason);
    assert.deepEqual(a.review['response'], { uid: '7c3e-uid', allowed: true });
  });
}

test('a bad annotation is denied (allowed: false) with the annotation and what to write', async () => {
  const a = await admit(request({ object: pod({ 'tollgate.io/inbound-ports': 'http' }) }), ctx);
  assert.equal(a.decision, 'refused');
  const response = a.review['response'] as { uid: string; allowed: boolean; status: { code: number; message: string } };
  assert.equal(response.uid, '7c3e-uid');
  assert.equal(response.allowed, false);
  assert.equal(response.status.code, 400);
  assert.match(response.status.message, /^Tollgate cannot inject this pod: annotation tollgate\.io\/inbound-ports: "http" has "http", which is not a port number/);
});

test('a pod CREATE without an object, or with a malformed pod, is denied, not a crash', async () => {
  for (const object of [undefined, 'text', { spec: {} }, { spec: { containers: 'x' } }]) {
    const a = await admit(request({ object }), ctx);
    assert.equal(a.decision, 'refused', JSON.stringify(object));
    assert.equal((a.review['response'] as { allowed: boolean }).allowed, false);
  }
});

test('probe warnings travel as admission warnings', async () => {
  const p = pod({ 'tollgate.io/inbound-ports': '8080', 'tollgate.io/policy-configmap': 'p' });
  (p['spec'] as { containers: Record<string, unknown>[] }).containers[0]!['readinessProbe'] = { tcpSocket: { port: 8080 } };
  const a = await admit(request({ object: p }), ctx);
  assert.match(((a.review['response'] as { warnings: string[] }).warnings)[0]!, /readinessProbe checks port 8080/);
});

test('the namespace labels are asked for only when there is a namespace, and a failed lookup rejects (→ HTTP 500)', async () => {
  const asked: string[] = [];
  const failing: AdmitContext = { ...ctx, namespaceLabels: async (ns) => { asked.push(ns); throw new Error('API server unreachable'); } };
  await assert.rejects(admit(request(), failing), /API server unreachable/);
  const p = pod({ 'tollgate.io/inject': 'enabled' });
  (p['metadata'] as Record<string, unknown>)['namespace'] = undefined;
  assert.equal((await admit(request({ namespace: '', object: p }), failing)).decision, 'injected');
  assert.deepEqual(asked, ['shop']);
});

type Undecodable = [name: string, body: string, problem: RegExp];
const undecodable: Undecodable[] = [
  ['not JSON', '{"apiVersion":', /^the body is not JSON \(/],
  ['empty', '', /^the body is not JSON/],
  ['a JSON list', '[]', /^the body is not an AdmissionReview/],
  ['another kind', JSON.stringify({ apiVersion: 'v1', kind: 'Pod' }), /^the body is not an AdmissionReview/],
  ['v1beta1', JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'u' } }), /"admission\.k8s\.io\/v1beta1" is not supported; this webhook speaks admission\.k8s\.io\/v1 only/],
  ['no request', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), /has no request$/],
  ['no uid', review({ kind: POD_KIND }), /request has no uid$/],
  ['a numeric uid', review({ uid: 7 }), /request has no uid$/],
];

for (const [name, body, problem] of undecodable) {
  test(`decodeReview refuses an undecodable body: ${name}`, () => {
    const d = decodeReview(body);
    assert.equal(d.ok, false);
    assert.match((d as { problem: string }).problem, problem);
  });
}

test('decodeReview accepts a v1 review', () => {
  assert.deepEqual(decodeReview(Buffer.from(review({ uid: 'u', operation: 'CREATE' }))), { ok: true, request: { uid: 'u', operation: 'CREATE' } });
});
