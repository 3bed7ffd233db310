// Renewal never raises the lifetime and never passes the attestation horizon (PRODUCT.md §3, issue 13
// problem 4): the real CaService, join-token and SVID attestors on a ManualClock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TollgateError } from '../common/errors.ts';
import { parseCsr } from '../pki/csr.ts';
import { attestedUntilOf } from '../pki/svid-template.ts';
import { verifySvidChain } from '../pki/svid-validate.ts';
import { Oid, parseCertificate } from '../pki/x509.ts';
import { caServiceSetup, T0 } from '../test/helpers/ca-service.ts';

const ID = 'spiffe://example.org/ns/a/sa/b';
const H = 3600_000;
const setup = caServiceSetup;

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
  const legacy = s.issuer.issue({ spki: parseCsr(s.csr).spki, spiffeId: ID });
  assert.equal(horizonOf(legacy.chain), undefined);
  s.clock.set(T0 + 0.5 * H);
  const r = await s.renew(legacy.chain);
  assert.equal(horizonOf(r.certChain), T0 + 2 * H);
  s.cleanup();
});
