// `tollgate inject -f` as an operator runs it, on examples/kubernetes/web.yaml: the injected manifest
// against a golden file (test/golden/inject-web.yaml, made with the fixed bundle beside it; rewrite
// both goldens with TOLLGATE_UPDATE_GOLDEN=1), schema validation of what it prints, stdin, the
// injector config file, --force, and exit code 2 for bad input.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { validateStrict } from './helpers/kube-schema.ts';
import { ROOT, tempDir, tollgate } from './helpers/procs.ts';

const tmp = tempDir();
after(() => tmp.cleanup());
const MANIFEST = 'examples/kubernetes/web.yaml';
// A root made once by `tollgate ca init --trust-domain cluster.local`; only its bytes matter here.
const BUNDLE = 'test/golden/inject-bundle.pem';
const update = process.env['TOLLGATE_UPDATE_GOLDEN'] === '1';

function golden(name: string, actual: string): void {
  const path = join(ROOT, 'test/golden', name);
  if (update) writeFileSync(path, actual);
  assert.equal(actual, readFileSync(path, 'utf8'), `differs from test/golden/${name} (TOLLGATE_UPDATE_GOLDEN=1 rewrites it)`);
}

const docs = (text: string): Record<string, unknown>[] => (parseAllDocuments(text) as unknown as { toJS(): Record<string, unknown> }[]).map((d) => d.toJS());

test('inject -f on a Deployment manifest prints the golden injected manifest; each object passes its current schema', async () => {
  const r = tollgate(['inject', '-f', MANIFEST, '--bundle', BUNDLE]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, 'deployment/web: injected (pod annotation: native sidecar, capture iptables, 1 inbound port(s), 1 upstream(s))\n');
  golden('inject-web.yaml', r.stdout);
  const [cm, deploy, svc] = docs(r.stdout);
  await validateStrict('v1/ConfigMap', cm);
  await validateStrict('apps/v1/Deployment', deploy);
  await validateStrict('v1/Service', svc);
});

test('the same from stdin; a second run leaves the injected manifest as it is', () => {
  const once = tollgate(['inject', '-f', '-', '--bundle', BUNDLE], { input: readFileSync(join(ROOT, MANIFEST), 'utf8') });
  assert.equal(once.code, 0, once.stderr);
  assert.equal(once.stdout, readFileSync(join(ROOT, 'test/golden/inject-web.yaml'), 'utf8'));
  const twice = tollgate(['inject', '-f', '-', '--bundle', BUNDLE], { input: once.stdout });
  assert.equal(twice.code, 0, twice.stderr);
  assert.equal(twice.stdout, once.stdout);
  assert.equal(twice.stderr, 'deployment/web: skipped (already injected)\n');
});

test('--injector-config (the ConfigMap\'s config.yaml): the pre-1.29 fallback, capture none', () => {
  const config = join(tmp.dir, 'config.yaml');
  writeFileSync(config, 'trustDomain: cluster.local\ncaAddress: tollgate-ca.mesh.svc:8443\nimage: registry.example/tollgate:9\nnativeSidecar: false\ncapture: none\n');
  const r = tollgate(['inject', '-f', MANIFEST, '--bundle', BUNDLE, '--injector-config', config]);
  assert.equal(r.code, 0, r.stderr);
  const spec = (docs(r.stdout)[1] as { spec: { template: { spec: { containers: { name: string; image: string }[]; initContainers?: unknown[] } } } }).spec.template.spec;
  assert.deepEqual(spec.containers.map((c) => [c.name, c.image]), [['tollgate-proxy', 'registry.example/tollgate:9'], ['web', 'registry.example/shop/web:1.4.2']]);
  assert.equal(spec.initContainers, undefined);
  assert.match(r.stderr, /injected \(pod annotation: sidecar container \(pre-1\.29 fallback\), capture none/);
});

test('--force injects a template that opts out', () => {
  const optedOut = join(tmp.dir, 'opted-out.yaml');
  writeFileSync(optedOut, readFileSync(join(ROOT, MANIFEST), 'utf8').replace('tollgate.io/inject: enabled', 'tollgate.io/inject: disabled'));
  const plain = tollgate(['inject', '-f', optedOut, '--bundle', BUNDLE]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(plain.stdout, readFileSync(optedOut, 'utf8'), 'nothing injected: printed as it came');
  assert.equal(plain.stderr, 'deployment/web: skipped (pod annotation tollgate.io/inject is disabled)\n');
  const forced = tollgate(['inject', '-f', optedOut, '--bundle', BUNDLE, '--force']);
  assert.match(forced.stderr, /^deployment\/web: injected \(forced despite the opt-out/);
});

type Bad = [name: string, args: string[], stderr: RegExp, input?: string];
const bad: Bad[] = [
  ['a bad annotation', ['-f', '-', '--bundle', BUNDLE], /^tollgate: TG_ANNOTATION_INVALID: deployment\/web: annotation tollgate\.io\/upstreams: "orders" has "orders", which is not NAME=SPIFFE-ID@HOST:PORT/, 'UPSTREAMS'],
  ['a missing manifest', ['-f', 'nope.yaml', '--bundle', BUNDLE], /TG_USAGE: cannot read the manifest nope\.yaml: it does not exist/],
  ['a bundle without certificates', ['-f', MANIFEST, '--bundle', MANIFEST], /TG_CERT_INVALID: examples\/kubernetes\/web\.yaml holds no PEM "CERTIFICATE" block/],
  ['no --bundle', ['-f', MANIFEST], /required option '--bundle <file>' not specified/],
  ['a bad --capture', ['-f', MANIFEST, '--bundle', BUNDLE, '--capture', 'ebpf'], /TG_USAGE: --capture must be iptables or none, got "ebpf"/],
  ['a config file and config flags', ['-f', MANIFEST, '--bundle', BUNDLE, '--injector-config', MANIFEST, '--capture', 'none'], /TG_USAGE: --injector-config already sets --capture; give the file or the flags/],
  ['a bad injector config', ['-f', MANIFEST, '--bundle', BUNDLE, '--injector-config', BUNDLE], /TG_CONFIG_INVALID: cannot read injector config test\/golden\/inject-bundle\.pem line 1: the injector config must be a mapping/],
  ['invalid YAML', ['-f', '-', '--bundle', BUNDLE], /TG_CONFIG_INVALID: cannot read manifest - line 2: invalid YAML/, 'kind: Pod\nspec: [\n'],
];

for (const [name, args, stderr, input] of bad) {
  test(`inject exits 2 on bad input: ${name}`, () => {
    const text = input === 'UPSTREAMS' ? readFileSync(join(ROOT, MANIFEST), 'utf8').replace(/tollgate\.io\/upstreams: .*/, 'tollgate.io/upstreams: orders') : input;
    const r = tollgate(['inject', ...args], text === undefined ? {} : { input: text });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, stderr);
    assert.equal(r.stdout, '');
  });
}

test('inject --help (golden)', () => {
  const r = tollgate(['inject', '--help']);
  assert.equal(r.code, 0);
  golden('inject-help.txt', r.stdout);
});
