// What the TLS layer knows about a gRPC caller. grpc-js's getAuthContext() returns nothing for a
// client certificate that OpenSSL did not verify, but renewal must tell "no certificate" apart from
// "expired" or "foreign CA" to refuse with the right code. So we find the call's TLS socket (the
// same object getAuthContext reads) and verify the presented chain ourselves (ca/attestation/svid.ts).
import type { TLSSocket } from 'node:tls';
import type * as grpc from '@grpc/grpc-js';
import { peerCertificateChain } from '../pki/tls-peer.ts';

export interface PeerInfo {
  readonly address: string;
  /** DER certificates the client presented, leaf first; empty when it sent none. */
  readonly chain: readonly Buffer[];
}

function findSocket(call: unknown): TLSSocket | undefined {
  let c = (call as { call?: unknown }).call;
  for (let depth = 0; c && depth < 8; depth++) {
    const stream = (c as { stream?: { session?: { socket?: unknown } } }).stream;
    const socket = stream?.session?.socket as TLSSocket | undefined;
    if (socket && typeof socket.getPeerCertificate === 'function') return socket;
    c = (c as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}

export function peerAddress(call: { getPeer(): string }): string {
  const p = call.getPeer();
  // "ipv4:1.2.3.4:555", "ipv6:[::1]:555" or "1.2.3.4:555": keep the host only (rate limits are per host).
  const body = p.replace(/^ipv[46]:/, '');
  const m = /^\[?([^\]]+?)\]?:\d+$/.exec(body);
  return m ? m[1]! : body;
}

// What a connection presented is read once per connection: getPeerCertificate(true) builds objects
// for every certificate and costs more than issuing a leaf. A connection's client chain cannot
// change once renegotiation is off (TLS 1.3 has none; for TLS 1.2 we turn it off here).
const connections = new WeakMap<TLSSocket, PeerInfo>();

export function connectionPeer(socket: TLSSocket, call: { getPeer(): string }): PeerInfo {
  let info = connections.get(socket);
  if (!info) {
    socket.disableRenegotiation();
    info = Object.freeze({ address: peerAddress(call), chain: Object.freeze(peerCertificateChain(socket.getPeerCertificate(true), 5)) });
    connections.set(socket, info);
  }
  return info;
}

export function peerInfo(call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>): PeerInfo {
  const socket = findSocket(call);
  if (!socket) {
    const auth = call.getAuthContext?.();
    const raw = auth?.sslPeerCertificate?.raw;
    return { address: peerAddress(call), chain: raw ? [raw] : [] };
  }
  return connectionPeer(socket, call);
}
