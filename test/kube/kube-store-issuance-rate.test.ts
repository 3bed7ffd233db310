// The first-issue rate of two `ca serve` replicas on the Kubernetes store next to two on one
// directory store, under the same client load (join tokens made beforehand through each store,
// fresh keys, 16 calls in flight over gRPC, alternating replicas), in alternating rounds. A
// measurement, not a threshold: it asserts only that every issuance succeeded, and reports the
// rates (`node --test` prints them as diagnostics; the README quotes them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { JoinTokenAttestor } from '../../ca/attestation/join-token.ts';
import { bundleOf } from '../../ca/slots.ts';
import { DirectoryStore } from '../../ca/store.ts';
import { systemClock } from '../../common/clock.ts';
import type { CaClient } from '../../common/ca-client.ts';
import { initCa, startCa, type RunningTestCa } from '../helpers/ca-fixture.ts';
import { freshCsr, runIssuance, type IssueJob } from '../helpers/issue-load.ts';
import { kubeCaForFile, kubeStoreFor, startKubeCa, type KubeCa } from '../helpers/kube-ca.ts';
import { kubeTierMissing } from '../helpers/kube-cluster.ts';

const skip = kubeTierMissing();
const TD = 'cluster.local';
const PER_ROUND = 300;
const ROUNDS = 2;
const CONCURRENCY = 16;
const UNLIMITED = ['--rate-per-address', '0', '--rate-per-identity', '0'];
let kube: KubeCa[] = [];
let dir: RunningTestCa[] = [];
const file = kubeCaForFile({ prefix: 'tollgate-kube-rate-', setup: async () => {
  const start = async (name: string) => file.track(await startKubeCa(file.cluster, { tokenFile: file.rbac.tokenFile, dir: file.dir, name, extra: ['--init-if-empty', '--trust-domain', TD, ...UNLIMITED] }));
  kube = await Promise.all([start('a'), start('b')]);
  const caDir = join(file.dir, 'dir-ca');
  initCa(caDir, TD);
  dir = [file.track(await startCa(caDir, UNLIMITED)), file.track(await startCa(caDir, UNLIMITED))];
} });

async function round(att: JoinTokenAttestor, clients: CaClient[], label: string): Promise<number> {
  const jobs: IssueJob[] = [];
  for (let i = 0; i < PER_ROUND; i++) {
    const spiffeId = `spiffe://${TD}/ns/rate/sa/${label}-${i}`;
    const made = await att.create({ spiffeId, ttlMs: 3600_000 });
    jobs.push({ token: made.token, tokenId: made.tokenId, spiffeId, csr: freshCsr() });
  }
  const started = performance.now();
  const out = await runIssuance({ jobs, concurrency: CONCURRENCY, route: (i) => [String(i % 2)], clients: { 0: clients[0]!, 1: clients[1]! } });
  const ms = performance.now() - started;
  assert.deepEqual(out.filter((o) => !o.serial).map((o) => o.attempts), [], `${label}: every issuance succeeds`);
  return (PER_ROUND * 1000) / ms;
}

test('first issues with join tokens: two replicas on the Kubernetes store next to two on a directory store', { skip, timeout: 300_000 }, async (t) => {
  const { store, client } = kubeStoreFor(file.cluster, { token: file.rbac.token });
  try {
    const kubeRecords = (await store.read()).records;
    const kubeRoot = await store.certificate(bundleOf(kubeRecords).rootIds[0]!);
    const kubeClients = kube.map((c) => c.client([kubeRoot]));
    const dirClients = dir.map((c) => c.client());
    const kubeTokens = new JoinTokenAttestor({ tokens: store.joinTokens, clock: systemClock, trustDomain: TD });
    const dirTokens = new JoinTokenAttestor({ tokens: new DirectoryStore({ dir: dir[0]!.dir }).joinTokens, clock: systemClock, trustDomain: TD });
    const rates: Record<'kubernetes' | 'directory', number[]> = { kubernetes: [], directory: [] };
    for (let r = 0; r < ROUNDS; r++) {
      // Alternate which store goes first, so neither always runs on a warmer (or busier) machine.
      const order = r % 2 ? (['directory', 'kubernetes'] as const) : (['kubernetes', 'directory'] as const);
      for (const kind of order) {
        rates[kind].push(kind === 'kubernetes' ? await round(kubeTokens, kubeClients, `k${r}`) : await round(dirTokens, dirClients, `d${r}`));
      }
    }
    const show = (xs: number[]) => xs.map((x) => `${Math.round(x)}/s`).join(', ');
    t.diagnostic(`${PER_ROUND} first issues per round, ${CONCURRENCY} in flight, 2 replicas: Kubernetes store ${show(rates.kubernetes)}; directory store ${show(rates.directory)}`);
  } finally {
    client.close();
  }
});
