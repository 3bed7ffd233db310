// The `tollgate` command. Wiring only: each command group lives in its own file, the logic in ca/,
// sidecar/, injector/ and pki/.
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerCa } from './ca.ts';
import { registerCapture } from './capture.ts';
import { registerCert } from './cert.ts';
import { registerDemo } from './demo.ts';
import { registerInject } from './inject.ts';
import { registerSidecar } from './sidecar.ts';
import { registerPolicy } from './policy.ts';
import { describeError, exitCodeFor } from './exit.ts';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command('tollgate')
    .description('Tollgate: a small service mesh. A SPIFFE certificate authority and a mutual-TLS sidecar.')
    .version(pkg.version)
    .showHelpAfterError('(run with --help for usage and examples)')
    .exitOverride();
  registerCa(program);
  registerCert(program);
  registerSidecar(program);
  registerPolicy(program);
  registerDemo(program);
  registerCapture(program);
  registerInject(program, pkg.version);
  for (const c of program.commands) {
    c.exitOverride();
    for (const sub of c.commands) sub.exitOverride();
  }
  program.addHelpText('after', `
Examples:
  $ tollgate ca init --trust-domain example.org --dir ./ca
  $ tollgate cert issue --ca-dir ./ca --spiffe-id spiffe://example.org/ns/shop/sa/web --out ./web
  $ tollgate cert inspect ./web.crt --bundle ./ca/bundle.pem
  $ tollgate policy check --policy examples/policy.yaml --peer spiffe://example.org/ns/shop/sa/web --port 8080
  $ tollgate inject -f web.yaml --bundle ./ca/bundle.pem

Exit codes: 0 ok, 1 failure, 2 usage or bad input.`);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    const msg = describeError(e);
    if (msg) process.stderr.write(`${msg}\n`);
    return exitCodeFor(e);
  }
}

/** Run this process's command line (bin/tollgate.js calls this, from the sources or the bundle). */
export async function run(): Promise<void> {
  const code = await main(process.argv);
  if (code !== 0) process.exitCode = code;
}
