// Inbound traffic capture (PRODUCT.md §7): the rules the `tollgate-init` container installs in the
// pod's network namespace so that a peer can reach a declared app port only through the sidecar.
// Pure: builds `iptables-restore` input and decides the iptables backend from what the probes saw;
// running the commands is injector/capture-run.ts.
//
// Design (simpler than Istio's istio-iptables and Linkerd's proxy-init, which capture every port
// and read the original destination with SO_ORIGINAL_DST, which Node cannot): one REDIRECT per
// declared app port to that port's own sidecar listener, in the nat table.
//   PREROUTING → TOLLGATE_INBOUND: everything that arrives from outside the pod.
//   OUTPUT → TOLLGATE_OUTPUT: connections made inside the pod to its own address (they leave on
//     `lo`). Connections from the sidecar's UID are never redirected (whatever app address it is
//     given, it reaches the app and never loops into itself), nor is anything to loopback (the
//     sidecar reaches the app on 127.0.0.1, and the app may call itself there). Other containers of
//     the pod calling the pod's own address on an app port are redirected like any peer: the one
//     path to the app without mTLS is loopback, with capture as without it (no-capture mode binds
//     the app to 127.0.0.1). Traffic leaving the pod is not touched: outbound is explicit.
// Both IPv4 and IPv6 get the same rules, so a dual-stack peer cannot go around them.
// Idempotent: the chains are declared (created, or flushed when they exist) and the jumps into
// them that an earlier run left are deleted before one of each is inserted first in its chain,
// in one `iptables-restore --noflush` transaction that leaves every other rule alone.
import { TollgateError } from '../common/errors.ts';

export interface InboundCapture {
  /** The app's port: connections to it are redirected. */
  readonly appPort: number;
  /** The sidecar's inbound listener for that port. */
  readonly listenPort: number;
}

export interface CaptureSpec {
  readonly inbound: readonly InboundCapture[];
  /** The sidecar's UID: its connections are never redirected. */
  readonly excludeUid: number;
}

export type IptablesMode = 'nft' | 'legacy';
export type IpFamily = 'ipv4' | 'ipv6';

export const CAPTURE_CHAINS = Object.freeze({ inbound: 'TOLLGATE_INBOUND', output: 'TOLLGATE_OUTPUT' });

const LOOPBACK: Record<IpFamily, string> = { ipv4: '127.0.0.0/8', ipv6: '::1/128' };

/** The iptables command of a backend and family, e.g. `ip6tables-legacy`; add `-save` or `-restore`. */
export function iptablesCommand(mode: IptablesMode, family: IpFamily): string {
  return `${family === 'ipv6' ? 'ip6tables' : 'iptables'}-${mode}`;
}

const isPort = (n: number): boolean => Number.isInteger(n) && n >= 1 && n <= 65535;

/** `--inbound 8080:15006,9000:15007` → [{appPort: 8080, listenPort: 15006}, ...]; throws TG_USAGE. */
export function parseInboundPorts(text: string): InboundCapture[] {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new TollgateError('TG_USAGE', '--inbound is empty; give APP_PORT:LISTEN_PORT pairs, e.g. 8080:15006,9000:15007');
  return items.map((item) => {
    const m = /^(\d{1,5}):(\d{1,5})$/.exec(item);
    if (!m || !isPort(Number(m[1])) || !isPort(Number(m[2]))) {
      throw new TollgateError('TG_USAGE', `--inbound item ${JSON.stringify(item)} is not APP_PORT:LISTEN_PORT with ports 1..65535, e.g. 8080:15006`);
    }
    return { appPort: Number(m[1]), listenPort: Number(m[2]) };
  });
}

/** Check that the spec can be applied as meant; throws TG_USAGE saying what to change. */
export function validateCaptureSpec(spec: CaptureSpec): CaptureSpec {
  if (spec.inbound.length === 0) throw new TollgateError('TG_USAGE', 'no inbound ports to capture; give at least one APP_PORT:LISTEN_PORT');
  if (!Number.isInteger(spec.excludeUid) || spec.excludeUid < 0 || spec.excludeUid > 0xfffffffe) {
    throw new TollgateError('TG_USAGE', `--exclude-uid ${spec.excludeUid} is not a UID; give the sidecar's numeric UID, e.g. 2102`);
  }
  if (spec.excludeUid === 0) {
    throw new TollgateError('TG_USAGE', '--exclude-uid 0 would exempt every root process in the pod from capture; run the sidecar as its own UID (2102) and give that');
  }
  const apps = new Set<number>();
  const listens = new Set<number>();
  for (const { appPort, listenPort } of spec.inbound) {
    if (!isPort(appPort) || !isPort(listenPort)) throw new TollgateError('TG_USAGE', `${appPort}:${listenPort} is not a pair of ports 1..65535`);
    if (appPort === listenPort) throw new TollgateError('TG_USAGE', `${appPort}:${listenPort} redirects a port to itself; the sidecar listens on its own port (15006 and up)`);
    if (apps.has(appPort)) throw new TollgateError('TG_USAGE', `app port ${appPort} is given twice; each app port has one sidecar listener`);
    if (listens.has(listenPort)) throw new TollgateError('TG_USAGE', `listener port ${listenPort} is given twice; each app port needs its own sidecar listener`);
    apps.add(appPort);
    listens.add(listenPort);
  }
  const both = [...listens].find((p) => apps.has(p));
  if (both !== undefined) throw new TollgateError('TG_USAGE', `port ${both} is both an app port and a sidecar listener; the sidecar's listeners must be ports the app does not use`);
  return spec;
}

// A jump into one of our chains, as iptables-save prints it (any matches, old versions' too).
const OUR_JUMP = new RegExp(`^-A (PREROUTING|OUTPUT) (.* )?-j (${CAPTURE_CHAINS.inbound}|${CAPTURE_CHAINS.output})( |$)`);

/** The `-A` lines of an `iptables-save -t nat` text that jump into our chains. */
export function existingJumps(natSave: string): string[] {
  return natSave.split('\n').filter((l) => OUR_JUMP.test(l));
}

/** Number of rules (`-A` lines) in an `iptables-save` text: 0 means the backend holds no rules here. */
export function countRules(save: string): number {
  return save.split('\n').filter((l) => l.startsWith('-A ')).length;
}

/** The lines of an `iptables-save -t nat` text that are ours: our chains, their rules, the jumps into them. */
export function ourRules(natSave: string): string[] {
  const ours = new RegExp(`^(:(${CAPTURE_CHAINS.inbound}|${CAPTURE_CHAINS.output}) |-A (${CAPTURE_CHAINS.inbound}|${CAPTURE_CHAINS.output}) )`);
  return natSave.split('\n').filter((l) => ours.test(l) || OUR_JUMP.test(l));
}

/**
 * The `iptables-restore --noflush` input that installs the capture for one family. `natSave` is
 * the nat table as it is now (`iptables-save -t nat`), so that the jumps an earlier run left are
 * deleted; the result is the same rules whether it is the first run or the tenth.
 */
export function captureRules(spec: CaptureSpec, o: { family: IpFamily; natSave?: string }): string {
  const { inbound: IN, output: OUT } = CAPTURE_CHAINS;
  const lines = [
    '# Tollgate inbound capture (tollgate capture); replaces its own chains and jumps on every run.',
    '*nat',
    `:${IN} - [0:0]`,
    `:${OUT} - [0:0]`,
    ...existingJumps(o.natSave ?? '').map((l) => `-D${l.slice(2)}`),
    // First in their chains: a rule that accepted earlier would end the nat lookup before ours.
    `-I PREROUTING 1 -p tcp -m comment --comment "tollgate: inbound capture" -j ${IN}`,
    `-I OUTPUT 1 -p tcp -m comment --comment "tollgate: connections inside the pod to its own address" -j ${OUT}`,
    ...spec.inbound.map(({ appPort, listenPort }) =>
      `-A ${IN} -p tcp -m tcp --dport ${appPort} -m comment --comment "tollgate: app port ${appPort} to sidecar ${listenPort}" -j REDIRECT --to-ports ${listenPort}`),
    `-A ${OUT} -m owner --uid-owner ${spec.excludeUid} -m comment --comment "tollgate: the sidecar is never redirected" -j RETURN`,
    `-A ${OUT} -d ${LOOPBACK[o.family]} -m comment --comment "tollgate: loopback is never redirected" -j RETURN`,
    `-A ${OUT} ! -o lo -j RETURN`,
    `-A ${OUT} -j ${IN}`,
    'COMMIT',
  ];
  return `${lines.join('\n')}\n`;
}

/** What a backend's `iptables-save` did when asked for this network namespace's rules. */
export type BackendProbe =
  | { readonly state: 'missing' }
  | { readonly state: 'failed'; readonly error: string }
  | { readonly state: 'ok'; readonly save: string };

export interface ModeChoice {
  readonly mode: IptablesMode;
  readonly reason: string;
}

const firstLine = (s: string): string => s.trim().split('\n')[0] ?? '';

/**
 * The backend to use. nft unless this network namespace's rules live in legacy (a host or CNI
 * that uses it; a previous run of ours in legacy mode) or nft does not work on this kernel
 * (linkerd2#9053: "Could not fetch rule set generation id" on older kernels); legacy alone fails on
 * kernels without ip_tables (linkerd2#7749), hence nft first. Rules are read with both
 * `iptables-*-save`, as Istio's and Kubernetes' iptables wrappers do. Throws TG_CAPTURE_FAILED
 * when neither backend works.
 */
export function chooseMode(o: { requested: IptablesMode | 'auto'; nft: BackendProbe; legacy: BackendProbe }): ModeChoice {
  if (o.requested !== 'auto') return { mode: o.requested, reason: `--mode ${o.requested}` };
  const { nft, legacy } = o;
  const nftRules = nft.state === 'ok' ? countRules(nft.save) : 0;
  const legacyRules = legacy.state === 'ok' ? countRules(legacy.save) : 0;
  if (legacyRules > 0 && nftRules === 0) {
    return { mode: 'legacy', reason: `iptables-legacy-save shows ${legacyRules} rule(s) in this network namespace and iptables-nft-save none` };
  }
  if (nft.state === 'ok') {
    const reason = nftRules > 0 ? `iptables-nft-save shows ${nftRules} rule(s) in this network namespace` : 'no rules in this network namespace yet; nft is the default';
    return { mode: 'nft', reason };
  }
  if (legacy.state === 'ok') {
    const why = nft.state === 'missing' ? 'iptables-nft-save is not installed' : `iptables-nft-save failed (${firstLine(nft.error)}): this kernel may lack nf_tables`;
    return { mode: 'legacy', reason: why };
  }
  if (nft.state === 'missing' && legacy.state === 'missing') {
    throw new TollgateError('TG_CAPTURE_FAILED', 'iptables is not installed (neither iptables-nft-save nor iptables-legacy-save is on PATH); install the Debian package iptables (the Tollgate image has it)');
  }
  const said = [nft, legacy].map((p, i) => `${i === 0 ? 'iptables-nft-save' : 'iptables-legacy-save'}: ${p.state === 'failed' ? firstLine(p.error) : 'not installed'}`);
  throw explainFailure('iptables-nft-save', [nft, legacy].map((p) => (p.state === 'failed' ? p.error : '')).join('\n'), `neither iptables backend works here (${said.join('; ')})`);
}

/** A TollgateError for a failed iptables command, saying what to do about the usual causes. */
export function explainFailure(command: string, stderr: string, what = `${command} failed: ${firstLine(stderr) || 'no message'}`): TollgateError {
  let hint = 'see the message above; --dry-run prints the rules without applying them';
  if (/permission denied|you must be root|operation not permitted/i.test(stderr)) {
    hint = 'permission denied: the capture container must run as root with the NET_ADMIN and NET_RAW capabilities '
      + '(securityContext: runAsUser: 0, capabilities.add: [NET_ADMIN, NET_RAW]); where NET_ADMIN is forbidden, '
      + 'use capture: none and bind the app to 127.0.0.1';
  } else if (/generation id|can't initialize|table does not exist|do you need to insmod|not supported|protocol not supported/i.test(stderr)) {
    hint = 'this kernel does not support that iptables backend; try the other one with --mode nft or --mode legacy';
  }
  return new TollgateError('TG_CAPTURE_FAILED', `${what}; ${hint}`, { details: { command } });
}
