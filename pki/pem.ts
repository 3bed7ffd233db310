// PEM <-> DER. Certificates travel as DER on the wire (gRPC) and as PEM on disk.
import { readFileSync } from 'node:fs';
import { TollgateError } from '../common/errors.ts';

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]*?)-----END \1-----/g;

export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export function certsToPem(ders: readonly Uint8Array[]): string {
  return ders.map((d) => toPem('CERTIFICATE', d)).join('');
}

export function parsePemBlocks(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    out.push({ label: m[1]!, der: Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64') });
  }
  return out;
}

/** Every CERTIFICATE block in `text`, in order. `what` names the source for the error message. */
export function pemToCertDers(text: string, what = 'input'): Buffer[] {
  const certs = parsePemBlocks(text).filter((b) => b.label === 'CERTIFICATE').map((b) => b.der);
  if (certs.length === 0) throw new TollgateError('TG_CERT_INVALID', `${what} holds no PEM "CERTIFICATE" block`);
  return certs;
}

/** Accept PEM (any number of certificates) or one raw DER certificate. */
export function readCertificates(data: Buffer, what = 'input'): Buffer[] {
  const head = data.subarray(0, 64).toString('latin1');
  if (head.includes('-----BEGIN')) return pemToCertDers(data.toString('utf8'), what);
  if (data[0] === 0x30) return [data];
  throw new TollgateError('TG_CERT_INVALID', `${what} is neither PEM nor DER`);
}

/** The PKCS#8 DER of the first "PRIVATE KEY" block of a PEM file (e.g. an offline root key). */
export function readPrivateKeyFile(path: string): Buffer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TollgateError('TG_CERT_INVALID', `cannot read key file ${path}: ${(e as Error).message}`, { cause: e });
  }
  const block = parsePemBlocks(text).find((b) => b.label === 'PRIVATE KEY');
  if (!block) throw new TollgateError('TG_CERT_INVALID', `${path} holds no PEM "PRIVATE KEY" block (PKCS#8)`);
  return block.der;
}
