// Renewal never raises the lifetime and never passes the attestation horizon (PRODUCT.md §3, issue 13
// problem 4): the real CaService, join-token and SVID attestors on a ManualClock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { ManualClock } from '../common/clock.ts';
import { TollgateError } from '../common/errors.ts';
import { createCsr } from '../pki/csr.ts';
import { attestedUntilOf } from '../pki/svid-template.ts';
import { verifySvidChain } from '../pki/svid-validate.ts';
import { p256 } from '../pki/test-chain.ts';
import { Oid, parseCertificate } from '../pki/x509.ts';
import { JoinTokenAttestor } from './attestation/join-token.ts';
import { SvidAttestor } from './attestation/svid.ts';
import { AuditLog } from './audit.ts';
import { createIntermediate, createRoot } from './authority.ts';
import { SvidIssuer, type IssuancePolicy } from './issuer.ts';
import { CaMetrics } from './metrics.ts';
import { CaService } from './service.ts';

const T0 = Date.UTC(2026, 2, 1);
const ID = 'spiffe://example.org/ns/a/sa/b';
const H = 3600_000;

async function setup(policy: Partial<IssuancePolicy> = {}) {
  const clock = new ManualClock(T0);
  const root = await createRoot({ trustDomain: 'example.org', clock });
  const intermediate = await createIntermediate({ trustDomain: 'example.org', root, clock });
  const dir = mkdtempSync(join(tmpdir(), 'tg-horizon-'));
  const lines: Array<Record<string, unknown>> = [];
  const registry = new Registry();
  const tokens = new JoinTokenAttestor({ dir, clock, trustDomain: 'example.org' });
  const trust = { trustDomain: 'example.org', roots: () => [root.certificate], intermediates: () => [intermediate.certificate], bundleVersion: () => 1 };
  const issuer = new SvidIssuer({ intermediate, clock, policy });
  const service = new CaService({
    trustDomain: 'example.org',
    clock,
    issuer,
    attestors: [tokens, new SvidAttestor({ clock, trust })],
    audit: new AuditLog({ out: { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) }, clock }),
    metrics: new CaMetrics(registry),
    bundle: { trustDomain: 'example.org', version: 1, roots: [root.certificate], refreshHintSeconds: 300 },
    limits: { perAddress: { perSecond: 0, burst: 0 }, perIdentity: { perSecond: 0, burst: 0 } },
  });
  const csr = createCsr(p256().key);
  const first = async (ttlSeconds?: number) =>
    service.issueSvid({ csr, token: (await tokens.create({ spiffeId: ID, ttlMs: 600_000 })).token, ttlSeconds, peerAddress: '10.0.0.1' });
  const renew = (chain: readonly Buffer[], ttlSeconds?: number) => service.issueSvid({ csr, peerChain: [...chain], ttlSeconds, peerAddress: '10.0.0.1' });
  return { clock, root, intermediate, issuer, csr, first, renew, lines, registry, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const horizonOf = (chain: readonly Buffer[]) => attestedUntilOf(parseCertificate(chain[0]!));

test('a 1 h SVID renewed asking for 24 h stays 1 h, and carries its horizon unchanged', async () => {
  const s = await setup();
  const one = await s.first(3600);
  assert.equal(one.expiresAt * 1000, T0 + H);
  assert.equal(horizonOf(one.certChain), T0 + 24 * H, 'join token: attested until first issue + 24 h');
  const ext = parseCertificate(one.certChain[0]!).extensions.get(Oid.tollgateAttestedUntil)!;
  assert.equal(ext.critical, false);
  let chain = one.certChain;
  for (let i = 1; i <= 3; i++) {
    s.clock.advance(H / 2);
    const r = await s.renew(chain, 24 * 3600);
    assert.equal(r.expiresAt * 1000 - s.clock.now(), H, `renewal ${i}: lifetime stays 1 h`);
    assert.equal(horizonOf(r.certChain), T0 + 24 * H, 'copied unchanged');
    chain = r.certChain;
  }
  // Validators accept the non-critical private extension.
  verifySvidChain({ leaf: chain[0]!, intermediates: [s.intermediate.certificate], roots: [s.root.certificate], now: s.clock.now(), usage: 'client', trustDomain: 'example.org' });
  s.cleanup();
});

test('renewal is capped at the horizon, then refused with TG_REATTEST_REQUIRED (audited, counted)', async () => {
  const s = await setup({ joinTokenHorizonSeconds: 2 * 3600 });
  let chain = (await s.first()).certChain;
  s.clock.set(T0 + 0.75 * H);
  chain = (await s.renew(chain)).certChain;
  s.clock.set(T0 + 1.5 * H);
  const capped = await s.renew(chain);
  assert.equal(capped.expiresAt * 1000, T0 + 2 * H, 'notAfter stops at the horizon');
  chain = capped.certChain;
  s.clock.set(T0 + 2 * H - 4000); // still valid, but less than the 5 s minimum lifetime is left
  await assert.rejects(s.renew(chain), (e: unknown) => e instanceof TollgateError && e.code === 'TG_REATTEST_REQUIRED' && /attest again/.test(e.message));
  assert.equal(s.lines.at(-1)!.code, 'TG_REATTEST_REQUIRED');
  assert.equal(s.lines.at(-1)!.spiffe_id, ID);
  assert.match(await s.registry.metrics(), /tollgate_ca_refused_total\{code="TG_REATTEST_REQUIRED"\} 1/);
  // A fresh attestation starts a new horizon.
  const again = await s.first();
  assert.equal(horizonOf(again.certChain), s.clock.now() + 2 * H);
  s.cleanup();
});

test('a leaf without a horizon (issued before horizons) counts as attested at its notBefore', async () => {
  const s = await setup({ joinTokenHorizonSeconds: 2 * 3600 });
  const legacy = s.issuer.issue({ spki: (await import('../pki/csr.ts')).parseCsr(s.csr).spki, spiffeId: ID });
  assert.equal(horizonOf(legacy.chain), undefined);
  s.clock.set(T0 + 0.5 * H);
  const r = await s.renew(legacy.chain);
  assert.equal(horizonOf(r.certChain), T0 + 2 * H);
  s.cleanup();
});
