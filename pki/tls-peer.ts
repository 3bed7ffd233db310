// The chain a TLS peer presented, as DER leaf-first, from Node's getPeerCertificate(true) links.
import type { DetailedPeerCertificate } from 'node:tls';

export function peerCertificateChain(peer: DetailedPeerCertificate | undefined, max = 16): Buffer[] {
  const out: Buffer[] = [];
  let cur: DetailedPeerCertificate | undefined = peer;
  while (cur?.raw && out.length < max) {
    const raw: Buffer = cur.raw;
    if (out.some((d) => d.equals(raw))) break; // a self-signed root is its own issuer
    out.push(Buffer.from(raw));
    const next: DetailedPeerCertificate | undefined = cur.issuerCertificate;
    if (next === cur) break;
    cur = next;
  }
  return out;
}
