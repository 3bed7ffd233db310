// The codec's edges: malformed bytes throw an Error naming the message, field and offset (the CA turns
// that into TG_REQUEST_INVALID), values a field cannot carry throw when encoding, and fixed encodings
// of the integer edges. Agreement with protobufjs on well-formed messages is in ca-api.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CA_MESSAGES, CertificateAuthorityService } from './ca-api.ts';
import { decodeMessage, encodeMessage } from './protobuf-wire.ts';

const { ClientReport, IssueSVIDRequest, IssueSVIDResponse, Bundle } = CA_MESSAGES;
const hex = (s: string) => Buffer.from(s.replace(/\s/g, ''), 'hex');

const malformed: Array<[what: string, spec: typeof ClientReport, bytes: string, error: RegExp]> = [
  ['a tag cut short', ClientReport, 'ff ff ff', /^cannot decode tollgate\.ca\.v1\.ClientReport: truncated varint at byte 0$/],
  ['a value varint cut short', ClientReport, '08 80', /ClientReport: truncated varint at byte 1$/],
  ['a length cut short', ClientReport, '12 80', /ClientReport: truncated varint at byte 1$/],
  ['a varint of 11 bytes', ClientReport, '08 ffffffffffffffffffff 01', /ClientReport: varint longer than 10 bytes at byte 1$/],
  ['a tag of 11 bytes', ClientReport, '80808080808080808080 01', /ClientReport: varint longer than 10 bytes at byte 0$/],
  ['a string longer than the rest', ClientReport, '12 05 61', /ClientReport: length 5 runs past the end at byte 1$/],
  ['a length of 2^32 - 1', ClientReport, '12 ffffffff0f 61', /ClientReport: length 4294967295 runs past the end at byte 1$/],
  ['a length of 2^32 or more', ClientReport, '12 8080808010 61', /ClientReport: length of 2\^32 or more runs past the end at byte 1$/],
  ['bytes longer than the rest', IssueSVIDRequest, '0a 03 0102', /IssueSVIDRequest: length 3 runs past the end at byte 1$/],
  ['a repeated element longer than the rest', Bundle, '12 00 12 09 00', /Bundle: length 9 runs past the end at byte 3$/],
  ['wire type 6', ClientReport, '0e', /ClientReport: invalid wire type 6 \(field 1\) at byte 0$/],
  ['wire type 7 on an unknown field', ClientReport, '4f', /ClientReport: invalid wire type 7 \(field 9\) at byte 0$/],
  ['a start-group on an unknown field', ClientReport, '4b 4c', /ClientReport: group wire type 3 \(field 9\), which proto3 does not use at byte 0$/],
  ['an end-group', ClientReport, '08 01 4c', /ClientReport: group wire type 4 \(field 9\), which proto3 does not use at byte 2$/],
  ['a group on a known field', ClientReport, '0b 0c', /ClientReport: group wire type 3 \(field 1\), which proto3 does not use at byte 0$/],
  ['field number 0', ClientReport, '00 00', /ClientReport: field number 0 at byte 0$/],
  ['a field number over 2^29 - 1', ClientReport, '80808080 10 00', /ClientReport: field number over 2\^29-1 at byte 0$/],
  ['a known varint field sent as bytes', ClientReport, '0a 00', /ClientReport: field bundle_version \(1\) has wire type 2, expected 0 at byte 0$/],
  ['a known string sent as a varint', ClientReport, '10 01', /ClientReport: field serial \(2\) has wire type 0, expected 2 at byte 0$/],
  ['a message field sent as a varint', IssueSVIDRequest, '20 01', /IssueSVIDRequest: field report \(4\) has wire type 0, expected 2 at byte 0$/],
  ['an unknown fixed64 cut short', ClientReport, '49 010203', /ClientReport: truncated fixed-width field at byte 0$/],
  ['an unknown fixed32 cut short', ClientReport, '4d 01', /ClientReport: truncated fixed-width field at byte 0$/],
  ['an unknown length-delimited field longer than the rest', ClientReport, '4a 02 00', /ClientReport: length 2 runs past the end at byte 1$/],
  // Inside an embedded message: its own length bounds it, and the error names the field.
  ['an embedded message longer than the rest', IssueSVIDRequest, '22 04 0801', /IssueSVIDRequest: length 4 runs past the end at byte 1$/],
  ['a truncated varint inside an embedded message', IssueSVIDRequest, '22 02 08 80', /IssueSVIDRequest\.report: truncated varint at byte 3$/],
  ['an embedded string running past its message though not past the outer one', IssueSVIDRequest, '22 02 12 05 6161616161', /IssueSVIDRequest\.report: length 5 runs past the end at byte 3$/],
  ['an embedded varint running past its message into the outer one', IssueSVIDRequest, '22 02 08 80 01', /IssueSVIDRequest\.report: truncated varint at byte 3$/],
];

for (const [what, spec, bytes, error] of malformed) {
  test(`decoding throws on ${what}`, () => {
    assert.throws(() => decodeMessage(spec, hex(bytes)), (e: unknown) => e instanceof Error && error.test(e.message));
  });
}

test('the gRPC deserializers throw on malformed bytes (the CA refuses those with TG_REQUEST_INVALID)', () => {
  for (const m of Object.values(CertificateAuthorityService)) {
    assert.throws(() => m.requestDeserialize(hex('ff ff ff')), /truncated varint/);
    assert.throws(() => m.responseDeserialize(hex('0b')), /wire type 3/);
  }
});

test('absent fields decode to their defaults: 0, empty string, empty Buffer, [], null', () => {
  assert.deepStrictEqual(decodeMessage(IssueSVIDRequest, Buffer.alloc(0)), { csr: Buffer.alloc(0), token: '', ttl_seconds: 0, report: null });
  assert.deepStrictEqual(decodeMessage(Bundle, Buffer.alloc(0)), { version: 0, roots: [], refresh_hint_seconds: 0, trust_domain: '', endorsements: [], denied_ids: [], denied_serials: [] });
  // An embedded message that is present but empty is an object of defaults, not null.
  assert.deepStrictEqual(decodeMessage(IssueSVIDRequest, hex('22 00')), { csr: Buffer.alloc(0), token: '', ttl_seconds: 0, report: { bundle_version: 0, serial: '' } });
});

const vectors: Array<[what: string, spec: typeof ClientReport, value: object, bytes: string]> = [
  ['defaults are left out', IssueSVIDRequest, { csr: Buffer.alloc(0), token: '', ttl_seconds: 0, report: null }, ''],
  ['an empty embedded message is kept', IssueSVIDRequest, { report: { bundle_version: 0, serial: '' } }, '22 00'],
  ['empty elements of a repeated field are kept', Bundle, { roots: [Buffer.alloc(0)], denied_ids: [''] }, '12 00 32 00'],
  ['uint64 300', ClientReport, { bundle_version: 300 }, '08 ac02'],
  ['uint64 2^53 - 1', ClientReport, { bundle_version: 2 ** 53 - 1 }, '08 ffffffffffffff0f'],
  ['int64 -1 (ten bytes)', IssueSVIDResponse, { expires_at: -1 }, '20 ffffffffffffffffff01'],
  ['int64 -2^63', IssueSVIDResponse, { expires_at: -(2 ** 63) }, '20 80808080808080808001'],
  ['int64 -2^32', IssueSVIDResponse, { expires_at: -(2 ** 32) }, '20 80808080f0ffffffff01'],
  ['uint32 2^32 - 1', IssueSVIDRequest, { ttl_seconds: 2 ** 32 - 1 }, '18 ffffffff0f'],
  ['fields in number order, whatever the key order', IssueSVIDRequest, { report: { serial: 'a' }, token: 'b', csr: Buffer.from([1]) }, '0a 01 01 12 01 62 22 03 12 01 61'],
];

for (const [what, spec, value, bytes] of vectors) {
  test(`encoding: ${what}`, () => {
    const enc = encodeMessage(spec, value);
    assert.equal(enc.toString('hex'), hex(bytes).toString('hex'));
    const back = decodeMessage<Record<string, unknown>>(spec, enc);
    for (const [k, v] of Object.entries(value)) if (v !== null && typeof v !== 'object') assert.equal(back[k], v, k);
  });
}

test('a uint32 field read from a 64-bit varint keeps the low 32 bits; bytes share the input', () => {
  assert.equal(decodeMessage<{ ttl_seconds: number }>(IssueSVIDRequest, hex('18 ffffffffffffffffff01')).ttl_seconds, 2 ** 32 - 1);
  const input = hex('0a 02 0102');
  const { csr } = decodeMessage<{ csr: Buffer }>(IssueSVIDRequest, input);
  assert.ok(Buffer.isBuffer(csr));
  assert.equal(csr.buffer, input.buffer);
});

const unencodable: Array<[what: string, spec: typeof ClientReport, value: object, error: RegExp]> = [
  ['a negative uint64', ClientReport, { bundle_version: -1 }, /^cannot encode tollgate\.ca\.v1\.ClientReport\.bundle_version: -1 is out of range$/],
  ['a fractional uint64', ClientReport, { bundle_version: 1.5 }, /bundle_version: 1\.5 is not an integer$/],
  ['a uint64 of 2^64', ClientReport, { bundle_version: 2 ** 64 }, /bundle_version: 18446744073709552000 is out of range$/],
  ['an int64 of 2^63', IssueSVIDResponse, { expires_at: 2 ** 63 }, /expires_at: 9223372036854776000 is out of range$/],
  ['a uint64 given as a string', ClientReport, { bundle_version: '1' }, /bundle_version: 1 is not an integer$/],
  ['a uint32 of 2^32', IssueSVIDRequest, { ttl_seconds: 2 ** 32 }, /ttl_seconds: 4294967296 is not a uint32$/],
  ['a negative uint32', IssueSVIDRequest, { ttl_seconds: -1 }, /ttl_seconds: -1 is not a uint32$/],
  ['NaN', IssueSVIDRequest, { ttl_seconds: NaN }, /ttl_seconds: NaN is not a uint32$/],
  ['a number for a string', ClientReport, { serial: 0 }, /serial: expected a string, got number$/],
  ['a string for bytes', IssueSVIDRequest, { csr: 'MIIB' }, /csr: expected a Buffer, got string$/],
  ['a string for a message', IssueSVIDRequest, { report: 'x' }, /report: expected an object, got string$/],
  ['a non-array for a repeated field', Bundle, { roots: Buffer.from([1]) }, /roots: expected an array$/],
  ['a null element of a repeated field', Bundle, { denied_ids: [null] }, /denied_ids: expected a string, got object$/],
  ['a bad value inside an embedded message', IssueSVIDRequest, { report: { bundle_version: -2 } }, /ClientReport\.bundle_version: -2 is out of range$/],
];

for (const [what, spec, value, error] of unencodable) {
  test(`encoding throws on ${what}`, () => {
    assert.throws(() => encodeMessage(spec, value), (e: unknown) => e instanceof TypeError && error.test(e.message));
  });
}
