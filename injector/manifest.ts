// `tollgate inject`: the webhook's injection applied to a manifest file (like `istioctl kube-inject`).
// Every document of a multi-document YAML (and every item of a kind: List) is read; pod templates of
// Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs and CronJobs
// go through injectPod(); other kinds are left as they are. injectPod's JSON Patch is applied to the
// YAML syntax tree itself, so comments, key order and quoting of the rest of the file survive.
//
// The namespace's labels are unknown here, so a manifest is treated as opted in (running the command
// is the opt-in): a template is injected unless it opts out (tollgate.io/inject: disabled) or names a
// never-injected namespace. `force` injects opted-out templates too.
import { LineCounter, isMap, isSeq, parseAllDocuments, type Document, type Node } from 'yaml';
import { TollgateError, isTollgateError } from '../common/errors.ts';
import { describeYamlError } from '../common/yaml-source.ts';
import { pemToCertDers } from '../pki/pem.ts';
import { Oid, parseCertificate, subjectAltNames } from '../pki/x509.ts';
import { NAMESPACE_LABEL } from './annotations.ts';
import type { InjectorConfig } from './config.ts';
import { injectPod, type PatchOp } from './inject.ts';

/** Where each kind keeps its pod template. */
const TEMPLATE_PATH: Readonly<Record<string, readonly string[]>> = {
  Pod: [],
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

export interface ManifestOptions {
  readonly config: InjectorConfig;
  readonly bundlePem: string;
  /** Inject also the templates that opt out with tollgate.io/inject: disabled. */
  readonly force?: boolean;
  /** The file name shown in messages ("-" is stdin). */
  readonly source: string;
}

export interface ObjectResult {
  /** kind/name as kubectl writes it, e.g. deployment/web. */
  readonly object: string;
  readonly decision: 'injected' | 'skipped';
  readonly reason: string;
  readonly warnings: readonly string[];
}

export interface ManifestResult {
  readonly text: string;
  readonly objects: readonly ObjectResult[];
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

export function injectManifest(text: string, options: ManifestOptions): ManifestResult {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: true });
  const objects: ObjectResult[] = [];
  for (const doc of docs) {
    const bad = doc.errors[0];
    if (bad) {
      const { line, problem } = describeYamlError(text, lines, bad);
      throw new TollgateError('TG_CONFIG_INVALID', `cannot read manifest ${options.source} line ${line}: ${problem}`);
    }
    const data: unknown = doc.toJS({ maxAliasCount: 100 });
    if (!isObject(data)) continue;
    if (data['kind'] === 'List' && Array.isArray(data['items'])) {
      data['items'].forEach((item, i) => injectObject(doc, ['items', i], item, options, objects));
    } else {
      injectObject(doc, [], data, options, objects);
    }
  }
  // Without a change the input is printed as it came; lineWidth 0 never folds a long line.
  if (!objects.some((o) => o.decision === 'injected')) return { text, objects };
  return { text: docs.map((d) => d.toString({ lineWidth: 0 })).join(''), objects };
}

function injectObject(doc: Document, at: (string | number)[], obj: unknown, options: ManifestOptions, out: ObjectResult[]): void {
  if (!isObject(obj) || typeof obj['kind'] !== 'string') return;
  const kind = obj['kind'];
  const path = TEMPLATE_PATH[kind];
  if (!path) return;
  const meta = isObject(obj['metadata']) ? obj['metadata'] : {};
  const name = `${kind.toLowerCase()}/${String(meta['name'] ?? meta['generateName'] ?? '(unnamed)')}`;
  let template: unknown = obj;
  for (const step of path) template = isObject(template) ? template[step] : undefined;
  if (!isObject(template)) throw new TollgateError('TG_POD_INVALID', `${name}: has no ${path.join('.')} (its pod template)`);
  let r;
  try {
    r = injectPod(template, {
      config: options.config,
      bundlePem: options.bundlePem,
      namespace: typeof meta['namespace'] === 'string' ? meta['namespace'] : '',
      namespaceLabels: { [NAMESPACE_LABEL]: 'enabled' },
      ...(options.force ? { ignoreOptOut: true } : {}),
    });
  } catch (e) {
    if (isTollgateError(e)) throw new TollgateError(e.code, `${name}: ${e.message}`, { cause: e });
    throw e;
  }
  out.push({ object: name, decision: r.decision, reason: r.reason, warnings: r.warnings });
  for (const op of r.patch) applyToTree(doc, [...at, ...path], op);
}

/** Apply one "add" op of injectPod's patch to the YAML tree, below `prefix`. */
function applyToTree(doc: Document, prefix: readonly (string | number)[], op: PatchOp): void {
  if (op.op !== 'add') throw new TollgateError('TG_INTERNAL', `unexpected patch op ${op.op}`);
  const tokens = op.path.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
  const last = tokens.pop()!;
  const parent = doc.getIn([...prefix, ...tokens], true) as Node | undefined;
  const value = doc.createNode(op.value);
  if (isSeq(parent)) parent.items.splice(last === '-' ? parent.items.length : Number(last), 0, value);
  else if (isMap(parent)) parent.set(doc.createNode(last), value);
  else throw new TollgateError('TG_INTERNAL', `cannot apply ${op.path}: its parent is not in the manifest`);
}

/** The trust domain a bundle's roots are for (their URI SAN spiffe://TD), or null when they do not say. */
export function trustDomainOfBundle(pem: string, what: string): string | null {
  for (const der of pemToCertDers(pem, what)) {
    const ext = parseCertificate(der).extensions.get(Oid.subjectAltName);
    const uri = ext ? subjectAltNames(ext).uris.find((u) => u.startsWith('spiffe://')) : undefined;
    if (uri) return uri.slice('spiffe://'.length).split('/')[0] ?? null;
  }
  return null;
}
