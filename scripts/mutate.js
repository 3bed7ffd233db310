#!/usr/bin/env node
// `npm run mutate`: StrykerJS mutation testing of the security core (the `mutate` list in
// stryker.config.json), then a score per file, checked against the floor every file must hold.
// Stryker's own `thresholds.break` judges the total only; a weak file can hide behind strong ones,
// so the floor is applied here file by file.
//
//   npm run mutate                      every file in scope (tens of minutes on 2 cores)
//   npm run mutate -- --quick           the CI subset (QUICK below), a few minutes
//   npm run mutate -- --file pki/csr.ts [--file ...]   chosen files
//   npm run mutate -- --summary test/mutation-summary.md   also write the markdown summary
//   npm run mutate -- --report-only     re-read reports/mutation/mutation.json, no run
//   npm run mutate -- --concurrency 1   fewer parallel test processes (default: stryker.config.json)
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const FLOOR = 85;
// Small and fast, yet on the path every peer takes: SPIFFE ID parsing and the policy matcher.
const QUICK = ['pki/spiffe-id.ts', 'sidecar/policy.ts'];
const REPORT = join(root, 'reports/mutation/mutation.json');

const args = process.argv.slice(2);
const files = [];
let summary;
let quick = false;
let reportOnly = false;
const passOn = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--quick') quick = true;
  else if (a === '--report-only') reportOnly = true;
  else if (a === '--file' && args[i + 1]) files.push(args[++i]);
  else if (a === '--summary' && args[i + 1]) summary = args[++i];
  else if (a === '--concurrency' && args[i + 1]) passOn.push('--concurrency', args[++i]);
  else {
    console.error(`mutate: unknown argument ${a}; see the header of scripts/mutate.js`);
    process.exit(2);
  }
}
if (quick) files.push(...QUICK);

if (!reportOnly) {
  const stryker = join(root, 'node_modules/@stryker-mutator/core/bin/stryker.js');
  const run = spawnSync(process.execPath, [stryker, 'run', ...(files.length ? ['--mutate', files.join(',')] : []), ...passOn], {
    cwd: root,
    stdio: 'inherit',
  });
  // Stryker exits 1 when the total is under thresholds.break; the per-file check below decides.
  if (run.status !== 0 && run.status !== 1) process.exit(run.status ?? 1);
}

/** Stryker's mutation score: detected / valid, where ignored and erroring mutants are not valid. */
function scoreOf(mutants) {
  const n = (s) => mutants.filter((m) => m.status === s).length;
  const detected = n('Killed') + n('Timeout');
  const undetected = n('Survived') + n('NoCoverage');
  const valid = detected + undetected;
  return {
    killed: n('Killed'),
    timeout: n('Timeout'),
    survived: n('Survived'),
    noCoverage: n('NoCoverage'),
    ignored: n('Ignored'),
    errors: n('RuntimeError') + n('CompileError'),
    score: valid === 0 ? 100 : (100 * detected) / valid,
  };
}

const report = JSON.parse(readFileSync(REPORT, 'utf8'));
const rows = Object.entries(report.files)
  .filter(([f]) => files.length === 0 || files.includes(f))
  .map(([file, v]) => ({ file, ...scoreOf(v.mutants), mutants: v.mutants }))
  .sort((a, b) => a.file.localeCompare(b.file));
const low = rows.filter((r) => r.score < FLOOR);

const table = [
  '| file | score | killed | timeout | survived | no coverage | ignored |',
  '|---|--:|--:|--:|--:|--:|--:|',
  ...rows.map(
    (r) => `| ${r.file} | ${r.score.toFixed(1)} % | ${r.killed} | ${r.timeout} | ${r.survived} | ${r.noCoverage} | ${r.ignored} |`,
  ),
];
console.log(`\nmutation score per file (floor ${FLOOR} %):\n${table.join('\n')}`);

if (summary) {
  const survivors = rows.flatMap((r) =>
    r.mutants
      .filter((m) => m.status === 'Survived' || m.status === 'NoCoverage')
      .map((m) => `- ${r.file}:${m.location.start.line}:${m.location.start.column} ${m.mutatorName} (${m.status}) → \`${String(m.replacement ?? '').replace(/\s+/g, ' ').slice(0, 100)}\``),
  );
  const md = [
    '# Mutation testing of the security core',
    '',
    `Written by \`npm run mutate -- --summary ${summary}\` (StrykerJS, tap runner over Node's test runner).`,
    `Every file in scope must score at least ${FLOOR} %. Ignored mutants are equivalent ones, each marked in`,
    'the code with a `// Stryker disable` comment that says why.',
    '',
    ...table,
    '',
    '## Mutants left alive',
    '',
    ...(survivors.length ? survivors : ['none']),
    '',
  ];
  writeFileSync(join(root, summary), md.join('\n'));
  console.log(`summary written to ${summary}`);
}

if (low.length > 0) {
  console.error(`mutate: under the ${FLOOR} % floor: ${low.map((r) => `${r.file} ${r.score.toFixed(1)} %`).join(', ')}`);
  process.exit(1);
}
console.log(`mutate: every file at or above ${FLOOR} %`);
