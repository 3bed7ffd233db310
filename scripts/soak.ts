// `npm run soak [-- --minutes N] [--json] [--ttl DUR] [--ca-down SECONDS] [--keep-logs DIR]`: the soak of issue 14 with
// real processes on loopback (test/helpers/soak.ts; the engine is shared with test/soak.test.ts, which
// runs a short form of it inside `npm test`). Prints one row per process (open descriptors, V8 heap
// in use, RSS: start / end / max) and the requests, renewals, policy reloads and CA restarts; exits 1
// on any failed request or descriptor leak (FD_SLACK), 2 on bad arguments.
import { parseArgs } from 'node:util';
import { formatSoak } from '../test/helpers/soak-report.ts';
import { runSoak } from '../test/helpers/soak.ts';

const HELP = `usage: npm run soak -- [--minutes N] [--json] [--ttl DUR] [--ca-down SECONDS] [--keep-logs DIR]

Starts tollgate ca serve, two tollgate sidecar run processes (web -> orders) and an HTTP app on
127.0.0.1, warms up until both sidecars renewed once, then for N minutes (default 10) sends requests
on keep-alive and on new connections through the pair while SVIDs of DUR (default 15s) renew, the
orders policy is rewritten and SIGHUPed every 4 s (once with a wider allow-list), and the CA is
killed half-way and started again SECONDS (default 3) later. Exit 0 only with no failed request,
no descriptor leak, every policy write applied. --keep-logs DIR writes the CA's and both sidecars'
logs and the failed requests (with their times) to DIR at the end.

Examples:
  npm run soak
  npm run soak -- --minutes 5
  npm run soak -- --minutes 1 --json`;

function usage(why: string): never {
  process.stderr.write(`soak: ${why}\n\n${HELP}\n`);
  process.exit(2);
}

let args;
try {
  args = parseArgs({
    options: {
      minutes: { type: 'string', default: '10' },
      json: { type: 'boolean', default: false },
      ttl: { type: 'string', default: '15s' },
      'ca-down': { type: 'string', default: '3' },
      'keep-logs': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values;
} catch (e) {
  usage((e as Error).message);
}
if (args.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}
const minutes = Number(args.minutes);
const caDown = Number(args['ca-down']);
if (!(minutes > 0 && minutes <= 24 * 60)) usage(`--minutes must be a number of minutes above 0 (up to a day), got ${args.minutes}`);
if (!(caDown >= 0 && caDown <= 600)) usage(`--ca-down must be seconds between 0 and 600, got ${args['ca-down']}`);

const started = Date.now();
const result = await runSoak({
  loadMs: minutes * 60_000,
  ttl: args.ttl,
  caDownMs: caDown * 1000,
  ...(args['keep-logs'] ? { logDir: args['keep-logs'] } : {}),
  log: args.json ? undefined : (line) => process.stderr.write(`soak: ${line}\n`),
});
if (args.json) process.stdout.write(`${JSON.stringify({ ok: result.problems.length === 0, wallMs: Date.now() - started, ...result }, null, 2)}\n`);
else process.stdout.write(`\n${formatSoak(result)}\n`);
process.exitCode = result.problems.length === 0 ? 0 : 1;
