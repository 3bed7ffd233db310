// The real capture rules in real network namespaces: `tollgate capture` (the tollgate-init container)
// runs inside a "pod" namespace joined to a "client" namespace by a veth pair. The addresses
// (10.213.0.0/30, fd21:3::/126) exist only inside those two namespaces. In the pod a small TCP
// server answers with its name on the app ports (8080, 9000) and on the sidecar's listeners (15006,
// 15007), so each connection says where it landed. Both iptables backends, nft and legacy.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { BIN, ROOT } from './helpers/procs.ts';

const SIDECAR_UID = '2102';
const POD_V4 = '10.213.0.2';
const POD_V6 = 'fd21:3::2';
const PORTS = { 8080: 'app:8080', 9000: 'app:9000', 15006: 'sidecar:15006', 15007: 'sidecar:15007' };

function sh(cmd: string, args: string[], input?: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input: input ?? '', timeout: 60_000, cwd: ROOT });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}
const must = (cmd: string, args: string[]): string => {
  const r = sh(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
};
const has = (cmd: string): boolean => sh('sh', ['-c', `command -v ${cmd}`]).code === 0;

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces and apply iptables rules';
  if (!has('ip')) return 'needs `ip` (Debian package iproute2)';
  if (!has('iptables-nft-restore') && !has('iptables-legacy-restore')) return 'needs iptables (Debian package iptables)';
  const probe = `tgprobe${process.pid}`;
  const r = sh('ip', ['netns', 'add', probe]);
  if (r.code !== 0) return `cannot create a network namespace here: ip netns add: ${r.stderr.trim()}`;
  sh('ip', ['netns', 'del', probe]);
  return false;
}
const skip = skipReason();
const modes = skip ? ['nft'] : (['nft', 'legacy'] as const).filter((m) => has(`iptables-${m}-restore`));

/** Connect from inside `ns` (as `uid` when given) and return the first line the server sent. */
function connect(ns: string, host: string, port: number, uid?: string): string {
  const client = `const s = require('net').connect({ host: process.argv[1], port: +process.argv[2] });
let d = ''; s.setEncoding('utf8'); s.on('data', (c) => (d += c));
s.on('end', () => { process.stdout.write(d.trim()); process.exit(0); });
s.on('error', (e) => { process.stdout.write('error:' + e.code); process.exit(0); });
setTimeout(() => { process.stdout.write('timeout'); process.exit(0); }, 5000);`;
  const as = uid ? ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'] : [];
  return must('ip', ['netns', 'exec', ns, ...as, process.execPath, '-e', client, host, String(port)]);
}

function capture(ns: string, args: string[], prefix: string[] = []): { code: number; stdout: string; stderr: string } {
  return sh('ip', ['netns', 'exec', ns, ...prefix, process.execPath, BIN, 'capture', '--inbound', '8080:15006,9000:15007', '--exclude-uid', SIDECAR_UID, ...args]);
}

/** Our rules (and the jumps into them) as the backend's save shows them, counters stripped. */
function savedRules(ns: string, mode: string, family: 'iptables' | 'ip6tables'): string[] {
  return must('ip', ['netns', 'exec', ns, `${family}-${mode}-save`, '-t', 'nat']).split('\n').filter((l) => l.startsWith('-A ')).filter((l) => l.includes('TOLLGATE'));
}

for (const mode of modes) {
  describe(`inbound capture with iptables-${mode}`, { skip }, () => {
    const pod = `tg${process.pid}-pod-${mode}`;
    const cli = `tg${process.pid}-cli-${mode}`;
    let server: ChildProcess | null = null;

    before(async () => {
      for (const ns of [pod, cli]) sh('ip', ['netns', 'del', ns]);
      must('ip', ['netns', 'add', pod]);
      must('ip', ['netns', 'add', cli]);
      must('ip', ['link', 'add', 'veth0', 'netns', cli, 'type', 'veth', 'peer', 'name', 'veth0', 'netns', pod]);
      for (const [ns, n] of [[cli, 1], [pod, 2]] as const) {
        must('ip', ['-n', ns, 'addr', 'add', `10.213.0.${n}/30`, 'dev', 'veth0']);
        must('ip', ['-n', ns, '-6', 'addr', 'add', `fd21:3::${n}/126`, 'dev', 'veth0', 'nodad']);
        must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
        must('ip', ['-n', ns, 'link', 'set', 'veth0', 'up']);
      }
      // The "app" and the "sidecar" stand-in, on every address of the pod (:: is dual-stack).
      const script = `const net = require('net'); const ports = ${JSON.stringify(PORTS)}; let n = 0;
for (const [port, name] of Object.entries(ports)) net.createServer((s) => s.end(name + '\\n')).listen(+port, '::', () => { if (++n === 4) console.log('listening'); });`;
      server = spawn('ip', ['netns', 'exec', pod, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('the pod\'s servers did not start within 10 s')), 10_000);
        createInterface({ input: server!.stdout! }).on('line', (l) => l === 'listening' && (clearTimeout(t), resolve()));
        server!.once('exit', (code) => reject(new Error(`the pod's servers exited with ${code}`)));
      });
    });

    after(() => {
      server?.kill('SIGKILL');
      for (const ns of [pod, cli]) sh('ip', ['netns', 'del', ns]);
    });

    test('without capture, a peer reaches the app directly (the bypass capture closes)', () => {
      assert.equal(connect(cli, POD_V4, 8080), 'app:8080');
      assert.equal(connect(cli, POD_V6, 8080), 'app:8080');
    });

    test('tollgate capture as root without NET_ADMIN fails with exit 1 and says which capabilities it needs', () => {
      const r = capture(pod, ['--mode', mode], ['setpriv', '--bounding-set=-net_admin,-net_raw', '--inh-caps=-net_admin,-net_raw']);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /TG_CAPTURE_FAILED: .*NET_ADMIN and NET_RAW/);
      assert.equal(connect(cli, POD_V4, 8080), 'app:8080', 'nothing was applied');
    });

    test(`tollgate capture --mode ${mode} applies and prints the rules`, () => {
      const r = capture(pod, ['--mode', mode]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^capture applied with iptables-${mode} \\(--mode ${mode}\\)`));
      assert.match(r.stdout, /-A TOLLGATE_INBOUND -p tcp -m tcp --dport 8080 .*-j REDIRECT --to-ports 15006/);
      assert.match(r.stdout, /^ipv6, as ip6tables-/m);
    });

    test('a peer connecting to an app port lands on its sidecar listener, over IPv4 and IPv6', () => {
      assert.equal(connect(cli, POD_V4, 8080), 'sidecar:15006');
      assert.equal(connect(cli, POD_V4, 9000), 'sidecar:15007');
      assert.equal(connect(cli, POD_V6, 8080), 'sidecar:15006');
      assert.equal(connect(cli, POD_V6, 9000), 'sidecar:15007');
    });

    test('loopback inside the pod reaches the app (the sidecar\'s own path to it)', () => {
      assert.equal(connect(pod, '127.0.0.1', 8080), 'app:8080');
      assert.equal(connect(pod, '::1', 9000), 'app:9000');
    });

    test('inside the pod, the pod\'s own address goes to the sidecar, except for the sidecar\'s UID', () => {
      assert.equal(connect(pod, POD_V4, 8080), 'sidecar:15006');
      assert.equal(connect(pod, POD_V6, 8080), 'sidecar:15006');
      assert.equal(connect(pod, POD_V4, 8080, SIDECAR_UID), 'app:8080');
      assert.equal(connect(pod, POD_V6, 9000, SIDECAR_UID), 'app:9000');
    });

    test('running again (an init container restarted) leaves the same rules, and auto mode keeps the backend', () => {
      const before4 = savedRules(pod, mode, 'iptables');
      const before6 = savedRules(pod, mode, 'ip6tables');
      assert.equal(before4.length, 2 + 2 + 4, before4.join('\n'));
      const r = capture(pod, ['--mode', 'auto']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^capture applied with iptables-${mode} \\(iptables-${mode}-save shows \\d+ rule`));
      assert.deepEqual(savedRules(pod, mode, 'iptables'), before4);
      assert.deepEqual(savedRules(pod, mode, 'ip6tables'), before6);
      assert.equal(connect(cli, POD_V4, 8080), 'sidecar:15006');
    });
  });
}

test('tollgate capture without iptables on PATH fails with exit 1 and says what to install', () => {
  const r = spawnSync(process.execPath, [BIN, 'capture', '--inbound', '8080:15006', '--exclude-uid', SIDECAR_UID], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, PATH: '/nonexistent' } });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /TG_CAPTURE_FAILED: iptables is not installed .*install the Debian package iptables/);
});

test('tollgate capture refuses bad flags with exit 2 and prints rules with --dry-run, changing nothing', () => {
  const bad = spawnSync(process.execPath, [BIN, 'capture', '--inbound', '8080:8080', '--exclude-uid', SIDECAR_UID], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /TG_USAGE: 8080:8080 redirects a port to itself/);
  const mode = spawnSync(process.execPath, [BIN, 'capture', '--inbound', '8080:15006', '--exclude-uid', SIDECAR_UID, '--mode', 'bpf'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(mode.status, 2);
  const dry = spawnSync(process.execPath, [BIN, 'capture', '--inbound', '8080:15006', '--exclude-uid', SIDECAR_UID, '--dry-run', '--json'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, PATH: '/nonexistent' } });
  assert.equal(dry.status, 0, dry.stderr);
  const j = JSON.parse(dry.stdout) as { rules: Record<string, string> };
  assert.match(j.rules['ipv4']!, /--dport 8080 .*REDIRECT --to-ports 15006/);
  assert.match(j.rules['ipv6']!, /-d ::1\/128/);
});
