// Issue 13, problems 1 and 3, against a real `ca serve`: a client with no certificate opens 20
// connections × 1,000 WatchBundle streams and floods IssueSVID from 127.0.0.1 while five sidecars
// renew over mTLS from the same address; a TCP connection that never finishes its TLS handshake is
// closed; connections past the per-address cap are closed at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import type { CaClient } from '../common/ca-client.ts';
import { TollgateError } from '../common/errors.ts';
import { certsToPem } from '../pki/pem.ts';
import { caForFile, createJoinToken, initCa, newKey, startCa } from './helpers/ca-fixture.ts';
import { tempDir } from './helpers/procs.ts';
import { floodWatchBundle, rssBytes } from './helpers/stream-flood.ts';

const file = caForFile(['--handshake-timeout', '1s', '--rate-per-address', '5']);
// Growth of the CA's resident memory allowed under the flood. Before the caps the CA held every
// stream: 77 MB → 302 MB (+225 MB) for 20 × 1,000; now it holds 8 and the rest is garbage of refusals.
const RSS_GROWTH_BOUND = 160 * 2 ** 20;

const closed = (s: Socket, timeoutMs: number): Promise<boolean> =>
  new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), timeoutMs);
    s.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });

test('a no-certificate flood of WatchBundle streams and IssueSVID calls: bounded memory, mTLS renewals from the same address all served', async () => {
  const ca = file.ca;
  const sidecars: Array<{ k: ReturnType<typeof newKey>; client: CaClient }> = [];
  for (let i = 0; i < 5; i++) {
    const k = newKey();
    const first = await ca.client().issue({ csr: k.csr, token: createJoinToken(ca.dir, `spiffe://example.org/ns/shop/sa/web${i}`) });
    sidecars.push({ k, client: ca.client({ certChainPem: certsToPem(first.certChain), keyPem: k.keyPem }) });
  }
  const pid = ca.proc.proc.pid!;
  const rssBefore = rssBytes(pid);
  const flooding = floodWatchBundle({ port: ca.grpcPort, roots: ca.roots, connections: 20, streams: 1000, timeoutMs: 120_000 });
  // The same address floods IssueSVID without attestation: refused, and soon rate limited.
  const bad = ca.client();
  const codes = new Map<string, number>();
  for (let i = 0; i < 100; i++) {
    const code = await bad.issue({ csr: newKey().csr }).then(
      () => 'issued',
      (e: unknown) => (e instanceof TollgateError ? e.code : 'other'),
    );
    codes.set(code, (codes.get(code) ?? 0) + 1);
  }
  assert.ok((codes.get('TG_RATE_LIMITED') ?? 0) > 0, `the flood is rate limited: ${JSON.stringify([...codes])}`);
  assert.equal(codes.get('issued'), undefined);
  const renewals = await Promise.allSettled(sidecars.map((s) => s.client.issue({ csr: s.k.csr })));
  const blocked = renewals.filter((r) => r.status === 'rejected');
  assert.equal(blocked.length, 0, `renewals blocked during the flood: ${blocked.map((r) => String((r as PromiseRejectedResult).reason)).join('; ')}`);
  // A sidecar with an SVID still gets a bundle watch (it is not charged to the anonymous budget).
  const watched = await new Promise<number>((resolve, reject) => {
    const cancel = sidecars[0]!.client.watchBundle(undefined, (b) => {
      cancel();
      resolve(b.version);
    }, (e) => reject(e ?? new Error('watch ended')));
  });
  assert.ok(watched >= 1);
  const flood = await flooding;
  const rssDuring = rssBytes(pid);
  flood.stop();
  process.stderr.write(`# stream flood: CA RSS ${(rssBefore / 2 ** 20).toFixed(0)} MB → ${(rssDuring / 2 ** 20).toFixed(0)} MB; streams served ${flood.served}, refused ${flood.refused}, pending ${flood.pending}; IssueSVID flood ${JSON.stringify([...codes])}; renewals blocked ${blocked.length} of 5\n`);
  assert.equal(flood.pending, 0);
  assert.ok(flood.served <= 8, `anonymous watches held: ${flood.served} (budget 8 per address)`);
  assert.ok(rssDuring - rssBefore < RSS_GROWTH_BOUND, `CA RSS grew ${((rssDuring - rssBefore) / 2 ** 20).toFixed(0)} MB`);
});

test('a TCP connection that stays silent, or drips ClientHello bytes, is closed after the handshake timeout', async () => {
  const silent = connect(file.ca.grpcPort, '127.0.0.1');
  const dripping = connect(file.ca.grpcPort, '127.0.0.1');
  // A TLS record header for a ClientHello, then one byte at a time, bounded.
  const hello = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
  let sent = 0;
  const drip = setInterval(() => {
    if (sent < hello.length && !dripping.destroyed) dripping.write(hello.subarray(sent, ++sent));
  }, 100);
  // The default would keep both open 120 s; the CA was started with --handshake-timeout 1s.
  const [a, b] = await Promise.all([closed(silent, 20_000), closed(dripping, 20_000)]);
  clearInterval(drip);
  silent.destroy();
  dripping.destroy();
  assert.equal(a, true, 'silent connection still open');
  assert.equal(b, true, 'dripping connection still open');
  // And the CA still serves.
  assert.equal((await file.ca.client().getBundle()).trustDomain, 'example.org');
});

test('connections past --max-connections-per-address are closed at once; freed slots are usable again', async () => {
  const tmp = tempDir();
  initCa(join(tmp.dir, 'ca'));
  const ca = await startCa(join(tmp.dir, 'ca'), ['--max-connections-per-address', '3', '--handshake-timeout', '60s']);
  try {
    const held = [0, 1, 2].map(() => connect(ca.grpcPort, '127.0.0.1'));
    await Promise.all(held.map((s) => new Promise((r) => s.once('connect', r))));
    // Past the cap: closed without waiting for the 60 s handshake timeout.
    const extra = connect(ca.grpcPort, '127.0.0.1');
    assert.equal(await closed(extra, 20_000), true, 'a 4th connection from one address was kept');
    for (const s of held) s.destroy();
    let served = false;
    for (let i = 0; i < 50 && !served; i++) served = await ca.client().getBundle().then(() => true, () => false);
    assert.ok(served, 'the CA serves again once the held connections are gone');
  } finally {
    await ca.stop();
    tmp.cleanup();
  }
});
