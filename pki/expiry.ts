// `tollgate cert expiry FILE|HOST:PORT [--warn 33%]` (PRODUCT.md §4, "no silent expiry"): is any
// certificate of a file or of a served chain inside its warning window (the last N% of its own
// life) or expired? For cron and CI: the verdict is the worst certificate's.
import { TollgateError } from '../common/errors.ts';
import { formatDuration } from '../common/duration.ts';
import { parseCertificate } from './x509.ts';
import { bytes, x509 } from './x509-lib.ts';

export type ExpiryState = 'ok' | 'warning' | 'expired' | 'not_yet_valid';

export interface CertificateExpiry {
  subject: string;
  serial: string;
  not_before: string;
  not_after: string;
  /** Negative once expired. */
  expires_in_seconds: number;
  /** When the last `warn` share of its life begins. */
  warning_from: string;
  state: ExpiryState;
}

export interface ExpiryReport {
  target: string;
  /** The warning window as a share of each certificate's life, e.g. 0.33. */
  warn: number;
  /** The worst state of any certificate. */
  state: ExpiryState;
  certificates: CertificateExpiry[];
}

/** "33%" → 0.33. The default is PRODUCT.md's last third of life. */
export function parseWarn(text: string): number {
  const m = /^(\d+(?:\.\d+)?)%$/.exec(text.trim());
  const n = m ? Number(m[1]) / 100 : NaN;
  if (!(n > 0 && n < 1)) throw new TollgateError('TG_USAGE', `--warn ${JSON.stringify(text)} is not a share of life between 0% and 100%; write e.g. 33%`);
  return n;
}

const RANK: Record<ExpiryState, number> = { ok: 0, warning: 1, not_yet_valid: 2, expired: 3 };

export function checkExpiry(chainDer: readonly Buffer[], o: { target: string; now: number; warn: number }): ExpiryReport {
  if (chainDer.length === 0) throw new TollgateError('TG_CERT_INVALID', `${o.target} holds no certificate`);
  const certificates = chainDer.map((der, i): CertificateExpiry => {
    let p: ReturnType<typeof parseCertificate>;
    let subject: string;
    try {
      p = parseCertificate(der);
      subject = new x509.X509Certificate(bytes(der)).subject;
    } catch (e) {
      throw new TollgateError('TG_CERT_INVALID', `certificate ${i} of ${o.target} is not a valid X.509 certificate: ${(e as Error).message}`, { cause: e });
    }
    const from = p.notAfter - (p.notAfter - p.notBefore) * o.warn;
    const state: ExpiryState = o.now >= p.notAfter ? 'expired' : o.now < p.notBefore ? 'not_yet_valid' : o.now >= from ? 'warning' : 'ok';
    return {
      subject,
      serial: p.serialHex,
      not_before: new Date(p.notBefore).toISOString(),
      not_after: new Date(p.notAfter).toISOString(),
      expires_in_seconds: Math.floor((p.notAfter - o.now) / 1000),
      warning_from: new Date(Math.floor(from)).toISOString(),
      state,
    };
  });
  const state = certificates.reduce<ExpiryState>((w, c) => (RANK[c.state] > RANK[w] ? c.state : w), 'ok');
  return { target: o.target, warn: o.warn, state, certificates };
}

export function formatExpiry(r: ExpiryReport): string {
  const lines = [`${r.target}: ${r.state.toUpperCase().replace(/_/g, ' ')} (warning window: the last ${Math.round(r.warn * 100)}% of each certificate's life)`];
  for (const c of r.certificates) {
    const left = c.expires_in_seconds < 0 ? `expired ${formatDuration(-c.expires_in_seconds * 1000)} ago` : `${formatDuration(c.expires_in_seconds * 1000)} left`;
    lines.push(`  ${c.state.padEnd(13)} ${c.not_after}  ${left.padEnd(18)} ${c.subject || '(empty subject)'}  serial ${c.serial}`);
  }
  return `${lines.join('\n')}\n`;
}
