// No-capture mode: a real CA and real sidecars in a network namespace the test creates, next to an
// "app" that listens on :: (every address: reachable around the sidecar) for port 8080 and on
// 127.0.0.1 only for port 9000. The sidecar with `capture: none` (the default) reports port 8080 in
// /readyz, in tollgate_app_ports_exposed and in its log, and stays ready; with `capture: iptables`
// it reports nothing. The namespace keeps the listener on :: off the machine's own addresses.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createJoinToken, initCa } from './helpers/ca-fixture.ts';
import { metricSample } from './helpers/mesh-fixture.ts';
import { waitFor } from './helpers/sidecar-fixture.ts';
import { startTollgate, tempDir, type Started } from './helpers/procs.ts';

const ns = `tg${process.pid}-exposure`;
const inNs = ['ip', 'netns', 'exec', ns];
const sh = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root to create a network namespace';
  if (sh('sh', ['-c', 'command -v ip && command -v curl']).status !== 0) return 'needs `ip` (iproute2) and curl';
  return false;
}
const skip = skipReason();

const tmp = tempDir();
const started: Started[] = [];
let app: ChildProcess | null = null;
let caPort = 0;

/** GET a URL from inside the namespace (the sidecar's admin port is its loopback). */
function get(url: string): { status: number; body: string } {
  const r = sh('ip', ['netns', 'exec', ns, 'curl', '-s', '-w', '\n%{http_code}', url]);
  const lines = r.stdout.trimEnd().split('\n');
  return { status: Number(lines.pop()), body: lines.join('\n') };
}

async function sidecar(name: string, capture: string | null): Promise<{ admin: number; proc: Started }> {
  const id = `spiffe://example.org/ns/shop/sa/${name}`;
  writeFileSync(join(tmp.dir, 'policy.yaml'), 'trustDomains: [example.org]\nports: {}\n');
  const config = join(tmp.dir, `${name}.yaml`);
  writeFileSync(config, [
    'trustDomain: example.org',
    `ca: { address: "127.0.0.1:${caPort}", bundleFile: ${JSON.stringify(join(tmp.dir, 'ca', 'bundle.pem'))} }`,
    `attestation: { joinToken: ${createJoinToken(join(tmp.dir, 'ca'), id)} }`,
    'admin: { listen: "127.0.0.1:0" }',
    'inbound:',
    '  - { listen: "0.0.0.0:0", appPort: 8080 }',
    '  - { listen: "0.0.0.0:0", appPort: 9000 }',
    `policy: { file: ${JSON.stringify(join(tmp.dir, 'policy.yaml'))} }`,
    ...(capture ? [`capture: ${capture}`] : []),
  ].join('\n'));
  const proc = await startTollgate(['sidecar', 'run', '--config', config], 20_000, inNs);
  started.push(proc);
  return { admin: proc.ready.admin_port as number, proc };
}

before(async () => {
  if (skip) return;
  sh('ip', ['netns', 'del', ns]);
  assert.equal(sh('ip', ['netns', 'add', ns]).status, 0);
  assert.equal(sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']).status, 0);
  const script = `const net = require('net'); let n = 0; const up = () => ++n === 2 && console.log('listening');
net.createServer((s) => s.end()).listen(8080, '::', up); net.createServer((s) => s.end()).listen(9000, '127.0.0.1', up);`;
  app = spawn('ip', [...inNs.slice(1), process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('the app did not start within 10 s')), 10_000);
    createInterface({ input: app!.stdout! }).on('line', (l) => l === 'listening' && (clearTimeout(t), resolve()));
  });
  initCa(join(tmp.dir, 'ca'));
  const ca = await startTollgate(['ca', 'serve', '--dir', join(tmp.dir, 'ca'), '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--audit-log', join(tmp.dir, 'audit.log')], 20_000, inNs);
  started.push(ca);
  caPort = ca.ready.grpc_port as number;
});

after(async () => {
  for (const p of started.reverse()) await p.stop();
  app?.kill('SIGKILL');
  sh('ip', ['netns', 'del', ns]);
  tmp.cleanup();
});

test('capture: none (the default): the app port on :: is reported in /readyz, the gauge and the log; the sidecar stays ready', { skip }, async () => {
  const s = await sidecar('open', null);
  // The check runs just after the ready line (off the start-to-ready path), so wait for its log line.
  const logged = /"level":"warn","msg":"app port 8080 listens on ::.*"event":"app_port_exposed"/;
  await waitFor(() => logged.test(s.proc.stderr()), 'the app_port_exposed log line');
  const ready = get(`http://127.0.0.1:${s.admin}/readyz`);
  assert.equal(ready.status, 200, ready.body);
  assert.match(ready.body, /^ready: SVID .*; WARNING: app port 8080 listens on ::, reachable around the sidecar because traffic capture is off; bind the app to 127\.0\.0\.1:8080/);
  assert.doesNotMatch(ready.body, /app port 9000/);
  assert.equal(metricSample(get(`http://127.0.0.1:${s.admin}/metrics`).body, 'tollgate_app_ports_exposed'), 1);
});

test('capture: iptables: nothing is reported (the rules send peers to the sidecar whatever the app binds)', { skip }, async () => {
  const s = await sidecar('captured', 'iptables');
  const ready = get(`http://127.0.0.1:${s.admin}/readyz`);
  assert.equal(ready.status, 200, ready.body);
  assert.doesNotMatch(ready.body, /WARNING/);
  assert.equal(metricSample(get(`http://127.0.0.1:${s.admin}/metrics`).body, 'tollgate_app_ports_exposed'), 0);
  assert.doesNotMatch(s.proc.stderr(), /app_port_exposed/);
});
