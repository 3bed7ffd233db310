import { test } from 'node:test';
import assert from 'node:assert/strict';
import { missingRotationFigures, refusedConnections, rotationTable, type RotationResult, type RotationRow } from './rotation.ts';

const load = (requests: number, failed: number) => ({ requests, failed, closedIdle: 10, failures: [] });
const row = (kind: 'root' | 'intermediate', over: Partial<RotationRow> = {}): RotationRow => ({
  kind, prepareMs: 500, activateMs: 600, retireMs: 2200, totalMs: 3400, keepAlive: load(4747, 0), close: load(499, 0), refused: 0, ...over,
});
const result = (rows: RotationRow[], error?: string): RotationResult => ({ rows, settings: [], ...(error ? { error } : {}) });

test('refused handshakes: every refused or failed inbound and outbound connection of a sidecar, not the allowed ones', () => {
  const text = [
    'tollgate_inbound_connections_total{result="allowed",reason="allowed"} 900',
    'tollgate_inbound_connections_total{result="refused",reason="tls_handshake"} 3',
    'tollgate_inbound_connections_total{result="error",reason="peer_closed"} 1',
    'tollgate_outbound_connections_total{result="refused",reason="svid_untrusted"} 2',
    'tollgate_outbound_connections_total{result="allowed",reason="allowed"} 900',
    'tollgate_svid_renewals_total{result="error"} 7',
  ].join('\n');
  assert.equal(refusedConnections(text), 6);
});

test('the table: sent = both load generators, failed = requests written and not answered, target met only with 0 failed and 0 refused', () => {
  const t = rotationTable(result([row('root'), row('intermediate', { close: load(600, 2), refused: 1 })]));
  assert.match(t, /\| root \| 5,246 \(4,747 \+ 499\) \| 0 \| 0 \| met \| 10 \| 3\.4 \| 0\.5 \| 0\.6 \| 2\.2 \|/);
  assert.match(t, /\| intermediate \| 5,347 \(4,747 \+ 600\) \| 2 \| 1 \| MISSED \|/);
});

test('missing figures: none for a complete run; each absent figure named, with why', () => {
  assert.deepEqual(missingRotationFigures(result([row('root'), row('intermediate')])), []);
  assert.deepEqual(missingRotationFigures(result([], 'nginx is missing')), ['rotation: not run: nginx is missing']);
  const partial = missingRotationFigures(result([row('root', { keepAlive: undefined, error: 'stopped early' })], 'boom'));
  assert.deepEqual(partial, [
    'rotation root: no requests sent (stopped early)',
    'rotation root: no failed (stopped early)',
    'rotation intermediate: no figures (boom)',
  ]);
  assert.deepEqual(missingRotationFigures(result([row('root', { retireMs: NaN }), row('intermediate')])), ['rotation root: no phase durations (not run)']);
});
