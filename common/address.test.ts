// HOST:PORT parsing shared by the sidecar config, the CLI flags and `cert inspect HOST:PORT`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHostPort } from './address.ts';

type HostPortCase = [text: string, allowPortZero: boolean, expected: { host: string; port: number } | RegExp];
const hostPorts: HostPortCase[] = [
  ['127.0.0.1:15001', false, { host: '127.0.0.1', port: 15001 }],
  ['orders.shop.svc:15006', false, { host: 'orders.shop.svc', port: 15006 }],
  ['[::1]:15001', false, { host: '::1', port: 15001 }],
  ['0.0.0.0:0', true, { host: '0.0.0.0', port: 0 }],
  ['0.0.0.0:0', false, /no valid port/],
  ['::1:15001', false, /is not HOST:PORT/],
  [':15001', false, /no valid host/],
  ['[127.0.0.1]:1', false, /no valid host/],
  ['host:', false, /no valid port/],
  ['host:080000', false, /no valid port/],
  ['host:-1', false, /no valid port/],
];
for (const [text, allowPortZero, expected] of hostPorts) {
  test(`parseHostPort(${JSON.stringify(text)}, zero ${allowPortZero})`, () => {
    const r = parseHostPort(text, { allowPortZero });
    if (expected instanceof RegExp) assert.match('problem' in r ? r.problem : 'parsed', expected);
    else assert.deepEqual(r, expected);
  });
}

