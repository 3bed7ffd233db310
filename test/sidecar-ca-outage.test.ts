// The CA killed (SIGKILL) for longer than the SVIDs live (issue 14, reliability suite: faults). Real CA
// and two sidecar processes (web → orders → echo backend) with 10-second SVIDs, both attested with
// Kubernetes service-account token files so they can come back after their SVIDs expired.
//  - while the certificates are valid: 0 failed requests through the pair, /readyz 200;
//  - /readyz answers 503 only once the sidecar's own SVID has expired, never before;
//  - the CA comes back on the same address: both sidecars obtain new SVIDs by themselves (no restart,
//    no signal), /readyz is 200 again and requests flow.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { metricSample, startWebOrdersMesh, type RunningSidecar, type WebOrdersMesh } from './helpers/mesh-fixture.ts';
import { waitFor } from './helpers/sidecar-fixture.ts';
import { oneRequest, startTraffic } from './helpers/traffic.ts';

const TTL_S = 10;
const RENEWED = 'tollgate_svid_renewals_total{result="ok"}';
let mesh: WebOrdersMesh | undefined;

after(() => mesh?.stop());

interface Sample {
  readonly name: string;
  readonly status: number;
  readonly body: string;
  /** When the answer had arrived (epoch ms): the sidecar decided at or before this. */
  readonly at: number;
}

/** notAfter (epoch ms) of the sidecar's current SVID, from its expiry gauge. */
async function svidNotAfter(s: RunningSidecar): Promise<number> {
  return metricSample(await s.metrics(), 'tollgate_svid_expiry_timestamp_seconds') * 1000;
}

test('CA killed past the SVID lifetime: no failed request while certificates are valid, not ready only after expiry, recovery on its own', async (t) => {
  mesh = await startWebOrdersMesh({ caArgs: ['--default-ttl', `${TTL_S}s`], ttl: `${TTL_S}s`, webK8sToken: true, ordersK8sToken: true });
  const { web, orders } = mesh;
  const sidecars = { web, orders };
  // Kill the CA right after a renewal, so the SVID it leaves behind has most of its life ahead.
  const renewedAtStart = metricSample(await orders.metrics(), RENEWED);
  await waitFor(async () => metricSample(await orders.metrics(), RENEWED) > renewedAtStart, 'a renewal of orders', 3 * TTL_S * 1000);
  await mesh.ca.proc.stop('SIGKILL');
  const killedAt = Date.now();
  const notAfter = { web: await svidNotAfter(web), orders: await svidNotAfter(orders) };
  const firstExpiry = Math.min(notAfter.web, notAfter.orders);

  // Readiness of both, sampled until both have said 503.
  const samples: Sample[] = [];
  const sampler = (async () => {
    const notReady = new Set<string>();
    while (notReady.size < 2 && Date.now() < Math.max(notAfter.web, notAfter.orders) + 30_000) {
      for (const [name, s] of Object.entries(sidecars)) {
        const r = await s.readiness();
        samples.push({ name, status: r.status, body: r.body, at: Date.now() });
        if (r.status === 503) notReady.add(name);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  // Traffic until a second before the first certificate of the pair expires (a request in flight at
  // that instant may fail by design: the sidecars close connections at the peer's notAfter).
  const trafficUntil = firstExpiry - 1000;
  const traffic = await startTraffic({ port: web.outboundPort, maxMs: Math.max(0, trafficUntil - Date.now()), maxRequests: 100_000 });
  while (Date.now() < trafficUntil) await new Promise((r) => setTimeout(r, 100));
  const counts = await traffic.stop();
  traffic.long.destroy();
  await sampler;
  const downBeforeRestart = Date.now() - killedAt;

  assert.ok(counts.sent > 0);
  assert.equal(counts.failed, 0, `${counts.failed} of ${counts.sent} requests failed while the certificates were valid`);
  for (const name of ['web', 'orders'] as const) {
    const mine = samples.filter((x) => x.name === name);
    assert.ok(mine.some((x) => x.status === 200), `${name} was ready after the CA died`);
    const early = mine.filter((x) => x.status !== 200 && x.at < notAfter[name]);
    assert.deepEqual(early, [], `${name} was not ready before its SVID expired at ${new Date(notAfter[name]).toISOString()}`);
    const down = mine.find((x) => x.status === 503);
    assert.ok(down, `${name} turned not ready after its SVID expired`);
    assert.match(down.body, /expired/);
  }
  assert.ok(downBeforeRestart > (TTL_S * 1000) / 2, 'the CA was down for more than half the SVID lifetime');

  // The CA comes back on the same address: renewal (here a new issue with the token) resumes by itself.
  await mesh.restartCa();
  const restartedAt = Date.now();
  for (const s of Object.values(sidecars)) await waitFor(async () => (await s.readiness()).status === 200, 'ready again after the CA came back', 90_000);
  const recoveredAfter = Date.now() - restartedAt;
  let ok = 0;
  for (let i = 0; i < 10; i++) if (await oneRequest(web.outboundPort, 10_000 + i)) ok++;
  assert.equal(ok, 10, 'requests flow again');
  t.diagnostic(`CA down ${downBeforeRestart} ms (SVID lifetime ${TTL_S} s); ${counts.sent} requests while valid, ${counts.failed} failed; ` +
    `long-lived connection reopened ${traffic.reopened} times; readiness samples ${samples.length}; ready again ${recoveredAfter} ms after the CA restart`);
});
