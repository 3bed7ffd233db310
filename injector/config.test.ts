import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TollgateError } from '../common/errors.ts';
import { injectorConfigFromValues, parseInjectorConfig, type InjectorConfig } from './config.ts';

const SOURCE = '/etc/tollgate/injector/config.yaml';
const parse = (text: string, systemNamespace?: string): InjectorConfig => parseInjectorConfig(text, { source: SOURCE, ...(systemNamespace ? { systemNamespace } : {}) });

// CONTRACT.md's example, verbatim.
const CONTRACT = `trustDomain: cluster.local
caAddress: tollgate-ca.tollgate-system.svc:8443
caSpiffeId: spiffe://cluster.local/tollgate/ca
image: ghcr.io/tollgate/tollgate:0.1.0
imagePullPolicy: IfNotPresent
nativeSidecar: true          # false: clusters older than 1.29 (regular container + wait hook)
capture: iptables            # iptables | none
tokenExpirationSeconds: 3600 # projected token, audience tollgate-ca
logLevel: info
resources: { requests: { cpu: 50m, memory: 64Mi }, limits: { memory: 256Mi } }
`;

test("the contract's example parses into a frozen config", () => {
  const c = parse(CONTRACT, 'mesh');
  assert.deepEqual(c, {
    source: SOURCE,
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
    systemNamespace: 'mesh',
  });
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.resources.requests));
});

test('defaults: only trustDomain, caAddress and image are required', () => {
  const c = parse('trustDomain: example.org\ncaAddress: "[fd00::1]:8443"\nimage: tollgate:dev\n');
  assert.equal(c.caSpiffeId, 'spiffe://example.org/tollgate/ca');
  assert.equal(c.caAddress, '[fd00::1]:8443');
  assert.equal(c.imagePullPolicy, 'IfNotPresent');
  assert.equal(c.nativeSidecar, true);
  assert.equal(c.capture, 'iptables');
  assert.equal(c.tokenExpirationSeconds, 3600);
  assert.equal(c.logLevel, 'info');
  assert.equal(c.systemNamespace, 'tollgate-system');
  assert.deepEqual(c.resources, { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } });
  // Given resources replace the default as a whole; numbers are quantities too.
  assert.deepEqual(parse('trustDomain: example.org\ncaAddress: a:1\nimage: i\nresources: {limits: {cpu: 1}}\n').resources, { limits: { cpu: '1' } });
});

const HEAD = 'trustDomain: example.org\ncaAddress: ca.svc:8443\nimage: tollgate:dev\n'; // 3 lines
type Bad = [name: string, text: string, line: number, message: RegExp];
const bad: Bad[] = [
  ['empty file', '', 1, /the injector config must be a mapping with at least trustDomain, caAddress and image/],
  ['invalid YAML', `${HEAD}resources: {\n`, 4, /invalid YAML/],
  ['missing image', 'trustDomain: example.org\ncaAddress: a:1\n', 1, /the injector config has no "image"; add the Tollgate image, e.g\. ghcr\.io\/tollgate\/tollgate:0\.1\.0/],
  ['unknown key with a suggestion', `${HEAD}captur: none\n`, 4, /unknown key "captur" in the injector config; allowed keys are: .*\(did you mean "capture"\?\)/],
  ['bad trust domain', HEAD.replace('example.org', 'Example.org'), 1, /trustDomain "Example\.org" has an upper-case trust domain/],
  ['caAddress without port', HEAD.replace('ca.svc:8443', 'ca.svc'), 2, /caAddress "ca\.svc" is not HOST:PORT/],
  ['caSpiffeId foreign', `${HEAD}caSpiffeId: spiffe://other.org/ca\n`, 4, /caSpiffeId "spiffe:\/\/other\.org\/ca" is not in trust domain "example\.org"/],
  ['caSpiffeId without path', `${HEAD}caSpiffeId: spiffe://example.org\n`, 4, /caSpiffeId "spiffe:\/\/example\.org" is a trust-domain ID/],
  ['caSpiffeId a workload ID (could pose as the CA)', `${HEAD}caSpiffeId: spiffe://example.org/ns/tollgate-system/sa/tollgate-ca\n`, 4, /caSpiffeId "spiffe:\/\/example\.org\/ns\/tollgate-system\/sa\/tollgate-ca" is a workload ID.*use spiffe:\/\/example\.org\/tollgate\/ca/],
  ['image with a space', HEAD.replace('tollgate:dev', '"tollgate :dev"'), 3, /image "tollgate :dev" has white space/],
  ['pull policy', `${HEAD}imagePullPolicy: Sometimes\n`, 4, /imagePullPolicy must be Always, IfNotPresent or Never, got "Sometimes"/],
  ['capture', `${HEAD}capture: ebpf\n`, 4, /capture must be iptables or none, got "ebpf"; none leaves inbound traffic uncaptured/],
  ['nativeSidecar', `${HEAD}nativeSidecar: "yes"\n`, 4, /nativeSidecar must be true or false, got "yes"/],
  ['token too short', `${HEAD}tokenExpirationSeconds: 60\n`, 4, /tokenExpirationSeconds must be an integer 600\.\.86400, got 60/],
  ['log level', `${HEAD}logLevel: loud\n`, 4, /logLevel must be debug, info, warn or error, got "loud"/],
  ['bad quantity', `${HEAD}resources:\n  limits:\n    memory: 256MB\n`, 6, /resources\.limits\.memory "256MB" is not a Kubernetes quantity; write e\.g\. 50m/],
  ['unknown resources key', `${HEAD}resources:\n  limit: {}\n`, 5, /unknown key "limit" in resources.*did you mean "limits"/],
];

for (const [name, text, line, message] of bad) {
  test(`parseInjectorConfig rejects: ${name} (line ${line})`, () => {
    assert.throws(() => parse(text), (e: unknown) => {
      assert.ok(e instanceof TollgateError && e.code === 'TG_CONFIG_INVALID', String(e));
      assert.ok(e.message.startsWith(`cannot read injector config ${SOURCE} line ${line}: `), e.message);
      assert.match(e.message, message);
      return true;
    });
  });
}

test('injectorConfigFromValues: the same checks, errors naming the flag', () => {
  const c = injectorConfigFromValues({ trustDomain: 'example.org', caAddress: 'ca:1', image: 'i', capture: 'none', caSpiffeId: undefined });
  assert.equal(c.capture, 'none');
  assert.equal(c.source, 'the command line');
  const usage = (values: Record<string, unknown>, message: RegExp): void => {
    assert.throws(() => injectorConfigFromValues(values), (e: unknown) => e instanceof TollgateError && e.code === 'TG_USAGE' && message.test(e.message) || assert.fail(String(e)));
  };
  usage({ caAddress: 'ca:1', image: 'i' }, /^--trust-domain is required: give the trust domain of the mesh, e\.g\. cluster\.local \(or --injector-config FILE\)$/);
  usage({ trustDomain: 'example.org', caAddress: 'ca:1', image: 'i', capture: 'x' }, /^--capture must be iptables or none, got "x"$/);
  usage({ trustDomain: 'example.org', caAddress: 'ca', image: 'i' }, /^--ca-address "ca" is not HOST:PORT/);
  usage({ trustDomain: 'example.org', caAddress: 'ca:1', image: 'i', caSpiffeId: 'spiffe://x.org/ca' }, /^--ca-spiffe-id "spiffe:\/\/x\.org\/ca" is not in trust domain/);
});

test('examples/injector.yaml parses and documents every key', async () => {
  const { readFileSync } = await import('node:fs');
  const path = new URL('../examples/injector.yaml', import.meta.url);
  const text = readFileSync(path, 'utf8');
  const c = parse(text);
  assert.equal(c.caSpiffeId, 'spiffe://cluster.local/tollgate/ca');
  for (const key of ['trustDomain', 'caAddress', 'caSpiffeId', 'image', 'imagePullPolicy', 'nativeSidecar', 'capture', 'tokenExpirationSeconds', 'logLevel', 'resources', 'requests', 'limits']) {
    assert.match(text, new RegExp(`^\\s*${key}:`, 'm'), key);
  }
  // The example states the defaults: the file and an empty config give the same settings.
  const { source: _a, ...fromFile } = c;
  const { source: _b, ...defaults } = parse('trustDomain: cluster.local\ncaAddress: tollgate-ca.tollgate-system.svc:8443\nimage: ghcr.io/tollgate/tollgate:0.1.0\n');
  assert.deepEqual(fromFile, defaults);
});

test('the injector config schema is valid JSON Schema (checked here and when its validator is generated, never at run time)', async () => {
  const { metaSchemaErrors } = await import('../scripts/config-validators.ts');
  const { schema } = await import('./config-schema.ts');
  assert.deepEqual(metaSchemaErrors(schema), []);
});
