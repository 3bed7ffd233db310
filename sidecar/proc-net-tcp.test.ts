import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exposedAppPorts, parseProcNetTcp, TCP_LISTEN } from './proc-net-tcp.ts';

// Recorded on x86-64 (little-endian) in a network namespace with listeners on 0.0.0.0:8080,
// 127.0.0.1:9000, [::]:8081, [::1]:9001, 10.213.0.2:9002 and [fd21:3::2]:9003, plus one open
// connection to 127.0.0.1:9000; the last tcp6 line (::ffff:127.0.0.1:9004) is added by hand.
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 118945 1 0000000063bdf32d 100 0 0 10 0
   1: 0200D50A:232A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 118949 1 0000000027482bfb 100 0 0 10 0
   2: 0100007F:2328 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 118946 1 000000005dfeaf2d 100 0 0 10 0
   3: 0100007F:956C 0100007F:2328 01 00000000:00000000 00:00000000 00000000     0        0 118951 2 000000000b04bf12 20 0 0 10 -1
   4: 0100007F:2328 0100007F:956C 01 00000000:00000000 00:00000000 00000000     0        0 118952 1 000000001ff56d8a 20 0 0 10 -1
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 118947 1 00000000b3578d0e 100 0 0 10 0
   1: 00000000000000000000000001000000:2329 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 118948 1 00000000b11f02d0 100 0 0 10 0
   2: 030021FD000000000000000002000000:232B 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 118950 1 000000005b27f086 100 0 0 10 0
   3: 0000000000000000FFFF00000100007F:232C 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 118953 1 0000000000000000 100 0 0 10 0
`;

const sockets = [...parseProcNetTcp(TCP, { family: 'ipv4', littleEndian: true }), ...parseProcNetTcp(TCP6, { family: 'ipv6', littleEndian: true })];

test('parseProcNetTcp reads address, port, state and loopback from recorded /proc/net/tcp and tcp6', () => {
  const listening = sockets.filter((s) => s.state === TCP_LISTEN).map((s) => `${s.address} ${s.port}${s.loopback ? ' loopback' : ''}`);
  assert.deepEqual(listening, [
    '0.0.0.0 8080',
    '10.213.0.2 9002',
    '127.0.0.1 9000 loopback',
    ':: 8081',
    '::1 9001 loopback',
    'fd21:3::2 9003',
    '::ffff:7f00:1 9004 loopback',
  ]);
  assert.equal(sockets.filter((s) => s.state === 1).length, 2, 'the two ends of the open connection');
});

test('parseProcNetTcp reads words in big-endian order on a big-endian host', () => {
  const be = (hex: string): string => hex.replace(/[0-9A-F]{8}/g, (w) => w.match(/../g)!.reverse().join(''));
  const line = (addr: string): string => `  sl  local_address rem_address   st\n   0: ${addr}:1F90 00000000:0000 0A 0`;
  assert.equal(parseProcNetTcp(line(be('0100007F')), { family: 'ipv4', littleEndian: false })[0]!.address, '127.0.0.1');
  assert.equal(parseProcNetTcp(line(be('030021FD000000000000000002000000')), { family: 'ipv6', littleEndian: false })[0]!.address, 'fd21:3::2');
});

test('parseProcNetTcp with a state keeps only the sockets in it (the check asks for LISTEN), in either case of hex', () => {
  const listen = parseProcNetTcp(TCP, { family: 'ipv4', littleEndian: true, state: TCP_LISTEN });
  assert.deepEqual(listen.map((s) => `${s.address} ${s.port} ${s.state}`), ['0.0.0.0 8080 10', '10.213.0.2 9002 10', '127.0.0.1 9000 10']);
  assert.equal(parseProcNetTcp(TCP, { family: 'ipv4', littleEndian: true, state: 1 }).length, 2);
  assert.equal(parseProcNetTcp(TCP.replaceAll(' 0A ', ' 0a '), { family: 'ipv4', littleEndian: true, state: TCP_LISTEN }).length, 3);
  assert.equal(parseProcNetTcp(TCP6, { family: 'ipv6', littleEndian: true, state: TCP_LISTEN }).length, 4);
});

test('parseProcNetTcp skips the header, blank lines and lines of the other family', () => {
  assert.deepEqual(parseProcNetTcp('', { family: 'ipv4' }), []);
  assert.deepEqual(parseProcNetTcp(TCP6, { family: 'ipv4', littleEndian: true }), []);
  assert.deepEqual(parseProcNetTcp('header\ngarbage line\n  7: XYZ:1F90 0 0A', { family: 'ipv4' }), []);
});

test('exposedAppPorts lists the declared app ports that listen on a non-loopback address', () => {
  assert.deepEqual(exposedAppPorts(sockets, [8080, 8081, 9000, 9001, 9002, 9003, 9004, 7000]), [
    { port: 8080, addresses: ['0.0.0.0'] },
    { port: 8081, addresses: ['::'] },
    { port: 9002, addresses: ['10.213.0.2'] },
    { port: 9003, addresses: ['fd21:3::2'] },
  ]);
  assert.deepEqual(exposedAppPorts(sockets, [9000, 9001, 9004]), [], 'loopback listeners are what the sidecar expects');
});
