// PRODUCT.md §2 and STYLE.md habit 7: imports run one way. common/ imports nothing of ours; pki/
// only common/; ca/ and sidecar/ never each other (they meet over gRPC); injector/ only pki/ and
// common/; nothing imports cli/. Test files and test helpers may reach further, production code may not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const allowed: Record<string, readonly string[]> = {
  common: ['common', 'proto'],
  pki: ['pki', 'common'],
  ca: ['ca', 'pki', 'common', 'proto'],
  sidecar: ['sidecar', 'pki', 'common', 'proto'],
  injector: ['injector', 'pki', 'common'],
};

function sources(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** [file, imported part] for every relative import or URL reference that leaves the file's part. */
function crossings(part: string, allow: readonly string[] = allowed[part]!): string[] {
  const bad: string[] = [];
  let files: string[];
  try {
    files = sources(join(root, part));
  } catch {
    return bad;
  }
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\s*\(?\s*|new URL\(\s*)['"](\.\.?\/[^'"]+)['"]/g)) {
      const target = relative(root, resolve(dirname(f), m[1]!));
      const top = target.split('/')[0]!;
      if (!allow.includes(top)) bad.push(`${relative(root, f)} → ${target}`);
    }
  }
  return bad;
}

for (const part of Object.keys(allowed)) {
  test(`${part}/ imports only ${allowed[part]!.join(', ')}`, () => {
    assert.deepEqual(crossings(part), []);
  });
}

test('the check sees crossings: sidecar/ held to pki/ rules reports its imports of pki/', () => {
  // Guards against a pattern that matches nothing and so passes every part.
  const seen = crossings('sidecar', ['sidecar', 'common']);
  assert.ok(seen.some((c) => c.startsWith('sidecar/svid-manager.ts → pki/')), seen.join('\n'));
});
