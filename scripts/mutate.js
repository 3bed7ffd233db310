#!/usr/bin/env node
// `npm run mutate`: StrykerJS mutation testing of the security core, then a score per file, checked
// against the floor every file must hold. Stryker's own `thresholds.break` judges the total only; a
// weak file can hide behind strong ones, so the floor is applied here file by file.
//
// By default each file in scope runs on its own, against the unit tests beside it (FOCUS below):
// every file's mutants are then run by a couple of test files instead of every one that happens to
// import it, which makes the whole run fit a 2-core machine. A mutant those tests miss counts as
// alive even if some other test would kill it, so the focused score is a lower bound of the score
// with every test (`--all-tests`, stryker.config.json as it is: much slower).
//
//   npm run mutate                      every file in scope, focused (tens of minutes on 2 cores)
//   npm run mutate -- --quick           the CI subset (QUICK below), a few minutes
//   npm run mutate -- --file pki/csr.ts [--file ...]   chosen files
//   npm run mutate -- --all-tests       one Stryker run with every test file of stryker.config.json
//   npm run mutate -- --summary test/mutation-summary.md   also write the markdown summary
//   npm run mutate -- --report-only     re-read reports/mutation/mutation.json, no run
//   npm run mutate -- --concurrency 1   fewer parallel test processes (default: stryker.config.json)
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const FLOOR = 85;
// Small and fast, yet on the path every peer takes: SPIFFE ID parsing and the policy matcher.
const QUICK = ['pki/spiffe-id.ts', 'sidecar/policy.ts'];
const REPORT = join(root, 'reports/mutation/mutation.json');
/** Each file in scope and the unit tests that speak for it in a focused run. */
const FOCUS = {
  'pki/spiffe-id.ts': ['pki/spiffe-id.test.ts'],
  'pki/svid-validate.ts': ['pki/svid-validate.test.ts'],
  'pki/csr.ts': ['pki/csr.test.ts'],
  'pki/svid-template.ts': ['pki/svid-template.test.ts'],
  'pki/bundle-continuity.ts': ['pki/bundle-continuity.test.ts'],
  'sidecar/policy.ts': ['sidecar/policy.test.ts'],
  'sidecar/policy-parse.ts': ['sidecar/policy.test.ts'],
  'sidecar/peer-identity.ts': ['sidecar/peer-identity.test.ts'],
  'sidecar/peer-leaf.ts': ['sidecar/peer-leaf.test.ts'],
  'sidecar/ca-answers.ts': ['sidecar/ca-answers.test.ts'],
  'ca/attestation/k8s-token.ts': ['ca/attestation/k8s-token.test.ts'],
  'ca/attestation/join-token.ts': ['ca/attestation/join-token.test.ts'],
  'ca/attestation/join-token-store.ts': ['ca/attestation/join-token-store.test.ts', 'ca/attestation/join-token.test.ts'],
  'ca/attestation/svid.ts': ['ca/attestation/svid.test.ts'],
  'ca/attestation/review-guard.ts': ['ca/attestation/review-guard-checks.test.ts', 'ca/attestation/review-guard.test.ts'],
  'ca/issuer.ts': ['ca/issuer.test.ts', 'ca/renewal-horizon.test.ts'],
  'ca/rate-limit.ts': ['ca/rate-limit.test.ts'],
  'ca/deny-list.ts': ['ca/deny-list.test.ts'],
};

const args = process.argv.slice(2);
const files = [];
let summary;
let quick = false;
let reportOnly = false;
let allTests = false;
const passOn = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--quick') quick = true;
  else if (a === '--report-only') reportOnly = true;
  else if (a === '--all-tests') allTests = true;
  else if (a === '--file' && args[i + 1]) files.push(args[++i]);
  else if (a === '--summary' && args[i + 1]) summary = args[++i];
  else if (a === '--concurrency' && args[i + 1]) passOn.push('--concurrency', args[++i]);
  else {
    console.error(`mutate: unknown argument ${a}; see the header of scripts/mutate.js`);
    process.exit(2);
  }
}
if (quick) files.push(...QUICK);

const stryker = join(root, 'node_modules/@stryker-mutator/core/bin/stryker.js');
/** Run Stryker with `configFile`; exit on a crash (1 only means "under thresholds.break"). */
function runStryker(args) {
  const run = spawnSync(process.execPath, [stryker, 'run', ...args, ...passOn], { cwd: root, stdio: 'inherit' });
  if (run.status !== 0 && run.status !== 1) process.exit(run.status ?? 1);
}

if (!reportOnly && allTests) {
  runStryker(files.length ? ['--mutate', files.join(',')] : []);
} else if (!reportOnly) {
  const base = JSON.parse(readFileSync(join(root, 'stryker.config.json'), 'utf8'));
  const targets = files.length ? files : base.mutate;
  const merged = { schemaVersion: '1', thresholds: base.thresholds, files: {} };
  mkdirSync(join(root, 'reports/mutation/focus'), { recursive: true });
  for (const file of targets) {
    const tests = FOCUS[file];
    if (!tests) {
      console.error(`mutate: ${file} has no FOCUS entry in scripts/mutate.js; add its unit tests there`);
      process.exit(2);
    }
    const slug = file.replace(/[^a-z0-9]+/gi, '-');
    const out = join('reports/mutation/focus', `${slug}.json`);
    const config = {
      ...base,
      mutate: [file],
      tap: { ...base.tap, testFiles: tests },
      reporters: ['clear-text', 'progress', 'json'],
      jsonReporter: { fileName: out },
      tempDirName: `.stryker-tmp-${slug}`,
      ignorePatterns: [...base.ignorePatterns, '.stryker-tmp-*'],
    };
    delete config.$schema;
    const configFile = join(root, 'reports/mutation/focus', `${slug}.config.json`);
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    console.log(`\nmutate: ${file} against ${tests.join(', ')}`);
    runStryker([configFile]);
    Object.assign(merged.files, JSON.parse(readFileSync(join(root, out), 'utf8')).files);
  }
  writeFileSync(REPORT, JSON.stringify(merged));
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
    `Written by \`npm run mutate -- --summary ${summary}\` (StrykerJS, tap runner over Node's test runner;${allTests ? ' every test file' : ' each file against the unit tests beside it (FOCUS in scripts/mutate.js): a lower bound'}).`,
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
