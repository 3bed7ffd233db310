// The tollgate.io pod annotations (CONTRACT.md), parsed strictly: a malformed value refuses the pod
// with TG_ANNOTATION_INVALID naming the annotation, what is wrong and what to write instead. A
// misspelt tollgate.io key is refused too, since ignoring it would leave a port unprotected.
//
//   tollgate.io/inject            enabled | disabled
//   tollgate.io/inbound-ports     "8080,9000"        app ports the sidecar fronts with mTLS
//   tollgate.io/upstreams         "NAME=SPIFFE-ID@HOST:PORT,..."   e.g.
//                                 "orders=spiffe://cluster.local/ns/shop/sa/orders@orders.shop.svc:8080"
//   tollgate.io/policy-configmap  ConfigMap (same namespace) with key policy.yaml
//   tollgate.io/capture           iptables | none
//   tollgate.io/injected          set by the injector (the marker of an injected pod)
import { parseHostPort, type HostPort } from '../common/address.ts';
import { TollgateError } from '../common/errors.ts';
import { closest } from '../common/yaml-source.ts';
import { parseWorkloadId } from '../pki/spiffe-id.ts';
import type { Capture } from './config.ts';

export const Annotation = {
  inject: 'tollgate.io/inject',
  inboundPorts: 'tollgate.io/inbound-ports',
  upstreams: 'tollgate.io/upstreams',
  policyConfigMap: 'tollgate.io/policy-configmap',
  capture: 'tollgate.io/capture',
  injected: 'tollgate.io/injected',
} as const;

/** The namespace label that opts every pod of a namespace in (value "enabled"). */
export const NAMESPACE_LABEL = 'tollgate.io/inject';

/** Ports the sidecar itself uses in the pod (CONTRACT.md): app ports may not be among them. */
export const Ports = {
  firstInbound: 15006,
  admin: 15020,
  firstOutbound: 15101,
  reservedLow: 15000,
  reservedHigh: 15199,
} as const;
/** 15006..15019: the inbound listeners end below the admin port. */
export const MAX_INBOUND_PORTS = Ports.admin - Ports.firstInbound;
/** 15101..15199 */
export const MAX_UPSTREAMS = Ports.reservedHigh - Ports.firstOutbound + 1;

export interface Upstream {
  readonly name: string;
  /** TOLLGATE_UPSTREAM_<NAME>: the app's environment variable holding the local address. */
  readonly envName: string;
  readonly spiffeId: string;
  /** The upstream's address as the caller's sidecar dials it. */
  readonly address: HostPort;
  /** 127.0.0.1:<localPort> is where the app connects in plaintext. */
  readonly localPort: number;
}

export interface MeshAnnotations {
  readonly inboundPorts: readonly number[];
  readonly upstreams: readonly Upstream[];
  readonly policyConfigMap: string | null;
  readonly capture: Capture;
}

export type InjectChoice = 'enabled' | 'disabled' | null;

function refuse(annotation: string, value: string, problem: string): TollgateError {
  const shownValue = value.length > 200 ? `${value.slice(0, 197)}...` : value;
  return new TollgateError('TG_ANNOTATION_INVALID', `annotation ${annotation}: ${JSON.stringify(shownValue)} ${problem}`, { details: { annotation } });
}

/** tollgate.io/inject as written on the pod: enabled, disabled or absent (null). */
export function injectChoice(annotations: Readonly<Record<string, string>>): InjectChoice {
  const v = annotations[Annotation.inject];
  if (v === undefined) return null;
  if (v === 'enabled' || v === 'disabled') return v;
  throw refuse(Annotation.inject, v, 'must be "enabled" or "disabled"');
}

const KNOWN: ReadonlySet<string> = new Set(Object.values(Annotation));
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const UPSTREAM_NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const UPSTREAM_EXAMPLE = 'orders=spiffe://TRUST-DOMAIN/ns/shop/sa/orders@orders.shop.svc:8080';

/** Every tollgate.io annotation of an opted-in pod, checked. `trustDomain` is the mesh's. */
export function parseMeshAnnotations(annotations: Readonly<Record<string, string>>, options: { trustDomain: string; defaultCapture: Capture }): MeshAnnotations {
  for (const key of Object.keys(annotations)) {
    if (!key.startsWith('tollgate.io/') || KNOWN.has(key)) continue;
    const near = closest(key, [...KNOWN]);
    throw new TollgateError('TG_ANNOTATION_INVALID', `annotation ${key} is not a Tollgate annotation${near ? ` (did you mean ${near}?)` : ''}; known: ${[...KNOWN].join(', ')}`, { details: { annotation: key } });
  }
  const inboundPorts = parsePorts(annotations[Annotation.inboundPorts]);
  const upstreams = parseUpstreams(annotations[Annotation.upstreams], options.trustDomain);
  const cm = annotations[Annotation.policyConfigMap];
  if (cm !== undefined && (!DNS_SUBDOMAIN.test(cm) || cm.length > 253)) {
    throw refuse(Annotation.policyConfigMap, cm, 'is not a ConfigMap name; write the name of a ConfigMap in the pod\'s namespace that has the key policy.yaml, e.g. "shop-policy"');
  }
  if (inboundPorts.length > 0 && cm === undefined) {
    throw new TollgateError('TG_ANNOTATION_INVALID', `annotation ${Annotation.inboundPorts} needs ${Annotation.policyConfigMap}: the sidecar admits a peer only if a policy allows it; name a ConfigMap with the key policy.yaml (see examples/policy.yaml)`, { details: { annotation: Annotation.policyConfigMap } });
  }
  const capture = annotations[Annotation.capture] ?? options.defaultCapture;
  if (capture !== 'iptables' && capture !== 'none') {
    throw refuse(Annotation.capture, capture, 'must be "iptables" (redirect the inbound ports to the sidecar) or "none" (no capture; the app must listen on 127.0.0.1)');
  }
  return { inboundPorts, upstreams, policyConfigMap: cm ?? null, capture };
}

function entries(value: string): string[] {
  const parts = value.split(/[,\n]/).map((s) => s.trim());
  // One trailing separator (a YAML block scalar's last newline) is harmless; an empty entry inside is a typo.
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  return value.trim() === '' ? [] : parts;
}

function parsePorts(value: string | undefined): number[] {
  if (value === undefined) return [];
  const a = Annotation.inboundPorts;
  const ports: number[] = [];
  for (const p of entries(value)) {
    if (p === '') throw refuse(a, value, 'has an empty entry; write the app\'s ports separated by commas, e.g. "8080,9000"');
    const n = /^\d{1,5}$/.test(p) ? Number(p) : NaN;
    if (!(n >= 1 && n <= 65535)) throw refuse(a, value, `has ${JSON.stringify(p)}, which is not a port number 1..65535; write the app's ports separated by commas, e.g. "8080,9000" (names of container ports are not accepted)`);
    if (n >= Ports.reservedLow && n <= Ports.reservedHigh) throw refuse(a, value, `has ${n}, in ${Ports.reservedLow}-${Ports.reservedHigh}, the ports the sidecar uses; move the app to another port`);
    if (ports.includes(n)) throw refuse(a, value, `lists ${n} twice; list each port once`);
    ports.push(n);
  }
  if (ports.length > MAX_INBOUND_PORTS) throw refuse(a, value, `lists ${ports.length} ports; a pod can have at most ${MAX_INBOUND_PORTS} (one sidecar listener each, ${Ports.firstInbound}-${Ports.admin - 1})`);
  return ports;
}

function parseUpstreams(value: string | undefined, trustDomain: string): Upstream[] {
  if (value === undefined) return [];
  const a = Annotation.upstreams;
  const hint = `write NAME=SPIFFE-ID@HOST:PORT separated by commas, e.g. "${UPSTREAM_EXAMPLE.replace('TRUST-DOMAIN', trustDomain)}"`;
  const out: Upstream[] = [];
  for (const entry of entries(value)) {
    if (entry === '') throw refuse(a, value, `has an empty entry; ${hint}`);
    const eq = entry.indexOf('=');
    // A SPIFFE ID never holds "@" (userinfo is forbidden), so the last "@" ends it.
    const at = entry.lastIndexOf('@');
    if (eq <= 0 || at < eq) throw refuse(a, value, `has ${JSON.stringify(entry)}, which is not NAME=SPIFFE-ID@HOST:PORT; ${hint}`);
    const name = entry.slice(0, eq).trim();
    const id = entry.slice(eq + 1, at).trim();
    const addr = entry.slice(at + 1).trim();
    if (!UPSTREAM_NAME.test(name)) throw refuse(a, value, `has the name ${JSON.stringify(name)}; a name is lower-case letters, digits and "-", starting with a letter (it becomes TOLLGATE_UPSTREAM_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}), e.g. "orders"`);
    try {
      const parsed = parseWorkloadId(id);
      if (parsed.trustDomain !== trustDomain) throw new TollgateError('TG_SPIFFE_ID_INVALID', '', { details: { reason: `is not in the mesh's trust domain ${JSON.stringify(trustDomain)}, the only one the sidecar can verify` } });
    } catch (e) {
      const why = String((e as TollgateError).details?.['reason'] ?? (e as Error).message);
      throw refuse(a, value, `has the SPIFFE ID ${JSON.stringify(id)} for ${name}, which ${why}; write the upstream's identity, e.g. spiffe://${trustDomain}/ns/NAMESPACE/sa/SERVICE-ACCOUNT`);
    }
    const hp = parseHostPort(addr, { allowPortZero: false });
    if ('problem' in hp) throw refuse(a, value, `has the address ${JSON.stringify(addr)} for ${name}: ${hp.problem}`);
    const envName = `TOLLGATE_UPSTREAM_${name.toUpperCase().replace(/-/g, '_')}`;
    // Names are lower-case with "-", so two names share an environment variable only when equal.
    if (out.some((u) => u.name === name)) throw refuse(a, value, `names ${JSON.stringify(name)} twice; give each upstream its own name`);
    out.push({ name, envName, spiffeId: id, address: hp, localPort: Ports.firstOutbound + out.length });
  }
  if (out.length > MAX_UPSTREAMS) throw refuse(a, value, `lists ${out.length} upstreams; a pod can have at most ${MAX_UPSTREAMS} (local ports ${Ports.firstOutbound}-${Ports.reservedHigh})`);
  return out;
}
