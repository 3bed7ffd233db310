// 1,000 first issues over gRPC against two `ca serve --store kubernetes` replicas (chart RBAC, the
// CA ServiceAccount's token), each with a join token created through the store, 16 at a time, half
// of them sent to each replica first; when 500 have finished one replica is killed with SIGKILL and
// its calls move to the other. Then: every issuance the clients got is audited exactly once across
// the two audit logs, every certificate chains to the one bundle, no join token issued twice, and
// the only failed calls are those to the killed replica after its death, each retried on the other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JoinTokenAttestor } from '../../ca/attestation/join-token.ts';
import { bundleOf } from '../../ca/slots.ts';
import { systemClock } from '../../common/clock.ts';
import { verifySvidChain } from '../../pki/svid-validate.ts';
import { freshCsr, runIssuance, type IssueJob } from '../helpers/issue-load.ts';
import { kubeCaForFile, kubeStoreFor, startKubeCa, type KubeCa } from '../helpers/kube-ca.ts';
import { kubeTierMissing } from '../helpers/kube-cluster.ts';

const skip = kubeTierMissing();
const TD = 'cluster.local';
const TOTAL = 1000;
const KILL_AT = 500;
const CONCURRENCY = 16;
let cas: Record<'a' | 'b', KubeCa>;
const file = kubeCaForFile({ prefix: 'tollgate-kube-kill-', setup: async () => {
  const start = async (name: string) => file.track(await startKubeCa(file.cluster, { tokenFile: file.rbac.tokenFile, dir: file.dir, name, extra: ['--init-if-empty', '--trust-domain', TD, '--rate-per-address', '0', '--rate-per-identity', '0'] }));
  const [a, b] = await Promise.all([start('a'), start('b')]);
  cas = { a, b };
} });

test(`${TOTAL} issuances over two replicas, one killed (SIGKILL) half-way: audited once, one bundle, no token twice`, { skip, timeout: 600_000 }, async (t) => {
  const { store, client } = kubeStoreFor(file.cluster, { token: file.rbac.token });
  try {
    const { records } = await store.read();
    const root = await store.certificate(bundleOf(records).rootIds[0]!);
    // Join tokens through the store, as `ca token create --store kubernetes` makes them.
    const att = new JoinTokenAttestor({ tokens: store.joinTokens, clock: systemClock, trustDomain: TD });
    const t0 = performance.now();
    const jobs: IssueJob[] = [];
    for (let i = 0; i < TOTAL; i++) {
      const spiffeId = `spiffe://${TD}/ns/load/sa/w${i}`;
      const made = await att.create({ spiffeId, ttlMs: 3600_000 });
      jobs.push({ token: made.token, tokenId: made.tokenId, spiffeId, csr: freshCsr() });
    }
    const tokenMs = performance.now() - t0;

    const marks: number[] = [];
    const started = performance.now();
    const outcomes = await runIssuance({
      jobs,
      concurrency: CONCURRENCY,
      route: (i) => (i % 2 ? ['b', 'a'] : ['a', 'b']),
      clients: { a: cas.a.client([root]), b: cas.b.client([root]) },
      afterEach: (done) => {
        if (done !== KILL_AT) return;
        marks.push(performance.now());
        cas.b.proc.proc.kill('SIGKILL');
      },
    });
    const endedMs = performance.now();

    // What the clients saw.
    const ok = outcomes.filter((o) => o.serial);
    const attempts = outcomes.flatMap((o) => o.attempts.map((a) => ({ ...a, job: o })));
    const failed = attempts.filter((a) => !a.ok);
    for (const f of failed) {
      if (f.replica === 'b') {
        assert.equal(f.code, 'TG_UNAVAILABLE', 'a call to the killed replica fails as unreachable');
        assert.ok(f.doneBefore >= KILL_AT - CONCURRENCY, `a failure before the kill: ${JSON.stringify(f)}`);
        assert.ok(f.job.attempts.some((x) => x.replica === 'a'), 'and it is retried on the other replica');
      } else {
        // The survivor refuses only a token the killed replica used up in its last moments.
        assert.equal(f.code, 'TG_TOKEN_REUSED', JSON.stringify(f));
        assert.ok(f.job.attempts[0]!.replica === 'b' && !f.job.attempts[0]!.ok);
      }
    }
    assert.ok(failed.some((f) => f.replica === 'b'), 'the kill was seen by clients');
    const burnt = outcomes.filter((o) => !o.serial);
    assert.ok(burnt.length <= CONCURRENCY, `at most the calls in flight at the kill fail for good (${burnt.length})`);

    // What the CAs recorded: every issuance audited once, none twice for one token.
    const audit = [...cas.a.auditLines(), ...cas.b.auditLines()].filter((l) => l.event === 'svid_issued');
    const bySerial = new Map<string, number>();
    const byToken = new Map<string, number>();
    for (const l of audit) {
      bySerial.set(String(l.serial).toLowerCase(), (bySerial.get(String(l.serial).toLowerCase()) ?? 0) + 1);
      const id = (l.details as Record<string, string>).token_id!;
      byToken.set(id, (byToken.get(id) ?? 0) + 1);
    }
    for (const o of ok) assert.equal(bySerial.get(o.serial!), 1, `issuance ${o.serial} audited once`);
    assert.deepEqual([...byToken.values()].filter((n) => n > 1), [], 'no join token issued twice');
    assert.ok(audit.length >= ok.length && audit.length <= ok.length + burnt.length, 'audited beyond the delivered ones only for calls cut by the kill');
    // One bundle: every certificate chains to the one root.
    const now = Date.now();
    for (const o of ok) {
      const v = verifySvidChain({ leaf: o.chain![0]!, intermediates: o.chain!.slice(1), roots: [root], now });
      assert.equal(v.spiffeId.id, o.job.spiffeId);
    }

    const firstHalfMs = marks[0]! - started;
    const rate = (n: number, ms: number) => `${Math.round((n * 1000) / ms)}/s`;
    t.diagnostic(`join tokens created through the store: ${TOTAL} in ${Math.round(tokenMs)} ms (${rate(TOTAL, tokenMs)}, one at a time)`);
    t.diagnostic(`issued: ${ok.length}/${TOTAL}; both replicas: ${rate(KILL_AT, firstHalfMs)}; after the kill, one replica: ${rate(TOTAL - KILL_AT, endedMs - marks[0]!)}`);
    t.diagnostic(`failed calls: ${failed.filter((f) => f.replica === 'b').length} to the killed replica (all retried on the other), ${failed.filter((f) => f.replica === 'a').length} refused there as TG_TOKEN_REUSED (used up by the killed replica in flight); audited but never delivered: ${audit.length - ok.length}`);
  } finally {
    client.close();
  }
});
