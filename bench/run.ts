// `npm run bench [-- --quick] [--runs N] [--only tollgate,haproxy] [--workers N] [--no-ca] [--no-peers] [--no-rotation]`:
// measures the figures of PRODUCT.md §9 (the CA, the sidecar against peer proxies, then root and
// intermediate rotation under load), prints
// them and writes bench/results.md (+ bench/results.svg). A part that is skipped keeps its section
// from the previous results.md, so a partial run during development does not erase the rest.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { caTable, runCaBench } from './ca.ts';
import { runStorm, stormTable } from './storm.ts';
import { runPeersBench } from './peers.ts';
import { missingFigures, peersSection, peersTables } from './peers-report.ts';
import { peersSvg } from './peers-svg.ts';
import { missingRotationFigures, ROTATION_TITLE, rotationSection, rotationTable, runRotationBench } from './rotation.ts';

const log = (s: string): void => void process.stderr.write(`[bench] ${s}\n`);
const usage = 'usage: npm run bench -- [--quick] [--runs N] [--only direct,tollgate,haproxy,nginx,stunnel] [--workers N] [--no-ca] [--no-peers] [--no-rotation]';

function positiveInt(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[1-9]\d*$/.test(v)) {
    process.stderr.write(`${name} must be a whole number ≥ 1, got ${JSON.stringify(v)}\n${usage}\n`);
    process.exit(2);
  }
  return Number(v);
}

let args;
try {
  args = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      only: { type: 'string' },
      workers: { type: 'string' },
      'no-ca': { type: 'boolean', default: false },
      'no-peers': { type: 'boolean', default: false },
      'no-rotation': { type: 'boolean', default: false },
    },
  }).values;
} catch (e) {
  process.stderr.write(`${(e as Error).message}\n${usage}\n`);
  process.exit(2);
}
const quick = args.quick === true;
const runs = positiveInt(args.runs, '--runs');
const workers = positiveInt(args.workers, '--workers') ?? null;
const only = args.only ? args.only.split(',').map((s) => s.trim()).filter(Boolean) : undefined;

const RESULTS = new URL('./results.md', import.meta.url);
const CA_TITLE = '## Certificate authority';
const PEERS_TITLE = '## Sidecar vs peers';

/** The previous results.md's section starting with `title`, up to the next "## " heading. */
function previousSection(title: string): string | null {
  if (!existsSync(RESULTS)) return null;
  const md = readFileSync(RESULTS, 'utf8');
  const i = md.indexOf(`${title}\n`);
  if (i < 0) return null;
  const next = md.indexOf('\n## ', i + title.length);
  return md.slice(i, next < 0 ? undefined : next + 1).trimEnd();
}

const started = new Date();
let caSection = previousSection(CA_TITLE);
if (!args['no-ca']) {
  const figures = await runCaBench({ quick, log });
  const table = caTable(figures);
  // The storm is served at the rates one CA process just measured.
  const storm = stormTable(runStorm({ sidecars: 10_000, capacityPerSecond: figures.grpcRenewPerSec, firstIssuePerSecond: figures.grpcFirstIssuePerSec, ttlSeconds: 3600, generations: 4 }));
  process.stdout.write(`\n${table}\n\n${storm}\n`);
  caSection = `${CA_TITLE}\n\n${table}\n\n${storm}`;
}

let peersMd = previousSection(PEERS_TITLE);
const missing: string[] = [];
if (!args['no-peers']) {
  const result = await runPeersBench({ quick, ...(runs ? { runs } : {}), ...(only ? { only } : {}), workers, log });
  missing.push(...missingFigures(result));
  process.stdout.write(`\n${peersTables(result)}\n`);
  peersMd = peersSection(result).trimEnd();
  writeFileSync(new URL('./results.svg', import.meta.url), peersSvg(result));
  log('wrote bench/results.svg');
}

let rotationMd = previousSection(ROTATION_TITLE);
if (!args['no-rotation']) {
  const result = await runRotationBench({ quick, log });
  missing.push(...missingRotationFigures(result));
  process.stdout.write(`\n${rotationTable(result)}\n`);
  rotationMd = rotationSection(result);
}

const env = `- ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), node ${process.version} (OpenSSL ${process.versions.openssl}), ${quick ? 'quick mode' : 'full mode'}, ${started.toISOString()}`;
const kept = [args['no-ca'] && caSection ? 'CA' : '', args['no-peers'] && peersMd ? 'sidecar vs peers' : '', args['no-rotation'] && rotationMd ? 'rotation under load' : ''].filter(Boolean);
const keptNote = kept.length ? ` Kept from an earlier run: ${kept.join(', ')}.` : '';
const md = `# Tollgate benchmark results\n\nRerun with \`npm run bench\` (or \`npm run bench -- --quick\`).\n\n${env}.${keptNote}\n\n${[caSection, peersMd, rotationMd].filter(Boolean).join('\n\n')}\n`;
writeFileSync(RESULTS, md);
log('wrote bench/results.md');
// A run that could not produce a figure fails (CI runs `--quick` as a smoke check of the harness).
for (const m of missing) log(`missing figure: ${m}`);
// Handles (readline, timers of finished children) must not keep the bench alive.
process.exit(missing.length ? 1 : 0);
