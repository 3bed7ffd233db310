// Rotation under load (PRODUCT.md §9: "rotation of root and intermediate under load: 0 failed
// requests"). The Tollgate pair of the peers bench (our CA, a client-side and a server-side sidecar
// with join tokens, the nginx backend), with short-lived leaves, under paced load: ~1,000 req/s
// on 10 keep-alive connections (10 ms after each answer, as wrk's paced.lua in the peers bench's latency
// run) plus ~100 new mTLS connections/s (`Connection: close`), while `tollgate ca rotate root` and
// then `tollgate ca rotate intermediate` run to completion. Each rotation's window lasts from just
// before the command starts until both sidecars have renewed after it finished, so what its last
// step set off (the old root leaving every bundle) shows in its figures. The load is
// bench/rotation-load.ts, not wrk: the sidecars close each connection at its peer certificate's notAfter
// (at a quiet moment), which wrk would count as an error although no request was lost; see there.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FILE_PATH, FILE_SIZE, startHttpBackend } from './peers-backends.ts';
import { sanityGet } from './peers-load.ts';
import { CLIENT_ID, SERVER_ID } from './peers-pki.ts';
import { ensureTools, freePort, have, HOST, installCleanupHandlers, runBounded, stopAll, waitPort, type Log } from './peers-procs.ts';
import { startPacedLoad, type PacedLoadResult } from './rotation-load.ts';
import { startSidecar, startTollgateCa, token, writeSidecarConfig } from './peers-tollgate.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin/tollgate.js');
const OUT = fileURLToPath(new URL('./out/rotation/', import.meta.url));
const KINDS = ['root', 'intermediate'] as const;
type Kind = (typeof KINDS)[number];

interface Settings {
  /** Leaf lifetime (`ca serve --default-ttl/--max-ttl`, the sidecars' svid.ttl). */
  readonly ttl: string;
  readonly ttlSeconds: number;
}
const QUICK: Settings = { ttl: '8s', ttlSeconds: 8 };
const FULL: Settings = { ttl: '30s', ttlSeconds: 30 };

export interface RotationRow {
  readonly kind: Kind;
  /** Milliseconds: command start → prepared, prepared → activated (sidecars converged), activated → retired (old leaves gone). */
  readonly prepareMs?: number;
  readonly activateMs?: number;
  readonly retireMs?: number;
  readonly totalMs?: number;
  /** The paced load over the whole window: keep-alive, and a new connection per request. */
  readonly keepAlive?: PacedLoadResult;
  readonly close?: PacedLoadResult;
  /** Refused or failed mTLS connections counted by both sidecars (inbound and outbound) in the window. */
  readonly refused?: number;
  readonly error?: string;
}

export interface RotationResult {
  readonly rows: RotationRow[];
  readonly settings: string[];
  /** Why the bench could not run at all. */
  readonly error?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const msg = (e: unknown): string => (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ').trim();

async function metrics(adminPort: number): Promise<string> {
  return (await fetch(`http://${HOST}:${adminPort}/metrics`)).text();
}

/** Sum of tollgate_{inbound,outbound}_connections_total with result refused or error. */
export function refusedConnections(text: string): number {
  let n = 0;
  for (const m of text.matchAll(/^tollgate_(?:inbound|outbound)_connections_total\{[^}]*result="(?:refused|error)"[^}]*\} (\d+)$/gm)) n += Number(m[1]);
  return n;
}

function renewals(text: string): number {
  return Number(/^tollgate_svid_renewals_total\{result="ok"\} (\d+)$/m.exec(text)?.[1] ?? 0);
}

async function rotateOnce(kind: Kind, o: { caDir: string; caAdmin: number; admins: number[]; port: number; dir: string; s: Settings; log: Log }): Promise<RotationRow> {
  const sidecarMetrics = (): Promise<string[]> => Promise.all(o.admins.map(metrics));
  const before = (await sidecarMetrics()).reduce((n, t) => n + refusedConnections(t), 0);
  const load = { port: o.port, host: HOST, path: FILE_PATH, size: FILE_SIZE, intervalMs: 10 };
  const ka = startPacedLoad({ ...load, lanes: 10, keepAlive: true });
  const close = startPacedLoad({ ...load, lanes: 1, keepAlive: false });
  let row: RotationRow = { kind };
  try {
    await sleep(1000); // the load is flowing before the command starts
    o.log(`rotation: tollgate ca rotate ${kind} under ~1,000 req/s + ~100 new connections/s`);
    const t0 = Date.now();
    const r = await runBounded(process.execPath, [BIN, 'ca', 'rotate', kind, '--dir', o.caDir, '--ca-admin', `${HOST}:${o.caAdmin}`, '--json', '--poll', '500ms', '--settle', '2s', '--timeout', '5m'], 10 * 60_000, ROOT);
    const t1 = Date.now();
    writeFileSync(join(o.dir, `ca-rotate-${kind}.jsonl`), r.stdout + r.stderr);
    const events = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { event: string; phase?: string; time?: string });
    const at = (phase: string): number => Date.parse(events.findLast((e) => e.event === 'phase' && e.phase === phase)?.time ?? '');
    if (r.code !== 0) throw new Error(`tollgate ca rotate ${kind} exited ${r.code}: ${r.stderr.trim().slice(-400)}`);
    row = { kind, prepareMs: at('prepared') - t0, activateMs: at('activated') - at('prepared'), retireMs: at('done') - at('activated'), totalMs: t1 - t0 };
    // The window closes once both sidecars have renewed after the rotation (bounded).
    const r0 = (await sidecarMetrics()).map(renewals);
    const until = Date.now() + 3 * o.s.ttlSeconds * 1000;
    while (Date.now() < until && !(await sidecarMetrics()).map(renewals).every((n, i) => n > r0[i]!)) await sleep(200);
  } catch (e) {
    row = { ...row, error: msg(e).slice(0, 400) };
  }
  const refused = (await sidecarMetrics()).reduce((n, t) => n + refusedConnections(t), 0) - before;
  const [k, c] = await Promise.all([ka.stop(), close.stop()]);
  const failures = [...k.failures, ...c.failures];
  const notes = [row.error, failures.length ? `first failures: ${failures.slice(0, 3).join('; ')}` : ''].filter(Boolean).join('; ');
  return { ...row, refused, keepAlive: k, close: c, ...(notes ? { error: notes } : {}) };
}

export async function runRotationBench(o: { quick: boolean; log: Log }): Promise<RotationResult> {
  const s = o.quick ? QUICK : FULL;
  const settings = [
    `- leaves of ${s.ttl} (\`ca serve --default-ttl ${s.ttl} --max-ttl ${s.ttl}\`; sidecars renew every 40–60 % of that), root 2 h and intermediates 1 h (\`ca init --root-lifetime 2h --intermediate-lifetime 1h\`)`,
    '- load through the client-side sidecar → mTLS → server-side sidecar → nginx (bench/rotation-load.ts): 10 keep-alive connections, each a GET 10 ms after the previous answer (~1,000 req/s), plus one loop of `Connection: close` GETs (~100 new mTLS connections/s). A request is failed if it was written and no whole 200 answer came back within 5 s. The sidecars close each connection at its peer certificate\'s notAfter, at a quiet moment just before; a keep-alive connection closed between requests is reopened and counted in its own column (wrk would count each as a read error although no request was lost)',
    '- `tollgate ca rotate root`, then `tollgate ca rotate intermediate`, each `--ca-admin --json --poll 500ms --settle 2s`; a window lasts from 1 s before the command until both sidecars renewed after it finished',
  ];
  installCleanupHandlers(o.log);
  await ensureTools(o.log);
  if (!have('nginx')) return { rows: [], settings, error: 'nginx is missing (apt-get install nginx)' };
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  const rows: RotationRow[] = [];
  try {
    const backend = await startHttpBackend(join(OUT, 'backend'));
    const ttlArgs = ['--default-ttl', s.ttl, '--max-ttl', s.ttl];
    const ca = await startTollgateCa(OUT, { initArgs: ['--root-lifetime', '2h', '--intermediate-lifetime', '1h'], serveArgs: [...ttlArgs, '--store-poll', '500ms'] });
    const [inPort, mtlsPort] = [await freePort(), await freePort()];
    const [serverToken, clientToken] = await Promise.all([token(ca, SERVER_ID), token(ca, CLIENT_ID)]);
    const serverFile = writeSidecarConfig(OUT, 'server', { ca, token: serverToken, ttl: s.ttl, inbound: { listen: mtlsPort, appPort: backend.port } });
    const clientFile = writeSidecarConfig(OUT, 'client', { ca, token: clientToken, ttl: s.ttl, outbound: { listen: inPort, upstream: mtlsPort } });
    const server = await startSidecar('tollgate-server', serverFile, join(OUT, 'server.log'), null);
    const client = await startSidecar('tollgate-client', clientFile, join(OUT, 'client.log'), null);
    await Promise.all([waitPort(mtlsPort), waitPort(inPort)]);
    const bad = await sanityGet(inPort, FILE_PATH, FILE_SIZE);
    if (bad) throw new Error(`GET ${FILE_PATH} through the sidecars failed: ${bad}`);
    const admins = [Number(server.ready.admin_port), Number(client.ready.admin_port)];
    for (const kind of KINDS) {
      rows.push(await rotateOnce(kind, { caDir: ca.dir, caAdmin: ca.adminPort, admins, port: inPort, dir: OUT, s, log: o.log }));
    }
  } catch (e) {
    return { rows, settings, error: msg(e).slice(0, 400) };
  } finally {
    await stopAll();
  }
  return { rows, settings };
}

const int = (n: number | undefined): string => (n === undefined ? '–' : Math.round(n).toLocaleString('en-US'));
const secs = (ms: number | undefined): string => (ms === undefined || Number.isNaN(ms) ? '–' : (ms / 1000).toFixed(1));

/** Requests sent and failed (written, no whole 200 answer) in a row, both loads. */
function requests(r: RotationRow): { sent?: number; failed?: number } {
  if (!r.keepAlive || !r.close) return {};
  return { sent: r.keepAlive.requests + r.close.requests, failed: r.keepAlive.failed + r.close.failed };
}

export function rotationTable(r: RotationResult): string {
  const head = [
    '| rotation | requests sent (keep-alive + new connection) | failed (written, no whole 200 answer) | refused handshakes (sidecar metrics) | vs target (0 failed, 0 refused) | keep-alive connections closed between requests at certificate expiry (reopened) | rotation s | prepare s | wait for sidecars + activate s | wait for old leaves + retire s |',
    '|---|--:|--:|--:|---|--:|--:|--:|--:|--:|',
  ];
  const rows = r.rows.map((x) => {
    const q = requests(x);
    const sent = q.sent === undefined ? '–' : `${int(q.sent)} (${int(x.keepAlive!.requests)} + ${int(x.close!.requests)})`;
    const target = q.failed === undefined || x.refused === undefined ? '–' : q.failed === 0 && x.refused === 0 ? 'met' : 'MISSED';
    return `| ${x.kind} | ${sent} | ${int(q.failed)} | ${int(x.refused)} | ${target} | ${int(x.keepAlive?.closedIdle)} | ${secs(x.totalMs)} | ${secs(x.prepareMs)} | ${secs(x.activateMs)} | ${secs(x.retireMs)} |`;
  });
  const notes = [...(r.error ? [`not run to the end: ${r.error}`] : []), ...r.rows.filter((x) => x.error).map((x) => `${x.kind}: ${x.error}`)];
  return [...head, ...rows, ...notes.map((n) => `\n- ${n}`)].join('\n');
}

export const ROTATION_TITLE = '## Rotation under load';

export function rotationSection(r: RotationResult): string {
  return `${ROTATION_TITLE}\n\nPRODUCT.md §9: 0 failed requests while the root, then the intermediate, is rotated under load.\n\n${r.settings.join('\n')}\n\n${rotationTable(r)}`;
}

/** Every figure the section promises that the run did not produce (the `--quick` smoke check). */
export function missingRotationFigures(r: RotationResult): string[] {
  if (r.error && r.rows.length === 0) return [`rotation: not run: ${r.error}`];
  const out: string[] = [];
  for (const kind of KINDS) {
    const x = r.rows.find((y) => y.kind === kind);
    const why = x?.error ?? r.error ?? 'not run';
    if (!x) out.push(`rotation ${kind}: no figures (${why})`);
    else {
      const q = requests(x);
      const wanted: [string, number | undefined][] = [['requests sent', q.sent], ['failed', q.failed], ['refused handshakes', x.refused], ['duration', x.totalMs], ['phase durations', (x.prepareMs ?? NaN) + (x.activateMs ?? NaN) + (x.retireMs ?? NaN)]];
      for (const [label, v] of wanted) if (v === undefined || !Number.isFinite(v)) out.push(`rotation ${kind}: no ${label} (${why})`);
    }
  }
  return out;
}
