import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSidecarConfig, loadSidecarConfigFromEnv, parseSidecarConfig, type SidecarConfig, type SidecarConfigOverrides } from './config.ts';
import { authorize, parsePolicy } from './policy.ts';
import { TollgateError } from '../common/errors.ts';
import { certsToPem } from '../pki/pem.ts';
import { createLogger } from '../common/log.ts';
import { warnExposedAdmin } from './sidecar.ts';
import { testChain } from '../pki/test-chain.ts';

const SOURCE = './sidecar.yaml';
const BASE = '/etc/tollgate';
const parse = (text: string, overrides?: SidecarConfigOverrides): SidecarConfig =>
  parseSidecarConfig(text, { source: SOURCE, baseDir: BASE, ...(overrides ? { overrides } : {}) });

const tmp = mkdtempSync(join(tmpdir(), 'tollgate-config-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const FULL = `trustDomain: example.org
ca:
  address: tollgate-ca.tollgate-system.svc:8443
  spiffeId: spiffe://example.org/tollgate/ca-2
  bundleFile: ca/bundle.pem
attestation:
  tokenFile: /var/run/secrets/tokens/tollgate-token
svid:
  ttl: 30m
inbound:
  - listen: 0.0.0.0:15006
    appPort: 8080
    appHost: localhost
    proxyProtocol: true
  - listen: "[::]:15007"
    appPort: 9000
outbound:
  - listen: 127.0.0.1:15001
    upstream: orders.shop.svc:15006
    spiffeId: spiffe://example.org/ns/shop/sa/orders
  - listen: "[::1]:15002"
    upstream: "[fd00::7]:15006"
    spiffeId: spiffe://example.org/ns/shop/sa/cart
policy:
  file: /etc/tollgate/policy/policy.yaml
tls:
  minVersion: TLSv1.2
limits:
  maxConnections: 500
  handshakeTimeout: 5s
  idleTimeout: 600
  drainTimeout: 1m
admin:
  listen: 0.0.0.0:15021
log:
  level: debug
capture: iptables
`;

// The smallest valid file: everything else takes its default.
const MIN = `trustDomain: example.org
ca: {address: "127.0.0.1:8443", bundleFile: ./bundle.pem}
attestation: {joinToken: tgjoin.abc}
`;

test('parseSidecarConfig: a full file, every key set', () => {
  assert.deepEqual(parse(FULL), {
    source: SOURCE,
    trustDomain: 'example.org',
    ca: { address: { host: 'tollgate-ca.tollgate-system.svc', port: 8443 }, spiffeId: 'spiffe://example.org/tollgate/ca-2', bundleFile: '/etc/tollgate/ca/bundle.pem' },
    attestation: { kind: 'k8s', tokenFile: '/var/run/secrets/tokens/tollgate-token' },
    svid: { ttlMs: 30 * 60_000, skewToleranceMs: 300_000 },
    inbound: [
      { listen: { host: '0.0.0.0', port: 15006 }, appPort: 8080, appHost: 'localhost', proxyProtocol: true, allowNonLoopbackApp: false },
      { listen: { host: '::', port: 15007 }, appPort: 9000, appHost: '127.0.0.1', proxyProtocol: false, allowNonLoopbackApp: false },
    ],
    outbound: [
      { listen: { host: '127.0.0.1', port: 15001 }, upstream: { host: 'orders.shop.svc', port: 15006 }, spiffeId: 'spiffe://example.org/ns/shop/sa/orders' },
      { listen: { host: '::1', port: 15002 }, upstream: { host: 'fd00::7', port: 15006 }, spiffeId: 'spiffe://example.org/ns/shop/sa/cart' },
    ],
    policy: { file: '/etc/tollgate/policy/policy.yaml' },
    tls: { minVersion: 'TLSv1.2' },
    limits: { maxConnections: 500, maxHandshakes: 1000, maxHandshakesPerSource: 100, handshakeTimeoutMs: 5000, idleTimeoutMs: 600_000, maxConnectionAgeMs: 86_400_000, drainTimeoutMs: 60_000 },
    admin: { listen: { host: '0.0.0.0', port: 15021 } },
    log: { level: 'debug' },
    capture: 'iptables',
  });
});

test('parseSidecarConfig: defaults', () => {
  assert.deepEqual(parse(MIN), {
    source: SOURCE,
    trustDomain: 'example.org',
    ca: { address: { host: '127.0.0.1', port: 8443 }, spiffeId: 'spiffe://example.org/tollgate/ca', bundleFile: '/etc/tollgate/bundle.pem' },
    attestation: { kind: 'join', token: 'tgjoin.abc' },
    svid: { ttlMs: 3_600_000, skewToleranceMs: 300_000 },
    inbound: [],
    outbound: [],
    policy: null,
    tls: { minVersion: 'TLSv1.3' },
    limits: { maxConnections: 10_000, maxHandshakes: 1000, maxHandshakesPerSource: 100, handshakeTimeoutMs: 10_000, idleTimeoutMs: 3_600_000, maxConnectionAgeMs: 86_400_000, drainTimeoutMs: 20_000 },
    admin: { listen: { host: '127.0.0.1', port: 15020 } },
    log: { level: 'info' },
    capture: 'none',
  });
  // Sections whose keys are all commented out (YAML null) mean "all defaults" / "none".
  const empty = parse(`${MIN}svid:\ninbound:\noutbound:\nlimits:\nlog:\n`);
  assert.deepEqual([empty.inbound, empty.outbound, empty.svid.ttlMs, empty.log.level], [[], [], 3_600_000, 'info']);
  // Without baseDir, relative paths resolve against the current directory.
  assert.equal(parseSidecarConfig(MIN, { source: 'x' }).ca.bundleFile, join(process.cwd(), 'bundle.pem'));
});

test('parseSidecarConfig: port 0 on a listen address picks a free port; the same port twice is fine then', () => {
  const c = parse(`${MIN}admin: {listen: "127.0.0.1:0"}\noutbound:\n  - {listen: "127.0.0.1:0", upstream: "a:1", spiffeId: spiffe://example.org/a}\n`);
  assert.deepEqual([c.admin.listen.port, c.outbound[0]!.listen.port], [0, 0]);
});

test('parseSidecarConfig: the result is deeply frozen', () => {
  const c = parse(FULL);
  const walk = (v: unknown, at: string): void => {
    if (v === null || typeof v !== 'object') return;
    assert.ok(Object.isFrozen(v), `${at} is not frozen`);
    for (const [k, child] of Object.entries(v)) walk(child, `${at}.${k}`);
  };
  walk(c, 'config');
  assert.throws(() => ((c.limits as { maxConnections: number }).maxConnections = 1), TypeError);
});

test('parseSidecarConfig: joinTokenFile is read (relative to the config) and trimmed', () => {
  writeFileSync(join(tmp, 'web.token'), '  tgjoin.from-file\n', { mode: 0o600 });
  const c = parseSidecarConfig(MIN.replace('{joinToken: tgjoin.abc}', '{joinTokenFile: ./web.token}'), { source: 'x', baseDir: tmp });
  assert.deepEqual(c.attestation, { kind: 'join', token: 'tgjoin.from-file' });
});

test('parseSidecarConfig: a joinTokenFile others can read is refused, saying chmod 600', () => {
  writeFileSync(join(tmp, 'open.token'), 'tgjoin.from-file\n', { mode: 0o644 });
  chmodSync(join(tmp, 'open.token'), 0o644);
  assert.throws(
    () => parseSidecarConfig(MIN.replace('{joinToken: tgjoin.abc}', '{joinTokenFile: ./open.token}'), { source: 'x', baseDir: tmp }),
    /attestation\.joinTokenFile .*open\.token is mode 0644: a secret file must be readable by its owner only \(chmod 600 /,
  );
});

type Override = [name: string, overrides: SidecarConfigOverrides, check: (c: SidecarConfig) => void];
const overrides: Override[] = [
  ['admin listen', { adminListen: '127.0.0.1:25020' }, (c) => assert.deepEqual(c.admin.listen, { host: '127.0.0.1', port: 25020 })],
  ['ca address', { caAddress: '10.0.0.9:9443' }, (c) => assert.deepEqual(c.ca.address, { host: '10.0.0.9', port: 9443 })],
  ['log level', { logLevel: 'warn' }, (c) => assert.equal(c.log.level, 'warn')],
  ['join token replaces the file attestation', { joinToken: 'tgjoin.flag' }, (c) => assert.deepEqual(c.attestation, { kind: 'join', token: 'tgjoin.flag' })],
];
for (const [name, o, check] of overrides) {
  test(`parseSidecarConfig: override ${name}`, () => check(parse(FULL, o)));
}

test('parseSidecarConfig: a join token override stands in for a missing attestation', () => {
  const text = 'trustDomain: example.org\nca: {address: "127.0.0.1:8443", bundleFile: b.pem}\n';
  assert.deepEqual(parse(text, { joinToken: 'tgjoin.x' }).attestation, { kind: 'join', token: 'tgjoin.x' });
});

type BadOverride = [name: string, overrides: SidecarConfigOverrides, message: RegExp];
const badOverrides: BadOverride[] = [
  ['admin listen not HOST:PORT', { adminListen: '15020' }, /^the command-line value for admin\.listen "15020" is not HOST:PORT/],
  ['admin listen collides with inbound', { adminListen: '127.0.0.1:15006' }, /^the command-line value for admin\.listen 127\.0\.0\.1:15006 collides with inbound\[0\]\.listen/],
  ['ca address port 0', { caAddress: 'ca:0' }, /^the command-line value for ca\.address "ca:0" has no valid port; use 1\.\.65535/],
  ['log level', { logLevel: 'loud' }, /^the command-line value for log\.level must be one of debug, info, warn, error, got "loud"/],
  ['empty join token', { joinToken: ' ' }, /^the command-line value for attestation\.joinToken is not a join token/],
];
for (const [name, o, message] of badOverrides) {
  test(`parseSidecarConfig rejects override: ${name}`, () => {
    assert.throws(() => parse(FULL, o), (e: unknown) => e instanceof TollgateError && e.code === 'TG_USAGE' && message.test(e.message) || assert.fail(String(e)));
  });
}

const HEAD = 'trustDomain: example.org\nca: {address: "127.0.0.1:8443", bundleFile: b.pem}\nattestation: {joinToken: tgjoin.abc}\n'; // 3 lines
const IN = (item: string): string => `${HEAD}policy: {file: p.yaml}\ninbound:\n  - ${item}\n`; // item on line 6
const OUT = (item: string): string => `${HEAD}outbound:\n  - ${item}\n`; // item on line 5

type Bad = [name: string, text: string, line: number, message: RegExp];
const bad: Bad[] = [
  ['invalid YAML', `${HEAD}inbound: [\n`, 4, /invalid YAML/],
  ['duplicate key', `${HEAD}log: {level: info}\nlog: {level: debug}\n`, 5, /duplicate key "log" \(first on line 4\)/],
  ['empty file', '', 1, /the config must be a mapping/],
  ['capture unknown', `${HEAD}capture: ebpf\n`, 4, /^cannot read sidecar config .* line 4: capture must be iptables or none, got "ebpf"/],
  ['unknown top-level key, with a suggestion', `${HEAD}limts: {}\n`, 4, /unknown key "limts" in the config; allowed keys are: .*\(did you mean "limits"\?\)/],
  ['unknown nested key', `${HEAD}tls:\n  minVersion: TLSv1.3\n  maxVersion: TLSv1.3\n`, 6, /unknown key "maxVersion" in tls; allowed keys are: minVersion/],
  ['unknown key in a list item', IN('{listen: "0.0.0.0:15006", appPort: 8080, app_host: x}'), 6, /unknown key "app_host" in inbound\[0\]/],
  ['missing trustDomain', 'ca: {address: "a:1", bundleFile: b}\n', 1, /the config has no "trustDomain"; add the trust domain of this workload/],
  ['missing ca.bundleFile', 'trustDomain: example.org\nca:\n  address: a:1\n', 3, /ca has no "bundleFile"; add a PEM file with the CA's roots/],
  ['missing attestation', 'trustDomain: example.org\nca: {address: "a:1", bundleFile: b}\n', 1, /the config has no attestation; add attestation\.tokenFile .* or give --join-token/],
  ['empty attestation', 'trustDomain: example.org\nca: {address: "a:1", bundleFile: b}\nattestation: {}\n', 3, /attestation is empty; set one of tokenFile \(a Kubernetes projected token\), joinToken or joinTokenFile/],
  ['two attestations', 'trustDomain: example.org\nca: {address: "a:1", bundleFile: b}\nattestation:\n  tokenFile: /t\n  joinToken: tgjoin.x\n', 5, /attestation\.joinToken cannot be set together with attestation\.tokenFile; keep exactly one/],
  ['unreadable joinTokenFile', 'trustDomain: example.org\nca: {address: "a:1", bundleFile: b}\nattestation:\n  joinTokenFile: ./missing.token\n', 4, /attestation\.joinTokenFile \/etc\/tollgate\/missing\.token cannot be read \(it does not exist\)/],
  ['bad trust domain', HEAD.replace('example.org', 'Example.org'), 1, /trustDomain "Example\.org" has an upper-case trust domain/],
  ['ca.address without port', HEAD.replace('"127.0.0.1:8443"', 'ca.svc'), 2, /ca\.address "ca\.svc" is not HOST:PORT/],
  ['ca.address bad host', HEAD.replace('"127.0.0.1:8443"', '"c a:1"'), 2, /ca\.address "c a:1" has no valid host/],
  ['ca.spiffeId in another trust domain', HEAD.replace('bundleFile: b.pem', 'bundleFile: b.pem, spiffeId: spiffe://other.org/ca'), 2, /ca\.spiffeId "spiffe:\/\/other\.org\/ca" is not in trust domain "example\.org"/],
  ['ca.spiffeId without path', HEAD.replace('bundleFile: b.pem', 'bundleFile: b.pem, spiffeId: spiffe://example.org'), 2, /ca\.spiffeId "spiffe:\/\/example\.org" is a trust-domain ID/],
  ['ca.spiffeId a workload ID (could pose as the CA)', HEAD.replace('bundleFile: b.pem', 'bundleFile: b.pem, spiffeId: spiffe://example.org/ns/tollgate-system/sa/tollgate-ca'), 2, /ca\.spiffeId "spiffe:\/\/example\.org\/ns\/tollgate-system\/sa\/tollgate-ca" is a workload ID, .*remove ca\.spiffeId to use spiffe:\/\/example\.org\/tollgate\/ca/],
  ['empty string', HEAD.replace('b.pem', '""'), 2, /ca\.bundleFile is empty; write a PEM file/],
  ['bundleFile and bundlePem', 'trustDomain: example.org\nca:\n  address: a:1\n  bundleFile: b.pem\n  bundlePem: x\nattestation: {joinToken: tgjoin.abc}\n', 5, /ca\.bundlePem cannot be set together with ca\.bundleFile; keep one of the two/],
  ['bundlePem without a certificate', 'trustDomain: example.org\nca:\n  address: a:1\n  bundlePem: "not pem"\nattestation: {joinToken: tgjoin.abc}\n', 4, /ca\.bundlePem is not PEM certificates \(it holds no PEM "CERTIFICATE" block\); paste the text of the CA's bundle\.pem/],
  ['appPort not a number', IN('{listen: "0.0.0.0:15006", appPort: http}'), 6, /inbound\[0\]\.appPort must be an integer 1\.\.65535, got "http"$/],
  ['appPort quoted', IN('{listen: "0.0.0.0:15006", appPort: "8080"}'), 6, /got "8080"; write it without quotes/],
  ['appPort out of range', IN('{listen: "0.0.0.0:15006", appPort: 70000}'), 6, /inbound\[0\]\.appPort must be an integer 1\.\.65535, got 70000/],
  ['appPort missing', IN('{listen: "0.0.0.0:15006"}'), 6, /inbound\[0\] has no "appPort"; add the app's port/],
  ['appHost invalid', IN('{listen: "0.0.0.0:15006", appPort: 8080, appHost: "a b"}'), 6, /inbound\[0\]\.appHost "a b" is not an IP address or host name/],
  ['appHost not loopback', IN('{listen: "0.0.0.0:15006", appPort: 8080, appHost: 10.0.0.5}'), 6, /inbound\[0\]\.appHost 10\.0\.0\.5 is not a loopback address: the plaintext leg to the app would leave the pod; .*allowNonLoopbackApp: true/],
  ['proxyProtocol not a boolean', IN('{listen: "0.0.0.0:15006", appPort: 8080, proxyProtocol: "yes"}'), 6, /inbound\[0\]\.proxyProtocol must be true or false, got "yes"/],
  ['listen as a number', IN('{listen: 15006, appPort: 8080}'), 6, /inbound\[0\]\.listen must be a string \(the mTLS address as HOST:PORT, e\.g\. 0\.0\.0\.0:15006\), got 15006/],
  ['listen port out of range', IN('{listen: "0.0.0.0:99999", appPort: 8080}'), 6, /inbound\[0\]\.listen "0\.0\.0\.0:99999" has no valid port; use 0\.\.65535 \(0 picks a free port\)/],
  ['inbound without policy', `${HEAD}inbound:\n  - {listen: "0.0.0.0:15006", appPort: 8080}\n`, 4, /inbound listeners need a policy; add "policy: \{file: \.\/policy\.yaml\}"/],
  ['policy section without file', `${HEAD}policy: {}\ninbound:\n  - {listen: "0.0.0.0:15006", appPort: 8080}\n`, 4, /inbound listeners need a policy/],
  ['inbound not a list', `${HEAD}inbound: {listen: "0.0.0.0:15006"}\n`, 4, /inbound must be a list, got a mapping/],
  ['outbound listen not loopback', OUT('{listen: "0.0.0.0:15001", upstream: "a:1", spiffeId: spiffe://example.org/a}'), 5, /outbound\[0\]\.listen 0\.0\.0\.0 is not a loopback address/],
  ['outbound missing spiffeId', OUT('{listen: "127.0.0.1:15001", upstream: "a:1"}'), 5, /outbound\[0\] has no "spiffeId"; add the SPIFFE ID the upstream must present/],
  ['outbound spiffeId invalid', OUT('{listen: "127.0.0.1:15001", upstream: "a:1", spiffeId: "spiffe://example.org/a/"}'), 5, /outbound\[0\]\.spiffeId "spiffe:\/\/example\.org\/a\/" ends with "\/"/],
  ['outbound spiffeId foreign', OUT('{listen: "127.0.0.1:15001", upstream: "a:1", spiffeId: spiffe://other.org/a}'), 5, /is not in trust domain "example\.org"/],
  ['outbound spiffeId is a trust domain', OUT('{listen: "127.0.0.1:15001", upstream: "a:1", spiffeId: spiffe://example.org}'), 5, /is a trust-domain ID; a workload SPIFFE ID needs a path/],
  ['upstream port 0', OUT('{listen: "127.0.0.1:15001", upstream: "a:0", spiffeId: spiffe://example.org/a}'), 5, /outbound\[0\]\.upstream "a:0" has no valid port; use 1\.\.65535$/],
  ['duplicate listen', `${HEAD}outbound:\n  - {listen: "127.0.0.1:15001", upstream: "a:1", spiffeId: spiffe://example.org/a}\n  - {listen: "127.0.0.1:15001", upstream: "b:1", spiffeId: spiffe://example.org/b}\n`, 6, /outbound\[1\]\.listen 127\.0\.0\.1:15001 collides with outbound\[0\]\.listen \(127\.0\.0\.1:15001\); give each listener its own port/],
  ['listen collides with a wildcard', `${HEAD}policy: {file: p.yaml}\ninbound:\n  - {listen: "0.0.0.0:15020", appPort: 8080}\n`, 6, /inbound\[0\]\.listen 0\.0\.0\.0:15020 collides with admin\.listen \(127\.0\.0\.1:15020, its default\)/],
  ['svid.ttl not a duration', `${HEAD}svid: {ttl: 1y}\n`, 4, /svid\.ttl "1y" is not a duration greater than zero; write e\.g\. 30s/],
  ['limits duration zero', `${HEAD}limits:\n  drainTimeout: 0s\n`, 5, /limits\.drainTimeout "0s" is not a duration greater than zero/],
  ['maxConnections zero', `${HEAD}limits: {maxConnections: 0}\n`, 4, /limits\.maxConnections must be an integer 1\.\.10000000, got 0/],
  ['TLS below 1.2', `${HEAD}tls:\n  minVersion: TLSv1.1\n`, 5, /tls\.minVersion must be TLSv1\.3 or TLSv1\.2, got "TLSv1\.1"; Tollgate never accepts TLS below 1\.2/],
  ['log level', `${HEAD}log: {level: verbose}\n`, 4, /log\.level must be debug, info, warn or error, got "verbose"/],
];

for (const [name, text, line, message] of bad) {
  test(`parseSidecarConfig rejects: ${name} (line ${line})`, () => {
    assert.throws(
      () => parse(text),
      (e: unknown) => {
        assert.ok(e instanceof TollgateError, `not a TollgateError: ${String(e)}`);
        assert.equal(e.code, 'TG_CONFIG_INVALID');
        assert.ok(e.message.startsWith(`cannot read sidecar config ${SOURCE} line ${line}: `), e.message);
        assert.match(e.message, message);
        assert.equal(e.details['line'], line);
        return true;
      },
    );
  });
}

test('ca.bundlePem: the roots inline instead of a file', () => {
  const pem = certsToPem([testChain().root]);
  const text = `trustDomain: example.org\nca:\n  address: "127.0.0.1:8443"\n  bundlePem: |\n${pem.trimEnd().split('\n').map((l) => `    ${l}`).join('\n')}\nattestation: {joinToken: tgjoin.abc}\n`;
  const c = parse(text);
  assert.equal(c.ca.bundlePem, pem);
  assert.equal(c.ca.bundleFile, undefined);
});

test('loadSidecarConfigFromEnv: the config from an environment variable; errors name the variable and line', () => {
  const env = { TG_CFG: MIN, TG_BAD: `${HEAD}log: {level: loud}\n`, TG_EMPTY: ' ' };
  assert.equal(loadSidecarConfigFromEnv('TG_CFG', undefined, env).trustDomain, 'example.org');
  assert.equal(loadSidecarConfigFromEnv('TG_CFG', { logLevel: 'debug' }, env).log.level, 'debug');
  const fails = (name: string, message: RegExp): void => {
    assert.throws(() => loadSidecarConfigFromEnv(name, undefined, env), (e: unknown) => e instanceof TollgateError && e.code === 'TG_CONFIG_INVALID' && message.test(e.message) || assert.fail(String(e)));
  };
  fails('TG_BAD', /^cannot read sidecar config environment variable TG_BAD line 4: log\.level must be debug, info, warn or error, got "loud"$/);
  fails('TG_EMPTY', /environment variable TG_EMPTY is empty; set it to the sidecar's YAML config/);
  fails('TG_UNSET', /environment variable TG_UNSET is not set; set it to the sidecar's YAML config \(see examples\/sidecar\.yaml\) or use --config FILE/);
});

test('loadSidecarConfig: a missing file says so', () => {
  assert.throws(() => loadSidecarConfig(join(tmp, 'nope.yaml')), (e: unknown) => e instanceof TollgateError && e.code === 'TG_CONFIG_INVALID' && /nope\.yaml: the file does not exist/.test(e.message));
});

test('examples/sidecar.yaml parses, and agrees with examples/policy.yaml', () => {
  const path = fileURLToPath(new URL('../examples/sidecar.yaml', import.meta.url));
  const c = loadSidecarConfig(path);
  assert.equal(c.trustDomain, 'example.org');
  assert.equal(c.policy?.file, fileURLToPath(new URL('../examples/policy.yaml', import.meta.url)));
  assert.equal(c.ca.bundleFile, fileURLToPath(new URL('../examples/ca/bundle.pem', import.meta.url)));
  assert.deepEqual(c.inbound.map((l) => l.appPort), [8080]);
  const policy = parsePolicy(readFileSync(c.policy!.file, 'utf8'), { source: c.policy!.file, ownTrustDomain: c.trustDomain });
  assert.equal(authorize(policy, 'spiffe://example.org/ns/shop/sa/web', c.inbound[0]!.appPort).allowed, true);
  // Every key of the schema appears in the example (documented there).
  const text = readFileSync(path, 'utf8');
  for (const key of ['trustDomain', 'address', 'spiffeId', 'bundleFile', 'bundlePem', 'tokenFile', 'joinToken', 'joinTokenFile', 'ttl', 'listen', 'appPort', 'appHost', 'allowNonLoopbackApp', 'proxyProtocol', 'upstream', 'file', 'minVersion', 'maxConnections', 'maxHandshakes', 'maxHandshakesPerSource', 'handshakeTimeout', 'idleTimeout', 'maxConnectionAge', 'drainTimeout', 'level']) {
    assert.match(text, new RegExp(`^\\s*(#\\s*)?(- )?${key}:`, 'm'), key);
  }
  // With a join token from the command line instead of the Kubernetes token file.
  assert.deepEqual(loadSidecarConfig(path, { joinToken: 'tgjoin.x' }).attestation, { kind: 'join', token: 'tgjoin.x' });
});

test('appHost off loopback only with allowNonLoopbackApp: true, which start warns about', async () => {
  const c = parseSidecarConfig(`${HEAD}policy: {file: p.yaml}\ninbound:\n  - {listen: "0.0.0.0:15006", appPort: 8080, appHost: 10.0.0.5, allowNonLoopbackApp: true}\n`, { source: 'sidecar.yaml' });
  assert.equal(c.inbound[0]!.appHost, '10.0.0.5');
  assert.equal(c.inbound[0]!.allowNonLoopbackApp, true);
});

test('a non-loopback admin.listen warns at start outside Kubernetes, is an info line inside', () => {
  const c = parseSidecarConfig(`${HEAD}admin: {listen: "0.0.0.0:15020"}\n`, { source: 'sidecar.yaml' });
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({ out: { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) }, level: 'debug' });
  warnExposedAdmin(c, log, {});
  warnExposedAdmin(c, log, { KUBERNETES_SERVICE_HOST: '10.96.0.1' });
  warnExposedAdmin(parseSidecarConfig(HEAD, { source: 'sidecar.yaml' }), log, {});
  assert.deepEqual(lines.map((l) => [l.event, l.level]), [['admin_not_loopback', 'warn'], ['admin_not_loopback', 'info']]);
});

test('the config and policy schemas are valid JSON Schema (checked here and when their validators are generated, never at run time)', async () => {
  const { metaSchemaErrors } = await import('../scripts/config-validators.ts');
  const { schema } = await import('./config-schema.ts');
  const { policySchema } = await import('./policy-schema.ts');
  assert.deepEqual(metaSchemaErrors(schema), []);
  assert.deepEqual(metaSchemaErrors(policySchema), []);
  assert.notDeepEqual(metaSchemaErrors({ type: 'objekt' }), [], 'the check itself finds a broken schema');
});
