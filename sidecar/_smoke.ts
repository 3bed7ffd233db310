import { parsePolicy, authorize } from './policy.ts';
const src = `trustDomains: [example.org]
ports:
  "8080":
    allow:
      - spiffe://example.org/ns/shop/sa/web
      - spiffe://example.org/ns/shop/sa/*
  9090:
    allow: []
default:
  allow: [spiffe://example.org/ns/ops/sa/admin]
`;
const p = parsePolicy(src, { source: '/etc/p.yaml', ownTrustDomain: 'example.org' });
console.log(JSON.stringify(p));
for (const [id, port] of [['spiffe://example.org/ns/shop/sa/web', 8080], ['spiffe://example.org/ns/shop/sa/x', 8080], ['spiffe://example.org/ns/shop/sa/x/y', 8080], ['spiffe://example.org/ns/shop/sa', 8080], ['spiffe://other/ns/shop/sa/x', 8080], ['nope', 8080], ['spiffe://example.org/ns/ops/sa/admin', 1234], ['spiffe://example.org/ns/ops/sa/admin', 9090]] as const)
  console.log(id, port, authorize(p, id, port));
const bad = [
  'ports: {8080: {allow: [a, b}\n',
  'ports:\n  "8080":\n    allow: []\n    deny: []\n',
  'ports:\n  0:\n    allow: []\n',
  'ports:\n  70000:\n    allow: []\n',
  'ports:\n  abc:\n    allow: []\n',
  'ports:\n  8080:\n    allow: []\n  "8080":\n    allow: []\n',
  'ports:\n  8080:\n    allow:\n      - spiffe://td/ns/*x\n',
  'ports:\n  8080:\n    allow:\n      - spiffe://Shop/ns/a\n',
  'ports:\n  8080:\n    allow:\n      - spiffe://td/ns/\n',
  'ports:\n  8080:\n    allow:\n      - spiffe://*/ns/a\n',
  'ports:\n  8080:\n    allow:\n      - spiffe://td/**\n',
  'ports:\n  8080:\n    allow:\n      - spiffe://other/a\n',
  'ports:\n  8080:\n    allow:\n      - spiffe://td\n',
  'ports:\n  8080:\n',
  'ports:\n  8080: {}\n',
  '',
  'trustDomains: []\nports: {}\n',
  'trustDomains: [Td]\nports: {}\n',
  'prots: {}\n',
  'ports: {}\nports: {}\n',
];
for (const b of bad) { try { parsePolicy(b, { source: '/etc/p.yaml', ownTrustDomain: 'td' }); console.log('NO ERROR', b); } catch (e) { console.log((e as Error).message); } }
