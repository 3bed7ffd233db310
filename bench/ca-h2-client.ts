// A lean gRPC client for load generation, in the spirit of h2load: HTTP/2 frames written and read
// directly on one TLS connection, requests pre-encoded (HPACK literals, no dynamic table), so the
// benchmark spends its CPU in the CA and not in a client library. Measured here per unary call:
// grpc-js ~500 µs and node:http2 ~250 µs of client CPU (more than the CA spends answering), this ~60.
//
// It verifies the CA's certificate (bundle roots + SPIFFE ID) as CaClient does. It does not decode
// response headers (no HPACK decoder): a call succeeds when its stream carries exactly one gRPC
// message and ends normally. grpc-js answers a refused unary call with trailers only (no message),
// and the load generator decodes sampled messages in full (bench/ca-load.ts).
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { CA_MESSAGES } from '../common/ca-api.ts';
import { encodeMessage } from '../common/protobuf-wire.ts';
import { certsToPem } from '../pki/pem.ts';
import { checkLeafProfile } from '../pki/svid-validate.ts';
import { parseCertificate } from '../pki/x509.ts';

export const ISSUE_SVID_PATH = '/tollgate.ca.v1.CertificateAuthority/IssueSVID';
export const GET_BUNDLE_PATH = '/tollgate.ca.v1.CertificateAuthority/GetBundle';
/** A gRPC frame holding an empty message (e.g. GetBundleRequest{}). */
export const EMPTY_FRAME = Buffer.alloc(5);

/** A length-prefixed gRPC message frame carrying IssueSVIDRequest{csr, token?}. */
export function issueSvidFrame(csr: Buffer, token?: string): Buffer {
  const msg = encodeMessage(CA_MESSAGES.IssueSVIDRequest, { csr, token });
  const head = Buffer.alloc(5);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}

const enum Frame {
  DATA = 0,
  HEADERS = 1,
  RST_STREAM = 3,
  SETTINGS = 4,
  PING = 6,
  GOAWAY = 7,
  WINDOW_UPDATE = 8,
}
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const BIG_WINDOW = 0x7fffffff;

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const f = Buffer.allocUnsafe(9 + payload.length);
  f.writeUIntBE(payload.length, 0, 3);
  f[3] = type;
  f[4] = flags;
  f.writeUInt32BE(stream, 5);
  payload.copy(f, 9);
  return f;
}

function hpackString(s: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  if (b.length > 126) throw new RangeError('header value too long for this encoder');
  return Buffer.concat([Buffer.from([b.length]), b]);
}

/** HPACK block for a gRPC POST to `path`: static-table names, literal values, never indexed. */
function requestHeaders(path: string): Buffer {
  return Buffer.concat([
    Buffer.from([0x83, 0x87]), // :method POST, :scheme https
    Buffer.from([0x04]), hpackString(path), // :path
    Buffer.from([0x01]), hpackString('tollgate-ca'), // :authority
    Buffer.from([0x0f, 0x10]), hpackString('application/grpc'), // content-type (static index 31)
    Buffer.from([0x00]), hpackString('te'), hpackString('trailers'),
  ]);
}

export interface RawChannelOptions {
  readonly address: string;
  readonly roots: readonly Buffer[];
  readonly serverId: string;
  readonly identity?: { readonly certChainPem: string; readonly keyPem: string } | undefined;
}

interface Pending {
  readonly resolve: (msg: Buffer) => void;
  readonly reject: (e: Error) => void;
  chunks: Buffer[];
}

export class RawGrpcChannel {
  readonly #socket: TLSSocket;
  readonly #streams = new Map<number, Pending>();
  readonly #headers = new Map<string, Buffer>();
  #nextStream = 1;
  #in = Buffer.alloc(0);
  #sendWindow = 65_535; // connection-level, raised by the server's WINDOW_UPDATEs
  #queued: Array<{ frames: Buffer; dataBytes: number }> = [];
  #unacked = 0; // DATA bytes received since our last connection WINDOW_UPDATE
  #failed: Error | undefined;

  constructor(o: RawChannelOptions) {
    const i = o.address.lastIndexOf(':');
    this.#socket = tlsConnect({
      host: o.address.slice(0, i),
      port: Number(o.address.slice(i + 1)),
      ALPNProtocols: ['h2'],
      ca: certsToPem(o.roots),
      ...(o.identity ? { cert: o.identity.certChainPem, key: o.identity.keyPem } : {}),
      servername: 'tollgate-ca',
      checkServerIdentity: (_host, cert) => {
        try {
          const id = checkLeafProfile(parseCertificate(cert.raw), { usage: 'server' });
          return id.id === o.serverId ? undefined : new Error(`CA presented ${id.id}, expected ${o.serverId}`);
        } catch (e) {
          return e as Error;
        }
      },
    });
    this.#socket.setNoDelay(true);
    // Preface; SETTINGS: no push, a stream window that never fills; then a connection window as big.
    const settings = Buffer.from([0, 2, 0, 0, 0, 0, 0, 4, 0x7f, 0xff, 0xff, 0xff]);
    const increment = Buffer.alloc(4);
    increment.writeUInt32BE(BIG_WINDOW - 65_535);
    this.#socket.write(Buffer.concat([PREFACE, frame(Frame.SETTINGS, 0, 0, settings), frame(Frame.WINDOW_UPDATE, 0, 0, increment)]));
    this.#socket.on('secureConnect', () => {
      if (this.#socket.alpnProtocol !== 'h2') this.#socket.destroy(new Error(`the CA did not negotiate HTTP/2 (ALPN ${String(this.#socket.alpnProtocol)})`));
    });
    this.#socket.on('data', (d: Buffer) => this.#onData(d));
    this.#socket.on('error', (e) => this.#fail(e));
    this.#socket.on('close', () => this.#fail(new Error('connection closed')));
  }

  #fail(e: Error): void {
    this.#failed ??= e;
    for (const p of this.#streams.values()) p.reject(e);
    this.#streams.clear();
  }

  #onData(d: Buffer): void {
    let buf = this.#in.length ? Buffer.concat([this.#in, d]) : d;
    let off = 0;
    while (buf.length - off >= 9) {
      const len = buf.readUIntBE(off, 3);
      if (buf.length - off < 9 + len) break;
      this.#onFrame(buf[off + 3]!, buf[off + 4]!, buf.readUInt32BE(off + 5) & 0x7fffffff, buf.subarray(off + 9, off + 9 + len));
      off += 9 + len;
    }
    buf = buf.subarray(off);
    this.#in = buf.length ? Buffer.from(buf) : Buffer.alloc(0);
  }

  #onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    switch (type) {
      case Frame.DATA: {
        const p = this.#streams.get(id);
        const body = flags & PADDED ? payload.subarray(1, payload.length - payload[0]!) : payload;
        if (p && body.length) p.chunks.push(Buffer.from(body));
        this.#unacked += payload.length;
        if (this.#unacked > 1 << 20) {
          const inc = Buffer.alloc(4);
          inc.writeUInt32BE(this.#unacked);
          this.#unacked = 0;
          this.#socket.write(frame(Frame.WINDOW_UPDATE, 0, 0, inc));
        }
        if (flags & END_STREAM) this.#end(id, 'stream ended without trailers');
        break;
      }
      case Frame.HEADERS:
        if (flags & END_STREAM) this.#end(id);
        break;
      case Frame.RST_STREAM:
        this.#end(id, `stream reset by the server (code ${payload.readUInt32BE(0)})`);
        break;
      case Frame.SETTINGS:
        if (!(flags & ACK)) this.#socket.write(frame(Frame.SETTINGS, ACK, 0, Buffer.alloc(0)));
        break;
      case Frame.PING:
        if (!(flags & ACK)) this.#socket.write(frame(Frame.PING, ACK, 0, payload));
        break;
      case Frame.GOAWAY:
        this.#fail(new Error(`GOAWAY from the server (code ${payload.readUInt32BE(4)})`));
        break;
      case Frame.WINDOW_UPDATE:
        if (id === 0) {
          this.#sendWindow += payload.readUInt32BE(0) & 0x7fffffff;
          this.#flush();
        }
        break;
      default: // CONTINUATION and the rest carry nothing a unary call needs
    }
  }

  #end(id: number, error?: string): void {
    const p = this.#streams.get(id);
    if (!p) return;
    this.#streams.delete(id);
    if (error) return p.reject(new Error(error));
    const body = p.chunks.length === 1 ? p.chunks[0]! : Buffer.concat(p.chunks);
    // One message, its 5-byte prefix giving the rest; a refusal has no message at all.
    if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) return p.reject(new Error('call refused or malformed reply (no single gRPC message)'));
    p.resolve(body.subarray(5));
  }

  #flush(): void {
    while (this.#queued.length && this.#sendWindow >= this.#queued[0]!.dataBytes) {
      const next = this.#queued.shift()!;
      this.#sendWindow -= next.dataBytes;
      this.#socket.write(next.frames);
    }
  }

  /** One unary call; resolves with the response message (without its 5-byte prefix). */
  unary(path: string, message: Buffer): Promise<Buffer> {
    if (this.#failed) return Promise.reject(this.#failed);
    let block = this.#headers.get(path);
    if (!block) this.#headers.set(path, (block = requestHeaders(path)));
    const id = this.#nextStream;
    this.#nextStream += 2;
    return new Promise((resolve, reject) => {
      this.#streams.set(id, { resolve, reject, chunks: [] });
      this.#send(Buffer.concat([frame(Frame.HEADERS, END_HEADERS, id, block), frame(Frame.DATA, END_STREAM, id, message)]), message.length);
    });
  }

  #send(frames: Buffer, dataBytes: number): void {
    if (this.#queued.length === 0 && this.#sendWindow >= dataBytes) {
      this.#sendWindow -= dataBytes;
      this.#socket.write(frames);
    } else {
      this.#queued.push({ frames, dataBytes });
    }
  }

  close(): void {
    this.#socket.end();
  }
}
