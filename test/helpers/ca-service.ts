// The real CaService with join-token and SVID attestors on a ManualClock, for unit tests of issuance
// rules (ca/renewal-horizon.test.ts, ca/deny-list.test.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { ManualClock } from '../../common/clock.ts';
import { createCsr } from '../../pki/csr.ts';
import { p256 } from '../../pki/test-chain.ts';
import { JoinTokenAttestor } from '../../ca/attestation/join-token.ts';
import { SvidAttestor } from '../../ca/attestation/svid.ts';
import { AuditLog } from '../../ca/audit.ts';
import { createIntermediate, createRoot } from '../../ca/authority.ts';
import { SvidIssuer, type IssuancePolicy } from '../../ca/issuer.ts';
import { CaMetrics } from '../../ca/metrics.ts';
import { CaService } from '../../ca/service.ts';

export const T0 = Date.UTC(2026, 2, 1);
const ID = 'spiffe://example.org/ns/a/sa/b';

/** A CA service issuing for one ID: `first` attests with a new join token, `renew` presents a chain. */
export async function caServiceSetup(policy: Partial<IssuancePolicy> = {}) {
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
  return { id: ID, service, clock, root, intermediate, issuer, csr, first, renew, lines, registry, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

