// Running the real helm (v4, from test/helpers/kube-tools.ts) on charts/tollgate, and reading what it
// renders. Helm's own state goes to a temporary directory, never to the user's home.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { kubeTool } from './kube-tools.ts';
import type { KubeObject } from './kube-schema.ts';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const chartDir = join(repoRoot, 'charts/tollgate');
export const releaseName = 'tollgate';
export const releaseNamespace = 'tollgate-system';

let helmHome: string | undefined;

export interface HelmResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run helm with args; HELM_*_HOME point at a private temporary directory. */
export function helm(args: string[]): HelmResult {
  helmHome ??= mkdtempSync(join(tmpdir(), 'tollgate-helm-'));
  const r = spawnSync(kubeTool('helm'), args, {
    cwd: repoRoot,
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: helmHome,
      HELM_CACHE_HOME: join(helmHome, 'cache'),
      HELM_CONFIG_HOME: join(helmHome, 'config'),
      HELM_DATA_HOME: join(helmHome, 'data'),
    },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface RenderOptions {
  /** values files, absolute or relative to the repository root */
  valuesFiles?: string[];
  /** --set pairs, e.g. "replicas=1" */
  set?: string[];
  namespace?: string;
}

/** `helm template` of the chart; the raw result (check `status` for schema refusals). */
export function helmTemplate(options: RenderOptions = {}): HelmResult {
  const args = ['template', releaseName, chartDir, '--namespace', options.namespace ?? releaseNamespace];
  for (const f of options.valuesFiles ?? []) args.push('--values', resolve(repoRoot, f));
  for (const s of options.set ?? []) args.push('--set', s);
  return helm(args);
}

/** The rendered manifest as text; throws with helm's message when rendering fails. */
export function renderText(options: RenderOptions = {}): string {
  const r = helmTemplate(options);
  if (r.status !== 0) throw new Error(`helm template failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** The rendered objects, parsed (YAML 1.2 with no custom tags, as the API server's decoder reads it). */
export function renderObjects(options: RenderOptions = {}): KubeObject[] {
  return parseManifest(renderText(options));
}

/** The objects of a multi-document manifest (helm template, helm get manifest); throws if one does not parse. */
export function parseManifest(text: string): KubeObject[] {
  const docs = parseAllDocuments(text);
  const objects: KubeObject[] = [];
  for (const d of docs) {
    if (d.errors.length > 0) throw new Error(`rendered YAML does not parse: ${d.errors.map((e) => e.message).join('; ')}`);
    const o = d.toJS() as KubeObject | null;
    if (o) objects.push(o);
  }
  return objects;
}

/** The one object of that kind and name; throws naming what was rendered when it is not there. */
export function findObject(objects: KubeObject[], kind: string, name: string): KubeObject {
  const o = objects.find((x) => x.kind === kind && x.metadata?.name === name);
  if (!o) throw new Error(`no ${kind} ${name} among: ${objects.map((x) => `${x.kind}/${x.metadata?.name}`).join(', ')}`);
  return o;
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

/** Kubernetes label-selector semantics (as the API server applies a webhook's namespaceSelector). */
export function selectorMatches(selector: LabelSelector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const inValues = has && (e.values ?? []).includes(labels[e.key]!);
    const ok = { In: inValues, NotIn: !inValues, Exists: has, DoesNotExist: !has }[e.operator];
    if (!ok) return false;
  }
  return true;
}
