// Minimal DER: enough to splice certificate templates and walk certificates/CSRs without a full
// ASN.1 library on hot paths (issuance, peer checks). Parsing for display uses @peculiar/x509.
import { TollgateError, type ErrorCode } from './errors.ts';

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
  const body = content.length === 1 ? content[0]! : Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), encodeLength(body.length), body]);
}

export function encodeOid(oid: string): Buffer {
  const parts = oid.split('.').map(Number);
  const bytes: number[] = [parts[0]! * 40 + parts[1]!];
  for (const p of parts.slice(2)) {
    const stack = [p & 0x7f];
    let v = Math.floor(p / 128);
    while (v > 0) {
      stack.unshift((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    bytes.push(...stack);
  }
  return tlv(Tag.OID, Buffer.from(bytes));
}

export function decodeOid(content: Buffer): string {
  const out: number[] = [];
  let v = 0;
  for (let i = 0; i < content.length; i++) {
    const b = content[i]!;
    v = v * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      if (out.length === 0) out.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else out.push(v);
      v = 0;
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

/** Encode a Date as UTCTime before 2050 and GeneralizedTime from 2050, as RFC 5280 requires. */
export function encodeTime(ms: number): Buffer {
  const d = new Date(Math.floor(ms / 1000) * 1000);
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19);
  const year = d.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(Tag.UTC_TIME, Buffer.from(`${digits.slice(2)}Z`, 'ascii'));
  return tlv(Tag.GENERALIZED_TIME, Buffer.from(`${digits}Z`, 'ascii'));
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
