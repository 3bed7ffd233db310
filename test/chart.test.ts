// charts/tollgate with the real helm: lint, golden `helm template` output, every rendered object
// against current Kubernetes schemas (unknown fields rejected), and values.schema.json refusing
// bad values by name. What the objects say is checked in test/chart-objects.test.ts.
// UPDATE_GOLDEN=1 rewrites the golden files from the current chart (review the diff).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMap, isScalar, parseDocument, type Node } from 'yaml';
import { chartDir, helm, helmTemplate, renderObjects, renderText, repoRoot } from './helpers/chart.ts';
import { unknownFields, validateKubeObject, modelClass, type KubeObject } from './helpers/kube-schema.ts';

const fullValues = 'test/golden/values-full.yaml';
const update = process.env.UPDATE_GOLDEN === '1';

test('helm lint --strict passes with the default values and with every option set', () => {
  for (const args of [[], ['--values', join(repoRoot, fullValues)]]) {
    const r = helm(['lint', '--strict', chartDir, ...args]);
    assert.equal(r.status, 0, `helm lint --strict ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  }
});

for (const [name, valuesFiles] of [
  ['chart-default.yaml', []],
  ['chart-full.yaml', [fullValues]],
] as const) {
  test(`helm template matches test/golden/${name}${update ? ' (rewritten: UPDATE_GOLDEN=1)' : ''}`, () => {
    const path = join(repoRoot, 'test/golden', name);
    const rendered = renderText({ valuesFiles: [...valuesFiles] });
    if (update) writeFileSync(path, rendered);
    const golden = readFileSync(path, 'utf8');
    assert.ok(rendered === golden, `helm template differs from test/golden/${name}; if the change is intended, run UPDATE_GOLDEN=1 node --import tsx --test test/chart.test.ts and review the diff`);
  });
}

const renders: [string, KubeObject[]][] = [
  ['default values', renderObjects()],
  ['every option set', renderObjects({ valuesFiles: [fullValues] })],
  ['one replica, other namespace', renderObjects({ set: ['replicas=1'], namespace: 'mesh' })],
];

for (const [label, objects] of renders) {
  test(`every rendered object is valid against current Kubernetes schemas, unknown fields refused (${label})`, async () => {
    assert.ok(objects.length >= 10, `only ${objects.length} objects rendered`);
    const problems: string[] = [];
    for (const o of objects) {
      for (const p of await validateKubeObject(o)) problems.push(`${o.kind}/${o.metadata?.name}: ${p}`);
    }
    assert.deepEqual(problems, []);
  });
}

test('the schema check sees what it must: planted unknown fields and bad values are reported', async () => {
  const objects = renderObjects({ valuesFiles: [fullValues] });
  const deployment = structuredClone(objects.find((o) => o.kind === 'Deployment')!) as KubeObject & {
    spec: { template: { spec: { containers: Record<string, unknown>[]; securityContext: Record<string, unknown> } } };
  };
  const container = deployment.spec.template.spec.containers[0]!;
  container.readOnlyRootFileSystem = true; // misspelt: not the field the kubelet reads
  (container.securityContext as Record<string, unknown>).runAsNonRoot = 'yes';
  deployment.spec.template.spec.securityContext.seccompProfil = { type: 'RuntimeDefault' };
  const problems = await validateKubeObject(deployment);
  assert.ok(problems.includes('unknown field /spec/template/spec/containers/0/readOnlyRootFileSystem'), problems.join('\n'));
  assert.ok(problems.includes('unknown field /spec/template/spec/securityContext/seccompProfil'), problems.join('\n'));
  assert.ok(problems.some((p) => /securityContext\/runAsNonRoot must be boolean/.test(p)), problems.join('\n'));

  const monitor = structuredClone(objects.find((o) => o.kind === 'ServiceMonitor')!) as KubeObject & { spec: { endpoints: Record<string, unknown>[] } };
  monitor.spec.endpoints[0]!.intervall = '30s';
  monitor.spec.endpoints[0]!.scrapeTimeout = 'ten seconds';
  const monitorProblems = await validateKubeObject(monitor);
  assert.ok(monitorProblems.some((p) => /intervall/.test(p)), monitorProblems.join('\n'));
  assert.ok(monitorProblems.some((p) => /scrapeTimeout must match pattern/.test(p)), monitorProblems.join('\n'));

  // Free-form maps are not unknown fields: the validator enumerates them.
  const ConfigMap = (await modelClass('v1', 'ConfigMap'))!;
  const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', labels: { any: 'label' } }, data: { 'any.key': 'v' }, bogus: 1 };
  assert.deepEqual(unknownFields((d) => ConfigMap.prototype.validate.call(d), cm), ['/bogus']);
});

/** helm template with one values file holding `yamlText`; returns helm's failure text. */
function refusal(yamlText: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-values-'));
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, yamlText);
  const r = helmTemplate({ valuesFiles: [file] });
  assert.notEqual(r.status, 0, `helm accepted:\n${yamlText}`);
  return r.stderr;
}

for (const [bad, field, why] of [
  ['replicas: two', "at '/replicas'", /got string, want integer/],
  ['replica: 3', "at ''", /additional properties 'replica' not allowed/],
  ['webhook: {failurePolicy: Maybe}', "at '/webhook/failurePolicy'", /must be one of 'Fail', 'Ignore'/],
  ['trustDomain: Example.ORG', "at '/trustDomain'", /does not match pattern/],
  ['trustDomain: ""', "at '/trustDomain'", /minLength/],
  ['webhook: {timeoutSeconds: 60}', "at '/webhook/timeoutSeconds'", /maximum/],
  ['injector: {capture: ebpf}', "at '/injector/capture'", /must be one of 'iptables', 'none'/],
  ['injector: {tokenExpirationSeconds: 60}', "at '/injector/tokenExpirationSeconds'", /minimum: got 60, want 600/],
  ['ca: {runAsUser: 0}', "at '/ca/runAsUser'", /minimum/],
  ['ca: {resources: {requests: {cpu: lots}}}', "at '/ca/resources/requests/cpu'", /does not match pattern/],
  ['ca: {resources: {requests: {gpu: 1}}}', "at '/ca/resources/requests'", /additional properties 'gpu' not allowed/],
  ['networkPolicy: {grpcFrom: [{podSelectr: {}}]}', "at '/networkPolicy/grpcFrom/0'", /additional properties 'podSelectr' not allowed/],
  ['serviceMonitor: {interval: 30 seconds}', "at '/serviceMonitor/interval'", /does not match pattern/],
] as const) {
  test(`values.schema.json refuses ${bad} naming the field`, () => {
    const msg = refusal(bad);
    assert.ok(msg.includes(field), `expected ${field} in:\n${msg}`);
    assert.match(msg, why);
  });
}

test('values.schema.json closes every object (additionalProperties false), except free-form maps', () => {
  const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
  // String maps are open by nature and typed instead; `global` is Helm's, filled by parent charts.
  const openByDesign = ['/definitions/stringMap', '/properties/global'];
  const open: string[] = [];
  const walk = (node: unknown, path: string): void => {
    if (node === null || typeof node !== 'object') return;
    const n = node as Record<string, unknown>;
    const isObjectSchema = n.type === 'object' || (n.properties !== undefined && !path.endsWith('/properties'));
    if (isObjectSchema && n.additionalProperties !== false && !openByDesign.includes(path)) open.push(path);
    for (const [k, v] of Object.entries(n)) walk(v, `${path}/${k}`);
  };
  walk(schema, '');
  assert.deepEqual(open, []);
  const stringMap = (schema.definitions as Record<string, Record<string, unknown>>).stringMap!;
  assert.deepEqual(stringMap.additionalProperties, { type: 'string' });
});

test('values.yaml documents every key with a comment above it', () => {
  const doc = parseDocument(readFileSync(join(chartDir, 'values.yaml'), 'utf8'));
  const undocumented: string[] = [];
  const walk = (node: Node | null | undefined, path: string, inherited: string | undefined): void => {
    if (!isMap(node)) return;
    node.items.forEach((pair, i) => {
      const key = isScalar(pair.key) ? String(pair.key.value) : '?';
      // The first key's comment is attached to the map itself by the parser.
      const comment = (pair.key as Node | null)?.commentBefore ?? (i === 0 ? inherited : undefined);
      if (!comment?.trim()) undocumented.push(`${path}${key}`);
      const value = pair.value as Node | null;
      // List items are examples of the documented list, not keys of the chart.
      if (isMap(value)) walk(value, `${path}${key}.`, value.commentBefore ?? undefined);
    });
  };
  walk(doc.contents as Node, '', undefined);
  assert.deepEqual(undocumented, []);
});
