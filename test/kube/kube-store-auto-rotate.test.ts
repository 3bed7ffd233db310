// Automatic intermediate rotation on the Kubernetes store across two replicas happens once. The CA
// is made by `tollgate ca init --store kubernetes` with short lifetimes: a 60 s intermediate (CA
// certificates are backdated 5 min, so its half and two-thirds points are already past: both
// replicas find the prepare and the activate due the moment they start, together) under a 62 s
// root. The replicas start once less than 58.5 s of the root are left, so the new intermediate is
// cut at the root's end and no second rotation follows. Each step is a CAS on the Secret: exactly
// one replica does each, the other finds it done, and both issue from the new intermediate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JoinTokenAttestor } from '../../ca/attestation/join-token.ts';
import { active, bundleOf } from '../../ca/slots.ts';
import { systemClock } from '../../common/clock.ts';
import { newKey } from '../helpers/ca-fixture.ts';
import { kubeCaForFile, kubeStoreFlags, kubeStoreFor, startKubeCa } from '../helpers/kube-ca.ts';
import { kubeTierMissing } from '../helpers/kube-cluster.ts';
import { tollgate } from '../helpers/procs.ts';

const skip = kubeTierMissing();
const TD = 'cluster.local';
const file = kubeCaForFile({ prefix: 'tollgate-kube-rotate-' });

test('two replicas on one Kubernetes store rotate the intermediate once: one prepare, one activate, one retire', { skip, timeout: 120_000 }, async () => {
  const { cluster, rbac } = file;
  const init = tollgate(['ca', 'init', ...kubeStoreFlags(cluster, rbac), '--trust-domain', TD, '--intermediate-lifetime', '60s', '--root-lifetime', '62s', '--json']);
  assert.equal(init.code, 0, init.stderr);
  const { store, client } = kubeStoreFor(cluster, { token: rbac.token });
  try {
    const first = await store.read();
    const oldInt = active(first.records).intermediate.id;
    const rootEnd = Date.parse(active(first.records).root.notAfter);
    await cluster.waitFor(() => Date.now() >= rootEnd - 58_500, 'less than 58.5 s of the root left');
    const start = async (name: string) => file.track(await startKubeCa(cluster, { tokenFile: rbac.tokenFile, dir: file.dir, name, extra: ['--max-ttl', '10s', '--default-ttl', '10s', '--store-poll', '1s'] }));
    const cas = await Promise.all([start('a'), start('b')]);

    const done = await cluster.waitFor(async () => {
      const r = await store.read();
      return r.records.rotation?.phase === 'done' ? r : undefined;
    }, 'the automatic rotation to finish', 60_000);
    assert.equal(done.revision, first.revision + 3, 'three commits: prepare, activate, retire, each once');
    assert.equal(done.records.rotation!.automatic, true);
    const newInt = active(done.records).intermediate.id;
    assert.notEqual(newInt, oldInt);
    assert.deepEqual(done.records.authorities.map((a) => `${a.kind}/${a.slot}`).sort(), ['intermediate/active', 'intermediate/retired', 'root/active']);
    assert.equal(done.records.bundleVersion, first.records.bundleVersion, 'an intermediate rotation leaves the bundle alone');

    // The winner logs a step once its commit (and the bundle ConfigMap check after it) returns.
    const logs = await cluster.waitFor(() => {
      const text = cas.map((c) => c.proc.stderr()).join('\n');
      return text.includes('automatic intermediate rotation: retire done') ? text : undefined;
    }, 'the retire logged');
    for (const step of ['prepare', 'activate', 'retire']) {
      assert.equal(logs.split('\n').filter((l) => l.includes(`automatic intermediate rotation: ${step} done`)).length, 1, `${step} done by exactly one replica:\n${logs}`);
    }
    // Nothing left to do: the new intermediate ends with the root.
    for (const ca of cas) {
      const s = await cluster.waitFor(async () => {
        const st = await ca.status();
        return st.store_revision === done.revision ? st : undefined;
      }, 'each replica on the final revision');
      assert.equal(s.next_automatic_step.action, 'none');
      assert.match(s.next_automatic_step.why, /rotate the root/);
    }

    // Both replicas issue from the new intermediate.
    const root = await store.certificate(bundleOf(done.records).rootIds[0]!);
    const intermediate = await store.certificate(newInt);
    const att = new JoinTokenAttestor({ tokens: store.joinTokens, clock: systemClock, trustDomain: TD });
    for (const ca of cas) {
      const { token } = await att.create({ spiffeId: `spiffe://${TD}/ns/shop/sa/web`, ttlMs: 60_000 });
      const res = await ca.client([root]).issue({ csr: newKey().csr, token });
      assert.ok(res.certChain[1]!.equals(intermediate), 'issued by the new intermediate');
    }
  } finally {
    client.close();
  }
});
