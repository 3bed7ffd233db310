// Validate Kubernetes objects against current schemas (kubernetes-models), strictly. The models'
// own validate() checks types, enums and required fields but accepts unknown fields — the very
// thing that hides a field an older API server silently drops (or a typo). So unknown fields are
// found here by walking the object alongside the models' TypeScript declarations (parsed with the
// TypeScript compiler's parser; no type checking), and both results must be clean.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

interface Decl {
  node: ts.InterfaceDeclaration | ts.TypeAliasDeclaration;
  file: SourceInfo;
}
interface SourceInfo {
  path: string;
  source: ts.SourceFile;
  /** Imported name → the module specifier it comes from. */
  imports: Map<string, string>;
  /** Local or re-exported-alias name → declaration. */
  decls: Map<string, ts.InterfaceDeclaration | ts.TypeAliasDeclaration>;
}

const files = new Map<string, SourceInfo>();

function load(path: string): SourceInfo {
  const cached = files.get(path);
  if (cached) return cached;
  const source = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.ES2022, false);
  const info: SourceInfo = { path, source, imports: new Map(), decls: new Map() };
  for (const st of source.statements) {
    if (ts.isImportDeclaration(st) && st.importClause?.namedBindings && ts.isNamedImports(st.importClause.namedBindings)) {
      for (const el of st.importClause.namedBindings.elements) info.imports.set(el.name.text, (st.moduleSpecifier as ts.StringLiteral).text);
    } else if (ts.isInterfaceDeclaration(st) || ts.isTypeAliasDeclaration(st)) {
      info.decls.set(st.name.text, st);
    }
  }
  // `export type { IPod as IIoK8sApiCoreV1Pod, ... }`: the long names other files import.
  for (const st of source.statements) {
    if (ts.isExportDeclaration(st) && st.exportClause && ts.isNamedExports(st.exportClause)) {
      for (const el of st.exportClause.elements) {
        const local = info.decls.get((el.propertyName ?? el.name).text);
        if (local) info.decls.set(el.name.text, local);
      }
    }
  }
  files.set(path, info);
  return info;
}

function declarationFile(specifier: string, from: string): string {
  const js = specifier.startsWith('.') ? new URL(specifier, `file://${from}`).href : import.meta.resolve(specifier);
  return fileURLToPath(js).replace(/\.js$/, '.d.ts');
}

function resolve(name: string, file: SourceInfo): Decl | null {
  const local = file.decls.get(name);
  if (local) return { node: local, file };
  const spec = file.imports.get(name);
  if (!spec) return null;
  const target = load(declarationFile(spec, file.path));
  const node = target.decls.get(name);
  return node ? { node, file: target } : null;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function members(list: readonly ts.TypeElement[]): Map<string, ts.TypeNode> | null {
  const props = new Map<string, ts.TypeNode>();
  for (const m of list) {
    if (ts.isPropertySignature(m) && m.type) props.set(ts.isStringLiteral(m.name) || ts.isIdentifier(m.name) ? m.name.text : m.name.getText(), m.type);
    if (ts.isIndexSignatureDeclaration(m)) return null;
  }
  return props;
}

function check(type: ts.TypeNode, value: unknown, path: string, file: SourceInfo, out: string[]): void {
  if (value === undefined || value === null) return;
  if (ts.isParenthesizedTypeNode(type)) return check(type.type, value, path, file, out);
  if (ts.isArrayTypeNode(type)) {
    if (Array.isArray(value)) value.forEach((v, i) => check(type.elementType, v, `${path}[${i}]`, file, out));
    return;
  }
  if (ts.isUnionTypeNode(type)) {
    // The first member under which the value has no unknown field wins; else report the first's.
    let first: string[] | null = null;
    for (const t of type.types) {
      const found: string[] = [];
      check(t, value, path, file, found);
      if (found.length === 0) return;
      first ??= found;
    }
    out.push(...(first ?? []));
    return;
  }
  if (ts.isTypeLiteralNode(type)) {
    if (!isObject(value)) return;
    const props = members(type.members);
    if (props === null) {
      const index = type.members.find(ts.isIndexSignatureDeclaration)!;
      for (const [k, v] of Object.entries(value)) check(index.type, v, `${path}.${k}`, file, out);
      return;
    }
    return checkProps(props, value, path, file, out);
  }
  if (ts.isTypeReferenceNode(type) && ts.isIdentifier(type.typeName)) {
    const name = type.typeName.text;
    if (name === 'Array' && type.typeArguments?.[0]) {
      if (Array.isArray(value)) value.forEach((v, i) => check(type.typeArguments![0]!, v, `${path}[${i}]`, file, out));
      return;
    }
    const decl = resolve(name, file);
    if (!decl) return; // TypeMeta, Record and friends: nothing to walk
    if (ts.isTypeAliasDeclaration(decl.node)) return check(decl.node.type, value, path, decl.file, out);
    if (!isObject(value)) return;
    const props = members(decl.node.members) ?? new Map();
    // `extends TypeMeta`: apiVersion and kind are declared on the interface itself.
    return checkProps(props, value, path, decl.file, out);
  }
}

function checkProps(props: Map<string, ts.TypeNode>, value: Record<string, unknown>, path: string, file: SourceInfo, out: string[]): void {
  for (const [k, v] of Object.entries(value)) {
    const t = props.get(k);
    if (!t) out.push(`${path}.${k}: unknown field`);
    else check(t, v, `${path}.${k}`, file, out);
  }
}

/** Unknown fields of `obj` under the model at `model`, e.g. "v1/Pod" or "apps/v1/Deployment". */
export function unknownFields(model: string, obj: unknown): string[] {
  const file = load(declarationFile(`kubernetes-models/${model}`, ''));
  const name = model.split('/').pop()!;
  const decl = resolve(`I${name}`, file);
  if (!decl) throw new Error(`no interface I${name} in kubernetes-models/${model}`);
  const out: string[] = [];
  check(ts.factory.createTypeReferenceNode(`I${name}`), obj, name, file, out);
  return out;
}

/**
 * Throw unless `obj` passes the model's validate() (types, enums, required fields) and has no
 * unknown field.
 */
export async function validateStrict(model: string, obj: unknown): Promise<void> {
  const name = model.split('/').pop()!;
  const mod = (await import(`kubernetes-models/${model}`)) as Record<string, new (data: unknown) => { validate(): void }>;
  new mod[name]!(obj).validate();
  const unknown = unknownFields(model, obj);
  if (unknown.length > 0) throw new Error(`${name} has fields the current schema does not know:\n  ${unknown.join('\n  ')}`);
}
