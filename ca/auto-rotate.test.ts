// Automatic intermediate rotation on a ManualClock: a CA made by `ca init` runs through many
// rotations with no operator, every leaf verifying against the bundle all its life.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { ManualClock } from '../common/clock.ts';
import { createLogger, silentLogger, type Logger } from '../common/log.ts';
import { createCsr, parseCsr } from '../pki/csr.ts';
import { verifySvidChain } from '../pki/svid-validate.ts';
import { p256 } from '../pki/test-chain.ts';
import type { IssuedSvid } from './issuer.ts';
import { startCaRuntime, type CaRuntime } from './runtime.ts';
import { DAY_MS } from './slots.ts';
import { DirectoryStore } from './store.ts';

const tmp = mkdtempSync(join(tmpdir(), 'tg-auto-'));
const runtimes: CaRuntime[] = [];
after(() => {
  for (const r of runtimes) r.stop();
  rmSync(tmp, { recursive: true, force: true });
});
const HOUR = 3600_000;
const spki = parseCsr(createCsr(p256().key)).spki;

async function ca(dir: string, clock: ManualClock, logger: Logger = silentLogger, o: { autoRotate?: boolean } = {}): Promise<CaRuntime> {
  const rt = await startCaRuntime({ dir, clock, logger, audit: { write: () => true }, registry: new Registry(), watch: false, pollMs: 6 * HOUR, ...o });
  runtimes.push(rt);
  return rt;
}

/** Every live leaf, and the CA's own serving SVID, must verify against the bundle the CA serves now. */
function checkAll(rt: CaRuntime, leaves: IssuedSvid[], now: number): void {
  const roots = rt.service.bundle.roots;
  for (const l of leaves) {
    if (l.notAfter <= now) continue;
    verifySvidChain({ leaf: l.chain[0]!, intermediates: l.chain.slice(1), roots, now });
  }
  assert.ok(rt.identity.notAfter > now, 'the serving SVID is valid');
  verifySvidChain({ leaf: rt.identity.chain[0]!, intermediates: rt.identity.chain.slice(1), roots, now, usage: 'server' });
}

test('a CA from `ca init` runs 100 days on automatic rotation: prepared at 1/2, active at 2/3, retired after the longest leaf', async () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const T0 = clock.now();
  const dir = join(tmp, 'ninety');
  await new DirectoryStore({ dir }).init({ trustDomain: 'example.org', clock });
  const logs: string[] = [];
  const rt = await ca(dir, clock, createLogger({ clock, out: { write: (l: string) => logs.push(l) } }));
  const leaves: IssuedSvid[] = [];
  const activations: Array<{ day: number; id: string }> = [];
  const healths = new Set<string>();
  let active = rt.snapshot().intermediateRecord.id;
  for (let h = 1; h <= 100 * 24; h++) {
    clock.advance(HOUR);
    await rt.settled();
    const now = clock.now();
    if (h % 6 === 0) {
      // The longest leaf the CA grants (24 h): some span an activation and a retirement.
      const leaf = rt.service.issuer.issue({ spki, spiffeId: 'spiffe://example.org/ns/shop/sa/web', ttlSeconds: 24 * 3600 });
      verifySvidChain({ leaf: leaf.chain[0]!, intermediates: leaf.chain.slice(1), roots: rt.service.bundle.roots, now });
      leaves.push(leaf);
    }
    checkAll(rt, leaves, now);
    healths.add(rt.health().state);
    const id = rt.snapshot().intermediateRecord.id;
    if (id !== active) activations.push({ day: (now - T0) / DAY_MS, id });
    active = id;
  }
  assert.deepEqual(activations.map((a) => Math.round(a.day)), [20, 35, 50, 65, 80, 95], 'activated at 2/3 of each predecessor\'s life');
  assert.deepEqual([...healths], ['ok'], 'never a warning: automatic rotation keeps ahead of the warning window');
  const { records } = new DirectoryStore({ dir }).readSync();
  const ints = records.authorities.filter((a) => a.kind === 'intermediate');
  assert.equal(ints.filter((a) => a.slot === 'active').length, 1);
  // The one active since day 95 was made on day 90: its successor is due at its half-life, day 105.
  assert.equal(ints.filter((a) => a.slot === 'prepared').length, 0);
  // Retired ones are kept a week past their expiry, then dropped with their files.
  assert.equal(ints.filter((a) => a.slot === 'retired').length, 2);
  assert.deepEqual(readdirSync(join(dir, 'authorities')).map((f) => f.replace(/\.(crt|key)$/, '')).sort(), [...new Set(records.authorities.map((a) => a.id))].flatMap((id) => [id, id]).sort());
  assert.equal(rt.service.bundle.version, 1, 'intermediate rotation never changes the bundle');
  assert.equal(logs.filter((l) => l.includes('automatic intermediate rotation: activate done')).length, 6);
});

test('several `ca serve` processes on one store rotate once: one prepares, the others follow', async () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const dir = join(tmp, 'replicas');
  await new DirectoryStore({ dir }).init({ trustDomain: 'example.org', clock });
  const replicas = [await ca(dir, clock), await ca(dir, clock), await ca(dir, clock)];
  for (let h = 1; h <= 40 * 24; h++) {
    clock.advance(HOUR);
    for (const r of replicas) await r.settled();
    // Replicas learn of each other's commits by polling (every 6 h here) or, in production, fs.watch.
    for (const r of replicas) await r.follower.check();
  }
  const { records } = new DirectoryStore({ dir }).readSync();
  const ints = records.authorities.filter((a) => a.kind === 'intermediate');
  // Day 0 (init), 15 and 30 (prepared at 1/2): three intermediates, not three per replica.
  assert.equal(ints.length, 3, ints.map((a) => `${a.id} ${a.slot} ${a.createdAt}`).join('\n'));
  const ids = new Set(replicas.map((r) => r.service.issuer.intermediate.parsed.serialHex));
  assert.equal(ids.size, 1, 'every replica issues from the same intermediate');
});

test('offline root: no automatic rotation; warning from half-life, degraded in the last third, and the root key is never loaded', async () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const T0 = clock.now();
  const dir = join(tmp, 'offline');
  await new DirectoryStore({ dir }).init({ trustDomain: 'example.org', clock, rootKeyOut: join(tmp, 'offline-root.key') });
  const logs: Array<{ level: string; msg: string }> = [];
  const registry = new Registry();
  const rt = await startCaRuntime({
    dir, clock, registry, audit: { write: () => true }, watch: false, pollMs: 6 * HOUR,
    logger: createLogger({ clock, out: { write: (l: string) => logs.push(JSON.parse(l) as { level: string; msg: string }) } }),
  });
  runtimes.push(rt);
  assert.equal(rt.rotator, undefined);
  assert.equal(rt.snapshot().root, undefined, 'no root key in memory');
  const gauge = async () => Number(/tollgate_ca_expiry_warning (\d)/.exec(await registry.metrics())![1]);
  assert.equal(rt.health().state, 'ok');
  assert.equal(await gauge(), 0);
  clock.set(T0 + 16 * DAY_MS);
  assert.equal(rt.health().state, 'warning');
  assert.equal(await gauge(), 1);
  assert.ok(logs.some((l) => l.level === 'warn' && /CA trust warning: .*root key is offline; run `tollgate ca rotate intermediate --root-key FILE`/.test(l.msg)));
  clock.set(T0 + 21 * DAY_MS);
  assert.equal(rt.health().state, 'degraded');
  assert.equal(await gauge(), 2);
  assert.ok(logs.some((l) => l.level === 'error' && /CA trust degraded/.test(l.msg)));
  clock.set(T0 + 31 * DAY_MS);
  assert.equal(rt.health().state, 'expired');
  assert.equal(await gauge(), 3);
  assert.equal(new DirectoryStore({ dir }).readSync().records.authorities.length, 2, 'nothing was rotated');
  await assert.rejects(startCaRuntime({ dir, clock, registry: new Registry(), audit: { write: () => true }, logger: silentLogger, watch: false, autoRotate: true }), /TG_ROOT_KEY_MISSING|keeps it offline/);
});

test('a CA from `ca init` issues for its root\'s whole life with no operator action', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const T0 = clock.now();
  const dir = join(tmp, 'year');
  await new DirectoryStore({ dir }).init({ trustDomain: 'example.org', clock });
  const rt = await ca(dir, clock);
  const rootEnd = rt.snapshot().records.authorities.find((a) => a.kind === 'root')!.notAfter;
  let lastIssued = T0;
  for (let h = 6; ; h += 6) {
    clock.set(T0 + h * HOUR);
    await rt.settled();
    try {
      const leaf = rt.service.issuer.issue({ spki, spiffeId: 'spiffe://example.org/ns/shop/sa/web' });
      verifySvidChain({ leaf: leaf.chain[0]!, intermediates: leaf.chain.slice(1), roots: rt.service.bundle.roots, now: clock.now() });
      lastIssued = clock.now();
    } catch {
      break;
    }
  }
  const days = (lastIssued - T0) / DAY_MS;
  t.diagnostic(`last leaf issued on day ${days.toFixed(2)}; intermediates made: ${rt.snapshot().records.authorities.filter((a) => a.kind === 'intermediate').length} still recorded`);
  assert.ok(days >= 364.5, `issued until day ${days}; the root ends ${rootEnd}`);
  assert.ok(Date.parse(rootEnd) - lastIssued < DAY_MS);
});
