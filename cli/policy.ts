// `tollgate policy check`: ask the sidecar's own policy code whether a peer may connect.
import type { Command } from 'commander';
import { TollgateError } from '../common/errors.ts';
import { EXIT_FAILURE } from './exit.ts';
import { printJson } from './options.ts';

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('check inbound policies');

  policy
    .command('check')
    .description('say whether a peer SPIFFE ID may connect to a port, and by which rule')
    .requiredOption('--policy <file>', 'the policy file (YAML; see examples/policy.yaml)')
    .requiredOption('--peer <id>', "the peer's SPIFFE ID, e.g. spiffe://example.org/ns/shop/sa/web")
    .option('--port <n>', 'the app port (1-65535); without it, every port in the policy and "default"')
    .option('--trust-domain <td>', "the sidecar's own trust domain (default: the policy's first trustDomains entry)")
    .option('--json', 'print the result as JSON')
    .addHelpText('after', `
The decision comes from the same parser and matcher the sidecar uses. A denial names its reason:
no_rule (no rule matches), trust_domain (the peer's trust domain is not accepted) or invalid_id
(the peer is not a valid SPIFFE ID), and what to change.

Exit codes: with --port, 0 allowed and 1 denied; without --port, 0 if the peer is allowed on at
least one port and 1 otherwise; 2 for usage errors or an invalid policy file.

Examples:
  $ tollgate policy check --policy examples/policy.yaml --peer spiffe://example.org/ns/shop/sa/web --port 8080
  $ tollgate policy check --policy examples/policy.yaml --peer spiffe://example.org/ns/shop/sa/cart
  $ tollgate policy check --policy ./policy.yaml --peer spiffe://partner.io/ns/eu/sa/billing --port 9000 --json
  $ tollgate policy check --policy ./policy.yaml --trust-domain example.org --peer spiffe://example.org/ns/ops/sa/prober --port 8080`)
    .action(async (o: { policy: string; peer: string; port?: string; trustDomain?: string; json?: boolean }) => {
      const port = o.port === undefined ? undefined : Number(o.port);
      if (port !== undefined && !(/^\d+$/.test(o.port!) && port >= 1 && port <= 65535)) {
        throw new TollgateError('TG_USAGE', `--port ${JSON.stringify(o.port)} is not a port number; use an integer 1..65535`);
      }
      const { readSourceFile } = await import('../common/yaml-source.ts');
      const { checkPeer, parsePolicy } = await import('../sidecar/policy.ts');
      const p = parsePolicy(readSourceFile(o.policy, 'policy'), { source: o.policy, ...(o.trustDomain !== undefined ? { ownTrustDomain: o.trustDomain } : {}) });
      const trustDomain = o.trustDomain ?? p.trustDomains[0]!;
      const checks = checkPeer(p, o.peer, port);
      const allowed = checks.some((c) => c.decision.allowed);
      if (!allowed) process.exitCode = EXIT_FAILURE;
      const row = (c: (typeof checks)[number]): Record<string, unknown> => ({ port: c.port, allowed: c.decision.allowed, reason: c.decision.reason, rule: c.decision.rule, hint: c.hint });

      if (o.json) {
        const head = { policy: o.policy, peer: o.peer, trust_domain: trustDomain, trust_domains: p.trustDomains };
        printJson(port !== undefined ? { ...head, ...row(checks[0]!) } : { ...head, allowed, ports: checks.map(row) });
        return;
      }
      if (port !== undefined) {
        const { decision, hint } = checks[0]!;
        if (decision.allowed) process.stdout.write(`allowed: ${o.peer} matches ${decision.rule} on port ${port}\n`);
        else process.stdout.write(`denied: ${o.peer} on port ${port} (reason: ${decision.reason})\n  ${hint}\n`);
        return;
      }
      const table = [['PORT', 'DECISION', 'REASON', 'RULE'], ...checks.map((c) => [String(c.port), c.decision.allowed ? 'allowed' : 'denied', c.decision.reason, c.decision.rule ?? '-'])];
      const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
      process.stdout.write(`peer ${o.peer}, policy ${o.policy}\n`);
      for (const r of table) process.stdout.write(`  ${r.map((cell, i) => (i < r.length - 1 ? cell.padEnd(widths[i]!) : cell)).join('  ')}\n`);
      const on = checks.filter((c) => c.decision.allowed).map((c) => String(c.port));
      if (allowed) process.stdout.write(`allowed on ${on.join(', ')}\n`);
      // A denial everywhere usually has one cause (trust domain, a bad ID); its hint says what to change.
      else process.stdout.write(`denied on every port\n  ${checks[0]!.hint}\n`);
    });
}
