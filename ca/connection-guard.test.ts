import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SlotCounter } from './connection-guard.ts';

test('slots: capped per key and in total; a release frees its slot once', () => {
  const slots = new SlotCounter({ max: 3, perKey: 2 });
  const a1 = slots.acquire('a');
  const a2 = slots.acquire('a');
  assert.ok(a1 && a2);
  assert.equal(slots.acquire('a'), null, 'per-key cap');
  const b1 = slots.acquire('b');
  assert.ok(b1);
  assert.equal(slots.acquire('c'), null, 'total cap');
  a1();
  a1();
  assert.equal(slots.total, 2, 'a second release is a no-op');
  assert.ok(slots.acquire('c'));
  assert.equal(slots.acquire('a'), null, 'total cap again');
});
