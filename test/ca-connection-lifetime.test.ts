// Streams and connection lifetime on a real `tollgate ca serve` (issue 13 problem 1; README "Security
// model"): the CA advertises --max-streams-per-connection in its HTTP/2 SETTINGS and a call past it
// waits for a free stream; a connection with no call in progress is closed after
// --connection-idle-timeout; a connection with a call in progress is told to go away (GOAWAY) at
// --max-connection-age and its call still ends normally. Raw node:http2 clients over TLS, so the
// connection itself is observable.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { join } from 'node:path';
import { certsToPem } from '../pki/pem.ts';
import { initCa, startCa, type RunningTestCa } from './helpers/ca-fixture.ts';
import { tempDir } from './helpers/procs.ts';

const WATCH = '/tollgate.ca.v1.CertificateAuthority/WatchBundle';
const GET = '/tollgate.ca.v1.CertificateAuthority/GetBundle';
const tmp = tempDir('tollgate-conn-life-');
const cas: RunningTestCa[] = [];
after(async () => {
  await Promise.all(cas.map((c) => c.stop()));
  tmp.cleanup();
});

async function ca(name: string, extra: string[]): Promise<RunningTestCa> {
  const dir = join(tmp.dir, name);
  initCa(dir);
  const c = await startCa(dir, extra);
  cas.push(c);
  return c;
}

function session(c: RunningTestCa): ClientHttp2Session {
  return connect(`https://127.0.0.1:${c.grpcPort}`, { ca: certsToPem(c.roots), servername: 'tollgate-ca', checkServerIdentity: () => undefined });
}

/** Wait for `p`, bounded (liveness: generous, never a speed threshold). */
async function within<T>(p: Promise<T>, what: string, ms = 30_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** An empty request message (no report), gRPC-framed. */
const EMPTY = Buffer.from([0, 0, 0, 0, 0]);

function call(s: ClientHttp2Session, path: string): { stream: ClientHttp2Stream; data: Promise<void>; closed: Promise<string | undefined> } {
  const stream = s.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
  stream.on('error', () => {});
  const data = new Promise<void>((resolve) => stream.once('data', () => resolve()));
  let status: string | undefined;
  stream.on('trailers', (h) => (status = String(h['grpc-status'])));
  stream.on('response', (h) => (status ??= h['grpc-status'] === undefined ? undefined : String(h['grpc-status'])));
  const closed = new Promise<string | undefined>((resolve) => stream.once('close', () => resolve(status)));
  stream.end(EMPTY);
  return { stream, data, closed };
}

test('--max-streams-per-connection is advertised, and a call past it waits until a stream is free', async () => {
  const c = await ca('streams', ['--max-streams-per-connection', '2']);
  const s = session(c);
  try {
    await new Promise<void>((resolve) => s.once('remoteSettings', () => resolve()));
    assert.equal(s.remoteSettings.maxConcurrentStreams, 2);
    const [w1, w2] = [call(s, WATCH), call(s, WATCH)];
    const w3 = call(s, WATCH);
    let third = false;
    void w3.data.then(() => (third = true));
    await Promise.all([w1.data, w2.data]);
    assert.equal(third, false, 'the third watch was served while two held the connection');
    w1.stream.close();
    await w3.data;
    w2.stream.close();
    w3.stream.close();
  } finally {
    s.destroy();
  }
});

test('an idle connection is closed after --connection-idle-timeout; a busy one gets GOAWAY at --max-connection-age and its call ends normally', { timeout: 120_000 }, async () => {
  const c = await ca('lifetime', ['--connection-idle-timeout', '2s', '--max-connection-age', '4s']);
  // Idle: one call, then nothing. The CA closes the connection (GOAWAY, then the socket).
  const idle = session(c);
  const idleGone = new Promise<void>((resolve) => idle.once('close', () => resolve()));
  const idleGoaway = new Promise<void>((resolve) => idle.once('goaway', () => resolve()));
  assert.equal(await call(idle, GET).closed, '0');
  await within(Promise.all([idleGoaway, idleGone]), 'the idle connection to be closed');

  // Busy: a WatchBundle stream stays open past the maximum age: the CA sends GOAWAY (no new calls on
  // this connection; clients reconnect) while the open stream carries on.
  const busy = session(c);
  try {
    const goaway = new Promise<void>((resolve) => busy.once('goaway', () => resolve()));
    const watch = call(busy, WATCH);
    await watch.data;
    await within(goaway, 'GOAWAY at the maximum connection age');
    assert.equal(watch.stream.closed, false, 'the call in progress is not cut at GOAWAY');
    watch.stream.close();
  } finally {
    busy.destroy();
  }
});
