// The injector's configuration (ConfigMap tollgate-injector, key config.yaml; CONTRACT.md), read once
// into a deeply frozen, fully defaulted InjectorConfig. Two front ends share one check: a YAML file
// (errors name the file and line, as the sidecar config does) and the flags of `tollgate inject`
// (errors name the flag). Unknown keys are errors: a misspelt key would leave a default in force.
import { formatHostPort, parseHostPort } from '../common/address.ts';
import { TollgateError } from '../common/errors.ts';
import type { Level } from '../common/log.ts';
import { YamlSource, deepFreeze, pathText, readSourceFile, schemaFailure, shown, type SchemaMessageOptions } from '../common/yaml-source.ts';
import { caSpiffeId as reservedCaId, isReservedId, parseTrustDomain, parseWorkloadId } from '../pki/spiffe-id.ts';
import type { ValidateFunction } from 'ajv';
import { schema } from './config-schema.ts';
import validateConfig from './config-validator.cjs';

export type Capture = 'iptables' | 'none';
export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';
/** Kubernetes quantities as written ("50m", "64Mi"), by resource name. */
export type ResourceList = Readonly<Record<string, string>>;

export interface InjectorConfig {
  /** Where it was read from (a file path, or "the command line"), for messages. */
  readonly source: string;
  readonly trustDomain: string;
  /** The CA's gRPC address as HOST:PORT. */
  readonly caAddress: string;
  readonly caSpiffeId: string;
  readonly image: string;
  readonly imagePullPolicy: PullPolicy;
  /** true: the sidecar is an init container with restartPolicy Always (Kubernetes ≥ 1.29). */
  readonly nativeSidecar: boolean;
  /** Default capture mode; a pod may choose with tollgate.io/capture. */
  readonly capture: Capture;
  /** Lifetime of the projected token (audience tollgate-ca) the kubelet mounts for the sidecar. */
  readonly tokenExpirationSeconds: number;
  readonly logLevel: Level;
  readonly resources: { readonly requests?: ResourceList; readonly limits?: ResourceList };
  /** Tollgate's own namespace: never injected (nor kube-system, kube-public, kube-node-lease). */
  readonly systemNamespace: string;
}

export interface InjectorConfigOptions {
  /** Tollgate's own namespace; default tollgate-system. */
  systemNamespace?: string;
}

export const DEFAULT_SYSTEM_NAMESPACE = 'tollgate-system';

const DEFAULTS = Object.freeze({
  imagePullPolicy: 'IfNotPresent' as PullPolicy,
  nativeSidecar: true,
  capture: 'iptables' as Capture,
  tokenExpirationSeconds: 3600,
  logLevel: 'info' as Level,
  resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
});

type Raw = Record<string, unknown> & { trustDomain: string; caAddress: string; image: string };
const validate = validateConfig as ValidateFunction<Raw>;

const MESSAGES: SchemaMessageOptions = {
  root: 'the injector config',
  notAMapping: 'the injector config must be a mapping with at least trustDomain, caAddress and image (the file is empty or not a mapping)',
  enumHints: { capture: '; none leaves inbound traffic uncaptured (the app must then listen on 127.0.0.1)' },
};

// Kubernetes' quantity syntax: a decimal number and an optional binary or decimal suffix or exponent.
const QUANTITY = /^[+]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;

/** Blames one value: `steps` is its path in the config. */
type Bad = (steps: readonly string[], problem: string) => TollgateError;

/** The semantic checks and defaults, shared by the file and the flags. `raw` has passed the schema. */
function build(raw: Raw, source: string, options: InjectorConfigOptions, bad: Bad): InjectorConfig {
  let trustDomain: string;
  try {
    trustDomain = parseTrustDomain(raw.trustDomain);
  } catch (e) {
    throw bad(['trustDomain'], `${JSON.stringify(raw.trustDomain)} ${String((e as TollgateError).details['reason'] ?? 'is not a trust domain')}`);
  }
  const address = parseHostPort(raw.caAddress, { allowPortZero: false });
  if ('problem' in address) throw bad(['caAddress'], address.problem);
  const caSpiffeId = typeof raw['caSpiffeId'] === 'string' ? raw['caSpiffeId'] : reservedCaId(trustDomain);
  let td: string;
  try {
    td = parseWorkloadId(caSpiffeId).trustDomain;
  } catch (e) {
    throw bad(['caSpiffeId'], `${JSON.stringify(caSpiffeId)} ${String((e as TollgateError).details['reason'] ?? 'is not a SPIFFE ID')}`);
  }
  if (td !== trustDomain) throw bad(['caSpiffeId'], `${JSON.stringify(caSpiffeId)} is not in trust domain ${JSON.stringify(trustDomain)}; the sidecars can only verify a CA of their own trust domain`);
  if (!isReservedId(caSpiffeId)) {
    throw bad(['caSpiffeId'], `${JSON.stringify(caSpiffeId)} is a workload ID, which a workload could be issued and then pose as the CA; the CA's identity is reserved: remove caSpiffeId to use ${reservedCaId(trustDomain)}`);
  }
  if (/\s/.test(raw.image)) throw bad(['image'], `${JSON.stringify(raw.image)} has white space; write an image reference such as ghcr.io/tollgate/tollgate:0.1.0`);
  const resources: { requests?: ResourceList; limits?: ResourceList } = {};
  const given = (raw['resources'] ?? DEFAULTS.resources) as Record<string, Record<string, string | number>>;
  for (const kind of ['requests', 'limits'] as const) {
    const list = given[kind];
    if (!list) continue;
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(list)) {
      if (!QUANTITY.test(String(value))) throw bad(['resources', kind, name], `${shown(value)} is not a Kubernetes quantity; write e.g. 50m or 0.5 (cpu), 64Mi or 1Gi (memory)`);
      out[name] = String(value);
    }
    resources[kind] = out;
  }
  const systemNamespace = options.systemNamespace ?? DEFAULT_SYSTEM_NAMESPACE;
  return deepFreeze({
    source,
    trustDomain,
    caAddress: formatHostPort(address),
    caSpiffeId,
    image: raw.image,
    imagePullPolicy: (raw['imagePullPolicy'] as PullPolicy | undefined) ?? DEFAULTS.imagePullPolicy,
    nativeSidecar: (raw['nativeSidecar'] as boolean | undefined) ?? DEFAULTS.nativeSidecar,
    capture: (raw['capture'] as Capture | undefined) ?? DEFAULTS.capture,
    tokenExpirationSeconds: (raw['tokenExpirationSeconds'] as number | undefined) ?? DEFAULTS.tokenExpirationSeconds,
    logLevel: (raw['logLevel'] as Level | undefined) ?? DEFAULTS.logLevel,
    resources,
    systemNamespace,
  });
}

/** Parse and validate the injector config's YAML text. Throws TG_CONFIG_INVALID naming `source` and the line. */
export function parseInjectorConfig(text: string, options: InjectorConfigOptions & { source: string }): InjectorConfig {
  const yaml = new YamlSource(text, { source: options.source, what: 'injector config' });
  const data: unknown = yaml.toJS();
  if (!validate(data)) throw schemaFailure(yaml, validate.errors ?? [], data, MESSAGES);
  return build(data, options.source, options, (steps, problem) => yaml.fail(yaml.lineAt(steps), `${pathText(steps, data, MESSAGES.root)} ${problem}`));
}

/** Read and parse the injector config file (e.g. /etc/tollgate/injector/config.yaml). */
export function loadInjectorConfig(path: string, options: InjectorConfigOptions = {}): InjectorConfig {
  return parseInjectorConfig(readSourceFile(path, 'injector config'), { ...options, source: path });
}

/** The flag that sets a config key: caSpiffeId → --ca-spiffe-id. */
export function flagOf(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/**
 * The same config from command-line values (keys as in the file, e.g. { trustDomain, caAddress,
 * image, capture }). Throws TG_USAGE naming the flag (`--capture must be iptables or none, got "x"`).
 */
export function injectorConfigFromValues(values: Record<string, unknown>, options: InjectorConfigOptions = {}): InjectorConfig {
  const data: Record<string, unknown> = Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined));
  const usage = (key: string, problem: string): TollgateError => new TollgateError('TG_USAGE', `${flagOf(key)} ${problem}`, { details: { key } });
  if (!validate(data)) {
    const e = (validate.errors ?? [])[0]!;
    const s = e.parentSchema as { description?: string };
    const key = e.keyword === 'required' ? String((e.params as { missingProperty: string }).missingProperty) : e.instancePath.slice(1).split('/')[0]!;
    if (e.keyword === 'required') throw usage(key, `is required: give ${(schema.properties as Record<string, { description: string }>)[key]!.description} (or --injector-config FILE)`);
    throw usage(key, `must be ${s.description ?? e.message ?? 'valid'}, got ${shown(e.data)}`);
  }
  return build(data, 'the command line', options, (steps, problem) => usage(steps[0]!, problem));
}
