// Backends behind the pairs: nginx (one worker) serving a 1 KiB static file, and an iperf3 server.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, HOST, lastLines, start, waitPort, type Proc } from './peers-procs.ts';

export interface Backend {
  readonly port: number;
  readonly proc: Proc;
}

export const FILE_PATH = '/1k.bin';
export const FILE_SIZE = 1024;

export async function startHttpBackend(dir: string): Promise<Backend> {
  mkdirSync(join(dir, 'www'), { recursive: true });
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  writeFileSync(join(dir, 'www', FILE_PATH.slice(1)), randomBytes(FILE_SIZE).toString('base64').slice(0, FILE_SIZE), { mode: 0o644 });
  const port = await freePort();
  const t = (n: string): string => join(dir, 'tmp', n);
  // keepalive_requests high: the keep-alive run must not be cut into new connections by the backend.
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, `worker_processes 1;
worker_rlimit_nofile 8192;
pid ${join(dir, 'nginx.pid')};
events { worker_connections 4000; }
http {
  access_log off;
  default_type application/octet-stream;
  sendfile on;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  client_body_temp_path ${t('body')};
  proxy_temp_path ${t('proxy')};
  fastcgi_temp_path ${t('fastcgi')};
  uwsgi_temp_path ${t('uwsgi')};
  scgi_temp_path ${t('scgi')};
  server {
    listen ${HOST}:${port} backlog=4096;
    root ${join(dir, 'www')};
  }
}
`);
  const proc = start('backend-nginx', 'nginx', ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf, '-g', 'daemon off;'], { logFile: join(dir, 'stderr.log') });
  await waitForOrExit(proc, port);
  return { port, proc };
}

export async function startIperfServer(dir: string): Promise<Backend> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const proc = start('backend-iperf3', 'iperf3', ['-s', '-B', HOST, '-p', String(port), '--idle-timeout', '60'], { logFile: join(dir, 'iperf3-server.log') });
  await waitForOrExit(proc, port);
  return { port, proc };
}

async function waitForOrExit(proc: Proc, port: number): Promise<void> {
  try {
    await Promise.race([waitPort(port), proc.exited.then((c) => Promise.reject(new Error(`${proc.name} exited (${c}): ${lastLines(proc.tail())}`)))]);
  } catch (e) {
    await proc.stop();
    throw e;
  }
}
