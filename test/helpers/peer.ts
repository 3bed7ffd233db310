// An outside mTLS peer of a real sidecar: a certificate from the real CA (`tollgate cert issue`) and
// node:tls requests from any loopback address, timed, that report how they ended.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { tollgate } from './procs.ts';

/** What node:tls needs to present a certificate and trust the CA. */
export interface PeerIdentity {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
}

/** A leaf for `spiffeId` from the CA store `caDir`, written under `outDir`. */
export function issuedIdentity(caDir: string, outDir: string, spiffeId: string, ttl = '1h'): PeerIdentity {
  const out = join(outDir, `peer-${spiffeId.split('/').pop()}`);
  const r = tollgate(['cert', 'issue', '--ca-dir', caDir, '--spiffe-id', spiffeId, '--ttl', ttl, '--out', out]);
  if (r.code !== 0) throw new Error(`cert issue failed: ${r.stderr}`);
  return { cert: readFileSync(`${out}.crt`), key: readFileSync(`${out}.key`), ca: readFileSync(join(caDir, 'bundle.pem')) };
}

export interface PeerResult {
  /** The line came back. */
  readonly echoed: boolean;
  /** Everything the peer received. */
  readonly received: string;
  /** How the connection ended: echo received (we closed), closed by the other side, an error, or our timeout. */
  readonly end: 'echoed' | 'closed' | 'error' | 'timeout';
  /** Connect to end, in ms. */
  readonly ms: number;
}

/** One request: connect (from `localAddress`), send `line`, wait (at most `timeoutMs`) for its echo or the end. */
export function peerRequest(o: { port: number; identity: PeerIdentity; line: string; localAddress?: string; timeoutMs?: number }): Promise<PeerResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    let received = '';
    let done = false;
    const finish = (end: PeerResult['end']): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ echoed: end === 'echoed', received, end, ms: performance.now() - started });
    };
    // localAddress reaches net.Socket#connect (tls.connect passes its options on) but is missing from the types.
    const options = { host: '127.0.0.1', port: o.port, localAddress: o.localAddress, ...o.identity, checkServerIdentity: () => undefined };
    const s = tls.connect(options as tls.ConnectionOptions);
    const timer = setTimeout(() => finish('timeout'), o.timeoutMs ?? 10_000);
    s.setEncoding('utf8').on('data', (d: string) => {
      received += d;
      if (received.includes(o.line)) finish('echoed');
    });
    s.on('error', () => finish('error'));
    s.on('close', () => finish('closed'));
    s.write(o.line);
  });
}

/** p50 and max of `values` (ms, rounded), for diagnostics. */
export function latencySummary(values: readonly number[]): { n: number; p50: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { n: sorted.length, p50: Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0), max: Math.round(sorted.at(-1) ?? 0) };
}
