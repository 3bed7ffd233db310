import { test } from 'node:test';
import { Writable } from 'node:stream';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { ManualClock } from '../common/clock.ts';
import { createCsr } from '../pki/csr.ts';
import { TollgateError } from '../common/errors.ts';
import { p256 } from '../pki/test-chain.ts';
import { JoinTokenAttestor } from './attestation/join-token.ts';
import { SvidAttestor } from './attestation/svid.ts';
import { AuditLog } from './audit.ts';
import { createIntermediate, createRoot } from './authority.ts';
import { SvidIssuer } from './issuer.ts';
import { CaMetrics } from './metrics.ts';
import { CaService, type CaServiceOptions } from './service.ts';
import type { Attestor } from './attestation/attestor.ts';
import { parseSpiffeId } from '../pki/spiffe-id.ts';

const clock = new ManualClock(Date.UTC(2026, 2, 1));
const root = await createRoot({ trustDomain: 'example.org', clock });
const intermediate = await createIntermediate({ trustDomain: 'example.org', root, clock });

function setup(limits: ConstructorParameters<typeof CaService>[0]['limits']) {
  const dir = mkdtempSync(join(tmpdir(), 'tg-svc-'));
  const lines: Array<Record<string, unknown>> = [];
  const registry = new Registry();
  const tokens = new JoinTokenAttestor({ dir, clock, trustDomain: 'example.org' });
  const svids = new SvidAttestor({
    clock,
    trust: { trustDomain: 'example.org', roots: () => [root.certificate], intermediates: () => [intermediate.certificate], bundleVersion: () => 1 },
  });
  const options: CaServiceOptions = {
    trustDomain: 'example.org',
    clock,
    issuer: new SvidIssuer({ intermediate, clock }),
    attestors: [tokens, svids],
    audit: new AuditLog({ out: { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) }, clock }),
    metrics: new CaMetrics(registry),
    bundle: { trustDomain: 'example.org', version: 1, roots: [root.certificate], refreshHintSeconds: 300 },
    ...(limits ? { limits } : {}),
  };
  const service = new CaService(options);
  const token = async (id = 'spiffe://example.org/ns/a/sa/b') => (await tokens.create({ spiffeId: id, ttlMs: 600_000 })).token;
  return { service, options, lines, registry, token, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const isCode = (code: string) => (e: unknown) => e instanceof TollgateError && e.code === code;

test('per-address rate limit: refused with TG_RATE_LIMITED, audited and counted, then recovers', async () => {
  const s = setup({ perAddress: { perSecond: 1, burst: 2 }, perIdentity: { perSecond: 0, burst: 0 } });
  const csr = createCsr(p256().key);
  await s.service.issueSvid({ csr, token: await s.token(), peerAddress: '10.0.0.1' });
  await s.service.issueSvid({ csr, token: await s.token(), peerAddress: '10.0.0.1' });
  await assert.rejects(s.service.issueSvid({ csr, token: await s.token(), peerAddress: '10.0.0.1' }), isCode('TG_RATE_LIMITED'));
  await s.service.issueSvid({ csr, token: await s.token(), peerAddress: '10.0.0.2' });
  clock.advance(1000);
  await s.service.issueSvid({ csr, token: await s.token(), peerAddress: '10.0.0.1' });
  s.options.audit.flush();
  // The refusal is aggregated into one line for its address, after the issuances (each its own line).
  assert.deepEqual(s.lines.map((l) => l.event), ['svid_issued', 'svid_issued', 'svid_issued', 'svid_issued', 'svid_refused_aggregate']);
  assert.deepEqual(s.lines.at(-1), { time: s.lines.at(-1)!.time, audit: true, event: 'svid_refused_aggregate', peer: '10.0.0.1', count: 1, codes: { TG_RATE_LIMITED: 1 }, since: s.lines.at(-1)!.since });
  assert.match(await s.registry.metrics(), /tollgate_ca_refused_total\{code="TG_RATE_LIMITED"\} 1/);
  s.cleanup();
});

test('per-identity rate limit applies to renewals after attestation, whatever the address', async () => {
  const s = setup({ perAddress: { perSecond: 0, burst: 0 }, perIdentity: { perSecond: 1 / 60, burst: 1 } });
  const csr = createCsr(p256().key);
  const first = await s.service.issueSvid({ csr, token: await s.token(), peerAddress: '10.0.0.1' });
  const peerChain = [...first.certChain];
  await s.service.issueSvid({ csr, peerChain, peerAddress: '10.0.0.1' });
  await assert.rejects(s.service.issueSvid({ csr, peerChain, peerAddress: '10.0.0.9' }), isCode('TG_RATE_LIMITED'));
  assert.equal(s.lines.at(-1)!.spiffe_id, 'spiffe://example.org/ns/a/sa/b');
  await s.service.issueSvid({ csr, token: await s.token('spiffe://example.org/ns/a/sa/other'), peerAddress: '10.0.0.9' });
  s.cleanup();
});

test('a join token is never used up by a request that is refused: rate limit, bad CSR, bad lifetime', async () => {
  const s = setup({ perAddress: { perSecond: 0, burst: 0 }, perIdentity: { perSecond: 1 / 60, burst: 1 } });
  const csr = createCsr(p256().key);
  await s.service.issueSvid({ csr, token: await s.token(), peerAddress: '10.0.0.1' });
  // Same identity again, over its per-identity budget: a join token is single use, so it is not limited.
  await s.service.issueSvid({ csr, token: await s.token(), peerAddress: '10.0.0.1' });
  // A malformed CSR is refused before the token is looked at; the token still works afterwards.
  const token = await s.token();
  await assert.rejects(s.service.issueSvid({ csr: Buffer.from('not a csr'), token, peerAddress: '10.0.0.1' }), isCode('TG_CSR_INVALID'));
  // A lifetime below the minimum is refused after attestation but before the token is used up.
  await assert.rejects(s.service.issueSvid({ csr, token, ttlSeconds: 1, peerAddress: '10.0.0.1' }), isCode('TG_TTL_INVALID'));
  const ok = await s.service.issueSvid({ csr, token, peerAddress: '10.0.0.1' });
  assert.equal(ok.spiffeId, 'spiffe://example.org/ns/a/sa/b');
  await assert.rejects(s.service.issueSvid({ csr, token, peerAddress: '10.0.0.1' }), isCode('TG_TOKEN_REUSED'));
  s.cleanup();
});

test('a reserved ID is refused whichever attestor names it: audited, counted, nothing issued', async () => {
  const s = setup({ perAddress: { perSecond: 0, burst: 0 }, perIdentity: { perSecond: 0, burst: 0 } });
  // An attestor that (wrongly) yields the CA's ID: the service's own check still refuses it.
  const rogue: Attestor = { kind: 'k8s_token', accepts: (e) => e.token === 'rogue', attest: async () => ({ kind: 'k8s_token', spiffeId: parseSpiffeId('spiffe://example.org/tollgate/ca') }) };
  const service = new CaService({ ...s.options, attestors: [rogue] });
  await assert.rejects(service.issueSvid({ csr: createCsr(p256().key), token: 'rogue', peerAddress: '10.0.0.1' }), isCode('TG_RESERVED_ID'));
  assert.equal(s.lines.at(-1)!.code, 'TG_RESERVED_ID');
  assert.equal(s.lines.at(-1)!.event, 'svid_refused');
  assert.match(await s.registry.metrics(), /tollgate_ca_refused_total\{code="TG_RESERVED_ID"\} 1/);
  s.cleanup();
});

test('bundle watchers get the current bundle at once and every change', () => {
  const s = setup(undefined);
  const seen: number[] = [];
  const stop = s.service.watchBundle((b) => seen.push(b.version));
  s.service.setBundle({ ...s.service.bundle, version: 2 });
  stop();
  s.service.setBundle({ ...s.service.bundle, version: 3 });
  assert.deepEqual(seen, [1, 2]);
  s.cleanup();
});

test('convergence counts authenticated reports only; a renewal replaces the certificate it renewed', async () => {
  const s = setup({ perAddress: { perSecond: 0, burst: 0 }, perIdentity: { perSecond: 0, burst: 0 } });
  const csr = createCsr(p256().key);
  const a = await s.service.issueSvid({ csr, token: await s.token(), peerAddress: '10.0.0.1', report: { bundleVersion: 1, serial: '' } });
  const b = await s.service.issueSvid({ csr, token: await s.token('spiffe://example.org/ns/a/sa/c'), peerAddress: '10.0.0.2' });
  assert.deepEqual(pick(s.service.convergenceCounts()), { clients: 2, onCurrentBundle: 1, stale: 0 });
  // Anonymous reports (no certificate, or one that does not verify) change nothing.
  assert.equal(await s.service.reportBundle({ chain: [], address: '10.0.0.3' }, { bundleVersion: 1, serial: 'ff' }), false);
  assert.equal(await s.service.reportBundle({ chain: [Buffer.from('junk')], address: '10.0.0.3' }, { bundleVersion: 1, serial: 'ff' }), false);
  assert.equal(s.service.convergenceCounts().clients, 2);
  assert.equal(await s.service.reportBundle({ chain: [...b.certChain], address: '10.0.0.2' }, { bundleVersion: 1, serial: b.serial }), true);
  assert.deepEqual(pick(s.service.convergenceCounts()), { clients: 2, onCurrentBundle: 2, stale: 0 });
  s.service.setBundle({ ...s.service.bundle, version: 2 });
  assert.equal(s.service.convergenceCounts().ratio, 0);
  // a renews holding version 2: its old certificate is replaced, not counted twice.
  const a2 = await s.service.issueSvid({ csr, peerChain: [...a.certChain], peerAddress: '10.0.0.1', report: { bundleVersion: 2, serial: a.serial } });
  const c = s.service.convergenceCounts();
  assert.deepEqual(pick(c), { clients: 2, onCurrentBundle: 1, stale: 0 });
  assert.equal(c.ratio, 0.5);
  assert.match(await s.registry.metrics(), /tollgate_ca_clients_on_current_bundle_ratio 0.5/);
  // 12 h later: a2 and b have expired and left the counts.
  clock.advance(12 * 3600_000 + 1000);
  await s.service.reportBundle({ chain: [...a2.certChain], address: '10.0.0.1' }, { bundleVersion: 2, serial: a2.serial });
  assert.deepEqual(pick(s.service.convergenceCounts()), { clients: 0, onCurrentBundle: 0, stale: 0 }, 'a2 (1 h) and b (1 h) have expired by now');
  s.cleanup();
});

test('a sidecar is not stale while it may still be waiting for its renewal: up to 60 % of the longest lifetime after it called', async () => {
  // Sidecars renew at 50 % ± 10 % of their lifetime (PRODUCT.md §5). Stale after 50 % made a healthy
  // sidecar that drew a late renewal invisible for a while: not waited for, and its old leaf not counted.
  const s = setup({ perAddress: { perSecond: 0, burst: 0 }, perIdentity: { perSecond: 0, burst: 0 } });
  const max = 24 * 3600_000; // the longest lifetime the CA grants by default
  await s.service.issueSvid({ csr: createCsr(p256().key), token: await s.token(), peerAddress: '10.0.0.1', ttlSeconds: max / 1000, report: { bundleVersion: 1, serial: '' } });
  clock.advance(max * 0.6);
  assert.deepEqual(pick(s.service.convergenceCounts()), { clients: 1, onCurrentBundle: 1, stale: 0 });
  clock.advance(max * 0.2);
  assert.deepEqual(pick(s.service.convergenceCounts()), { clients: 0, onCurrentBundle: 0, stale: 1 }, 'overdue: stale');
  s.cleanup();
});

const pick = (c: { clients: number; onCurrentBundle: number; stale: number }) => ({ clients: c.clients, onCurrentBundle: c.onCurrentBundle, stale: c.stale });

test('a flood of unauthenticated attempts from one address blocks none of the mTLS renewals from that address', async () => {
  const s = setup({ perAddress: { perSecond: 1, burst: 2 }, perIdentity: { perSecond: 1 / 60, burst: 1 } });
  const sidecars = [];
  for (let i = 0; i < 5; i++) {
    const csr = createCsr(p256().key);
    const first = await s.service.issueSvid({ csr, token: await s.token(`spiffe://example.org/ns/a/sa/w${i}`), peerAddress: `10.0.1.${i}` });
    sidecars.push({ csr, peerChain: [...first.certChain] });
  }
  const flood = await Promise.allSettled(Array.from({ length: 50 }, () => s.service.issueSvid({ csr: createCsr(p256().key), peerAddress: '127.0.0.1' })));
  assert.ok(flood.every((r) => r.status === 'rejected'));
  assert.ok(flood.some((r) => r.status === 'rejected' && isCode('TG_RATE_LIMITED')(r.reason)), 'the flood itself is limited');
  const renewals = await Promise.allSettled(sidecars.map((c) => s.service.issueSvid({ ...c, peerAddress: '127.0.0.1' })));
  assert.deepEqual(renewals.map((r) => r.status), Array(5).fill('fulfilled'), 'renewals from the flooded address blocked');
  // A certificate that fails authentication counts as an unauthenticated attempt from its address.
  const foreign = await createRoot({ trustDomain: 'example.org', clock });
  await assert.rejects(s.service.issueSvid({ csr: sidecars[0]!.csr, peerChain: [foreign.certificate], peerAddress: '127.0.0.1' }), isCode('TG_RATE_LIMITED'));
  s.cleanup();
});

test('renewals are limited per line of certificates: one replica looping renewals does not lock out another of the same service account', async () => {
  const s = setup({ perAddress: { perSecond: 0, burst: 0 }, perIdentity: { perSecond: 1 / 60, burst: 2 } });
  const id = 'spiffe://example.org/ns/shop/sa/web';
  const csrA = createCsr(p256().key);
  const csrB = createCsr(p256().key);
  let a = await s.service.issueSvid({ csr: csrA, token: await s.token(id), peerAddress: '10.0.0.1' });
  const b = await s.service.issueSvid({ csr: csrB, token: await s.token(id), peerAddress: '10.0.0.2' });
  // Replica A renews with each new certificate it gets: a new serial is not a new bucket.
  const results: string[] = [];
  for (let i = 0; i < 5; i++) {
    try {
      a = await s.service.issueSvid({ csr: csrA, peerChain: [...a.certChain], peerAddress: '10.0.0.1' });
      results.push('ok');
    } catch (e) {
      assert.ok(isCode('TG_RATE_LIMITED')(e));
      results.push('limited');
    }
  }
  assert.deepEqual(results, ['ok', 'ok', 'limited', 'limited', 'limited']);
  const renewedB = await s.service.issueSvid({ csr: csrB, peerChain: [...b.certChain], peerAddress: '10.0.0.1' });
  assert.equal(renewedB.spiffeId, id);
  s.cleanup();
});

test('an issuance is answered only once its audit line is with the OS; other requests are not held up meanwhile', async () => {
  const s = setup({ perAddress: { perSecond: 0, burst: 0 }, perIdentity: { perSecond: 0, burst: 0 } });
  // A stream whose writes complete only when the test says so (a slow disk).
  const held: Array<() => void> = [];
  const written: string[] = [];
  const out = new Writable({ write(chunk: Buffer, _enc, done) { written.push(chunk.toString()); held.push(() => done()); } });
  const service = new CaService({ ...s.options, audit: new AuditLog({ out, clock }) });
  let answered = false;
  const first = service.issueSvid({ csr: createCsr(p256().key), token: await s.token(), peerAddress: '10.0.0.1' }).then((r) => ((answered = true), r));
  await waitUntil(() => written.length === 1);
  assert.match(written[0]!, /"event":"svid_issued"/);
  assert.equal(answered, false, 'answered before its audit line was written');
  // A refusal meanwhile is not blocked behind the held write (it is aggregated, not written).
  await assert.rejects(service.issueSvid({ csr: Buffer.from('junk'), peerAddress: '10.0.0.2' }), isCode('TG_CSR_INVALID'));
  held.shift()!();
  assert.equal((await first).spiffeId, 'spiffe://example.org/ns/a/sa/b');
  s.cleanup();
});

async function waitUntil(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(cond());
}
