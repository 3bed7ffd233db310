// `npm run bench [-- --quick]`: prints the figures of PRODUCT.md §9 that exist so far and writes
// bench/results.md. The sidecar-vs-peers part joins this run when the data plane lands.
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { caTable, runCaBench } from './ca.ts';

const quick = process.argv.includes('--quick');
const log = (s: string): void => void process.stderr.write(`[bench] ${s}\n`);

const started = new Date();
const ca = await runCaBench({ quick, log });
const table = caTable(ca);
const env = `- ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), node ${process.version} (OpenSSL ${process.versions.openssl}), ${quick ? 'quick mode' : 'full mode'}, ${started.toISOString()}`;
const md = `# Tollgate benchmark results\n\nRerun with \`npm run bench\` (or \`npm run bench -- --quick\`).\n\n${env}\n\n## Certificate authority\n\n${table}\n`;
process.stdout.write(`\n${table}\n`);
writeFileSync(new URL('./results.md', import.meta.url), md);
log('wrote bench/results.md');
