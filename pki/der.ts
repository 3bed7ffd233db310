// Minimal DER: enough to splice certificate templates and walk certificates/CSRs without a full
// ASN.1 library on hot paths (issuance, peer checks). Parsing for display uses @peculiar/x509.
import { TollgateError, type ErrorCode } from '../common/errors.ts';

export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
  CTX0: 0xa0,
  CTX3: 0xa3,
} as const;

export function encodeLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x100) return Buffer.from([0x81, n]);
  if (n < 0x10000) return Buffer.from([0x82, n >> 8, n & 0xff]);
  if (n < 0x1000000) return Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  throw new RangeError('DER length too large');
}

export function tlv(tag: number, ...content: Buffer[]): Buffer {
  let len = 0;
  for (const c of content) len += c.length;
  const out = Buffer.allocUnsafe(headerLength(len) + len);
  let off = writeHeader(out, 0, tag, len);
  for (const c of content) off += c.copy(out, off);
  return out;
}

export function encodeOid(oid: string): Buffer {
  const parts = oid.split('.');
  const bytes: number[] = [Number(parts[0]) * 40 + Number(parts[1])];
  // Arcs past 2^53 (a 2.25 UUID arc) are encoded through BigInt.
  for (const arc of parts.slice(2)) {
    let v = BigInt(arc);
    const stack = [Number(v & 0x7fn)];
    v >>= 7n;
    while (v > 0n) {
      stack.unshift(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    bytes.push(...stack);
  }
  return tlv(Tag.OID, Buffer.from(bytes));
}

export function decodeOid(content: Buffer): string {
  const out: Array<number | bigint> = [];
  let v = 0;
  // A number while exact, then BigInt (a 2.25 UUID arc has 128 bits).
  let big: bigint | null = null;
  for (let i = 0; i < content.length; i++) {
    const b = content[i]!;
    if (big !== null) big = big * 128n + BigInt(b & 0x7f);
    else if ((v = v * 128 + (b & 0x7f)) > 2 ** 45) big = BigInt(v);
    if ((b & 0x80) === 0) {
      if (out.length === 0) out.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else out.push(big ?? v);
      v = 0;
      big = null;
    }
  }
  return out.join('.');
}

/** One TLV inside `buf`: content is buf[start, end); the whole element is buf[offset, end). */
export interface Element {
  readonly tag: number;
  readonly offset: number;
  readonly start: number;
  readonly end: number;
}

/** Thrown as a TollgateError with the caller's code so a bad CSR and a bad cert report differently. */
export function readElement(buf: Buffer, offset: number, limit = buf.length, code: ErrorCode = 'TG_CERT_INVALID'): Element {
  if (offset + 2 > limit) throw new TollgateError(code, 'truncated DER: element header runs past the end');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new TollgateError(code, 'unsupported DER: multi-byte tag');
  let len = buf[offset + 1]!;
  let start = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3) throw new TollgateError(code, 'invalid DER: indefinite or oversized length');
    if (start + n > limit) throw new TollgateError(code, 'truncated DER: length runs past the end');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i]!;
    if (len < 0x80 || (n > 1 && buf[start] === 0)) throw new TollgateError(code, 'invalid DER: non-minimal length');
    start += n;
  }
  const end = start + len;
  if (end > limit) throw new TollgateError(code, 'truncated DER: content runs past the end');
  return { tag, offset, start, end };
}

/** The children of a constructed element. */
export function children(buf: Buffer, parent: Element, code: ErrorCode = 'TG_CERT_INVALID'): Element[] {
  const out: Element[] = [];
  let p = parent.start;
  while (p < parent.end) {
    const e = readElement(buf, p, parent.end, code);
    out.push(e);
    p = e.end;
  }
  return out;
}

export function expectTag(e: Element | undefined, tag: number, what: string, code: ErrorCode = 'TG_CERT_INVALID'): Element {
  if (!e || e.tag !== tag) {
    throw new TollgateError(code, `invalid DER: expected ${what}`);
  }
  return e;
}

export function content(buf: Buffer, e: Element): Buffer {
  return buf.subarray(e.start, e.end);
}

export function whole(buf: Buffer, e: Element): Buffer {
  return buf.subarray(e.offset, e.end);
}

/** Bytes of a tag and length header for `len` content bytes. */
export function headerLength(len: number): number {
  return len < 0x80 ? 2 : len < 0x100 ? 3 : len < 0x10000 ? 4 : 5;
}

/** Write a tag and length header at `off`; returns the offset just past it. */
export function writeHeader(buf: Buffer, off: number, tag: number, len: number): number {
  buf[off++] = tag;
  if (len < 0x80) {
    buf[off++] = len;
  } else if (len < 0x100) {
    buf[off++] = 0x81;
    buf[off++] = len;
  } else if (len < 0x10000) {
    buf[off++] = 0x82;
    buf[off++] = len >> 8;
    buf[off++] = len & 0xff;
  } else if (len < 0x1000000) {
    buf[off++] = 0x83;
    buf[off++] = len >> 16;
    buf[off++] = (len >> 8) & 0xff;
    buf[off++] = len & 0xff;
  } else {
    throw new RangeError('DER length too large');
  }
  return off;
}

/** RFC 5280: UTCTime for 1950..2049, GeneralizedTime otherwise. */
function isUtcTimeYear(year: number): boolean {
  return year >= 1950 && year < 2050;
}

/** Bytes encodeTime/writeTime produce for `ms` (header included). */
export function timeLength(ms: number): number {
  return isUtcTimeYear(new Date(ms).getUTCFullYear()) ? 15 : 17;
}

function two(buf: Buffer, off: number, v: number): number {
  buf[off] = 0x30 + ((v / 10) | 0);
  buf[off + 1] = 0x30 + (v % 10);
  return off + 2;
}

/** Write `ms` (whole seconds, rounded down) as UTCTime or GeneralizedTime at `off`; returns the offset past it. */
export function writeTime(buf: Buffer, off: number, ms: number): number {
  const d = new Date(Math.floor(ms / 1000) * 1000);
  const year = d.getUTCFullYear();
  if (!(year >= 0 && year <= 9999)) throw new RangeError(`cannot encode year ${year} as a DER time`);
  if (isUtcTimeYear(year)) {
    buf[off++] = Tag.UTC_TIME;
    buf[off++] = 13;
  } else {
    buf[off++] = Tag.GENERALIZED_TIME;
    buf[off++] = 15;
    off = two(buf, off, (year / 100) | 0);
  }
  off = two(buf, off, year % 100);
  off = two(buf, off, d.getUTCMonth() + 1);
  off = two(buf, off, d.getUTCDate());
  off = two(buf, off, d.getUTCHours());
  off = two(buf, off, d.getUTCMinutes());
  off = two(buf, off, d.getUTCSeconds());
  buf[off++] = 0x5a; // 'Z'
  return off;
}

/** Encode a time as UTCTime before 2050 and GeneralizedTime from 2050, as RFC 5280 requires. */
export function encodeTime(ms: number): Buffer {
  const out = Buffer.allocUnsafe(timeLength(ms));
  writeTime(out, 0, ms);
  return out;
}

export function decodeTime(buf: Buffer, e: Element, code: ErrorCode = 'TG_CERT_INVALID'): number {
  const s = buf.toString('ascii', e.start, e.end);
  let m: RegExpExecArray | null;
  if (e.tag === Tag.UTC_TIME && (m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    const yy = Number(m[1]);
    return Date.UTC(yy >= 50 ? 1900 + yy : 2000 + yy, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  }
  if (e.tag === Tag.GENERALIZED_TIME && (m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  }
  throw new TollgateError(code, `invalid DER time ${JSON.stringify(s)}`);
}
