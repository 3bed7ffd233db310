// Applies the capture rules of injector/capture.ts with the real iptables commands (the edge: the
// decisions are in capture.ts). Used by `tollgate capture`, the init container `tollgate-init`.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { TollgateError } from '../common/errors.ts';
import {
  CAPTURE_CHAINS,
  captureRules,
  chooseMode,
  explainFailure,
  existingJumps,
  iptablesCommand,
  ourRules,
  validateCaptureSpec,
  type BackendProbe,
  type CaptureSpec,
  type IpFamily,
  type IptablesMode,
} from './capture.ts';

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command; null when it is not installed. */
export type RunCommand = (command: string, args: readonly string[], stdin?: string) => Promise<CommandResult | null>;

export const runCommand: RunCommand = (command, args, stdin) =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => {}); // a command that exits before reading: its exit code says why
    child.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? resolve(null) : reject(e)));
    child.on('close', (code, signal) =>
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    child.stdin.end(stdin ?? '');
  });

export interface ApplyCaptureOptions {
  readonly spec: CaptureSpec;
  readonly mode: IptablesMode | 'auto';
  /** Whether to write IPv6 rules too; default: when the kernel has IPv6 (/proc/net/if_inet6). */
  readonly ipv6?: boolean;
  readonly run?: RunCommand;
}

export interface AppliedFamily {
  readonly family: IpFamily;
  /** The restore command that applied `input`. */
  readonly command: string;
  readonly input: string;
  /** Our lines of the nat table as the kernel holds them after the run. */
  readonly rules: readonly string[];
}

export interface CaptureResult {
  readonly mode: IptablesMode;
  readonly reason: string;
  readonly families: readonly AppliedFamily[];
  /** Families left out, and why. */
  readonly skipped: readonly string[];
}

export function kernelHasIpv6(): boolean {
  return existsSync('/proc/net/if_inet6');
}

async function probe(run: RunCommand, mode: IptablesMode): Promise<BackendProbe> {
  const r = await run(`${iptablesCommand(mode, 'ipv4')}-save`, []);
  if (r === null) return { state: 'missing' };
  return r.code === 0 ? { state: 'ok', save: r.stdout } : { state: 'failed', error: r.stderr || `exit code ${r.code}` };
}

async function mustRun(run: RunCommand, command: string, args: readonly string[], stdin?: string): Promise<CommandResult> {
  const r = await run(command, args, stdin);
  if (r === null) {
    throw new TollgateError('TG_CAPTURE_FAILED', `${command} is not installed (not on PATH); install the Debian package iptables (the Tollgate image has it) or pick the other backend with --mode`);
  }
  if (r.code !== 0) throw explainFailure(command, r.stderr);
  return r;
}

/** Install the capture rules in this process's network namespace. Throws TG_USAGE or TG_CAPTURE_FAILED. */
export async function applyCapture(o: ApplyCaptureOptions): Promise<CaptureResult> {
  const spec = validateCaptureSpec(o.spec);
  const run = o.run ?? runCommand;
  const choice = o.mode === 'auto'
    ? chooseMode({ requested: 'auto', nft: await probe(run, 'nft'), legacy: await probe(run, 'legacy') })
    : chooseMode({ requested: o.mode, nft: { state: 'missing' }, legacy: { state: 'missing' } });
  const ipv6 = o.ipv6 ?? kernelHasIpv6();
  const families: IpFamily[] = ipv6 ? ['ipv4', 'ipv6'] : ['ipv4'];
  const applied: AppliedFamily[] = [];
  for (const family of families) {
    const cmd = iptablesCommand(choice.mode, family);
    const before = await mustRun(run, `${cmd}-save`, ['-t', 'nat']);
    const input = captureRules(spec, { family, natSave: before.stdout });
    await mustRun(run, `${cmd}-restore`, ['--noflush', '--wait', '10'], input);
    const after = (await mustRun(run, `${cmd}-save`, ['-t', 'nat'])).stdout;
    // Read back: exactly one jump into each chain, and every rule of ours, or the run did not do what it says.
    const rules = ourRules(after);
    const expected = spec.inbound.length + 4;
    const inChains = rules.filter((l) => l.startsWith(`-A ${CAPTURE_CHAINS.inbound} `) || l.startsWith(`-A ${CAPTURE_CHAINS.output} `)).length;
    if (existingJumps(after).length !== 2 || inChains !== expected) {
      throw new TollgateError('TG_CAPTURE_FAILED', `${cmd}-restore succeeded but ${cmd}-save shows ${existingJumps(after).length} jump(s) and ${inChains} rule(s) instead of 2 and ${expected}:\n${rules.join('\n')}`);
    }
    applied.push({ family, command: `${cmd}-restore`, input, rules });
  }
  return { mode: choice.mode, reason: choice.reason, families: applied, skipped: ipv6 ? [] : ['ipv6: this kernel has no IPv6 (/proc/net/if_inet6 is missing)'] };
}
