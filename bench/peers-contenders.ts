// The contenders: how to start each proxy pair (client side: plaintext in, mTLS out; server side:
// mTLS in, client certificate required, plaintext out to the backend). Configs are adapted from
// ../shared/peer-bench/lib.sh: TLS 1.3 only, one worker each, no session resumption anywhere.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PeerPki } from './peers-pki.ts';
import { SERVER_NAME } from './peers-pki.ts';
import { freePort, have, HOST, lastLines, NGINX_STREAM_MODULE, start, waitPort, type Log, type Proc } from './peers-procs.ts';

/** A running pair. "direct" has no processes: the load goes straight to the backend. */
export interface Pair {
  /** Where the load generator connects (plaintext). */
  readonly inPort: number;
  /** The server side's mTLS listener, for the idle-connection test (null for direct). */
  readonly mtlsPort: number | null;
  readonly client: Proc | null;
  readonly server: Proc | null;
  /** Credentials of a client the server side accepts (idle-connection test). */
  readonly clientCreds: { cert: string; key: string; ca: string } | null;
  stop(): Promise<void>;
}

export interface PairContext {
  /** A fresh directory for this pair's configs and logs. */
  readonly dir: string;
  readonly backendPort: number;
  readonly pki: PeerPki;
  readonly log: Log;
}

export interface Contender {
  readonly name: string;
  /** Why it cannot run here, or null. */
  missing(): string | null;
  /**
   * How long an idle process of this contender takes to give back start-up and load garbage, ms
   * (memory is read after it). Unset: the bench's short settle time.
   */
  readonly idleSettleMs?: number;
  /** One-time set-up before the first pair (e.g. a CA); throws when the contender cannot run. */
  prepare?(dir: string, log: Log): Promise<void>;
  start(ctx: PairContext): Promise<Pair>;
}

export const direct: Contender = {
  name: 'direct',
  missing: () => null,
  start: async (ctx) => ({ inPort: ctx.backendPort, mtlsPort: null, client: null, server: null, clientCreds: null, stop: async () => {} }),
};

interface PairSpec {
  readonly server: { cmd: string; args: string[] };
  readonly client: { cmd: string; args: string[] };
}

/** Start server side then client side, wait until both accept; on failure stop what started. */
async function startPair(ctx: PairContext, name: string, inPort: number, mtlsPort: number, spec: PairSpec): Promise<Pair> {
  const server = start(`${name}-server`, spec.server.cmd, spec.server.args, { logFile: join(ctx.dir, 'server.log') });
  const client = start(`${name}-client`, spec.client.cmd, spec.client.args, { logFile: join(ctx.dir, 'client.log') });
  const stop = async (): Promise<void> => {
    await Promise.all([client.stop(), server.stop()]);
  };
  try {
    await Promise.race([
      Promise.all([waitPort(mtlsPort), waitPort(inPort)]),
      server.exited.then((c) => Promise.reject(new Error(`${name} server side exited (${c}): ${lastLines(server.tail())}`))),
      client.exited.then((c) => Promise.reject(new Error(`${name} client side exited (${c}): ${lastLines(client.tail())}`))),
    ]);
  } catch (e) {
    await stop();
    throw e;
  }
  const { pki } = ctx;
  return { inPort, mtlsPort, client, server, clientCreds: { cert: pki.client.crt, key: pki.client.key, ca: pki.root }, stop };
}

function write(dir: string, file: string, text: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, file), text);
  return join(dir, file);
}

export const haproxy: Contender = {
  name: 'haproxy',
  missing: () => (have('haproxy') ? null : 'haproxy is not installed'),
  async start(ctx) {
    const [inPort, mtlsPort] = [await freePort(), await freePort()];
    const { pki } = ctx;
    // tune.ssl.cachesize 0 + no-tls-tickets (server) and no-ssl-reuse (client): a full handshake per connection.
    const common = `global
  nbthread 1
  maxconn 8000
  tune.ssl.cachesize 0
defaults
  mode tcp
  timeout connect 5s
  timeout client 120s
  timeout server 120s
`;
    const server = write(ctx.dir, 'server.cfg', `${common}frontend mtls_in
  bind ${HOST}:${mtlsPort} ssl crt ${pki.server.pem} ca-file ${pki.root} verify required ssl-min-ver TLSv1.3 no-tls-tickets
  default_backend app
backend app
  server app ${HOST}:${ctx.backendPort}
`);
    const client = write(ctx.dir, 'client.cfg', `${common}frontend plain_in
  bind ${HOST}:${inPort}
  default_backend mtls_out
backend mtls_out
  server peer ${HOST}:${mtlsPort} ssl crt ${pki.client.pem} ca-file ${pki.root} verify required verifyhost ${SERVER_NAME} sni str(${SERVER_NAME}) ssl-min-ver TLSv1.3 no-ssl-reuse
`);
    return startPair(ctx, 'haproxy', inPort, mtlsPort, {
      server: { cmd: 'haproxy', args: ['-db', '-f', server] },
      client: { cmd: 'haproxy', args: ['-db', '-f', client] },
    });
  },
};

export const nginx: Contender = {
  name: 'nginx',
  missing: () => (!have('nginx') ? 'nginx is not installed' : existsSync(NGINX_STREAM_MODULE) ? null : `no ${NGINX_STREAM_MODULE} (apt-get install libnginx-mod-stream)`),
  async start(ctx) {
    const [inPort, mtlsPort] = [await freePort(), await freePort()];
    const { pki } = ctx;
    // worker_rlimit_nofile: the idle test holds 1,000 connections, 2 descriptors each.
    const head = (side: string): string => `load_module ${NGINX_STREAM_MODULE};
worker_processes 1;
worker_rlimit_nofile 8192;
pid ${join(ctx.dir, side, 'nginx.pid')};
events { worker_connections 4000; }
`;
    const server = write(join(ctx.dir, 'server'), 'nginx.conf', `${head('server')}stream {
  server {
    listen ${HOST}:${mtlsPort} ssl backlog=4096;
    ssl_protocols TLSv1.3;
    ssl_certificate ${pki.server.crt};
    ssl_certificate_key ${pki.server.key};
    ssl_client_certificate ${pki.root};
    ssl_verify_client on;
    ssl_verify_depth 2;
    ssl_session_cache off;
    ssl_session_tickets off;
    proxy_pass ${HOST}:${ctx.backendPort};
  }
}
`);
    const client = write(join(ctx.dir, 'client'), 'nginx.conf', `${head('client')}stream {
  server {
    listen ${HOST}:${inPort} backlog=4096;
    proxy_pass ${HOST}:${mtlsPort};
    proxy_ssl on;
    proxy_ssl_protocols TLSv1.3;
    proxy_ssl_certificate ${pki.client.crt};
    proxy_ssl_certificate_key ${pki.client.key};
    proxy_ssl_trusted_certificate ${pki.root};
    proxy_ssl_verify on;
    proxy_ssl_verify_depth 2;
    proxy_ssl_name ${SERVER_NAME};
    proxy_ssl_server_name on;
    proxy_ssl_session_reuse off;
  }
}
`);
    const args = (side: string, conf: string): string[] => ['-p', join(ctx.dir, side), '-e', join(ctx.dir, side, 'error.log'), '-c', conf, '-g', 'daemon off;'];
    return startPair(ctx, 'nginx', inPort, mtlsPort, {
      server: { cmd: 'nginx', args: args('server', server) },
      client: { cmd: 'nginx', args: args('client', client) },
    });
  },
};

export const stunnel: Contender = {
  name: 'stunnel',
  missing: () => (have('stunnel4') ? null : 'stunnel4 is not installed'),
  async start(ctx) {
    const [inPort, mtlsPort] = [await freePort(), await freePort()];
    const { pki } = ctx;
    // One thread per connection by design: stunnel cannot be held to one worker.
    const common = 'foreground = yes\npid =\nsyslog = no\ndebug = 3\n';
    const server = write(ctx.dir, 'server.conf', `${common}[in]
accept = ${HOST}:${mtlsPort}
connect = ${HOST}:${ctx.backendPort}
cert = ${pki.server.crt}
key = ${pki.server.key}
CAfile = ${pki.root}
verifyChain = yes
requireCert = yes
sslVersionMin = TLSv1.3
sessionResume = no
`);
    const client = write(ctx.dir, 'client.conf', `${common}[out]
client = yes
accept = ${HOST}:${inPort}
connect = ${HOST}:${mtlsPort}
cert = ${pki.client.crt}
key = ${pki.client.key}
CAfile = ${pki.root}
verifyChain = yes
checkHost = ${SERVER_NAME}
sni = ${SERVER_NAME}
sslVersionMin = TLSv1.3
sessionResume = no
`);
    return startPair(ctx, 'stunnel', inPort, mtlsPort, {
      server: { cmd: 'stunnel4', args: [server] },
      client: { cmd: 'stunnel4', args: [client] },
    });
  },
};
