// ca.proto is the source of truth; common/ca-api.ts encodes its messages from a static table so no
// process parses it at run time. Here the .proto is parsed with protobufjs and (1) the table and the
// service definition must say what it says, field by field, and (2) arbitrary messages must travel
// between our codec and @grpc/proto-loader's (with the options ca-api.ts used to load it with) and
// come out the same both ways, byte for byte when encoded from the same fields.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { CA_MESSAGES, CA_METHODS, CertificateAuthorityClientCtor, CertificateAuthorityService, PROTO_PATH, SERVICE_NAME } from './ca-api.ts';
import { decodeMessage, encodeMessage, type MessageSpec } from './protobuf-wire.ts';

const messages: Readonly<Record<string, MessageSpec>> = CA_MESSAGES;

const root = new protobuf.Root().loadSync(PROTO_PATH, { keepCase: true }).resolveAll();
const pkg = root.lookup('tollgate.ca.v1') as protobuf.Namespace;
const protoTypes = pkg.nestedArray.filter((n): n is protobuf.Type => n instanceof protobuf.Type);
const protoService = root.lookupService(SERVICE_NAME);

/** A field as both sides describe it. */
const describe = (f: { name: string; number: number; type: string; repeated: boolean }) => `${f.number} ${f.repeated ? 'repeated ' : ''}${f.type} ${f.name}`;

test('the .proto has only what the static codec supports: messages and one service; no enums, oneofs, maps, nested types or packed fields', () => {
  assert.deepEqual(
    pkg.nestedArray.filter((n) => !(n instanceof protobuf.Type) && n !== protoService).map((n) => n.name),
    [],
  );
  for (const t of protoTypes) {
    assert.deepEqual(t.oneofsArray.map((o) => o.name), [], `${t.name}: oneof (or proto3 optional) is not supported by common/protobuf-wire.ts`);
    assert.deepEqual(t.nestedArray.map((n) => n.name), [], `${t.name}: nested types are not supported`);
    for (const f of t.fieldsArray) {
      assert.ok(!f.map, `${t.name}.${f.name}: map fields are not supported`);
      // proto3 packs repeated numbers by default; the codec writes and reads only unpacked fields.
      assert.ok(!f.repeated || f.resolvedType || f.type === 'string' || f.type === 'bytes', `${t.name}.${f.name}: repeated ${f.type} (packed) is not supported`);
    }
  }
});

test('every message of ca.proto is in the static table with the same fields: names, numbers, types, repeated', () => {
  assert.deepEqual(Object.keys(messages).sort(), protoTypes.map((t) => t.name).sort());
  for (const t of protoTypes) {
    const spec = messages[t.name]!;
    assert.equal(spec.name, t.fullName.slice(1));
    const fromProto = [...t.fieldsArray].sort((a, b) => a.id - b.id).map((f) => describe({ name: f.name, number: f.id, type: f.resolvedType ? f.resolvedType.fullName.slice(1) : f.type, repeated: f.repeated }));
    const fromTable = spec.fields.map((f) => describe({ ...f, type: typeof f.type === 'string' ? f.type : f.type.name }));
    assert.deepEqual(fromTable, fromProto, t.name);
  }
});

test('the service definition has the .proto\'s methods, message types and streaming flags, under proto-loader\'s paths', () => {
  const ref = referenceService();
  assert.deepEqual(Object.keys(CertificateAuthorityService), Object.keys(ref));
  assert.deepEqual(
    CA_METHODS.map((m) => [m.name, m.request, m.response, m.responseStream]),
    protoService.methodsArray.map((m) => [m.name, m.resolvedRequestType!.name, m.resolvedResponseType!.name, m.responseStream ?? false]),
  );
  for (const m of protoService.methodsArray) assert.ok(!m.requestStream, `${m.name}: client streaming is not supported`);
  for (const [name, def] of Object.entries(CertificateAuthorityService)) {
    const r = ref[name]!;
    assert.deepEqual([def.path, def.requestStream, def.responseStream], [r.path, r.requestStream, r.responseStream], name);
  }
  assert.equal(CertificateAuthorityClientCtor.service, CertificateAuthorityService);
  assert.equal(typeof CertificateAuthorityClientCtor.prototype.WatchBundle, 'function');
});

// ---- round trips against proto-loader ----

function referenceService(): grpc.ServiceDefinition {
  const def = protoLoader.loadSync(PROTO_PATH, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  return (grpc.loadPackageDefinition(def) as unknown as { tollgate: { ca: { v1: { CertificateAuthority: grpc.ServiceClientConstructor } } } }).tollgate.ca.v1.CertificateAuthority.service;
}

interface Codec {
  encode(v: object): Buffer;
  decode(b: Buffer): unknown;
}

/** proto-loader's serializer and deserializer for each message type, taken from the methods that carry it. */
function referenceCodecs(): Map<string, Codec> {
  const ref = referenceService();
  const out = new Map<string, Codec>();
  for (const m of CA_METHODS) {
    const d = ref[m.name]!;
    out.set(m.request, { encode: d.requestSerialize, decode: d.requestDeserialize });
    out.set(m.response, { encode: d.responseSerialize, decode: d.responseDeserialize });
  }
  // ClientReport travels only inside other messages: through GetBundleRequest.report.
  const outer = out.get('GetBundleRequest')!;
  out.set('ClientReport', {
    encode: (v) => {
      const r = protobuf.Reader.create(outer.encode({ report: v }));
      r.uint32(); // the tag of field 1
      return Buffer.from(r.bytes());
    },
    decode: (b) => (outer.decode(Buffer.from(protobuf.Writer.create().uint32(0x0a).bytes(b).finish())) as { report: unknown }).report,
  });
  return out;
}

const U64_MAX_DOUBLE = 2 ** 64 - 2048; // the largest double below 2^64
const scalarArb: Record<string, fc.Arbitrary<unknown>> = {
  string: fc.string({ unit: 'binary', maxLength: 24 }),
  bytes: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
  uint32: fc.oneof(fc.constantFrom(0, 1, 127, 128, 2 ** 31, 2 ** 32 - 1), fc.nat({ max: 2 ** 32 - 1 })),
  uint64: fc.oneof(fc.constantFrom(0, 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, U64_MAX_DOUBLE), fc.maxSafeNat(), fc.double({ min: 0, max: U64_MAX_DOUBLE, noNaN: true }).map(Math.floor)),
  int64: fc.oneof(fc.constantFrom(0, -1, 2 ** 31, -(2 ** 31), Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 63 - 1024, -(2 ** 63)), fc.maxSafeInteger()),
};

/** Arbitrary messages of a protobufjs type, any field possibly absent; built from the .proto, not our table. */
function messageArb(t: protobuf.Type): fc.Arbitrary<Record<string, unknown>> {
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of t.fieldsArray) {
    const one = f.resolvedType ? fc.option(messageArb(f.resolvedType as protobuf.Type), { nil: null }) : scalarArb[f.type];
    assert.ok(one, `no arbitrary for ${f.type}`);
    fields[f.name] = f.repeated ? fc.array(f.resolvedType ? messageArb(f.resolvedType as protobuf.Type) : one, { maxLength: 4 }) : one;
  }
  return fc.record(fields, { requiredKeys: [] });
}

/** The same message without the singular scalars proto3 leaves off the wire (protobufjs writes what it is given). */
function withoutDefaults(spec: MessageSpec, v: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of spec.fields) {
    const x = v[f.name];
    if (x === undefined || x === null) continue;
    if (f.repeated) out[f.name] = x;
    else if (typeof f.type === 'object') out[f.name] = withoutDefaults(f.type, x as Record<string, unknown>);
    else if (!(x === 0 || x === '' || (Buffer.isBuffer(x) && x.length === 0))) out[f.name] = x;
  }
  return out;
}

/** Fields the message does not know, on every wire type proto3 uses, written by protobufjs's Writer. */
const unknownFieldsArb = fc
  .array(
    fc.tuple(fc.integer({ min: 100, max: 2 ** 29 - 1 }), fc.constantFrom(0, 1, 2, 5), fc.maxSafeNat(), fc.uint8Array({ maxLength: 20 })).map(([n, wire, num, bytes]) => {
      const w = protobuf.Writer.create().uint32(((n << 3) | wire) >>> 0);
      if (wire === 0) w.uint64(num);
      else if (wire === 1) w.fixed64(num);
      else if (wire === 2) w.bytes(bytes);
      else w.fixed32(num >>> 0);
      return Buffer.from(w.finish());
    }),
    { maxLength: 3 },
  )
  .map((parts) => Buffer.concat(parts));

for (const t of protoTypes) {
  test(`${t.name}: arbitrary messages decode the same with our codec and proto-loader's, both ways, and encode byte for byte as protobufjs does`, () => {
    const spec = messages[t.name]!;
    const ref = referenceCodecs().get(t.name)!;
    const arb = messageArb(t);
    fc.assert(
      fc.property(arb, arb, unknownFieldsArb, (v, w, unknown) => {
        const theirs = ref.encode(v);
        const ours = encodeMessage(spec, v);
        // proto-loader's bytes, read by us; ours, read by proto-loader; both give what proto-loader gives.
        const expected = ref.decode(theirs);
        assert.deepStrictEqual(decodeMessage(spec, theirs), expected);
        assert.deepStrictEqual(ref.decode(ours), expected);
        assert.deepStrictEqual(decodeMessage(spec, ours), expected);
        assert.deepStrictEqual(ours, ref.encode(withoutDefaults(spec, v)));
        // Unknown fields are skipped; a second message appended merges as protobufjs merged it
        // (scalars: the last wins; repeated: appended; messages: the last replaces).
        const joined = Buffer.concat([unknown, theirs, unknown, ref.encode(w), unknown]);
        assert.deepStrictEqual(decodeMessage(spec, joined), ref.decode(joined));
      }),
      { numRuns: 300 },
    );
  });
}
