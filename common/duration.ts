// Durations as operators write them: 90s, 10m, 1h, 24h, 7d, or a bare number of seconds.
import { TollgateError } from './errors.ts';

const UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(text: string, what = 'duration'): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(String(text).trim());
  if (!m) throw new TollgateError('TG_USAGE', `${what} ${JSON.stringify(text)} is not a duration; write e.g. 30s, 10m, 1h or 7d`);
  const ms = Number(m[1]) * UNIT[m[2] ?? 's']!;
  if (!(ms > 0) || !Number.isFinite(ms)) throw new TollgateError('TG_USAGE', `${what} must be greater than zero`);
  return Math.round(ms);
}

export function formatDuration(ms: number): string {
  const neg = ms < 0;
  let s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const parts = d ? [`${d}d`, h ? `${h}h` : ''] : h ? [`${h}h`, m ? `${m}m` : ''] : m ? [`${m}m`, s ? `${s}s` : ''] : [`${s}s`];
  return (neg ? '-' : '') + parts.filter(Boolean).join('');
}
