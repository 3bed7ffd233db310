// The caBundle keeper against a loopback HTTPS stand-in of the MutatingWebhookConfiguration
// endpoint (test/helpers/kube-stub.ts); test/kube/ checks it against a real API server.
import { test, after, before, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { ManualClock } from '../common/clock.ts';
import { KubeClient } from '../common/kube-client.ts';
import { silentLogger } from '../common/log.ts';
import { certsToPem } from '../pki/pem.ts';
import { testChain } from '../pki/test-chain.ts';
import { startKubeStub, type KubeStub } from '../test/helpers/kube-stub.ts';
import { CA_BUNDLE_SYNCS_METRIC, CaBundleKeeper } from './webhook-ca-bundle.ts';

const PATH = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/tollgate-sidecar-injector';
const BUNDLE_1 = certsToPem([testChain().root]);
const BUNDLE_2 = certsToPem([testChain().root, testChain().root]);
const b64 = (pem: string): string => Buffer.from(pem).toString('base64');

let stub: KubeStub;
let client: KubeClient;
before(async () => {
  stub = await startKubeStub({ token: 'ca-token' });
  client = new KubeClient({ server: stub.url, caPem: stub.cert.caPem, token: () => 'ca-token' });
});
after(async () => {
  client.close();
  await stub.close();
});
beforeEach(() => {
  stub.requests.length = 0;
  stub.objects.set(PATH, {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'tollgate-sidecar-injector', resourceVersion: '1' },
    webhooks: [
      { name: 'sidecar-injector.tollgate.io', clientConfig: { service: { name: 'tollgate-ca', namespace: 'tollgate-system', path: '/inject' } } },
      { name: 'second.tollgate.io', clientConfig: { url: 'https://127.0.0.1:9443/inject', caBundle: b64(BUNDLE_1) } },
    ],
  });
});

const bundles = (): (string | undefined)[] => ((stub.objects.get(PATH)!['webhooks'] as { clientConfig: { caBundle?: string } }[]).map((w) => w.clientConfig.caBundle));
const calls = (): string[] => stub.requests.map((r) => r.method);

function keeper(clock: ManualClock, registry?: Registry): CaBundleKeeper {
  return new CaBundleKeeper({ client, name: 'tollgate-sidecar-injector', clock, logger: silentLogger, random: () => 0.5, ...(registry ? { registry } : {}) });
}

test('on start it patches only the webhooks whose caBundle differs; the same bundle again changes nothing', async () => {
  const clock = new ManualClock();
  const registry = new Registry();
  const k = keeper(clock, registry);
  const first = k.nextSync();
  k.setBundle(BUNDLE_1);
  assert.equal(await first, 'updated');
  assert.deepEqual(bundles(), [b64(BUNDLE_1), b64(BUNDLE_1)]);
  assert.deepEqual(stub.requests[1]!.body, [
    { op: 'test', path: '/webhooks/0/name', value: 'sidecar-injector.tollgate.io' },
    { op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: b64(BUNDLE_1) },
  ]);
  assert.equal(stub.requests[1]!.contentType, 'application/json-patch+json');
  const again = k.nextSync();
  k.setBundle(BUNDLE_1);
  assert.equal(await again, 'unchanged');
  assert.deepEqual(calls(), ['GET', 'PATCH', 'GET']);
  const text = await registry.getSingleMetricAsString(CA_BUNDLE_SYNCS_METRIC);
  assert.match(text, /result="updated"} 1/);
  assert.match(text, /result="unchanged"} 1/);
  k.stop();
});

test('a bundle change (a root rotation) reaches every webhook', async () => {
  const k = keeper(new ManualClock());
  const done = k.nextSync();
  k.setBundle(BUNDLE_1);
  await done;
  const changed = k.nextSync();
  k.setBundle(BUNDLE_2);
  assert.equal(await changed, 'updated');
  assert.deepEqual(bundles(), [b64(BUNDLE_2), b64(BUNDLE_2)]);
  k.stop();
});

test('a caBundle reset behind its back (helm upgrade, GitOps) is put right at the next resync', async () => {
  const clock = new ManualClock();
  const k = keeper(clock);
  const done = k.nextSync();
  k.setBundle(BUNDLE_1);
  await done;
  ((stub.objects.get(PATH)!['webhooks'] as { clientConfig: { caBundle?: string } }[])[0]!).clientConfig.caBundle = '';
  clock.advance(59_999);
  assert.deepEqual(calls(), ['GET', 'PATCH']);
  const resync = k.nextSync();
  clock.advance(1);
  assert.equal(await resync, 'updated');
  assert.deepEqual(bundles(), [b64(BUNDLE_1), b64(BUNDLE_1)]);
  k.stop();
});

test('failures (API errors, a missing configuration, a concurrent reorder) are retried with growing backoff, then succeed', async () => {
  const clock = new ManualClock();
  const registry = new Registry();
  const k = keeper(clock, registry);
  stub.failNext(503, 'ServiceUnavailable', 2);
  let next = k.nextSync();
  k.setBundle(BUNDLE_1);
  assert.equal(await next, 'failed');
  // Equal jitter with random 0.5: 1 s → 750 ms, then 2 s → 1.5 s.
  next = k.nextSync();
  clock.advance(749);
  clock.advance(1);
  assert.equal(await next, 'failed');
  next = k.nextSync();
  clock.advance(1499);
  assert.equal(stub.requests.length, 2, 'the second retry waits longer');
  clock.advance(1);
  assert.equal(await next, 'updated');

  // The configuration does not exist yet (the chart creates it): retried until it does.
  const saved = stub.objects.get(PATH)!;
  stub.objects.delete(PATH);
  next = k.nextSync();
  k.setBundle(BUNDLE_2);
  assert.equal(await next, 'failed');
  stub.objects.set(PATH, saved);
  next = k.nextSync();
  clock.advance(750);
  assert.equal(await next, 'updated');

  // Someone reorders the webhooks between our read and our patch: the "test" op fails the patch,
  // and the retry reads the new order.
  const original = client.get.bind(client);
  let reorder = true;
  const racing = new CaBundleKeeper({
    client: {
      get: async <T>(path: string): Promise<T> => {
        const got = await original<T>(path);
        if (reorder) {
          reorder = false;
          const o = stub.objects.get(PATH)!;
          stub.objects.set(PATH, { ...o, webhooks: [...(o['webhooks'] as unknown[])].reverse() });
        }
        return got;
      },
      patch: client.patch.bind(client),
    },
    name: 'tollgate-sidecar-injector', clock, logger: silentLogger, random: () => 0.5,
  });
  next = racing.nextSync();
  racing.setBundle(BUNDLE_1);
  assert.equal(await next, 'failed');
  assert.deepEqual(bundles(), [b64(BUNDLE_2), b64(BUNDLE_2)], 'nothing was written by the failed patch');
  next = racing.nextSync();
  clock.advance(750);
  assert.equal(await next, 'updated');
  assert.deepEqual(bundles(), [b64(BUNDLE_1), b64(BUNDLE_1)]);
  assert.match(await registry.getSingleMetricAsString(CA_BUNDLE_SYNCS_METRIC), /result="failed"} 3/);
  k.stop();
  racing.stop();
});

test('bundle changes during a sync are not lost: one more sync runs after it', async () => {
  const k = keeper(new ManualClock());
  const first = k.nextSync();
  k.setBundle(BUNDLE_1);
  k.setBundle(BUNDLE_2); // while the first is under way
  await first;
  const second = k.nextSync();
  assert.equal(await second, 'updated');
  assert.deepEqual(bundles(), [b64(BUNDLE_2), b64(BUNDLE_2)]);
  k.stop();
});
