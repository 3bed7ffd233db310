// PROXY protocol version 2 (haproxy's proxy-protocol.txt, section 2.2), binary form only: the inbound
// proxy writes one header before the first byte to the app so the app learns who called (identity
// propagation) without changing how it accepts connections. The demo app decodes it with decodeProxyV2.
//
// What we send: command PROXY, family TCP over IPv4 or IPv6 (both addresses in one family: IPv4-mapped
// IPv6 addresses are unmapped when both ends are IPv4, IPv4 is mapped when either end is IPv6), the
// peer's address/port as source and ours as destination, then TLVs:
//   - PP2_TYPE_SSL (0x20): client = SSL|CERT_CONN|CERT_SESS, verify = 0 (the client certificate was
//     verified), with a PP2_SUBTYPE_SSL_VERSION (0x21) sub-TLV such as "TLSv1.3";
//   - the peer's SPIFFE ID, UTF-8, in TLV type 0xE0. The spec reserves 0xE0..0xEF
//     (PP2_TYPE_MIN_CUSTOM..PP2_TYPE_MAX_CUSTOM) for application-specific data; we take the first one.
//     There is no registered type for a SPIFFE ID (PP2_SUBTYPE_SSL_CN carries a subject CN, which an
//     SVID usually lacks), and a custom type keeps apps from mistaking it for a DNS-style name.
// The decoder is strict (a malformed header throws): a connection to an app that expects the header
// must come from the sidecar, so anything else is refused rather than guessed at.
import { isIPv4, isIPv6 } from 'node:net';
import { TollgateError } from '../common/errors.ts';

export const PROXY_V2_SIGNATURE: Buffer = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** Signature, version/command, family/protocol, 2-byte length. */
export const PROXY_V2_FIXED_LENGTH = 16;

export const PP2_TYPE_SSL = 0x20;
export const PP2_SUBTYPE_SSL_VERSION = 0x21;
/** First type of the custom range (PP2_TYPE_MIN_CUSTOM): the caller's SPIFFE ID. */
export const PP2_TYPE_SPIFFE_ID = 0xe0;
export const PP2_CLIENT_SSL = 0x01;
export const PP2_CLIENT_CERT_CONN = 0x02;
export const PP2_CLIENT_CERT_SESS = 0x04;

const VERSION_2 = 0x20;
const CMD_LOCAL = 0x00;
const CMD_PROXY = 0x01;
const AF_INET = 0x10;
const AF_INET6 = 0x20;
const AF_UNIX = 0x30;
const STREAM = 0x01;
const DGRAM = 0x02;
/** Bytes of the address block per address family. */
const ADDRESS_LENGTH: Record<number, number> = { 0x00: 0, [AF_INET]: 12, [AF_INET6]: 36, [AF_UNIX]: 216 };

export interface ProxyAddress {
  readonly address: string;
  readonly port: number;
}

export interface ProxyV2Input {
  /** The peer that connected to us. */
  readonly source: ProxyAddress;
  /** Our own address and port for that connection. */
  readonly destination: ProxyAddress;
  /** The peer's SPIFFE ID (TLV 0xE0); with it, a PP2_TYPE_SSL TLV is sent too. */
  readonly spiffeId?: string;
  /** e.g. "TLSv1.3" (PP2_SUBTYPE_SSL_VERSION); only sent with the SSL TLV. */
  readonly tlsVersion?: string;
}

export type ProxyFamily = 'unspec' | 'tcp4' | 'udp4' | 'tcp6' | 'udp6' | 'unix-stream' | 'unix-dgram';

export interface ProxyTlv {
  readonly type: number;
  readonly value: Buffer;
}

export interface ProxyV2Header {
  /** 'local': a health check or the like from the proxy itself; use the real connection endpoints. */
  readonly command: 'proxy' | 'local';
  readonly family: ProxyFamily;
  /** null for 'local', 'unspec' and UNIX sockets. */
  readonly source: ProxyAddress | null;
  readonly destination: ProxyAddress | null;
  /** From TLV 0xE0; null when absent. */
  readonly spiffeId: string | null;
  /** From the SSL TLV; null when absent. */
  readonly ssl: { readonly client: number; readonly verify: number; readonly version: string | null } | null;
  /** Every top-level TLV in order (values are views into the decoded buffer). */
  readonly tlvs: readonly ProxyTlv[];
}

function internal(msg: string): TollgateError {
  return new TollgateError('TG_INTERNAL', `cannot encode PROXY v2 header: ${msg}`);
}

function malformed(msg: string): TollgateError {
  // Its own code (not TG_CONFIG_INVALID): the bytes on one connection are bad, which an app refuses
  // per connection. The likely causes are still configuration: the sidecar does not send the header
  // (proxyProtocol off), or something other than the sidecar reached the app port.
  return new TollgateError(
    'TG_PROXY_HEADER_INVALID',
    `malformed PROXY protocol v2 header: ${msg}; only the Tollgate sidecar with proxyProtocol enabled should connect to this port`,
    { details: { reason: msg } },
  );
}

// ---------------------------------------------------------------------------------------------------
// Addresses

function ipv4Bytes(address: string, out: Buffer, offset: number): void {
  const parts = address.split('.');
  for (let i = 0; i < 4; i++) out[offset + i] = Number(parts[i]);
}

/** 16 bytes of an IPv6 address (zone ids are dropped; embedded IPv4 tails are allowed). */
function ipv6Bytes(address: string, out: Buffer, offset: number): void {
  const zone = address.indexOf('%');
  let text = zone === -1 ? address : address.slice(0, zone);
  const words: number[] = [];
  const v4 = text.lastIndexOf('.') === -1 ? null : text.slice(text.lastIndexOf(':') + 1);
  if (v4 !== null) text = `${text.slice(0, text.length - v4.length)}0:0`;
  const [headText, tailText] = text.split('::') as [string, string | undefined];
  const head = headText === '' ? [] : headText.split(':').map((h) => parseInt(h, 16));
  const tail = tailText === undefined || tailText === '' ? [] : tailText.split(':').map((h) => parseInt(h, 16));
  words.push(...head);
  if (tailText !== undefined) for (let i = head.length + tail.length; i < 8; i++) words.push(0);
  words.push(...tail);
  for (let i = 0; i < 8; i++) out.writeUInt16BE(words[i] ?? 0, offset + i * 2);
  if (v4 !== null) ipv4Bytes(v4, out, offset + 12);
}

const V4_MAPPED_PREFIX = '::ffff:';

/** The IPv4 address inside an IPv4-mapped IPv6 address, else null. */
function unmapIpv4(address: string): string | null {
  if (isIPv4(address)) return address;
  const lower = address.toLowerCase();
  if (lower.startsWith(V4_MAPPED_PREFIX) && isIPv4(lower.slice(V4_MAPPED_PREFIX.length))) return lower.slice(V4_MAPPED_PREFIX.length);
  return null;
}

function formatIpv4(buf: Buffer, offset: number): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

/** RFC 5952 text: lower-case, longest run of two or more zero words as "::", IPv4-mapped as ::ffff:a.b.c.d. */
function formatIpv6(buf: Buffer, offset: number): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push(buf.readUInt16BE(offset + i * 2));
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) return `${V4_MAPPED_PREFIX}${formatIpv4(buf, offset + 12)}`;
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]): string => ws.map((w) => w.toString(16)).join(':');
  if (bestStart === -1) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw internal(`${what} port ${String(port)} is not 0..65535`);
}

// ---------------------------------------------------------------------------------------------------
// Encode

/** Build a v2 PROXY header (command PROXY, TCP) with the optional SSL and SPIFFE ID TLVs. */
export function encodeProxyV2(input: ProxyV2Input): Buffer {
  const { source, destination } = input;
  checkPort(source.port, 'source');
  checkPort(destination.port, 'destination');
  for (const a of [source, destination]) {
    if (!isIPv4(a.address) && !isIPv6(a.address)) throw internal(`${JSON.stringify(a.address)} is not an IP address`);
  }
  const src4 = unmapIpv4(source.address);
  const dst4 = unmapIpv4(destination.address);
  const v4 = src4 !== null && dst4 !== null;
  const addressLength = v4 ? 12 : 36;

  const id = input.spiffeId === undefined ? null : Buffer.from(input.spiffeId, 'utf8');
  const version = id !== null && input.tlsVersion !== undefined ? Buffer.from(input.tlsVersion, 'latin1') : null;
  const sslLength = id === null ? 0 : 5 + (version === null ? 0 : 3 + version.length);
  const tlvLength = id === null ? 0 : 3 + sslLength + 3 + id.length;
  const bodyLength = addressLength + tlvLength;
  if (bodyLength > 0xffff) throw internal('the TLVs are longer than a header may be');

  const out = Buffer.allocUnsafe(PROXY_V2_FIXED_LENGTH + bodyLength);
  PROXY_V2_SIGNATURE.copy(out, 0);
  out[12] = VERSION_2 | CMD_PROXY;
  out[13] = (v4 ? AF_INET : AF_INET6) | STREAM;
  out.writeUInt16BE(bodyLength, 14);
  let o = PROXY_V2_FIXED_LENGTH;
  if (v4) {
    ipv4Bytes(src4, out, o);
    ipv4Bytes(dst4, out, o + 4);
    out.writeUInt16BE(source.port, o + 8);
    out.writeUInt16BE(destination.port, o + 10);
  } else {
    ipv6Bytes(src4 === null ? source.address : `${V4_MAPPED_PREFIX}${src4}`, out, o);
    ipv6Bytes(dst4 === null ? destination.address : `${V4_MAPPED_PREFIX}${dst4}`, out, o + 16);
    out.writeUInt16BE(source.port, o + 32);
    out.writeUInt16BE(destination.port, o + 34);
  }
  o += addressLength;
  if (id !== null) {
    out[o] = PP2_TYPE_SSL;
    out.writeUInt16BE(sslLength, o + 1);
    out[o + 3] = PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS;
    out.writeUInt32BE(0, o + 4);
    o += 8;
    if (version !== null) {
      out[o] = PP2_SUBTYPE_SSL_VERSION;
      out.writeUInt16BE(version.length, o + 1);
      version.copy(out, o + 3);
      o += 3 + version.length;
    }
    out[o] = PP2_TYPE_SPIFFE_ID;
    out.writeUInt16BE(id.length, o + 1);
    id.copy(out, o + 3);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Decode

const utf8 = new TextDecoder('utf-8', { fatal: true });

function readTlvs(buf: Buffer, start: number, end: number, where: string): ProxyTlv[] {
  const out: ProxyTlv[] = [];
  let o = start;
  while (o < end) {
    if (end - o < 3) throw malformed(`${where}: ${end - o} trailing byte(s) are too short for a TLV`);
    const type = buf[o]!;
    const length = buf.readUInt16BE(o + 1);
    if (o + 3 + length > end) throw malformed(`${where}: TLV 0x${type.toString(16)} claims ${length} bytes, only ${end - o - 3} remain`);
    out.push({ type, value: buf.subarray(o + 3, o + 3 + length) });
    o += 3 + length;
  }
  return out;
}

/**
 * Decode a v2 header at the start of `buf`. Returns null while more bytes are needed (the bytes so
 * far are a valid prefix), else the header and its total length (the app's data starts there).
 * Throws TollgateError (TG_PROXY_HEADER_INVALID) on anything malformed, including a v1 text header.
 */
export function decodeProxyV2(buf: Buffer): { header: ProxyV2Header; length: number } | null {
  const sigBytes = Math.min(buf.length, PROXY_V2_SIGNATURE.length);
  if (buf.compare(PROXY_V2_SIGNATURE, 0, sigBytes, 0, sigBytes) !== 0) {
    const v1 = buf.subarray(0, Math.min(buf.length, 6)).toString('latin1') === 'PROXY '.slice(0, Math.min(buf.length, 6));
    throw malformed(v1 ? 'this is a PROXY protocol v1 (text) header; only v2 is supported' : 'the connection does not start with the PROXY v2 signature');
  }
  if (buf.length < PROXY_V2_FIXED_LENGTH) return null;
  const verCmd = buf[12]!;
  if ((verCmd & 0xf0) !== VERSION_2) throw malformed(`version ${verCmd >> 4} is not 2`);
  const cmd = verCmd & 0x0f;
  if (cmd !== CMD_LOCAL && cmd !== CMD_PROXY) throw malformed(`command 0x${cmd.toString(16)} is neither LOCAL nor PROXY`);
  const famByte = buf[13]!;
  const af = famByte & 0xf0;
  const proto = famByte & 0x0f;
  const addressLength = ADDRESS_LENGTH[af];
  if (addressLength === undefined || proto > DGRAM || (af === 0 ? proto !== 0 : proto === 0)) {
    throw malformed(`address family/protocol byte 0x${famByte.toString(16).padStart(2, '0')} is not defined`);
  }
  const bodyLength = buf.readUInt16BE(14);
  const length = PROXY_V2_FIXED_LENGTH + bodyLength;
  if (buf.length < length) return null;

  if (cmd === CMD_LOCAL) {
    // The spec: the receiver uses the real endpoints and skips the whole block, family included.
    return { header: { command: 'local', family: 'unspec', source: null, destination: null, spiffeId: null, ssl: null, tlvs: [] }, length };
  }
  if (bodyLength < addressLength) throw malformed(`length ${bodyLength} is shorter than the ${addressLength}-byte address block`);
  const a = PROXY_V2_FIXED_LENGTH;
  let family: ProxyFamily = 'unspec';
  let source: ProxyAddress | null = null;
  let destination: ProxyAddress | null = null;
  if (af === AF_INET) {
    family = proto === STREAM ? 'tcp4' : 'udp4';
    source = { address: formatIpv4(buf, a), port: buf.readUInt16BE(a + 8) };
    destination = { address: formatIpv4(buf, a + 4), port: buf.readUInt16BE(a + 10) };
  } else if (af === AF_INET6) {
    family = proto === STREAM ? 'tcp6' : 'udp6';
    source = { address: formatIpv6(buf, a), port: buf.readUInt16BE(a + 32) };
    destination = { address: formatIpv6(buf, a + 16), port: buf.readUInt16BE(a + 34) };
  } else if (af === AF_UNIX) {
    family = proto === STREAM ? 'unix-stream' : 'unix-dgram';
  }

  const tlvs = readTlvs(buf, a + addressLength, length, 'header');
  let spiffeId: string | null = null;
  let ssl: ProxyV2Header['ssl'] = null;
  for (const t of tlvs) {
    if (t.type === PP2_TYPE_SPIFFE_ID) {
      if (spiffeId !== null) throw malformed('the SPIFFE ID TLV (0xE0) appears twice');
      try {
        spiffeId = utf8.decode(t.value);
      } catch {
        throw malformed('the SPIFFE ID TLV (0xE0) is not valid UTF-8');
      }
    } else if (t.type === PP2_TYPE_SSL) {
      if (ssl !== null) throw malformed('the SSL TLV (0x20) appears twice');
      if (t.value.length < 5) throw malformed(`the SSL TLV has ${t.value.length} bytes; it needs at least 5`);
      let version: string | null = null;
      const base = t.value.byteOffset - buf.byteOffset;
      for (const sub of readTlvs(buf, base + 5, base + t.value.length, 'SSL TLV')) {
        if (sub.type === PP2_SUBTYPE_SSL_VERSION) version = sub.value.toString('latin1');
      }
      ssl = { client: t.value[0]!, verify: t.value.readUInt32BE(1), version };
    }
  }
  return { header: { command: 'proxy', family, source, destination, spiffeId, ssl, tlvs }, length };
}
