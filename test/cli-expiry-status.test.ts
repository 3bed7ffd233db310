// No silent expiry, as cron and CI use it: `cert expiry` exit codes on files and on a live server's
// chain, and `ca status` from the store and from a running CA.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { certsToPem } from '../pki/pem.ts';
import { leafFrom, testChain } from '../pki/test-chain.ts';
import type { CaStatus } from '../ca/status.ts';
import { initCa, startCa } from './helpers/ca-fixture.ts';
import { spawnTollgate, tempDir, tollgate } from './helpers/procs.ts';
import { refusingAddress } from './helpers/sidecar-fixture.ts';

const tmp = tempDir();
after(() => tmp.cleanup());
const H = 3600_000;
const now = Date.now();
const chain = testChain('example.org', now);
function pem(name: string, ders: Buffer[]): string {
  const p = join(tmp.dir, name);
  writeFileSync(p, certsToPem(ders));
  return p;
}

test('cert expiry: 0 fine, 1 inside the window or expired (any certificate of the file), 2 bad input', () => {
  const fine = pem('fine.pem', [leafFrom(chain, { notBefore: now - H, notAfter: now + 9 * H })]);
  const late = pem('late.pem', [leafFrom(chain, { notBefore: now - 8 * H, notAfter: now + 2 * H })]);
  const expired = pem('expired.pem', [leafFrom(chain, { notBefore: now - 2 * H, notAfter: now - H })]);
  const mixed = pem('mixed.pem', [chain.root, leafFrom(chain, { notBefore: now - 2 * H, notAfter: now - H })]);
  assert.equal(tollgate(['cert', 'expiry', fine]).code, 0);
  const w = tollgate(['cert', 'expiry', late]);
  assert.equal(w.code, 1);
  assert.match(w.stdout, /WARNING/);
  assert.equal(tollgate(['cert', 'expiry', late, '--warn', '10%']).code, 0, 'outside the last 10%');
  const e = tollgate(['cert', 'expiry', expired, '--json']);
  assert.equal(e.code, 1);
  assert.equal((JSON.parse(e.stdout) as { state: string }).state, 'expired');
  const m = JSON.parse(tollgate(['cert', 'expiry', mixed, '--json']).stdout) as { state: string; certificates: Array<{ state: string }> };
  assert.deepEqual(m.certificates.map((c) => c.state), ['ok', 'expired']);
  writeFileSync(join(tmp.dir, 'junk.pem'), 'not a certificate');
  for (const args of [[join(tmp.dir, 'junk.pem')], [join(tmp.dir, 'missing.pem')], [fine, '--warn', 'soon'], ['not a target']]) {
    const r = tollgate(['cert', 'expiry', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
  }
});

test('cert expiry HOST:PORT checks the whole chain the server sends', async () => {
  const key = leafKey();
  const server = tls.createServer({ cert: certsToPem([key.leaf, chain.intermediate]), key: key.pem });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const target = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    // Run without blocking this process: it serves the TLS endpoint.
    const ok = spawnTollgate(['cert', 'expiry', target, '--json']);
    assert.equal(await ok.exited, 0, ok.stderr());
    assert.equal((JSON.parse(ok.stdout()) as { certificates: unknown[] }).certificates.length, 2);
    // The intermediate (31 days of life, 30 left) is inside a 99% window: the served chain fails.
    assert.equal(await spawnTollgate(['cert', 'expiry', target, '--warn', '99%']).exited, 1);
  } finally {
    server.close();
  }
  const nobody = await refusingAddress();
  try {
    assert.equal(tollgate(['cert', 'expiry', `${nobody.host}:${nobody.port}`]).code, 1, 'unreachable: a failure, not bad input');
  } finally {
    await nobody.close();
  }
});

function leafKey(): { leaf: Buffer; pem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const leaf = leafFrom(chain, { spki: publicKey.export({ format: 'der', type: 'spki' }), notBefore: now - H, notAfter: now + 9 * H });
  return { leaf, pem: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string };
}

test('ca status: from the store, and with convergence from a running CA; --json is the /status document', async () => {
  const dir = join(tmp.dir, 'ca');
  initCa(dir);
  const local = tollgate(['ca', 'status', '--dir', dir, '--json']);
  assert.equal(local.code, 0, local.stderr);
  const s = JSON.parse(local.stdout) as CaStatus;
  assert.deepEqual(s.authorities.map((a) => `${a.kind}/${a.slot}`), ['root/active', 'intermediate/active']);
  assert.ok(s.authorities[1]!.expires_in_seconds > 29 * 86400);
  assert.equal(s.health.state, 'ok');
  assert.equal(s.convergence, null);
  assert.equal(s.rotation, null);
  const human = tollgate(['ca', 'status', '--dir', dir]);
  assert.match(human.stdout, /root +active +root-\w+ +\S+ +364d23h left/);
  assert.match(human.stdout, /sidecars: unknown/);
  assert.equal(tollgate(['ca', 'status']).code, 2);
  const ca = await startCa(dir);
  try {
    const remote = tollgate(['ca', 'status', '--ca-admin', `127.0.0.1:${ca.adminPort}`, '--json']);
    assert.equal(remote.code, 0, remote.stderr);
    const r = JSON.parse(remote.stdout) as CaStatus;
    assert.deepEqual(r.authorities, s.authorities.map((a) => ({ ...a, expires_in_seconds: r.authorities.find((b) => b.id === a.id)!.expires_in_seconds, life_used: r.authorities.find((b) => b.id === a.id)!.life_used })));
    assert.equal(r.convergence!.clients, 0);
    assert.match(tollgate(['ca', 'status', '--ca-admin', `127.0.0.1:${ca.adminPort}`]).stdout, /sidecars: 0\/0 on bundle 1, 0 stale/);
  } finally {
    await ca.stop();
  }
  // The CA is down: an admin address where nothing answers (not the stopped CA's port, which another test may have taken by now).
  const nobody = await refusingAddress();
  try {
    const down = tollgate(['ca', 'status', '--ca-admin', `${nobody.host}:${nobody.port}`]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /TG_UNAVAILABLE: cannot read the CA status/);
    const fallback = tollgate(['ca', 'status', '--ca-admin', `${nobody.host}:${nobody.port}`, '--dir', dir]);
    assert.equal(fallback.code, 0);
    assert.match(fallback.stderr, /showing the store alone/);
  } finally {
    await nobody.close();
  }
});
