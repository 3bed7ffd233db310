import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { ManualClock } from '../common/clock.ts';
import { createLogger } from '../common/log.ts';
import { AppExposureCheck, type ProcNetTcpTexts } from './app-exposure.ts';
import { SidecarMetrics } from './metrics.ts';

const HEAD = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
// Little-endian /proc/net/tcp lines: LISTEN sockets on 0.0.0.0:8080 and 127.0.0.1:8080.
const ANY_8080 = '   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 118945 1\n';
const LOOP_8080 = '   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 118946 1\n';
const HEAD6 = '  sl  local_address                         remote_address                        st\n';
const ANY6_9000 = '   0: 00000000000000000000000000000000:2328 00000000000000000000000000000000:0000 0A 0\n';

function setup(texts: { current: ProcNetTcpTexts }) {
  const clock = new ManualClock();
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ clock, level: 'debug', out: { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) } });
  const metrics = new SidecarMetrics(new Registry());
  // As the real reader: the texts arrive later (a promise), never within the timer's own turn.
  const check = new AppExposureCheck({ appPorts: [8080, 9000], clock, logger, gauge: metrics.appPortsExposed, intervalMs: 30_000, read: async () => texts.current });
  const gauge = async (): Promise<number> => (await metrics.appPortsExposed.get()).values[0]!.value;
  return { clock, lines, check, gauge };
}

test('an app port listening on 0.0.0.0 or :: is reported in the log, the gauge and /readyz; loopback is not', async () => {
  const texts = { current: { ipv4: HEAD + LOOP_8080, ipv6: HEAD6 } };
  const s = setup(texts);
  s.check.start();
  await s.check.settled();
  assert.deepEqual(s.check.exposed, []);
  assert.equal(await s.gauge(), 0);
  assert.equal(s.check.readinessNote(), null);
  assert.equal(s.lines.length, 0);

  // The app starts after the sidecar (native sidecar): the next periodic check sees it.
  texts.current = { ipv4: HEAD + LOOP_8080 + ANY_8080, ipv6: HEAD6 + ANY6_9000 };
  s.clock.advance(30_000);
  await s.check.settled();
  assert.deepEqual(s.check.exposed, [{ port: 8080, addresses: ['0.0.0.0'] }, { port: 9000, addresses: ['::'] }]);
  assert.equal(await s.gauge(), 2);
  const warnings = s.lines.filter((l) => l['event'] === 'app_port_exposed');
  assert.equal(warnings.length, 2);
  assert.equal(warnings[0]!['level'], 'warn');
  assert.match(String(warnings[0]!['msg']), /^app port 8080 listens on 0\.0\.0\.0, reachable around the sidecar .*bind the app to 127\.0\.0\.1:8080/);
  assert.match(s.check.readinessNote()!, /^WARNING: app port 8080 listens on 0\.0\.0\.0.*; app port 9000 listens on ::/);

  // A standing problem is logged once, not every 30 s.
  for (let i = 0; i < 3; i++) {
    s.clock.advance(30_000);
    await s.check.settled();
  }
  assert.equal(s.lines.filter((l) => l['event'] === 'app_port_exposed').length, 2);

  // Fixed: the gauge drops, one info line, /readyz is clean again.
  texts.current = { ipv4: HEAD + LOOP_8080, ipv6: HEAD6 };
  s.clock.advance(30_000);
  await s.check.settled();
  assert.equal(await s.gauge(), 0);
  assert.equal(s.check.readinessNote(), null);
  assert.equal(s.lines.at(-1)!['event'], 'app_ports_loopback');
  s.check.close();
  assert.equal(s.clock.pending, 0);
});

test('unreadable /proc/net/tcp turns the check off with one warning', async () => {
  const s = setup({ current: { ipv4: null, ipv6: null } });
  s.check.start();
  for (let i = 0; i < 3; i++) {
    await s.check.settled();
    s.clock.advance(30_000);
  }
  await s.check.settled();
  assert.deepEqual(s.lines.map((l) => l['event']), ['app_exposure_unchecked']);
  assert.deepEqual(s.check.exposed, []);
  s.check.close();
});

test('startSoon: the first check runs on the next turn of the clock (off the start-to-ready path), then every interval', async () => {
  let reads = 0;
  const texts = { current: { ipv4: HEAD + ANY_8080, ipv6: HEAD6 } };
  const s = setup({ get current() { reads++; return texts.current; } });
  s.check.startSoon();
  assert.equal(reads, 0, 'nothing read before the clock turns');
  s.clock.advance(0);
  assert.equal(reads, 1);
  await s.check.settled();
  assert.deepEqual(s.check.exposed, [{ port: 8080, addresses: ['0.0.0.0'] }]);
  s.clock.advance(30_000);
  assert.equal(reads, 2);
  await s.check.settled();
  s.check.close();
  s.clock.advance(60_000);
  assert.equal(reads, 2, 'close() stops it');
});
