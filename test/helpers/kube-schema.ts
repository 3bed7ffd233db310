// Validation of Kubernetes objects against current API schemas, for what a v1.20 API server cannot
// show (native sidecars, newer fields) and for tests that run without a server.
//
// kubernetes-models (devDependency) ships ajv validators compiled from the upstream OpenAPI schemas,
// but they do NOT reject unknown fields (the upstream schemas carry no additionalProperties: false,
// and no raw JSON schema is shipped to recompile strictly). So the strict check here watches the
// model's own validator: an object is walked through a Proxy, and a key the validator never reads
// is a key the schema does not know. Free-form maps (labels, ConfigMap data) are enumerated by the
// validator and so pass. `unknownFields` is tested against planted fields so the trick cannot go
// silently blind if a later kubernetes-models validates differently.
import { Ajv } from 'ajv';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

type Validate = () => void;
type ModelClass = { new (data: unknown): { validate: Validate }; prototype: { validate: Validate } };

/** The kubernetes-models class of an object's apiVersion/kind, or undefined when it has none (CRDs). */
export async function modelClass(apiVersion: string, kind: string): Promise<ModelClass | undefined> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const spec = group === '' ? `kubernetes-models/${version}` : `kubernetes-models/${group}/${version}`;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(spec)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  return mod[kind] as ModelClass | undefined;
}

interface Seen {
  keys: string[];
  read: Set<string>;
  enumerated: boolean;
}

/** Paths of the keys of `data` that `validate` never read (arrays' indices are not keys). */
export function unknownFields(validate: (data: unknown) => void, data: unknown): string[] {
  const seen = new Map<string, Seen>();
  const wrap = (v: unknown, path: string): unknown => {
    if (v === null || typeof v !== 'object') return v;
    const rec: Seen = { keys: Array.isArray(v) ? [] : Object.keys(v), read: new Set(), enumerated: false };
    seen.set(path, rec);
    const children = new Map<string, unknown>();
    return new Proxy(v, {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver) as unknown;
        if (typeof key !== 'string') return value;
        rec.read.add(key);
        if (!children.has(key)) children.set(key, wrap(value, `${path}/${key}`));
        return children.get(key);
      },
      ownKeys(target) {
        rec.enumerated = true;
        return Reflect.ownKeys(target);
      },
    });
  };
  try {
    validate(wrap(data, ''));
  } catch {
    // schema errors are reported by validateKubeObject; here only the reads matter
  }
  const unknown: string[] = [];
  for (const [path, rec] of seen) {
    if (rec.enumerated) continue;
    for (const k of rec.keys) if (!rec.read.has(k)) unknown.push(`${path}/${k}`);
  }
  return unknown.sort();
}

// The ServiceMonitor is a CRD (monitoring.coreos.com/v1) that kubernetes-models does not cover. Its
// metadata and selector are checked with the core validators; the rest against this subset of the
// prometheus-operator CRD schema (v0.84, monitoring.coreos.com_servicemonitors.yaml), closed with
// additionalProperties: false so a misspelt key fails. Fields the chart does not render are absent.
const promDuration = { type: 'string', pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$' };
const serviceMonitorSpec = {
  type: 'object',
  additionalProperties: false,
  required: ['selector', 'endpoints'],
  properties: {
    jobLabel: { type: 'string' },
    selector: { type: 'object' },
    namespaceSelector: {
      type: 'object',
      additionalProperties: false,
      properties: { any: { type: 'boolean' }, matchNames: { type: 'array', items: { type: 'string' } } },
    },
    endpoints: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        properties: {
          port: { type: 'string' },
          path: { type: 'string' },
          scheme: { enum: ['http', 'https'] },
          interval: promDuration,
          scrapeTimeout: promDuration,
        },
      },
    },
  },
};
const checkServiceMonitorSpec = new Ajv({ allErrors: true, strict: true }).compile(serviceMonitorSpec);

async function validateServiceMonitor(obj: KubeObject): Promise<string[]> {
  const errors: string[] = [];
  const top = Object.keys(obj).filter((k) => !['apiVersion', 'kind', 'metadata', 'spec'].includes(k));
  errors.push(...top.map((k) => `unknown field /${k}`));
  const { ObjectMeta } = await import('@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta');
  const { LabelSelector } = await import('@kubernetes-models/apimachinery/apis/meta/v1/LabelSelector');
  errors.push(...(await modelErrors(ObjectMeta as unknown as ModelClass, obj.metadata, '/metadata')));
  const spec = obj.spec as Record<string, unknown> | undefined;
  if (!checkServiceMonitorSpec(spec)) {
    for (const e of checkServiceMonitorSpec.errors ?? []) errors.push(`/spec${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
  }
  if (spec?.selector) errors.push(...(await modelErrors(LabelSelector as unknown as ModelClass, spec.selector, '/spec/selector')));
  return errors;
}

async function modelErrors(Model: ModelClass, data: unknown, at = ''): Promise<string[]> {
  const errors: string[] = [];
  try {
    new Model(data).validate();
  } catch (e) {
    errors.push(`${at}: ${(e as Error).message}`);
  }
  const unknown = unknownFields((d) => Model.prototype.validate.call(d), data);
  errors.push(...unknown.map((p) => `unknown field ${at}${p}`));
  return errors;
}

/**
 * Every problem with `obj` against the current Kubernetes schemas: schema errors from the
 * kubernetes-models validator, and unknown fields. [] when the object is valid.
 */
export async function validateKubeObject(obj: KubeObject): Promise<string[]> {
  if (obj.apiVersion === 'monitoring.coreos.com/v1' && obj.kind === 'ServiceMonitor') return validateServiceMonitor(obj);
  const Model = await modelClass(obj.apiVersion, obj.kind);
  if (!Model) return [`no schema for ${obj.apiVersion} ${obj.kind}`];
  return modelErrors(Model, obj);
}

/**
 * Throw unless `obj` is valid under the model named like "v1/Pod" or "apps/v1/Deployment" (types,
 * enums, required fields) and has no unknown field. apiVersion/kind are taken from the name.
 */
export async function validateStrict(model: string, obj: unknown): Promise<void> {
  const parts = model.split('/');
  const kind = parts.pop()!;
  const errors = await validateKubeObject({ ...(obj as object), apiVersion: parts.join('/'), kind } as KubeObject);
  if (errors.length > 0) throw new Error(`${kind} does not match the current schema:\n  ${errors.join('\n  ')}`);
}
