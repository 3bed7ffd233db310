// The rotation rows' load counts what an HTTP client loses: a request written and not answered.
// A keep-alive connection the server closes between requests is reopened, counted apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startPacedLoad } from './rotation-load.ts';

const BODY = 'x'.repeat(16);

/** An HTTP/1.1 server on loopback that answers each GET, then does `after(socket, n)` (n answers so far). */
async function server(o: { status?: number; after?: (s: net.Socket, n: number) => boolean }) {
  const srv = net.createServer((s) => {
    let n = 0;
    let buf = '';
    s.on('error', () => undefined);
    s.on('data', (d) => {
      buf += d.toString();
      while (buf.includes('\r\n\r\n')) {
        buf = buf.slice(buf.indexOf('\r\n\r\n') + 4);
        if (o.after && !o.after(s, ++n)) return; // closed without answering
        s.write(`HTTP/1.1 ${o.status ?? 200} X\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`);
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as net.AddressInfo).port, close: () => new Promise<void>((r) => srv.close(() => r())) };
}

async function run(port: number, keepAlive = true) {
  const load = startPacedLoad({ port, path: '/', size: BODY.length, lanes: 2, intervalMs: 10, keepAlive, timeoutMs: 2000 });
  await new Promise((r) => setTimeout(r, 300)); // a bounded run
  return load.stop();
}

test('a keep-alive connection the server closes between requests is reopened, and no request counts as failed', async () => {
  // Answer the 3rd request and close right behind the answer, long before the client's next request
  // (10 ms after the answer): no timer of the server's own to race the client's on a busy machine.
  const srv = await server({ after: (s, n) => (n === 3 && setImmediate(() => s.end()), true) });
  try {
    const r = await run(srv.port);
    assert.ok(r.requests > 10, `requests: ${r.requests}`);
    assert.equal(r.failed, 0, r.failures.join('; '));
    assert.ok(r.closedIdle >= 2, `closed while idle: ${r.closedIdle}`);
  } finally {
    await srv.close();
  }
});

test('a request the server takes and closes on without an answer is failed', async () => {
  const srv = await server({ after: (s, n) => (n === 3 ? (s.destroy(), false) : true) });
  try {
    const r = await run(srv.port);
    assert.ok(r.failed >= 2, `failed: ${r.failed}`);
    assert.match(r.failures[0]!, /closed before the whole answer/);
  } finally {
    await srv.close();
  }
});

test('a non-200 answer is failed, on new connections as on kept ones', async () => {
  const srv = await server({ status: 503 });
  try {
    for (const keepAlive of [true, false]) {
      const r = await run(srv.port, keepAlive);
      assert.equal(r.failed, r.requests);
      assert.match(r.failures[0]!, /status 503/);
    }
  } finally {
    await srv.close();
  }
});
