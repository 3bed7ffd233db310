// `tollgate capture`: install the inbound capture rules in this network namespace (the init
// container `tollgate-init` runs it before the sidecar). Rules and backend choice: injector/capture.ts.
import type { Command } from 'commander';
import { TollgateError } from '../common/errors.ts';
import { printJson } from './options.ts';

const MODES = ['auto', 'nft', 'legacy'] as const;

export function registerCapture(program: Command): void {
  program
    .command('capture')
    .description('redirect inbound TCP for the app ports to their sidecar listeners (iptables, nat table)')
    .requiredOption('--inbound <pairs>', 'APP_PORT:LISTEN_PORT pairs, comma-separated, e.g. 8080:15006,9000:15007')
    .requiredOption('--exclude-uid <uid>', "the sidecar's UID, whose connections are never redirected (2102 in Kubernetes)")
    .option('--mode <mode>', 'iptables backend: auto (nft unless this network namespace already uses legacy, or nft does not work), nft or legacy', 'auto')
    .option('--no-ipv6', 'write IPv4 rules only (default: IPv6 too whenever the kernel has IPv6)')
    .option('--dry-run', 'print the rules and change nothing (needs neither root nor iptables)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', `
For each APP_PORT, TCP connections that reach the pod from outside (nat PREROUTING), and connections
made inside the pod to its own address, are redirected to LISTEN_PORT, the sidecar's mTLS listener
for that port. Never redirected: connections from --exclude-uid (the sidecar) and connections to
loopback (the sidecar reaches the app on 127.0.0.1). Other ports and outgoing traffic are untouched.
Rules live in the chains TOLLGATE_INBOUND and TOLLGATE_OUTPUT; a second run replaces them (an init
container may be restarted), in one iptables-restore --noflush transaction that leaves other rules alone.
Needs root with NET_ADMIN and NET_RAW. Prints the rules as the kernel holds them after the run.

Exit codes: 0 applied (or printed, with --dry-run), 1 iptables missing, refused or failed,
2 usage errors.

Examples:
  $ tollgate capture --inbound 8080:15006 --exclude-uid 2102
  $ tollgate capture --inbound 8080:15006,9000:15007 --exclude-uid 2102 --mode legacy
  $ tollgate capture --inbound 8080:15006 --exclude-uid 2102 --dry-run`)
    .action(async (o: { inbound: string; excludeUid: string; mode: string; ipv6: boolean; dryRun?: boolean; json?: boolean }) => {
      if (!(MODES as readonly string[]).includes(o.mode)) throw new TollgateError('TG_USAGE', `--mode ${JSON.stringify(o.mode)}: use auto, nft or legacy`);
      if (!/^\d{1,10}$/.test(o.excludeUid)) throw new TollgateError('TG_USAGE', `--exclude-uid ${JSON.stringify(o.excludeUid)} is not a numeric UID; the sidecar runs as 2102`);
      const mode = o.mode as (typeof MODES)[number];
      const { captureRules, parseInboundPorts, validateCaptureSpec } = await import('../injector/capture.ts');
      const spec = validateCaptureSpec({ inbound: parseInboundPorts(o.inbound), excludeUid: Number(o.excludeUid) });
      const families = o.ipv6 ? (['ipv4', 'ipv6'] as const) : (['ipv4'] as const);

      if (o.dryRun) {
        const rules = Object.fromEntries(families.map((f) => [f, captureRules(spec, { family: f })]));
        if (o.json) printJson({ dry_run: true, mode, inbound: spec.inbound, exclude_uid: spec.excludeUid, rules });
        else for (const f of families) process.stdout.write(`# ${f} (iptables-restore --noflush input)\n${rules[f]}`);
        return;
      }
      const { applyCapture } = await import('../injector/capture-run.ts');
      const r = await applyCapture({ spec, mode, ...(o.ipv6 ? {} : { ipv6: false }) });
      if (o.json) {
        printJson({ applied: true, mode: r.mode, reason: r.reason, inbound: spec.inbound, exclude_uid: spec.excludeUid, families: r.families.map((f) => ({ family: f.family, command: f.command, rules: f.rules })), skipped: r.skipped });
        return;
      }
      const out: string[] = [`capture applied with iptables-${r.mode} (${r.reason})`];
      for (const p of spec.inbound) out.push(`  tcp ${p.appPort} -> sidecar ${p.listenPort}`);
      out.push(`  never redirected: UID ${spec.excludeUid} (the sidecar), loopback`);
      for (const f of r.families) out.push(`${f.family}, as ${f.command.replace(/-restore$/, '-save')} shows it:`, ...f.rules.map((l) => `  ${l}`));
      for (const s of r.skipped) out.push(`skipped ${s}`);
      process.stdout.write(`${out.join('\n')}\n`);
    });
}
