// The DER of a TLS peer's leaf certificate, read once per connection by both proxies.
//
// Node's getPeerX509Certificate() copies the leaf and every certificate of the peer's chain with
// X509_dup, which OpenSSL 3 re-decodes public key included: about 210 µs on a connection's first
// call here, 7 % of each sidecar's CPU under connection churn (node --cpu-prof). The same leaf is the
// peer of the TLS session (the certificate SSL_get0_peer_certificate returns), and getSession()
// serializes that session in about 20 µs. Its ASN.1 form (OpenSSL's ssl/ssl_asn1.c: SEQUENCE {
// version, ..., [3] EXPLICIT Certificate, ... }) has not changed since OpenSSL 1.0; should it ever
// hold no peer or not parse, the public call is the fallback, so the answer is the same either way.
//
// The serialized session also holds the session's secret: the leaf is copied out and the
// serialization zeroed at once, so the secret does not wait in the heap for the garbage collector.
import type { TLSSocket } from 'node:tls';
import { children, readElement, Tag, whole } from '../pki/der.ts';

/** The peer's leaf certificate (DER), or null when the peer presented none. */
export function peerLeafDer(socket: TLSSocket): Buffer | null {
  const session = socket.getSession();
  if (session) {
    const leaf = leafOfSession(session);
    session.fill(0);
    if (leaf) return leaf;
  }
  return socket.getPeerX509Certificate()?.raw ?? null;
}

/** A copy of the peer certificate inside a serialized SSL_SESSION, or null. */
export function leafOfSession(session: Buffer): Buffer | null {
  try {
    const top = readElement(session, 0);
    if (top.tag !== Tag.SEQUENCE || top.end !== session.length) return null;
    for (const field of children(session, top)) {
      if (field.tag !== Tag.CTX3) continue; // SSL_SESSION's [3] peer
      const cert = readElement(session, field.start, field.end);
      return cert.tag === Tag.SEQUENCE && cert.end === field.end ? Buffer.from(whole(session, cert)) : null;
    }
  } catch {
    // not the layout we know: the caller falls back to Node's own call
  }
  return null;
}
