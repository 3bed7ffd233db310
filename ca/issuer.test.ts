import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { ManualClock } from '../common/clock.ts';
import { TollgateError } from '../common/errors.ts';
import { basicConstraints, Oid, parseCertificate } from '../pki/x509.ts';
import { p256 } from '../pki/test-chain.ts';
import { createIntermediate, createRoot } from './authority.ts';
import { SvidIssuer } from './issuer.ts';

const clock = new ManualClock(Date.UTC(2026, 0, 10));
const root = await createRoot({ trustDomain: 'example.org', clock });
const intermediate = await createIntermediate({ trustDomain: 'example.org', root, clock });

test('TTL: default 1h, capped at the maximum, minimum enforced, backdated 5 min', () => {
  const issuer = new SvidIssuer({ intermediate, clock });
  const spki = p256().spki;
  const a = issuer.issue({ spki, spiffeId: 'spiffe://example.org/a' });
  assert.equal(a.notAfter - clock.now(), 3600_000);
  assert.equal(clock.now() - a.notBefore, 5 * 60_000);
  const b = issuer.issue({ spki, spiffeId: 'spiffe://example.org/a', ttlSeconds: 10 * 86400 });
  assert.equal(b.notAfter - clock.now(), 86_400_000);
  assert.throws(() => issuer.issue({ spki, spiffeId: 'spiffe://example.org/a', ttlSeconds: 1 }), (e: unknown) => e instanceof TollgateError && e.code === 'TG_TTL_INVALID');
  assert.equal(a.chain[1], intermediate.certificate);
});

test('near the end of the intermediate, leaves are cut to its notAfter; past it, issuance stops', () => {
  const late = new ManualClock(intermediate.parsed.notAfter - 600_000);
  const issuer = new SvidIssuer({ intermediate, clock: late });
  const leaf = issuer.issue({ spki: p256().spki, spiffeId: 'spiffe://example.org/a' });
  assert.equal(leaf.notAfter, intermediate.parsed.notAfter);
  assert.equal(parseCertificate(leaf.chain[0]!).notAfter, intermediate.parsed.notAfter);
  late.advance(599_000);
  assert.throws(() => issuer.issue({ spki: p256().spki, spiffeId: 'spiffe://example.org/a' }), (e: unknown) => e instanceof TollgateError && e.code === 'TG_AUTHORITY_EXPIRED');
});

test('authorities: root 1 year and name-constrained to the trust domain, intermediate 30 days under it with pathLen 0', () => {
  assert.equal(root.parsed.notAfter - clock.now(), 365 * 86_400_000);
  assert.equal(intermediate.parsed.notAfter - clock.now(), 30 * 86_400_000);
  assert.ok(root.parsed.notBefore < clock.now());
  // The two extensions read by an outside parser (openssl), not by our own DER code.
  const text = (der: Buffer): string => {
    const r = spawnSync('openssl', ['x509', '-inform', 'DER', '-noout', '-text'], { input: der, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const rootText = text(root.certificate);
  assert.match(rootText, /Name Constraints: critical\s+Permitted:\s+URI:example\.org\s/, 'the root is name-constrained to the trust domain');
  assert.doesNotMatch(rootText, /pathlen/, 'the root sets no path length');
  assert.match(text(intermediate.certificate), /Basic Constraints: critical\s+CA:TRUE, pathlen:0\s/, 'the intermediate has pathLen 0');
  assert.equal(basicConstraints(intermediate.parsed.extensions.get(Oid.basicConstraints)!).pathLen, 0);
});

test('bad TTL settings are refused', () => {
  assert.throws(() => new SvidIssuer({ intermediate, clock, policy: { defaultTtlSeconds: 100_000 } }), /min <= default <= max/);
});
