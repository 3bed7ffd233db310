import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../common/clock.ts';
import { Convergence } from './convergence.ts';

const H = 3600_000;

test('counts: on the current bundle, stale after one renewal period, live leaves per issuing authority', () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const c = new Convergence({ clock, staleAfterMs: 2 * H });
  const t = clock.now();
  c.seen({ serial: 'a', bundleVersion: 3, authorityId: 'int-old', notAfter: t + 10 * H });
  c.seen({ serial: 'b', bundleVersion: 4, authorityId: 'int-old', notAfter: t + 10 * H });
  c.seen({ serial: 'c', bundleVersion: 4, authorityId: 'int-new', notAfter: t + 10 * H });
  let n = c.counts(4);
  assert.deepEqual({ ...n, trackingSince: 0 }, { bundleVersion: 4, clients: 3, onCurrentBundle: 2, stale: 0, ratio: 2 / 3, liveByAuthority: { 'int-old': 2, 'int-new': 1 }, trackingSince: 0, staleAfterMs: 2 * H });
  clock.advance(H);
  c.seen({ serial: 'b', bundleVersion: 4, authorityId: 'int-old', notAfter: t + 10 * H });
  c.seen({ serial: 'c2', bundleVersion: 4, authorityId: 'int-new', notAfter: t + 11 * H, replaces: 'c' });
  clock.advance(H + 1);
  // a was last seen 2 h + 1 ms ago: stale, so neither counted nor waited for.
  n = c.counts(4);
  assert.deepEqual([n.clients, n.onCurrentBundle, n.stale, n.ratio], [2, 2, 1, 1]);
  assert.deepEqual(n.liveByAuthority, { 'int-old': 1, 'int-new': 1 });
  // b renews into the new authority, keeping the version it reported before.
  c.seen({ serial: 'b2', bundleVersion: 0, authorityId: 'int-new', notAfter: t + 12 * H, replaces: 'b' });
  assert.deepEqual(c.counts(4).liveByAuthority, { 'int-new': 2 });
  assert.equal(c.counts(4).onCurrentBundle, 2);
  clock.advance(9 * H);
  assert.deepEqual([c.counts(4).clients, c.counts(4).stale], [0, 1], 'a and c2 expired and left; b2 is alive but stale');
  clock.advance(3 * H);
  assert.deepEqual([c.counts(4).clients, c.counts(4).stale, c.counts(4).ratio], [0, 0, 1], 'expired certificates drop out; none left means nothing to wait for');
});

test('an expired certificate is never recorded, and the table is bounded', () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const c = new Convergence({ clock, staleAfterMs: H, maxClients: 2 });
  c.seen({ serial: 'x', bundleVersion: 1, authorityId: undefined, notAfter: clock.now() });
  assert.equal(c.counts(1).clients, 0);
  for (const s of ['a', 'b', 'c']) c.seen({ serial: s, bundleVersion: 1, authorityId: undefined, notAfter: clock.now() + H });
  assert.deepEqual(c.counts(1).liveByAuthority, { unknown: 2 });
});
