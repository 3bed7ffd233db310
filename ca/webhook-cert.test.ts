import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { ManualClock } from '../common/clock.ts';
import { TollgateError } from '../common/errors.ts';
import { silentLogger } from '../common/log.ts';
import { certsToPem, pemToCertDers } from '../pki/pem.ts';
import { testChain } from '../pki/test-chain.ts';
import { intermediateAuthority } from '../test/helpers/tls-test-cert.ts';
import type { Authority } from './authority.ts';
import { WEBHOOK_CERT_EXPIRY_METRIC, WebhookServingCertificate, checkSans, issueServingCertificate, type ServingCertificate } from './webhook-cert.ts';

const dir = mkdtempSync(join(tmpdir(), 'tollgate-webhook-cert-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const HOUR = 3600_000;
const DNS = ['tollgate-ca.tollgate-system.svc', 'tollgate-ca.tollgate-system.svc.cluster.local'];

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

test('the serving certificate: leaf + intermediate, P-256, serverAuth only, DNS and IP SANs, 24 h, verified by openssl as an SSL server', async () => {
  const clock = new ManualClock(Date.UTC(2026, 9, 1));
  const chain = testChain('example.org', clock.now());
  const c = await issueServingCertificate({ intermediate: intermediateAuthority(chain), dnsNames: DNS, ipAddresses: ['10.0.0.7', 'fd00::7'], now: clock.now(), lifetimeMs: 24 * HOUR });
  const [leaf, inter] = pemToCertDers(c.certPem);
  assert.ok(inter!.equals(chain.intermediate));
  const x = new X509Certificate(leaf!);
  assert.equal(x.subjectAltName, 'DNS:tollgate-ca.tollgate-system.svc, DNS:tollgate-ca.tollgate-system.svc.cluster.local, IP Address:10.0.0.7, IP Address:FD00:0:0:0:0:0:0:7');
  assert.equal(x.ca, false);
  assert.equal(Date.parse(x.validTo), clock.now() + 24 * HOUR);
  assert.equal(Date.parse(x.validFrom), clock.now() - 5 * 60_000);
  assert.equal(c.notAfter, clock.now() + 24 * HOUR);
  assert.ok(x.checkPrivateKey(createPrivateKey(c.keyPem)), 'the key belongs to the certificate');
  assert.equal(createPublicKey(c.keyPem).asymmetricKeyDetails?.namedCurve, 'prime256v1');
  const text = openssl(['x509', '-noout', '-ext', 'basicConstraints,keyUsage,extendedKeyUsage,subjectKeyIdentifier,authorityKeyIdentifier', '-in', write('leaf.pem', certsToPem([leaf!]))]);
  assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
  assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\n/);
  assert.match(text, /X509v3 Extended Key Usage: \s+TLS Web Server Authentication\n/);
  assert.match(text, /Subject Key Identifier/);
  assert.match(text, /Authority Key Identifier/);
  const verify = openssl(['verify', '-attime', String(Math.floor(clock.now() / 1000) + 60), '-purpose', 'sslserver', '-CAfile', write('root.pem', certsToPem([chain.root])), '-untrusted', write('inter.pem', certsToPem([chain.intermediate])), join(dir, 'leaf.pem')]);
  assert.match(verify, /leaf\.pem: OK/);
});

function write(name: string, text: string): string {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
}

test('never past the intermediate; refused when the intermediate is about to expire', async () => {
  const now = Date.UTC(2026, 9, 1);
  const chain = testChain('example.org', now - 30 * 24 * HOUR + 2 * HOUR); // intermediate ends in 2 h
  const inter = intermediateAuthority(chain);
  const c = await issueServingCertificate({ intermediate: inter, dnsNames: DNS, ipAddresses: [], now, lifetimeMs: 24 * HOUR });
  assert.equal(c.notAfter, inter.parsed.notAfter);
  await assert.rejects(issueServingCertificate({ intermediate: inter, dnsNames: DNS, ipAddresses: [], now: inter.parsed.notAfter - 1000, lifetimeMs: 24 * HOUR }), (e: unknown) => e instanceof TollgateError && e.code === 'TG_AUTHORITY_EXPIRED');
});

test('checkSans: at least one name; DNS names and IPs each in their own flag', () => {
  assert.doesNotThrow(() => checkSans(DNS, ['127.0.0.1']));
  for (const [dns, ips, message] of [
    [[], [], /needs a name: give --webhook-dns-names/],
    [['10.0.0.1'], [], /"10\.0\.0\.1" is not a DNS name; IP addresses go in --webhook-ip-sans/],
    [['a b'], [], /"a b" is not a DNS name/],
    [[], ['tollgate-ca'], /--webhook-ip-sans: "tollgate-ca" is not an IP address/],
  ] as const) {
    assert.throws(() => checkSans(dns, ips), (e: unknown) => e instanceof TollgateError && e.code === 'TG_USAGE' && message.test(e.message) || assert.fail(String(e)));
  }
});


test('renewed at half its life on the injected clock, with a new key; listeners hear of it; the expiry is a metric', async () => {
  const clock = new ManualClock(Date.UTC(2026, 9, 1));
  const chain = testChain('example.org', clock.now());
  const registry = new Registry();
  const cert = await WebhookServingCertificate.start({ intermediate: () => intermediateAuthority(chain), dnsNames: DNS, ipAddresses: [], clock, logger: silentLogger, registry });
  const first = cert.current;
  const heard: ServingCertificate[] = [];
  cert.onRenew((c) => heard.push(c));
  assert.deepEqual(cert.tlsOptions(), { cert: first.certPem, key: first.keyPem });
  clock.advance(12 * HOUR - 1000);
  await cert.settled;
  assert.equal(heard.length, 0, 'not before half of its life');
  clock.advance(1000);
  await cert.settled;
  assert.equal(heard.length, 1);
  const second = cert.current;
  assert.notEqual(second.serialHex, first.serialHex);
  assert.notEqual(second.keyPem, first.keyPem);
  assert.equal(second.notAfter, clock.now() + 24 * HOUR);
  const metric = (await registry.getSingleMetricAsString(WEBHOOK_CERT_EXPIRY_METRIC)).trim().split('\n').pop();
  assert.equal(metric, `${WEBHOOK_CERT_EXPIRY_METRIC} ${second.notAfter / 1000}`);
  cert.stop();
  assert.equal(clock.pending, 0);
});

test('a failed renewal keeps the current certificate and retries with backoff; a rotated intermediate is followed', async () => {
  const clock = new ManualClock(Date.UTC(2026, 9, 1));
  let inter: Authority | null = intermediateAuthority(testChain('example.org', clock.now()));
  const cert = await WebhookServingCertificate.start({
    intermediate: () => inter ?? (() => { throw new Error('store unreadable'); })(), dnsNames: DNS, ipAddresses: [], clock, logger: silentLogger,
  });
  const first = cert.current;
  inter = null;
  clock.advance(12 * HOUR);
  await cert.settled;
  assert.equal(cert.current, first, 'the current certificate stays');
  clock.advance(10_000); // first retry after 10 s: fails again
  await cert.settled;
  assert.equal(cert.current, first);
  const rotated = testChain('example.org', clock.now());
  inter = intermediateAuthority(rotated);
  clock.advance(19_999); // the second retry waits 20 s
  await cert.settled;
  assert.equal(cert.current, first);
  clock.advance(1);
  await cert.settled;
  assert.notEqual(cert.current, first);
  assert.ok(pemToCertDers(cert.current.certPem)[1]!.equals(rotated.intermediate), 'issued by the intermediate the getter gives now');
  cert.stop();
});
