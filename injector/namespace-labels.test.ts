import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../common/clock.ts';
import { KubeClient } from '../common/kube-client.ts';
import { startKubeStub } from '../test/helpers/kube-stub.ts';
import { NamespaceLabels } from './namespace-labels.ts';

test('namespace labels: read through the API, kept for the TTL, {} for a missing namespace, failures not kept', async () => {
  const stub = await startKubeStub({ token: 't' });
  const client = new KubeClient({ server: stub.url, caPem: stub.cert.caPem, token: () => 't' });
  try {
    stub.objects.set('/api/v1/namespaces/shop', { metadata: { name: 'shop', labels: { 'tollgate.io/inject': 'enabled' } } });
    const clock = new ManualClock();
    const labels = new NamespaceLabels({ client, clock, ttlMs: 5000 });
    assert.deepEqual(await labels.get('shop'), { 'tollgate.io/inject': 'enabled' });
    stub.objects.set('/api/v1/namespaces/shop', { metadata: { name: 'shop', labels: {} } });
    clock.advance(4999);
    assert.deepEqual(await labels.get('shop'), { 'tollgate.io/inject': 'enabled' }, 'kept');
    clock.advance(1);
    assert.deepEqual(await labels.get('shop'), {}, 'read again after the TTL');
    assert.deepEqual(await labels.get('gone'), {});
    stub.failNext(503, 'ServiceUnavailable');
    await assert.rejects(labels.get('new'), /503 ServiceUnavailable/);
    stub.objects.set('/api/v1/namespaces/new', { metadata: { name: 'new', labels: { a: 'b' } } });
    assert.deepEqual(await labels.get('new'), { a: 'b' }, 'the failure was not kept');
    assert.deepEqual(stub.requests.map((r) => r.path), ['/api/v1/namespaces/shop', '/api/v1/namespaces/shop', '/api/v1/namespaces/gone', '/api/v1/namespaces/new', '/api/v1/namespaces/new']);
  } finally {
    client.close();
    await stub.close();
  }
});
