// SvidManager against the real CA code in-process (test/helpers/in-process-ca.ts), all on one
// ManualClock; the only fakes are injected failures (CA unreachable, tampered responses) and the
// transport, whose TLS checks the adapter reproduces. What a CA answer must be to be used is
// table-tested on its own in ca-answers.test.ts.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { createIntermediate, createRoot, crossSign, type Authority } from '../ca/authority.ts';
import { SvidIssuer, type IssuancePolicy } from '../ca/issuer.ts';
import type { Bundle } from '../ca/service.ts';
import type { IssuedSvidResponse } from '../common/ca-client.ts';
import { ManualClock } from '../common/clock.ts';
import { TollgateError } from '../common/errors.ts';
import { createLogger } from '../common/log.ts';
import { verifySvidChain } from '../pki/svid-validate.ts';
import { leafFrom, p256, testChain } from '../pki/test-chain.ts';
import { SidecarMetrics } from './metrics.ts';
import { backoffDelay, earlyRenewalDelay, renewAt, retryBeforeExpiry, seededRandom } from './renewal.ts';
import { SvidManager, type SvidManagerOptions } from './svid-manager.ts';
import { CA_ID, inProcessCa, TD, unavailable, WEB, type InProcessCa } from '../test/helpers/in-process-ca.ts';

const K8S_ISSUER = 'https://kubernetes.default.svc.cluster.local';
const T0 = Date.UTC(2026, 2, 1);
/** Certificates carry whole seconds. */
const wholeSeconds = (ms: number) => Math.floor(ms / 1000) * 1000;
const tmp = mkdtempSync(join(tmpdir(), 'tg-svidmgr-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function setup(ca: InProcessCa, clock: ManualClock, over: Partial<SvidManagerOptions> & Pick<SvidManagerOptions, 'attestation'>) {
  const registry = new Registry();
  const lines: Array<Record<string, unknown>> = [];
  const m = new SvidManager({
    ca: { address: 'ca.test:8443', spiffeId: CA_ID },
    bootstrapRoots: [ca.root.certificate],
    clock,
    random: seededRandom(7),
    logger: createLogger({ out: { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) }, level: 'debug', clock }),
    metrics: new SidecarMetrics(registry),
    connect: (o) => ca.connect(o),
    ...over,
  });
  let changes = 0;
  m.onChange(() => changes++);
  const metric = async (name: string) => (await registry.getMetricsAsJSON()).find((x) => x.name === name)?.values ?? [];
  return { m, lines, metric, changes: () => changes, expected: seededRandom(7) };
}

/** Wait (bounded) for in-process async work such as ECDSA and JWT verification to finish. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 1));
  }
  assert.fail(`timed out waiting for ${what}`);
}
const retried = (m: SvidManager) => () => m.nextRenewalAt() !== null;

/** The in-process CA on a fresh ManualClock and a started sidecar that attests with a Kubernetes token file. */
async function startK8s(name: string, policy?: Partial<IssuancePolicy>, over: Partial<SvidManagerOptions> = {}) {
  const clock = new ManualClock(T0);
  const ca = await inProcessCa(clock, tmp, policy);
  const tokenFile = join(tmp, name);
  writeFileSync(tokenFile, await ca.k8sToken(T0 + 48 * 3600_000));
  const s = setup(ca, clock, { attestation: { kind: 'k8s', tokenFile }, ...over });
  await s.m.start();
  return { clock, ca, s };
}

describe('SvidManager with the real CA in-process', () => {
  test('first issue with a join token, then renewal over mTLS at the seeded jittered time', async () => {
    const clock = new ManualClock(T0);
    const ca = await inProcessCa(clock, tmp);
    const token = await ca.joinToken();
    const s = setup(ca, clock, { attestation: { kind: 'join', token } });
    assert.deepEqual(s.m.readiness(), { ready: false, detail: 'no SVID yet' });
    await s.m.start();

    const first = s.m.svid()!;
    assert.equal(first.spiffeId, WEB);
    assert.equal(first.certChain.length, 2);
    assert.equal(first.key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.equal(first.notAfter, T0 + 3600_000);
    assert.match(first.certChainPem, /^-----BEGIN CERTIFICATE-----/);
    assert.equal(s.m.bundle()!.version, 1);
    assert.ok(s.m.readiness().ready, s.m.readiness().detail);
    // 50 % ± 10 % of the time we hold it (the CA's 30 s backdating does not count).
    const due = renewAt({ notBefore: T0, notAfter: first.notAfter }, s.expected);
    assert.equal(s.m.nextRenewalAt(), due);
    assert.equal(due, T0 + 1_448_427, 'seed 7 puts the renewal at 40.2 % of the hour');
    assert.deepEqual(ca.calls.map((c) => [c.op, c.mtls, c.token, c.report]), [
      ['getBundle', false, undefined, { bundle_version: 0, serial: '' }],
      ['issue', false, 'join', { bundle_version: 1, serial: '' }],
      ['watch', false, undefined, { bundle_version: 1, serial: first.serial }],
    ]);

    clock.set(due - 1);
    assert.equal(s.m.nextRenewalAt(), due, 'no renewal before the due time');
    assert.equal(ca.issues().length, 1);
    clock.advance(1);
    await until(() => s.m.svid() !== first, 'the renewal');
    const second = s.m.svid()!;
    assert.deepEqual(ca.issues()[1], { op: 'issue', mtls: true, token: undefined, report: { bundle_version: 1, serial: first.serial }, at: due });
    assert.equal(second.spiffeId, WEB);
    assert.notEqual(second.serial, first.serial);
    assert.equal(second.notAfter, wholeSeconds(due + 3600_000));
    assert.equal(second.key, first.key, 'one key for the life of the sidecar');
    assert.equal(s.m.nextRenewalAt(), renewAt({ notBefore: due, notAfter: second.notAfter }, s.expected));
    assert.equal(s.changes(), 3, 'bundle, first SVID, renewed SVID');
    assert.deepEqual((await s.metric('tollgate_svid_renewals_total')).map((v) => [v.labels.result, v.value]), [['ok', 2]]);
    assert.equal((await s.metric('tollgate_svid_expiry_timestamp_seconds'))[0]!.value, second.notAfter / 1000);
    assert.equal((await s.metric('tollgate_sidecar_bundle_version'))[0]!.value, 1);
    const logged = JSON.stringify(s.lines);
    assert.ok(!logged.includes(token) && !logged.includes('PRIVATE KEY'), 'no token or key in logs');
    s.m.close();
    s.m.close();
    assert.equal(clock.pending, 0, 'close cancels every timer');
    assert.equal(ca.service.watcherCount, 0, 'close cancels the bundle watch');
  });

  test('CA unreachable: jittered backoff, old SVID kept, unready after expiry, recovers with a fresh k8s token', async () => {
    const clock = new ManualClock(T0);
    const ca = await inProcessCa(clock, tmp);
    const tokenFile = join(tmp, 'sa-token');
    writeFileSync(tokenFile, await ca.k8sToken(T0 + 60_000));
    const backoff = { baseMs: 1000, maxMs: 16_000 };
    const s = setup(ca, clock, { attestation: { kind: 'k8s', tokenFile }, ttlSeconds: 120, backoff });
    await s.m.start();
    const held = s.m.svid()!;
    assert.equal(ca.issues()[0]!.token, 'k8s');
    assert.equal(held.notAfter, T0 + 120_000);
    let expectedAt = renewAt({ notBefore: T0, notAfter: held.notAfter }, s.expected);
    assert.equal(s.m.nextRenewalAt(), expectedAt);

    ca.down = true;
    const tried: number[] = [];
    for (let attempt = 0; clock.now() < held.notAfter + 20_000; attempt++) {
      assert.ok(attempt < 40, 'bounded');
      clock.set(s.m.nextRenewalAt()!);
      tried.push(clock.now());
      await until(retried(s.m), 'the retry to be scheduled');
      const delay = retryBeforeExpiry({ now: clock.now(), delayMs: backoffDelay(attempt, s.expected, backoff), notAfter: held.notAfter });
      expectedAt = clock.now() + delay;
      assert.equal(s.m.nextRenewalAt(), expectedAt, `retry ${attempt}`);
      assert.equal(s.m.svid(), held, 'a failed renewal keeps the current SVID');
      assert.equal(s.m.readiness().ready, clock.now() < held.notAfter);
    }
    assert.equal(tried[0], T0 + 48_280, 'seed 7: 40.2 % of a 120 s hold');
    // Doubling waits, jittered, capped at 16 s; one attempt is pulled in to 1 s before expiry.
    const waits = tried.slice(1).map((x, i) => x - tried[i]!);
    assert.deepEqual(waits.slice(0, 5).map((w, i) => w >= 500 * 2 ** i && w < 1000 * 2 ** i), [true, true, true, true, true]);
    assert.ok(tried.includes(held.notAfter - 1000), `a last attempt at expiry - 1 s, got ${tried.map((x) => x - T0).join(',')}`);
    assert.ok(waits.every((w) => w < 16_000));
    const r = s.m.readiness();
    assert.equal(r.ready, false);
    assert.match(r.detail, /^SVID expired at 2026-03-01T00:02:00\.000Z; last attempt failed: TG_UNAVAILABLE: CA at ca\.test:8443 is unreachable/);
    const counts = await s.metric('tollgate_svid_renewals_total');
    assert.deepEqual(counts.map((v) => [v.labels.result, v.value]), [['ok', 1], ['error', tried.length]]);
    const warn = s.lines.find((l) => l.msg === 'SVID renewal failed; keeping the current SVID')!;
    assert.equal(warn.code, 'TG_UNAVAILABLE');
    assert.ok(typeof warn.retry_in_ms === 'number' && typeof warn.retry_at === 'string');

    // Back up, and kubelet has rotated the token file (the first token expired long ago).
    ca.down = false;
    writeFileSync(tokenFile, await ca.k8sToken(clock.now() + 3600_000));
    const before = ca.issues().length;
    clock.set(s.m.nextRenewalAt()!);
    await until(() => s.m.svid() !== held, 'recovery');
    assert.deepEqual(ca.issues().slice(before).map((c) => [c.mtls, c.token, c.error]), [[false, 'k8s', undefined]], 'expired SVID: token attestation');
    assert.ok(s.m.readiness().ready);
    assert.equal(s.m.readiness().detail, `SVID ${WEB} valid until ${new Date(wholeSeconds(clock.now() + 120_000)).toISOString()}, bundle version 1`);
    assert.equal(s.m.nextRenewalAt(), renewAt({ notBefore: clock.now(), notAfter: wholeSeconds(clock.now() + 120_000) }, s.expected));
    s.m.close();
  });

  test('an expired SVID with a used join token stops and asks for a new join token', async () => {
    const clock = new ManualClock(T0);
    const ca = await inProcessCa(clock, tmp);
    const s = setup(ca, clock, { attestation: { kind: 'join', token: await ca.joinToken() }, ttlSeconds: 10, backoff: { baseMs: 1000, maxMs: 4000 } });
    await s.m.start();
    ca.down = true;
    for (let i = 0; i < 40 && s.m.nextRenewalAt() !== null; i++) {
      clock.set(s.m.nextRenewalAt()!);
      await until(() => s.m.nextRenewalAt() !== null || s.lines.some((l) => l.level === 'error'), 'an outcome');
    }
    ca.down = false;
    assert.equal(s.m.nextRenewalAt(), null, 'nothing left to try');
    assert.ok(clock.now() >= s.m.svid()!.notAfter);
    assert.equal(ca.issues().filter((c) => c.token === 'join').length, 1, 'the used join token is never sent again');
    assert.match(s.m.readiness().detail, /SVID expired at .*TG_TOKEN_REUSED: .*new join token \(tollgate ca token create\) or restart it/);
    assert.equal(s.lines.at(-1)!.level, 'error');
    s.m.close();
  });

  test('attestation horizon: a k8s sidecar re-presents its token file at the horizon and carries on; a join-token one stops and says so', async () => {
    const { clock, ca, s } = await startK8s('sa-token-horizon', { k8sReattestSeconds: 3600, joinTokenHorizonSeconds: 3600 }, { ttlSeconds: 1800 });
    // Renew at each due time until the token is presented again (bounded); the SVID never lapses.
    for (let i = 0; i < 10 && ca.issues().filter((c) => c.token === 'k8s').length < 2; i++) {
      const held = s.m.svid()!;
      clock.set(s.m.nextRenewalAt()!);
      assert.ok(clock.now() < held.notAfter, 'renewed while the held SVID is valid');
      await until(() => s.m.svid() !== held, `renewal ${i}`);
      assert.ok(s.m.svid()!.notAfter <= T0 + 3600_000 || ca.issues().at(-1)!.token === 'k8s', 'renewals over mTLS stop at the horizon');
    }
    const ways = ca.issues().map((c) => (c.token ?? (c.mtls ? 'svid' : '?')));
    assert.deepEqual([ways[0], ways.at(-1)], ['k8s', 'k8s']);
    assert.ok(ways.slice(1, -1).length >= 2 && ways.slice(1, -1).every((w) => w === 'svid'), ways.join(','));
    assert.ok(ca.issues().every((c) => c.error === undefined), 'no refusal: re-attestation happens before the CA would refuse');
    assert.equal(s.m.svid()!.notAfter, wholeSeconds(clock.now() + 1800_000), 'a fresh horizon: full lifetime again');
    assert.ok(s.m.readiness().ready);
    s.m.close();

    const j = setup(ca, clock, { attestation: { kind: 'join', token: await ca.joinToken() }, ttlSeconds: 1800 });
    const start = clock.now();
    await j.m.start();
    for (let i = 0; i < 10 && j.m.nextRenewalAt() !== null; i++) {
      const held = j.m.svid()!;
      clock.set(j.m.nextRenewalAt()!);
      await until(() => j.m.svid() !== held || j.lines.some((l) => l.level === 'error'), `join renewal ${i}`);
    }
    assert.equal(j.m.nextRenewalAt(), null, 'nothing left to try');
    assert.equal(j.m.svid()!.notAfter, wholeSeconds(start + 3600_000), 'the last SVID ends at the horizon');
    assert.ok(j.m.readiness().ready, 'still serving until then');
    clock.set(j.m.svid()!.notAfter);
    assert.match(j.m.readiness().detail, /SVID expired at .*TG_REATTEST_REQUIRED: .*attestation horizon.*new join token/);
    j.m.close();
  });

  test('deny-list: a k8s sidecar whose serial is denied re-attests with its token file', async () => {
    const { clock, ca, s } = await startK8s('sa-token-denied');
    const held = s.m.svid()!;
    const b = ca.service.bundle;
    ca.service.setBundle({ ...b, version: b.version + 1, deniedSerials: [held.serial] });
    await until(() => s.m.bundle()!.version === b.version + 1, 'the pushed bundle');
    assert.ok(s.m.bundle()!.denied.serials.has(held.serial), 'the sidecar holds the deny-list');
    for (let i = 0; i < 5 && s.m.svid() === held; i++) {
      clock.set(s.m.nextRenewalAt()!);
      await until(() => s.m.svid() !== held || s.m.nextRenewalAt()! > clock.now(), `attempt ${i}`);
    }
    assert.notEqual(s.m.svid(), held);
    assert.deepEqual(ca.issues().slice(1).map((c) => [c.mtls, c.token, c.error]), [[true, undefined, 'TG_DENIED'], [false, 'k8s', undefined]]);
    s.m.close();
  });

  test('a bad CA response never replaces the good SVID', async () => {
    const clock = new ManualClock(T0);
    const ca = await inProcessCa(clock, tmp);
    const s = setup(ca, clock, { attestation: { kind: 'join', token: await ca.joinToken() } });
    await s.m.start();
    const good = s.m.svid()!;
    const foreign = testChain(TD, T0);
    const otherKeyLeaf = ca.service.issuer.issue({ spki: p256().spki, spiffeId: WEB }).chain;
    const cases: Array<[string, (r: IssuedSvidResponse) => IssuedSvidResponse, string, RegExp]> = [
      ['garbage DER', (r) => ({ ...r, certChain: [Buffer.from('not a certificate'), ...r.certChain.slice(1)] }), 'TG_SVID_INVALID', /unusable SVID/],
      ['empty chain', (r) => ({ ...r, certChain: [] }), 'TG_SVID_INVALID', /empty certificate chain/],
      ['chain to a foreign CA', (r) => ({ ...r, certChain: [leafFrom(foreign, { uris: [WEB] }), foreign.intermediate] }), 'TG_SVID_UNTRUSTED', /does not chain/],
      ['spiffe_id differs from the leaf', (r) => ({ ...r, spiffeId: 'spiffe://example.org/ns/shop/sa/admin' }), 'TG_SVID_INVALID', /said it issued .*admin/],
      ['a certificate for another key', (r) => ({ ...r, certChain: [...otherKeyLeaf] }), 'TG_SVID_INVALID', /different public key/],
    ];
    for (const [name, tamper, code, message] of cases) {
      ca.tamper = tamper;
      clock.set(s.m.nextRenewalAt()!);
      await until(retried(s.m), name);
      assert.equal(s.m.svid(), good, name);
      const warn = s.lines.at(-1)!;
      assert.equal(warn.code, code, `${name}: ${String(warn.error)}`);
      assert.match(String(warn.error), message, name);
      assert.ok(s.m.readiness().ready, 'still serving the good SVID');
    }
    ca.tamper = undefined;
    clock.set(s.m.nextRenewalAt()!);
    await until(() => s.m.svid() !== good, 'a good renewal');
    assert.deepEqual((await s.metric('tollgate_svid_renewals_total')).map((v) => [v.labels.result, v.value]), [['ok', 2], ['error', cases.length]]);
    s.m.close();
  });

  test('bundle pushes: a new version replaces the bundle, bad ones are refused, a broken stream is re-watched', async () => {
    const clock = new ManualClock(T0);
    const ca = await inProcessCa(clock, tmp);
    const s = setup(ca, clock, { attestation: { kind: 'join', token: await ca.joinToken() } });
    await s.m.start();
    const due = s.m.nextRenewalAt();
    s.expected(); // consumed by the first renewAt
    const extraRoot = await createRoot({ trustDomain: TD, clock });
    const extra = extraRoot.certificate;
    const base = ca.service.bundle;
    // Trust continuity: an unendorsed new root is refused (a stolen CA identity cannot add one) ...
    ca.service.setBundle({ ...base, version: 2, roots: [base.roots[0]!, extra] });
    await until(() => s.lines.at(-1)?.msg === 'rejected a pushed trust bundle; keeping the current one', 'the unendorsed root refused');
    assert.equal(s.lines.at(-1)!.code, 'TG_BUNDLE_UNENDORSED');
    assert.equal(s.m.bundle()!.version, 1);
    assert.equal((await s.metric('tollgate_sidecar_bundle_rejected_total')).find((m) => m.labels.code === 'TG_BUNDLE_UNENDORSED')?.value, 1);
    // ... and accepted with a cross-signature by the root we trust.
    ca.service.setBundle({ ...base, version: 3, roots: [base.roots[0]!, extra], endorsements: [await crossSign({ root: extraRoot.certificate, signer: ca.root, trustDomain: TD })] });
    await until(() => s.m.bundle()!.version === 3, 'the pushed bundle');
    // The sidecar reports the bundle it now holds over mTLS, so the CA can count convergence.
    await until(() => ca.calls.some((c) => c.op === 'getBundle' && c.mtls && c.report?.bundle_version === 3), 'the authenticated report');
    assert.deepEqual(s.m.bundle()!.roots, [base.roots[0], extra]);
    assert.equal(s.m.bundle()!.rootsPem.match(/BEGIN CERTIFICATE/g)!.length, 2);
    assert.equal((await s.metric('tollgate_sidecar_bundle_version'))[0]!.value, 3);
    assert.equal((await s.metric('tollgate_trust_bundle_expiry_timestamp_seconds'))[0]!.value, Math.floor(ca.root.parsed.notAfter / 1000));
    assert.equal(s.m.nextRenewalAt(), due, 'our root is still there: no early renewal');
    const changes = s.changes();

    const refused: Array<[Bundle, RegExp]> = [
      [{ ...base, version: 4, trustDomain: 'evil.org' }, /trust domain "evil.org"/],
      [{ ...base, version: 5, roots: [] }, /holds no roots/],
      [{ ...base, version: 6, roots: [Buffer.from('junk')] }, /root #1 is unusable/],
      [{ ...base, version: 7, roots: [leafFrom(testChain(TD, T0))] }, /root #1 is unusable: .*not a CA/],
      [{ ...base, version: 2, roots: [base.roots[0]!] }, /older than the held version 3/],
      [{ ...base, version: 3, roots: [base.roots[0]!] }, /other roots than the held bundle of the same version/],
    ];
    for (const [bundle, message] of refused) {
      ca.service.setBundle(bundle);
      await until(() => s.lines.at(-1)!.msg === 'rejected a pushed trust bundle; keeping the current one' && s.lines.at(-1)!.version === bundle.version, 'the refusal');
      assert.match(String(s.lines.at(-1)!.error), message);
      assert.equal(s.m.bundle()!.version, 3);
    }
    assert.equal(s.changes(), changes, 'refused bundles change nothing');

    ca.endWatches(unavailable());
    await until(retried(s.m), 'watch end');
    const watchesBefore = ca.calls.filter((c) => c.op === 'watch').length;
    const delay = backoffDelay(0, s.expected);
    clock.advance(delay - 1);
    assert.equal(ca.calls.filter((c) => c.op === 'watch').length, watchesBefore);
    clock.advance(1);
    assert.equal(ca.calls.filter((c) => c.op === 'watch').length, watchesBefore + 1, 're-watch after jittered backoff');
    // ... presenting the SVID, with what it holds: a CA that restarted counts this sidecar (its bundle,
    // and the authority of its leaf) from that call on, not only from its next renewal.
    const rewatch = ca.calls.filter((c) => c.op === 'watch').at(-1)!;
    assert.deepEqual([rewatch.mtls, rewatch.report], [true, { bundle_version: 3, serial: s.m.svid()!.serial }]);
    ca.service.setBundle({ ...base, version: 8, roots: [base.roots[0]!] });
    await until(() => s.m.bundle()!.version === 8, 'a push on the new stream');
    s.m.close();
  });

  test('root rotation: a bundle without our root renews early and converges on the new root', async () => {
    const { clock, ca, s } = await startK8s('sa-token-rotation');
    s.expected();
    const old = s.m.svid()!;
    const dueNormally = s.m.nextRenewalAt()!;
    clock.advance(60_000);
    // Prepare: the new root joins the bundle. Activate: the CA issues (and serves) from it.
    const newRoot: Authority = await createRoot({ trustDomain: TD, clock });
    const newInter = await createIntermediate({ trustDomain: TD, root: newRoot, clock });
    ca.service.setBundle({ ...ca.service.bundle, version: 2, roots: [ca.root.certificate, newRoot.certificate], endorsements: [await crossSign({ root: newRoot.certificate, signer: ca.root, trustDomain: TD })] });
    await until(() => s.m.bundle()!.version === 2, 'prepare');
    assert.equal(s.m.nextRenewalAt(), dueNormally);
    ca.service.setIssuer(new SvidIssuer({ intermediate: newInter, clock }));
    ca.servingRoot = newRoot.certificate;
    // Retire (early, e.g. after a compromise): the old root leaves the bundle.
    ca.service.setBundle({ ...ca.service.bundle, version: 3, roots: [newRoot.certificate] });
    await until(() => s.m.bundle()!.version === 3, 'retire');
    const soon = clock.now() + earlyRenewalDelay(s.expected);
    assert.equal(s.m.nextRenewalAt(), soon);
    assert.ok(soon < dueNormally);
    clock.set(soon);
    // The CA no longer trusts our old SVID for renewal; the manager falls back to the token.
    await until(retried(s.m), 'the refused mTLS renewal');
    assert.deepEqual(ca.issues().slice(-1).map((c) => [c.mtls, c.error]), [[true, 'TG_SVID_UNTRUSTED']]);
    clock.set(s.m.nextRenewalAt()!);
    await until(() => s.m.svid() !== old, 'convergence');
    assert.deepEqual(ca.issues().slice(-1).map((c) => [c.mtls, c.token, c.error]), [[false, 'k8s', undefined]]);
    const now = s.m.svid()!;
    const v = verifySvidChain({ leaf: now.certChain[0]!, intermediates: now.certChain.slice(1), roots: [newRoot.certificate], now: clock.now() });
    assert.equal(v.spiffeId.id, WEB);
    assert.ok(s.m.readiness().ready);
    s.m.close();
  });

  test('start() retries an unreachable CA with backoff, and close() ends a pending start', async () => {
    const clock = new ManualClock(T0);
    const ca = await inProcessCa(clock, tmp);
    ca.down = true;
    const s = setup(ca, clock, { attestation: { kind: 'join', token: await ca.joinToken() } });
    let settled = false;
    const started = s.m.start().finally(() => (settled = true));
    assert.equal(s.m.start(), s.m.start(), 'one start');
    await until(retried(s.m), 'first retry');
    assert.equal(s.m.nextRenewalAt(), T0 + backoffDelay(0, s.expected));
    clock.set(s.m.nextRenewalAt()!);
    await until(retried(s.m), 'second retry');
    assert.equal(s.m.nextRenewalAt(), clock.now() + backoffDelay(1, s.expected));
    assert.match(s.m.readiness().detail, /^no SVID yet; last attempt failed: TG_UNAVAILABLE/);
    assert.equal(s.lines.at(-1)!.msg, 'cannot obtain the first SVID');
    assert.equal(settled, false);
    ca.down = false;
    clock.set(s.m.nextRenewalAt()!);
    await started;
    assert.ok(s.m.readiness().ready);
    s.m.close();

    const pending = setup(ca, clock, { attestation: { kind: 'join', token: await ca.joinToken() } });
    ca.down = true;
    const p = pending.m.start();
    await until(retried(pending.m), 'a retry');
    pending.m.close();
    await assert.rejects(p, (e: unknown) => e instanceof TollgateError && e.code === 'TG_UNAVAILABLE' && /closed before/.test(e.message));
    assert.equal(clock.pending, 0);
  });
});

describe('clock skew (issue 13, problem 6): the sidecar 60 s behind the CA', () => {
  test('an SVID starting in our future is accepted within the tolerance, and the skew is logged', async () => {
    const clock = new ManualClock(T0);
    // The CA's clock 60 s ahead, backdating only 30 s (the old default): notBefore lands 30 s in our future.
    const ca = await inProcessCa(new ManualClock(T0 + 60_000), tmp, { backdateMs: 30_000 });
    const s = setup(ca, clock, { attestation: { kind: 'join', token: await ca.joinToken() } });
    await s.m.start();
    assert.equal(s.m.svid()!.notBefore, T0 + 30_000);
    const warned = s.lines.find((l) => l.msg === 'clock skew: the new SVID starts in our future; accepted within the tolerance, check NTP on this node and the CA');
    assert.equal(warned?.skew_ms, 30_000);
  });

  test('with the default 5 min backdate the SVID is valid by our clock already: nothing to tolerate', async () => {
    const clock = new ManualClock(T0);
    const ca = await inProcessCa(new ManualClock(T0 + 60_000), tmp);
    const s = setup(ca, clock, { attestation: { kind: 'join', token: await ca.joinToken() } });
    await s.m.start();
    assert.ok(s.m.svid()!.notBefore <= T0);
    assert.equal(s.lines.filter((l) => String(l.msg).startsWith('clock skew')).length, 0);
  });

  test('beyond the tolerance: the join token is spent, and start fails saying so (not "CA unreachable")', async () => {
    const clock = new ManualClock(T0);
    const ca = await inProcessCa(new ManualClock(T0 + 60_000), tmp, { backdateMs: 30_000 });
    const s = setup(ca, clock, { attestation: { kind: 'join', token: await ca.joinToken() }, skewToleranceMs: 10_000 });
    const started = s.m.start().then(() => undefined, (e: unknown) => e);
    await until(retried(s.m), 'the retry after the refused SVID');
    clock.advance(s.m.nextRenewalAt()! - clock.now());
    const err = await started;
    assert.ok(err instanceof TollgateError, String(err));
    assert.equal(err.code, 'TG_TOKEN_REUSED');
    assert.match(err.message, /join token was used up on an SVID this sidecar refused \(.*not valid until/);
    assert.doesNotMatch(err.message, /unreachable/);
  });

  test('restarted with a used-up join token and no SVID: start fails at once with a clear message (the process exits non-zero)', async () => {
    const clock = new ManualClock(T0);
    const ca = await inProcessCa(clock, tmp);
    const token = await ca.joinToken();
    await setup(ca, clock, { attestation: { kind: 'join', token } }).m.start();
    const again = setup(ca, clock, { attestation: { kind: 'join', token } });
    await assert.rejects(again.m.start(), (e: unknown) => e instanceof TollgateError && e.code === 'TG_TOKEN_REUSED' && /will not accept this join token .* give it a new join token/.test(e.message));
    assert.equal(again.m.nextRenewalAt(), null, 'no retry scheduled');
  });
});
