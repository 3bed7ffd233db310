// A small proto3 codec driven by a table of fields, for the few messages of the CA API
// (common/ca-api.ts). It replaces loading the .proto at run time with @grpc/proto-loader, whose
// parser and reflection cost every process ~20 ms at start. Only what ca.proto uses is supported:
// string, bytes, uint32, uint64, int64, embedded messages and repeated fields of those (none packable).
//
// Decoding gives what proto-loader gave with { keepCase, longs: Number, enums: String, defaults,
// oneofs }: every field present, absent scalars as their default (0, '', an empty Buffer), absent
// repeated fields as [], absent messages as null; bytes as Buffers that share the input's memory;
// 64-bit integers as Numbers (beyond 2^53 rounded, as before); invalid UTF-8 as U+FFFD; a message
// field seen twice keeps the last (protobufjs replaced rather than merged). Unknown fields are skipped
// by wire type. Anything malformed throws an Error that names the message, field and byte offset.
// Encoding is canonical proto3: default scalars are left out, fields in number order.

export type ScalarType = 'string' | 'bytes' | 'uint32' | 'uint64' | 'int64';

export interface FieldSpec {
  readonly name: string;
  readonly number: number;
  readonly type: ScalarType | MessageSpec;
  readonly repeated: boolean;
}

export interface MessageSpec {
  /** Fully-qualified name, e.g. tollgate.ca.v1.Bundle. */
  readonly name: string;
  /** By field number, the order they are written in. */
  readonly fields: readonly FieldSpec[];
}

const enum Wire {
  VARINT = 0,
  FIXED64 = 1,
  LEN = 2,
  START_GROUP = 3,
  END_GROUP = 4,
  FIXED32 = 5,
}

const TWO_32 = 2 ** 32;

const wireOf = (f: FieldSpec): Wire => (typeof f.type === 'string' && f.type !== 'string' && f.type !== 'bytes' ? Wire.VARINT : Wire.LEN);

/** A frozen message type; `repeated` defaults to false. */
export function messageSpec(name: string, fields: ReadonlyArray<{ name: string; number: number; type: ScalarType | MessageSpec; repeated?: boolean }>): MessageSpec {
  const sorted = [...fields].sort((a, b) => a.number - b.number);
  return Object.freeze({ name, fields: Object.freeze(sorted.map((f) => Object.freeze({ ...f, repeated: f.repeated ?? false }))) });
}

// ---- decoding ----

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  /** A varint as its low and high 32 bits. */
  varint(end: number, path: string): [number, number] {
    const start = this.pos;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= end) fail(path, 'truncated varint', start);
      const b = this.buf[this.pos++]!;
      const bits = b & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= bits << 28;
        hi |= bits >>> 4;
      } else hi |= bits << (7 * i - 32);
      if (b < 0x80) return [lo >>> 0, hi >>> 0];
    }
    return fail(path, 'varint longer than 10 bytes', start);
  }

  /** A length prefix, checked against what is left before `end`. */
  length(end: number, path: string): number {
    const at = this.pos;
    const [lo, hi] = this.varint(end, path);
    if (hi !== 0 || lo > end - this.pos) fail(path, `length ${hi === 0 ? lo : 'of 2^32 or more'} runs past the end`, at);
    return lo;
  }

  skip(n: number, end: number, path: string, at: number): void {
    if (n > end - this.pos) fail(path, 'truncated fixed-width field', at);
    this.pos += n;
  }
}

function fail(path: string, what: string, at: number): never {
  throw new Error(`cannot decode ${path}: ${what} at byte ${at}`);
}

function defaultOf(f: FieldSpec): unknown {
  if (f.repeated) return [];
  switch (f.type) {
    case 'string':
      return '';
    case 'bytes':
      return Buffer.alloc(0);
    case 'uint32':
    case 'uint64':
    case 'int64':
      return 0;
    default:
      return null;
  }
}

/** What protobufjs's LongBits.toNumber gives for the same bits. */
function toNumber(lo: number, hi: number, signed: boolean): number {
  if (signed && hi >>> 31) {
    const nlo = (~lo + 1) >>> 0;
    let nhi = ~hi >>> 0;
    if (!nlo) nhi = (nhi + 1) >>> 0;
    return -(nlo + nhi * TWO_32);
  }
  return lo + hi * TWO_32;
}

function readValue(r: Reader, f: FieldSpec, end: number, path: string): unknown {
  switch (f.type) {
    case 'uint32':
      return r.varint(end, path)[0];
    case 'uint64':
    case 'int64': {
      const [lo, hi] = r.varint(end, path);
      return toNumber(lo, hi, f.type === 'int64');
    }
    case 'string':
    case 'bytes': {
      const n = r.length(end, path);
      const start = r.pos;
      r.pos += n;
      return f.type === 'string' ? r.buf.toString('utf8', start, r.pos) : r.buf.subarray(start, r.pos);
    }
    default: {
      const n = r.length(end, path);
      return decodeFields(r, f.type, r.pos + n, `${path}.${f.name}`);
    }
  }
}

function skipUnknown(r: Reader, wire: Wire, end: number, path: string, at: number): void {
  switch (wire) {
    case Wire.VARINT:
      r.varint(end, path);
      return;
    case Wire.FIXED64:
      r.skip(8, end, path, at);
      return;
    case Wire.LEN: {
      const n = r.length(end, path);
      r.pos += n;
      return;
    }
    case Wire.FIXED32:
      r.skip(4, end, path, at);
      return;
  }
}

/** The fields of one message from r.pos to `end`; `path` names it in errors. */
function decodeFields(r: Reader, spec: MessageSpec, end: number, path: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of spec.fields) out[f.name] = defaultOf(f);
  while (r.pos < end) {
    const at = r.pos;
    const [tag, tagHi] = r.varint(end, path);
    const number = tag >>> 3;
    const wire = tag & 7;
    if (tagHi !== 0) fail(path, 'field number over 2^29-1', at);
    if (number === 0) fail(path, 'field number 0', at);
    if (wire === Wire.START_GROUP || wire === Wire.END_GROUP) fail(path, `group wire type ${wire} (field ${number}), which proto3 does not use`, at);
    if (wire > Wire.FIXED32) fail(path, `invalid wire type ${wire} (field ${number})`, at);
    const f = spec.fields.find((x) => x.number === number);
    if (!f) {
      skipUnknown(r, wire, end, path, at);
      continue;
    }
    if (wire !== wireOf(f)) fail(path, `field ${f.name} (${number}) has wire type ${wire}, expected ${wireOf(f)}`, at);
    const v = readValue(r, f, end, path);
    if (f.repeated) (out[f.name] as unknown[]).push(v);
    else out[f.name] = v;
  }
  return out;
}

/** Decode one message; throws on malformed input. */
export function decodeMessage<T>(spec: MessageSpec, bytes: Uint8Array): T {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return decodeFields(new Reader(buf), spec, buf.length, spec.name) as T;
}

// ---- encoding ----

class Writer {
  buf = Buffer.allocUnsafe(256);
  pos = 0;

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  varint(lo: number, hi = 0): void {
    this.ensure(10);
    while (hi !== 0 || lo > 0x7f) {
      this.buf[this.pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    this.buf[this.pos++] = lo;
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  string(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.varint(n);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }
}

function badValue(spec: MessageSpec, f: FieldSpec, what: string): never {
  throw new TypeError(`cannot encode ${spec.name}.${f.name}: ${what}`);
}

/** The value's two's-complement 64 bits, or a reason it has none. */
function int64Bits(v: unknown, signed: boolean): [number, number] | string {
  if (typeof v !== 'number' || !Number.isInteger(v)) return `${String(v)} is not an integer`;
  if (signed ? v < -(2 ** 63) || v >= 2 ** 63 : v < 0 || v >= 2 ** 64) return `${v} is out of range`;
  const mag = Math.abs(v);
  let lo = mag % TWO_32;
  let hi = Math.floor(mag / TWO_32);
  if (v < 0) {
    lo = (~lo + 1) >>> 0;
    hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
  }
  return [lo, hi];
}

/**
 * Write field `f` with value `v` (one element, if repeated). A singular scalar at its default is
 * checked and then left out, as proto3 does; elements of a repeated field and messages always go.
 */
function writeField(w: Writer, spec: MessageSpec, f: FieldSpec, v: unknown): void {
  const tag = ((f.number << 3) | wireOf(f)) >>> 0;
  const keepDefault = f.repeated;
  switch (f.type) {
    case 'uint32':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= TWO_32) badValue(spec, f, `${String(v)} is not a uint32`);
      if (v === 0 && !keepDefault) return;
      w.varint(tag);
      w.varint(v);
      return;
    case 'uint64':
    case 'int64': {
      const bits = int64Bits(v, f.type === 'int64');
      if (typeof bits === 'string') badValue(spec, f, bits);
      if (v === 0 && !keepDefault) return;
      w.varint(tag);
      w.varint(bits[0], bits[1]);
      return;
    }
    case 'string':
      if (typeof v !== 'string') badValue(spec, f, `expected a string, got ${typeof v}`);
      if (v === '' && !keepDefault) return;
      w.varint(tag);
      w.string(v);
      return;
    case 'bytes':
      if (!(v instanceof Uint8Array)) badValue(spec, f, `expected a Buffer, got ${typeof v}`);
      if (v.length === 0 && !keepDefault) return;
      w.varint(tag);
      w.bytes(v);
      return;
    default:
      if (typeof v !== 'object' || v === null) badValue(spec, f, `expected an object, got ${v === null ? 'null' : typeof v}`);
      w.varint(tag);
      w.bytes(encodeMessage(f.type, v));
  }
}

/** Encode one message. Fields that are null or undefined are absent; a wrong type throws a TypeError. */
export function encodeMessage(spec: MessageSpec, value: object): Buffer {
  const w = new Writer();
  const obj = value as Record<string, unknown>;
  for (const f of spec.fields) {
    const v = obj[f.name];
    if (v === undefined || v === null) continue;
    if (!f.repeated) writeField(w, spec, f, v);
    else if (!Array.isArray(v)) badValue(spec, f, 'expected an array');
    else for (const item of v) writeField(w, spec, f, item);
  }
  return w.buf.subarray(0, w.pos);
}
