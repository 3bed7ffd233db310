// Every write path of the Kubernetes store raced against a real API server: two writers (two
// store instances, each with its own connection and the CA ServiceAccount's token under the chart's
// RBAC), the second one held between its read and its write while the first one writes, so its
// write goes out with what is by then a stale resourceVersion (or, for a join token, a stale
// record). No update is ever lost: the stale write is refused by the server, and the retry the
// callers make (re-read, re-apply) carries both changes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { JoinTokenAttestor } from '../../ca/attestation/join-token.ts';
import { KubernetesStore } from '../../ca/kube-store.ts';
import { initIfEmpty } from '../../ca/new-ca.ts';
import { activateStep, prepareIntermediateStep, prepareRootStep, retireStep } from '../../ca/rotation-steps.ts';
import { bundleOf, DAY_MS, prepared } from '../../ca/slots.ts';
import { systemClock } from '../../common/clock.ts';
import { TollgateError, type ErrorCode } from '../../common/errors.ts';
import { KubeClient } from '../../common/kube-client.ts';
import { certsToPem } from '../../pki/pem.ts';
import { installChartRbac } from '../helpers/kube-ca.ts';
import { kubeTierMissing, startKubeCluster, type KubeCluster } from '../helpers/kube-cluster.ts';
import { tempDir } from '../helpers/procs.ts';

const skip = kubeTierMissing();
const TD = 'cluster.local';
const NS = 'tollgate-system';
let tmp: ReturnType<typeof tempDir>;
let cluster: KubeCluster;
let token: string;
const clients: KubeClient[] = [];

/** A real client that can be told to let another writer go first, just before its next request of a method. */
class HeldClient extends KubeClient {
  readonly sent: string[] = [];
  #before = new Map<string, () => Promise<unknown>>();

  holdBefore(method: 'PUT' | 'POST' | 'PATCH', other: () => Promise<unknown>): void {
    this.#before.set(method, other);
  }

  override async request<T>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const other = this.#before.get(method);
    if (other) {
      this.#before.delete(method);
      await other();
    }
    try {
      const r = await super.request<T>(method, path, body, contentType);
      this.sent.push(`${method} ok`);
      return r;
    } catch (e) {
      this.sent.push(`${method} ${(e as { status?: number }).status}`);
      throw e;
    }
  }
}

function writer(namespace = NS, tok = token): { store: KubernetesStore; client: HeldClient } {
  const client = new HeldClient({ server: cluster.server, caPem: cluster.caPem, token: () => tok });
  clients.push(client);
  return { client, store: new KubernetesStore({ client, namespace, clock: systemClock }) };
}

const isCode = (code: ErrorCode) => (e: unknown) => e instanceof TollgateError && e.code === code;

before(async () => {
  if (skip) return;
  tmp = tempDir('tollgate-kube-cas-');
  cluster = await startKubeCluster();
  token = (await installChartRbac(cluster, { dir: tmp.dir })).token;
});

after(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
  tmp?.cleanup();
});

test('first init: the second creator, held until the first has created the Secret, loses and serves the winner\'s CA', { skip }, async () => {
  const a = writer();
  const b = writer();
  let first: Awaited<ReturnType<typeof initIfEmpty>> | undefined;
  b.client.holdBefore('POST', async () => (first = await initIfEmpty(a.store, { trustDomain: TD, clock: systemClock })));
  const second = await initIfEmpty(b.store, { trustDomain: TD, clock: systemClock });
  assert.equal(first?.created, true);
  assert.deepEqual([second.created, second.lostRace], [false, true]);
  assert.deepEqual(b.client.sent.filter((s) => s.startsWith('POST')), ['POST 409'], 'the server refused the second create');
  assert.deepEqual(second.current, first!.current, 'the loser reads the winner\'s records');
  assert.equal((await a.store.read()).revision, 1);
});

test('first init over an empty Secret (made beforehand): the stale PUT loses the same way', { skip }, async () => {
  const ns = 'tollgate-two';
  const two = await installChartRbac(cluster, { namespace: ns, dir: tmp.dir });
  await cluster.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'tollgate-ca', namespace: ns }, type: 'Opaque' });
  const a = writer(ns, two.token);
  const b = writer(ns, two.token);
  let first: Awaited<ReturnType<typeof initIfEmpty>> | undefined;
  b.client.holdBefore('PUT', async () => (first = await initIfEmpty(a.store, { trustDomain: TD, clock: systemClock })));
  const second = await initIfEmpty(b.store, { trustDomain: TD, clock: systemClock });
  assert.deepEqual([first?.created, second.created, second.lostRace], [true, false, true]);
  assert.deepEqual(b.client.sent.filter((s) => s.startsWith('PUT')), ['PUT 409']);
  assert.deepEqual(second.current, first!.current);
});

test('records commit: a writer holding a stale resourceVersion is refused; its retry keeps the other writer\'s change', { skip }, async () => {
  const a = writer();
  const b = writer();
  const seen = await b.store.read();
  b.client.holdBefore('PUT', () => prepareIntermediateStep({ store: a.store, clock: systemClock }, { automatic: false }));
  const lifetimes = { root: 200 * DAY_MS, intermediate: 20 * DAY_MS };
  await assert.rejects(b.store.commit(seen.revision, { ...seen.records, lifetimes }), isCode('TG_STORE_CONFLICT'));
  assert.deepEqual(b.client.sent.filter((s) => s.startsWith('PUT')), ['PUT 409'], 'refused by the API server on resourceVersion');
  // What every caller does on TG_STORE_CONFLICT: re-read, re-apply, commit.
  const now = await b.store.read();
  assert.equal(now.revision, seen.revision + 1);
  await b.store.commit(now.revision, { ...now.records, lifetimes });
  const final = await writer().store.read();
  assert.equal(final.revision, seen.revision + 2);
  const int = prepared(final.records, 'intermediate');
  assert.ok(int, 'the first writer\'s prepared intermediate is kept');
  assert.deepEqual(final.records.lifetimes, lifetimes, 'and the second writer\'s change is there');
  // Its key and certificate too: material and records are one write.
  const reader = writer().store;
  await reader.read();
  assert.ok(await reader.privateKey(int!.id));
  assert.ok(await reader.certificate(int!.id));
});

test('bundle ConfigMap: a stale publisher is refused and never puts an older bundle over a newer one; a stale copy is fixed', { skip }, async () => {
  const a = writer();
  const b = writer();
  // Finish the intermediate rotation the previous test left prepared, then a root rotation's first two
  // steps: bundle versions v1 (one root), v2 (new root prepared), v3 (new root activated, first).
  if (prepared((await a.store.read()).records, 'intermediate')) {
    await activateStep({ store: a.store, clock: systemClock });
    await retireStep({ store: a.store, clock: systemClock });
  }
  const v1 = (await a.store.read()).records;
  const v2 = (await prepareRootStep({ store: a.store, clock: systemClock }, {})).records;
  const v3 = (await activateStep({ store: a.store, clock: systemClock })).records;
  assert.deepEqual([v1.bundleVersion + 1, v2.bundleVersion + 1], [v2.bundleVersion, v3.bundleVersion]);
  const pemOf = async (r: typeof v1) => certsToPem(await Promise.all(bundleOf(r).rootIds.map((id) => a.store.certificate(id))));
  const cmPath = `/api/v1/namespaces/${NS}/configmaps/tollgate-bundle`;
  const cm = async () => (await cluster.get(cmPath)).body;
  const setCm = async (r: typeof v1) => {
    const now = await cm();
    await cluster.put(cmPath, { ...now, metadata: { ...now.metadata, annotations: { 'tollgate.io/bundle-version': String(r.bundleVersion) } }, data: { 'bundle.pem': await pemOf(r) } });
  };

  // The copy left at v1 (a writer died after its commit): B publishes v2, but before its PUT, A
  // publishes v3. B's PUT carries v1's resourceVersion: refused; B re-reads, finds v3 newer, stops.
  await setCm(v1);
  b.client.holdBefore('PUT', () => a.store.publishBundle(v3));
  await b.store.publishBundle(v2);
  assert.deepEqual(b.client.sent.filter((s) => s.startsWith('PUT')), ['PUT 409']);
  assert.equal((await cm()).metadata.annotations['tollgate.io/bundle-version'], String(v3.bundleVersion));
  assert.equal((await cm()).data['bundle.pem'], await pemOf(v3), 'the newer bundle stays');
  // A copy edited by hand at the current version is put back.
  const edited = await cm();
  await cluster.put(cmPath, { ...edited, data: { 'bundle.pem': 'tampered' } });
  await a.store.publishBundle(v3);
  assert.equal((await cm()).data['bundle.pem'], await pemOf(v3));
});

test('join tokens: of two replicas using one token exactly one wins; different tokens never contend', { skip }, async () => {
  const a = writer();
  const b = writer();
  const att = (s: KubernetesStore) => new JoinTokenAttestor({ tokens: s.joinTokens, clock: systemClock, trustDomain: TD });
  const [attA, attB] = [att(a.store), att(b.store)];
  const id = `spiffe://${TD}/ns/shop/sa/web`;

  // Held: both have read the live record; A uses it first; B's patch tests a record that is gone.
  const { token: t1 } = await attA.create({ spiffeId: id, ttlMs: 600_000 });
  const [seenA, seenB] = [await attA.attest({ token: t1 }), await attB.attest({ token: t1 })];
  b.client.holdBefore('PATCH', () => seenA.consume!());
  await assert.rejects(seenB.consume!(), isCode('TG_TOKEN_REUSED'));
  await assert.rejects(attA.attest({ token: t1 }), isCode('TG_TOKEN_REUSED'));

  // Not held: many attempts at one token at once, across both stores: one success.
  const { token: t2 } = await attA.create({ spiffeId: id, ttlMs: 600_000 });
  const seen = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? attA : attB).attest({ token: t2 })));
  const results = await Promise.allSettled(seen.map((s) => s.consume!()));
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  assert.ok(results.every((r) => r.status === 'fulfilled' || isCode('TG_TOKEN_REUSED')(r.reason)));

  // Twenty different tokens used at once: every one succeeds (the patch names only its own key).
  const many = await Promise.all(Array.from({ length: 20 }, () => attA.create({ spiffeId: id, ttlMs: 600_000 })));
  const used = await Promise.allSettled(many.map(async (t, i) => (await (i % 2 ? attA : attB).attest({ token: t.token })).consume!()));
  assert.deepEqual(used.filter((r) => r.status === 'rejected'), []);
  // Only hashes are stored.
  const shards = (await cluster.get(`/api/v1/namespaces/${NS}/secrets?labelSelector=app.kubernetes.io%2Fpart-of%3Dtollgate`)).body.items.filter((s: { metadata: { name: string } }) => s.metadata.name.startsWith('tollgate-join-tokens-'));
  assert.ok(shards.length > 1, 'tokens spread over the shards');
  for (const secret of shards) {
    assert.ok(Object.keys(secret.data).every((k) => /^[0-9a-f]{64}$/.test(k) && k[0] === secret.metadata.name.at(-1)), 'keyed by hash, in the shard of its first digit');
    assert.ok(!JSON.stringify(secret).includes(t1.slice(7)), 'no token in the Secret');
  }
});
