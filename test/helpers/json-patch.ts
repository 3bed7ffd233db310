// A small, strict RFC 6902 JSON Patch applier for tests: add, remove, replace and test, with RFC 6901
// pointers ("~1" is "/", "~0" is "~"). It throws where a real applier (the API server's) refuses: a
// missing parent, an index past the end, removing what is not there. The input is not modified.

export type Op =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string };

function tokens(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new Error(`bad JSON pointer ${JSON.stringify(pointer)}`);
  return pointer.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

export function applyPatch<T>(doc: T, ops: readonly Op[]): T {
  let root: unknown = structuredClone(doc);
  for (const op of ops) {
    const path = tokens(op.path);
    if (path.length === 0) {
      if (op.op === 'test') continue;
      if (op.op === 'remove') throw new Error('cannot remove the whole document');
      root = structuredClone(op.value);
      continue;
    }
    let parent: unknown = root;
    for (const t of path.slice(0, -1)) {
      if (parent === null || typeof parent !== 'object') throw new Error(`${op.op} ${op.path}: no parent at ${JSON.stringify(t)}`);
      parent = (parent as Record<string, unknown>)[t];
    }
    if (parent === null || typeof parent !== 'object') throw new Error(`${op.op} ${op.path}: the parent does not exist`);
    const last = path[path.length - 1]!;
    if (Array.isArray(parent)) {
      const i = last === '-' ? parent.length : /^(0|[1-9]\d*)$/.test(last) ? Number(last) : NaN;
      if (!(i >= 0 && i <= parent.length) || (op.op !== 'add' && i >= parent.length)) throw new Error(`${op.op} ${op.path}: index out of range`);
      if (op.op === 'add') parent.splice(i, 0, structuredClone(op.value));
      else if (op.op === 'replace') parent[i] = structuredClone(op.value);
      else if (op.op === 'remove') parent.splice(i, 1);
      else if (JSON.stringify(parent[i]) !== JSON.stringify(op.value)) throw new Error(`test ${op.path} failed`);
    } else {
      const o = parent as Record<string, unknown>;
      const has = Object.prototype.hasOwnProperty.call(o, last);
      if (op.op !== 'add' && !has) throw new Error(`${op.op} ${op.path}: no such member`);
      if (op.op === 'add' || op.op === 'replace') o[last] = structuredClone(op.value);
      else if (op.op === 'remove') delete o[last];
      else if (JSON.stringify(o[last]) !== JSON.stringify(op.value)) throw new Error(`test ${op.path} failed`);
    }
  }
  return root as T;
}
