import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testPki, WORKLOAD_IDS } from '../test/helpers/sidecar-fixture.ts';
import { encodeState, IpcSvidSource, restartDelayMs, withoutSecretArgs } from './workers.ts';

test('restartDelayMs: 0.5 s doubling per death in a row, capped at 30 s', () => {
  const cases: Array<[number, number]> = [[0, 500], [1, 500], [2, 1000], [3, 2000], [6, 16_000], [7, 30_000], [100, 30_000]];
  for (const [failures, ms] of cases) assert.equal(restartDelayMs(failures), ms, `after ${failures}`);
});

test('the SVID and bundle survive the IPC encoding (through JSON, as the pipe carries them)', () => {
  const pki = testPki();
  const svid = pki.issue(WORKLOAD_IDS.api);
  const source = new IpcSvidSource();
  let changes = 0;
  source.onChange(() => changes++);
  assert.equal(source.svid(), null);
  source.update(JSON.parse(JSON.stringify(encodeState(svid, pki.bundle))));
  assert.equal(changes, 1);
  const got = source.svid()!;
  assert.equal(got.spiffeId, svid.spiffeId);
  assert.deepEqual(got.certChain, svid.certChain);
  assert.equal(got.certChainPem, svid.certChainPem);
  assert.equal(got.serial, svid.serial);
  assert.equal(got.notAfter, svid.notAfter);
  assert.ok(got.key.equals(svid.key), 'same private key');
  assert.ok(Object.isFrozen(got));
  assert.deepEqual(source.bundle()!.roots, pki.bundle.roots);
  assert.equal(source.bundle()!.rootsPem, pki.bundle.rootsPem);
  assert.equal(source.bundle()!.version, pki.bundle.version);
});

test('a state without an SVID keeps the previous one (the primary never sends a step back)', () => {
  const pki = testPki();
  const source = new IpcSvidSource();
  source.update(encodeState(pki.issue(WORKLOAD_IDS.web), pki.bundle));
  source.update(encodeState(null, pki.bundle));
  assert.equal(source.svid()?.spiffeId, WORKLOAD_IDS.web);
});

test('workers are forked without the join token in their arguments', () => {
  assert.deepEqual(withoutSecretArgs(['sidecar', 'run', '--config', 'c.yaml', '--join-token', 'tgjoin.x', '--workers', '2', '--join-token=tgjoin.y']), ['sidecar', 'run', '--config', 'c.yaml', '--workers', '2']);
});
