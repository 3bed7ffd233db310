// bench/results.svg: three panels of bars (keep-alive req/s, new mTLS conn/s, CPU µs per request),
// one bar per contender, each panel on its own scale. Hand-written SVG, no chart library.
import { COST, stat, THROUGHPUT, type Figure, type PeersResult } from './peers-report.ts';

const COLORS: Record<string, string> = { direct: '#9e9e9e', tollgate: '#d9480f', haproxy: '#1c7ed6', nginx: '#37b24d', stunnel: '#ae3ec9' };
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fig = (list: Figure[], key: string): Figure => {
  const f = list.find((x) => x.key === key);
  if (!f) throw new Error(`no figure ${key}`);
  return f;
};

function fmt(v: number): string {
  if (v >= 10_000) return `${(v / 1000).toFixed(1)}k`;
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

export function peersSvg(r: PeersResult): string {
  const panels: { title: string; f: Figure }[] = [
    { title: 'keep-alive req/s (higher is better)', f: fig(THROUGHPUT, 'kaRps') },
    { title: 'new mTLS conn/s (higher is better)', f: fig(THROUGHPUT, 'connRate') },
    { title: 'proxy CPU µs per request (lower is better)', f: fig(COST, 'cpuReq') },
  ];
  // direct has no proxy (no handshake, no proxy CPU) and would flatten the other bars: footnote only.
  const names = r.contenders.filter((c) => !c.skipped && c.name !== 'direct').map((c) => c.name);
  const panelW = 300;
  const plotH = 220;
  const top = 70;
  const width = panelW * panels.length + 20;
  const height = top + plotH + 80;
  const parts: string[] = [];
  panels.forEach((p, i) => {
    const x0 = 20 + i * panelW;
    const values = names.map((n) => ({ n, s: stat(r, n, p.f) }));
    const max = Math.max(1e-9, ...values.map((v) => v.s?.max ?? 0));
    const slot = (panelW - 40) / Math.max(1, names.length);
    const barW = Math.min(40, slot * 0.7);
    parts.push(`<text x="${x0 + (panelW - 20) / 2}" y="${top - 22}" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`);
    parts.push(`<line x1="${x0}" y1="${top + plotH}" x2="${x0 + panelW - 30}" y2="${top + plotH}" stroke="#333"/>`);
    values.forEach(({ n, s }, j) => {
      const cx = Math.round(x0 + 10 + slot * j + slot / 2);
      if (!s) {
        parts.push(`<text x="${cx}" y="${top + plotH - 4}" text-anchor="middle" fill="#888">n/a</text>`);
      } else {
        const h = (s.median / max) * plotH;
        const y = top + plotH - h;
        parts.push(`<rect x="${(cx - barW / 2).toFixed(1)}" y="${y.toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[n] ?? '#555'}"><title>${esc(`${n}: ${fmt(s.median)} (runs: ${fmt(s.min)}–${fmt(s.max)})`)}</title></rect>`);
        if (s.n > 1) {
          // whisker: the range over runs
          const y1 = top + plotH - (s.max / max) * plotH;
          const y2 = top + plotH - (s.min / max) * plotH;
          parts.push(`<line x1="${cx}" y1="${y1.toFixed(1)}" x2="${cx}" y2="${y2.toFixed(1)}" stroke="#000" stroke-width="1.5"/>`);
        }
        parts.push(`<text x="${cx}" y="${(y - 6).toFixed(1)}" text-anchor="middle">${fmt(s.median)}</text>`);
      }
      parts.push(`<text x="${cx}" y="${top + plotH + 16}" text-anchor="middle">${esc(n)}</text>`);
    });
  });
  const d = (key: string): string => {
    const v = stat(r, 'direct', fig(THROUGHPUT, key));
    return v ? fmt(v.median) : 'n/a';
  };
  const direct = r.contenders.some((c) => c.name === 'direct') ? ` No proxy (direct): ${d('kaRps')} req/s, ${d('connRate')} conn/s.` : '';
  const note = `Median of ${r.runs} run(s); whisker = range over runs; one worker per proxy, shared machine.${direct}`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="${width / 2}" y="18" text-anchor="middle" font-size="15" font-weight="bold">Tollgate sidecar pair vs peer mTLS proxies (loopback, TLS 1.3)</text>
${parts.join('\n')}
<text x="${width / 2}" y="${height - 16}" text-anchor="middle" fill="#555">${esc(note)}</text>
</svg>
`;
}
