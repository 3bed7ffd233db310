import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tag, decodeTime, encodeLength, encodeTime, headerLength, readElement, tlv, writeHeader } from './der.ts';

/** The encoder this module had before writeTime: ISO string sliced into digits. */
function referenceEncodeTime(ms: number): Buffer {
  const d = new Date(Math.floor(ms / 1000) * 1000);
  const iso = d.toISOString();
  const digits = iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19);
  const year = d.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(Tag.UTC_TIME, Buffer.from(`${digits.slice(2)}Z`, 'ascii'));
  return tlv(Tag.GENERALIZED_TIME, Buffer.from(`${digits}Z`, 'ascii'));
}

test('encodeTime matches the previous encoder byte for byte and round-trips', () => {
  const edges = [Date.UTC(1950, 0, 1), Date.UTC(2049, 11, 31, 23, 59, 59, 999), Date.UTC(2050, 0, 1), Date.UTC(1949, 11, 31, 23, 59, 59), Date.UTC(2024, 1, 29, 12, 0, 0, 500), 0, Date.UTC(9999, 11, 31)];
  let seed = 7;
  const random = Array.from({ length: 2000 }, () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return Date.UTC(1900, 0, 1) + (seed / 2 ** 31) * (Date.UTC(2200, 0, 1) - Date.UTC(1900, 0, 1));
  });
  for (const ms of [...edges, ...random]) {
    const b = encodeTime(ms);
    assert.deepEqual(b, referenceEncodeTime(ms), new Date(ms).toISOString());
    assert.equal(decodeTime(b, readElement(b, 0)), Math.floor(ms / 1000) * 1000);
  }
  assert.throws(() => encodeTime(Date.UTC(10000, 0, 1)), RangeError);
});

test('writeHeader and headerLength agree with encodeLength at every boundary', () => {
  for (const n of [0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffff]) {
    const out = Buffer.alloc(8);
    const end = writeHeader(out, 0, Tag.OCTET_STRING, n);
    assert.equal(end, headerLength(n));
    assert.deepEqual(out.subarray(1, end), encodeLength(n));
  }
  assert.throws(() => writeHeader(Buffer.alloc(8), 0, Tag.SEQUENCE, 0x1000000), RangeError);
  assert.deepEqual(tlv(Tag.SEQUENCE, Buffer.from([1]), Buffer.from([2, 3])), Buffer.from([0x30, 3, 1, 2, 3]));
});
