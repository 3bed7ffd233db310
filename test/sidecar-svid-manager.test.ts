// The SvidManager against a real `tollgate ca serve` process with a 6 s default TTL: first issue with
// a join token, renewal over mTLS, the bundle watch, and a CA that stops (the SVID keeps serving until
// it expires). Issued chains are checked by the openssl CLI. The manager runs on a ManualClock started
// at the wall clock: the test moves it to the renewal and past the expiry instead of waiting for them
// (the CA's certificates are backdated 5 min, so a manager a few seconds ahead still accepts them).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { connectCa, type CaConnectOptions } from '../pki/ca-connect.ts';
import { ManualClock } from '../common/clock.ts';
import { createLogger } from '../common/log.ts';
import { certsToPem } from '../pki/pem.ts';
import { SidecarMetrics } from '../sidecar/metrics.ts';
import type { Svid } from '../sidecar/svid-source.ts';
import { SvidManager, type CaApi } from '../sidecar/svid-manager.ts';
import { createJoinToken, initCa, startCa, type RunningTestCa } from './helpers/ca-fixture.ts';
import { run, tempDir } from './helpers/procs.ts';

const WEB = 'spiffe://example.org/ns/shop/sa/web';
let tmp: ReturnType<typeof tempDir>;
let ca: RunningTestCa;
let manager: SvidManager | undefined;

before(async () => {
  tmp = tempDir();
  initCa(join(tmp.dir, 'ca'));
  ca = await startCa(join(tmp.dir, 'ca'), ['--default-ttl', '6s']);
});

after(async () => {
  manager?.close();
  await ca?.stop();
  tmp?.cleanup();
});

/** Poll (bounded, real time) until `cond` holds: for network answers, not for the manager's timers. */
async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  for (let i = 0; i < timeoutMs / 50; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

function opensslVerify(svid: Svid, name: string): void {
  const leaf = join(tmp.dir, `${name}-leaf.crt`);
  const inter = join(tmp.dir, `${name}-int.crt`);
  writeFileSync(leaf, certsToPem([svid.certChain[0]!]));
  writeFileSync(inter, certsToPem(svid.certChain.slice(1)));
  for (const purpose of ['sslclient', 'sslserver']) {
    const v = run('openssl', ['verify', '-purpose', purpose, '-CAfile', join(ca.dir, 'root.crt'), '-untrusted', inter, leaf]);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /: OK/);
  }
  const san = run('openssl', ['x509', '-in', leaf, '-noout', '-ext', 'subjectAltName']).stdout;
  assert.match(san, new RegExp(`URI:${WEB.replace(/[/.]/g, '\\$&')}\\s*$`));
}

test('join-token issue, mTLS renewal, bundle watch, and an SVID that outlives its CA until expiry', async () => {
  const watched: number[] = [];
  const identities: boolean[] = [];
  // The real client; the wrapper only records what the stream delivered and which calls used mTLS.
  const connect = (o: CaConnectOptions): CaApi => {
    const c = connectCa(o);
    return {
      issue: (r) => (identities.push(!!o.identity), c.issue(r)),
      getBundle: (r) => c.getBundle(r),
      watchBundle: (r, onBundle, onEnd) => c.watchBundle(r, (b) => (watched.push(b.version), onBundle(b)), onEnd),
      close: () => c.close(),
    };
  };
  const lines: Array<Record<string, unknown>> = [];
  const token = createJoinToken(ca.dir, WEB);
  const clock = new ManualClock(Date.now());
  manager = new SvidManager({
    ca: { address: `127.0.0.1:${ca.grpcPort}`, spiffeId: ca.serverId },
    bootstrapRoots: ca.roots,
    attestation: { kind: 'join', token },
    clock,
    logger: createLogger({ out: { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) }, level: 'debug' }),
    metrics: new SidecarMetrics(new Registry()),
    connect,
    backoff: { baseMs: 200, maxMs: 1000 },
    deadlineMs: 2000,
  });
  const m = manager;
  await m.start();
  const first = m.svid()!;
  assert.equal(first.spiffeId, WEB);
  assert.ok(m.readiness().ready, m.readiness().detail);
  assert.ok(first.notAfter - Date.now() <= 6000, 'the CA default TTL of 6 s');
  opensslVerify(first, 'first');
  await waitFor(() => watched.length > 0, 'the bundle on the watch stream');
  assert.equal(watched[0], m.bundle()!.version);
  assert.deepEqual(m.bundle()!.roots, ca.roots);

  // Renewal at 40–60 % of the ~6 s held lifetime, over mTLS with the first SVID and no token.
  const due = m.nextRenewalAt()!;
  assert.ok(due > clock.now() && due < first.notAfter);
  clock.set(due - 1);
  assert.equal(m.svid(), first, 'not renewed before it is due');
  clock.set(due);
  await waitFor(() => m.svid() !== first, 'the renewal');
  const second = m.svid()!;
  assert.notEqual(second.serial, first.serial);
  assert.equal(second.spiffeId, WEB);
  assert.deepEqual(identities.slice(0, 2), [false, true]);
  opensslVerify(second, 'second');
  await waitFor(() => ca.auditLines().filter((l) => l.event === 'svid_issued').length >= 2, 'the audit lines');
  assert.deepEqual(ca.auditLines().filter((l) => l.event === 'svid_issued').slice(0, 2).map((l) => l.attestation), ['join_token', 'svid']);

  // The CA goes away: the held SVID keeps serving, and readiness holds until the SVID expires.
  await ca.proc.stop();
  const held = m.svid()!;
  const failed = (): number => lines.filter((l) => l.msg === 'SVID renewal failed; keeping the current SVID').length;
  clock.set(m.nextRenewalAt()!);
  await waitFor(() => failed() > 0, 'a failed renewal');
  // Step through the rest of the SVID's life (each step fires the retries that fall due).
  for (let t = clock.now() + 250; t < held.notAfter; t += 250) {
    clock.set(t);
    const r = m.readiness();
    assert.ok(r.ready, r.detail);
    assert.equal(m.svid(), held);
  }
  clock.set(held.notAfter);
  assert.equal(m.readiness().ready, false, 'not ready once the SVID has expired');
  assert.equal(m.svid(), held, 'never replaced by anything');
  assert.match(m.readiness().detail, /^SVID expired at .*; last attempt failed: TG_(UNAVAILABLE|TOKEN_REUSED): /);
  assert.ok(lines.some((l) => l.msg === 'SVID renewal failed; keeping the current SVID' && l.code === 'TG_UNAVAILABLE'));
  assert.ok(!JSON.stringify(lines).includes(token), 'the join token is never logged');
  m.close();
});
