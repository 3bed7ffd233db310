// The sidecar's configuration file (YAML; every key is documented in examples/sidecar.yaml), read once
// at start into a deeply frozen, fully defaulted SidecarConfig. Checked in two passes: a JSON schema
// (sidecar/config-schema.ts, by its precompiled Ajv validator) for shape and types, then the meaning
// of the values (SPIFFE IDs, HOST:PORT, durations, files, listen addresses that collide). Every
// problem is TG_CONFIG_INVALID naming the file and line:
//   cannot read sidecar config ./sidecar.yaml line 7: inbound[0].appPort must be an integer 1..65535, got "http"
// Unknown keys are errors: a misspelt key silently ignored would leave a default in force.
// Command-line overrides replace file values before the second pass and are checked the same way.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { isHostName, isLoopback, isWildcard, parseHostPort, type HostPort } from '../common/address.ts';
import { parseDuration } from '../common/duration.ts';
import { TollgateError } from '../common/errors.ts';
import { readSecretFile } from '../common/secret.ts';
import type { Level } from '../common/log.ts';
import { pemToCertDers } from '../pki/pem.ts';
import { isReservedId, parseTrustDomain, parseWorkloadId } from '../pki/spiffe-id.ts';
import { YamlSource, deepFreeze, pathText, readSourceFile, schemaFailure, shown, type SchemaMessageOptions } from '../common/yaml-source.ts';
import type { ValidateFunction } from 'ajv';
import { LEVELS } from './config-schema.ts';
import validateConfig from './config-validator.cjs';

export type { HostPort };

export type Attestation =
  /** Kubernetes projected service-account token, re-read before every first issue. */
  | { readonly kind: 'k8s'; readonly tokenFile: string }
  /** A join token from `tollgate ca token create`. Never log it. */
  | { readonly kind: 'join'; readonly token: string };

export interface InboundListener {
  readonly listen: HostPort;
  /** The app's port on appHost, and the port the policy is looked up by. */
  readonly appPort: number;
  readonly appHost: string;
  /** Send a PROXY protocol v2 header carrying the peer's SPIFFE ID to the app. */
  readonly proxyProtocol: boolean;
  /** appHost may be a non-loopback address (plaintext then leaves the pod); warned at start. Default false. */
  readonly allowNonLoopbackApp: boolean;
}

export interface OutboundListener {
  /** Always a loopback address. */
  readonly listen: HostPort;
  /** The upstream sidecar's inbound listener. */
  readonly upstream: HostPort;
  /** The workload ID the upstream must present. */
  readonly spiffeId: string;
}

export type TlsMinVersion = 'TLSv1.3' | 'TLSv1.2';

/** A validated sidecar configuration. Paths are absolute, durations in milliseconds. */
export interface SidecarConfig {
  /** The file it was read from (as given), for messages. */
  readonly source: string;
  readonly trustDomain: string;
  /** The bootstrap roots come from exactly one of bundleFile (a path) and bundlePem (inline PEM). */
  readonly ca: { readonly address: HostPort; readonly spiffeId: string; readonly bundleFile?: string; readonly bundlePem?: string };
  readonly attestation: Attestation;
  readonly svid: { readonly ttlMs: number; readonly skewToleranceMs: number };
  readonly inbound: readonly InboundListener[];
  readonly outbound: readonly OutboundListener[];
  /** null when the file names no policy (allowed only without inbound listeners). */
  readonly policy: { readonly file: string } | null;
  readonly tls: { readonly minVersion: TlsMinVersion };
  readonly limits: {
    readonly maxConnections: number;
    readonly maxHandshakes: number;
    readonly maxHandshakesPerSource: number;
    readonly handshakeTimeoutMs: number;
    readonly idleTimeoutMs: number;
    readonly maxConnectionAgeMs: number;
    readonly drainTimeoutMs: number;
  };
  readonly admin: { readonly listen: HostPort };
  readonly log: { readonly level: Level };
  /** How peers are sent to the inbound listeners: iptables rules (tollgate capture), or none. */
  readonly capture: CaptureMode;
}

/** `iptables`: the pod's app ports are redirected to the sidecar; `none`: the app must bind loopback. */
export type CaptureMode = 'iptables' | 'none';

/** Values from command-line flags; each replaces the file's value and is checked the same way. */
export interface SidecarConfigOverrides {
  /** admin.listen, HOST:PORT */
  adminListen?: string;
  /** ca.address, HOST:PORT */
  caAddress?: string;
  /** log.level */
  logLevel?: string;
  /** Replaces the file's attestation with this join token. */
  joinToken?: string;
}

export interface ParseSidecarConfigOptions {
  /** File path shown in messages and kept as SidecarConfig.source. */
  source: string;
  /** Relative paths in the file resolve against this directory; default the current directory. */
  baseDir?: string;
  overrides?: SidecarConfigOverrides;
}

const DEFAULTS = Object.freeze({
  caSpiffePath: '/tollgate/ca',
  svidTtl: '1h',
  svidSkewTolerance: '5m',
  appHost: '127.0.0.1',
  tlsMinVersion: 'TLSv1.3',
  maxConnections: 10_000,
  maxHandshakes: 1_000,
  maxHandshakesPerSource: 100,
  handshakeTimeout: '10s',
  idleTimeout: '1h',
  maxConnectionAge: '24h',
  drainTimeout: '20s',
  adminListen: '127.0.0.1:15020',
  logLevel: 'info',
  capture: 'none',
});

/** The shape the JSON schema guarantees (sections as loose mappings; values are read with get()). */
type Section = Record<string, unknown>;
interface Raw {
  [key: string]: unknown;
  trustDomain: string;
  ca: Section;
  attestation?: Section;
  inbound?: Section[];
  outbound?: Section[];
  policy?: Section;
}

const validate = validateConfig as ValidateFunction<Raw>;

const ROOT = 'the config';
const MESSAGES: SchemaMessageOptions = {
  root: ROOT,
  notAMapping: 'the config must be a mapping with at least trustDomain, ca and attestation (the file is empty or not a mapping)',
  enumHints: { 'tls.minVersion': '; Tollgate never accepts TLS below 1.2' },
};

/**
 * Parse and validate a sidecar config file's text. Throws TollgateError('TG_CONFIG_INVALID') naming
 * the file and line (TG_USAGE for a bad override). Reads attestation.joinTokenFile, nothing else.
 */
export function parseSidecarConfig(text: string, options: ParseSidecarConfigOptions): SidecarConfig {
  const { source } = options;
  const baseDir = resolve(options.baseDir ?? '.');
  const overrides = options.overrides ?? {};
  const yaml = new YamlSource(text, { source, what: 'sidecar config' });
  const data: unknown = yaml.toJS();
  // A section whose keys are all commented out is null in YAML: read it as absent (lists as empty).
  if (data !== null && typeof data === 'object' && !Array.isArray(data)) {
    const d = data as Record<string, unknown>;
    for (const k of ['attestation', 'svid', 'inbound', 'outbound', 'policy', 'tls', 'limits', 'admin', 'log']) if (d[k] === null) delete d[k];
  }
  if (!validate(data)) throw schemaFailure(yaml, validate.errors ?? [], data, MESSAGES);
  const raw = data;

  // Overrides go in as if written in the file; a problem with one names the command line instead of a line.
  const fromFlags = new Set<string>();
  const override = (section: string, key: string, value: string | undefined): void => {
    if (value === undefined) return;
    raw[section] = { ...(raw[section] as Section | undefined), [key]: value };
    fromFlags.add(`${section}.${key}`);
  };
  override('admin', 'listen', overrides.adminListen);
  override('ca', 'address', overrides.caAddress);
  override('log', 'level', overrides.logLevel);
  if (overrides.joinToken !== undefined) {
    raw.attestation = { joinToken: overrides.joinToken };
    fromFlags.add('attestation.joinToken');
  }

  const bad: Bad = (steps, problem, on = 'value') => {
    const path = pathText(steps, raw, ROOT);
    if (fromFlags.has(path)) return new TollgateError('TG_USAGE', `the command-line value for ${path} ${problem}`, { details: { key: path } });
    return yaml.fail(yaml.lineAt(steps, on === 'key'), `${path} ${problem}`);
  };
  const get = <T>(steps: readonly string[], fallback: T): T => {
    let v: unknown = raw;
    for (const s of steps) v = v === undefined || v === null ? undefined : (v as Record<string, unknown>)[s];
    return v === undefined ? fallback : (v as T);
  };
  const file = (steps: readonly string[]): string => resolve(baseDir, get(steps, ''));
  const address = (steps: readonly string[], fallback: string, allowPortZero: boolean): HostPort => {
    const r = parseHostPort(get(steps, fallback), { allowPortZero });
    if ('problem' in r) throw bad(steps, r.problem);
    return r;
  };
  const ms = (steps: readonly string[], fallback: string): number => {
    const v = get<string | number>(steps, fallback);
    try {
      return parseDuration(String(v));
    } catch {
      throw bad(steps, `${shown(v)} is not a duration greater than zero; write e.g. 30s, 10m, 1h or 7d`);
    }
  };
  const workloadId = (steps: readonly string[], td: string): string => {
    const v = get(steps, '');
    let id: { trustDomain: string };
    try {
      id = parseWorkloadId(v);
    } catch (e) {
      throw bad(steps, `${JSON.stringify(v)} ${String((e as TollgateError).details?.['reason'] ?? 'is not a SPIFFE ID')}`);
    }
    if (id.trustDomain !== td) throw bad(steps, `${JSON.stringify(v)} is not in trust domain ${JSON.stringify(td)}, the only one this sidecar's CA can vouch for`);
    return v;
  };

  // The CA's identity must be a reserved one (under /tollgate/): the CA never issues those, so no
  // workload can hold it. A workload ID here would let that workload pose as the CA.
  const caId = (steps: readonly string[], td: string): string => {
    const v = workloadId(steps, td);
    if (!isReservedId(v)) {
      throw bad(steps, `${JSON.stringify(v)} is a workload ID, which a workload could be issued and then pose as the CA; the CA's identity is reserved: remove ca.spiffeId to use spiffe://${td}${DEFAULTS.caSpiffePath}`);
    }
    return v;
  };

  let trustDomain: string;
  try {
    trustDomain = parseTrustDomain(raw.trustDomain);
  } catch (e) {
    throw bad(['trustDomain'], `${JSON.stringify(raw.trustDomain)} ${String((e as TollgateError).details?.['reason'] ?? 'is not a trust domain')}`);
  }

  const ca = {
    address: address(['ca', 'address'], '', false),
    spiffeId: raw.ca?.['spiffeId'] === undefined ? `spiffe://${trustDomain}${DEFAULTS.caSpiffePath}` : caId(['ca', 'spiffeId'], trustDomain),
    ...readBundleSource(raw, bad, file),
  };

  const attestation = readAttestation(raw, bad, file);

  const inbound: InboundListener[] = (raw.inbound ?? []).map((_, i) => {
    const at = (k: string): string[] => ['inbound', String(i), k];
    const appHost = get(at('appHost'), DEFAULTS.appHost);
    if (isIP(appHost) === 0 && !isHostName(appHost)) {
      throw bad(at('appHost'), `${JSON.stringify(appHost)} is not an IP address or host name; the app normally listens on 127.0.0.1`);
    }
    const allowNonLoopbackApp = get(at('allowNonLoopbackApp'), false);
    if (!allowNonLoopbackApp && !isLoopback(appHost)) {
      throw bad(
        at('appHost'),
        `${appHost} is not a loopback address: the plaintext leg to the app would leave the pod; use 127.0.0.1, or set allowNonLoopbackApp: true on this listener if that is intended`,
      );
    }
    return { listen: address(at('listen'), '', true), appPort: get(at('appPort'), 0), appHost, proxyProtocol: get(at('proxyProtocol'), false), allowNonLoopbackApp };
  });

  const outbound: OutboundListener[] = (raw.outbound ?? []).map((_, i) => {
    const at = (k: string): string[] => ['outbound', String(i), k];
    const listen = address(at('listen'), '', true);
    if (!isLoopback(listen.host)) {
      throw bad(at('listen'), `${listen.host} is not a loopback address; outbound listeners take plaintext from the app, so they listen on 127.0.0.1 (or ::1) only`);
    }
    return { listen, upstream: address(at('upstream'), '', false), spiffeId: workloadId(at('spiffeId'), trustDomain) };
  });

  let policy: { file: string } | null = null;
  if (raw.policy?.['file'] !== undefined) policy = { file: file(['policy', 'file']) };
  else if (inbound.length > 0) {
    const where = raw.policy ? ['policy'] : ['inbound'];
    throw yaml.fail(yaml.lineAt(where, !raw.policy), 'inbound listeners need a policy; add "policy: {file: ./policy.yaml}" (see examples/policy.yaml)');
  }

  const level = get<string>(['log', 'level'], DEFAULTS.logLevel);
  if (!LEVELS.includes(level as Level)) throw bad(['log', 'level'], `must be one of ${LEVELS.join(', ')}, got ${shown(level)}`);

  const config: SidecarConfig = {
    source,
    trustDomain,
    ca,
    attestation,
    svid: { ttlMs: ms(['svid', 'ttl'], DEFAULTS.svidTtl), skewToleranceMs: ms(['svid', 'skewTolerance'], DEFAULTS.svidSkewTolerance) },
    inbound,
    outbound,
    policy,
    tls: { minVersion: get(['tls', 'minVersion'], DEFAULTS.tlsMinVersion) as TlsMinVersion },
    limits: {
      maxConnections: get(['limits', 'maxConnections'], DEFAULTS.maxConnections),
      maxHandshakes: get(['limits', 'maxHandshakes'], DEFAULTS.maxHandshakes),
      maxHandshakesPerSource: get(['limits', 'maxHandshakesPerSource'], DEFAULTS.maxHandshakesPerSource),
      handshakeTimeoutMs: ms(['limits', 'handshakeTimeout'], DEFAULTS.handshakeTimeout),
      idleTimeoutMs: ms(['limits', 'idleTimeout'], DEFAULTS.idleTimeout),
      maxConnectionAgeMs: ms(['limits', 'maxConnectionAge'], DEFAULTS.maxConnectionAge),
      drainTimeoutMs: ms(['limits', 'drainTimeout'], DEFAULTS.drainTimeout),
    },
    admin: { listen: address(['admin', 'listen'], DEFAULTS.adminListen, true) },
    log: { level: level as Level },
    capture: get<CaptureMode>(['capture'], DEFAULTS.capture as CaptureMode),
  };

  // Two listeners on one port collide when their hosts are equal or either is a wildcard address.
  const listeners: { steps: string[]; at: HostPort }[] = [
    ...config.inbound.map((l, i) => ({ steps: ['inbound', String(i), 'listen'], at: l.listen })),
    ...config.outbound.map((l, i) => ({ steps: ['outbound', String(i), 'listen'], at: l.listen })),
    { steps: ['admin', 'listen'], at: config.admin.listen },
  ];
  // The error names the value set last: a flag before a line of the file, a line before a default.
  const origin = (steps: readonly string[]): number => (fromFlags.has(pathText(steps, raw, ROOT)) ? 2 : get(steps, undefined) === undefined ? 0 : 1);
  listeners.forEach((y, j) => {
    const x = listeners.slice(0, j).find((l) => l.at.port !== 0 && l.at.port === y.at.port && (l.at.host === y.at.host || isWildcard(l.at.host) || isWildcard(y.at.host)));
    if (!x) return;
    const [blame, other] = origin(y.steps) >= origin(x.steps) ? [y, x] : [x, y];
    const isDefault = origin(other.steps) === 0 ? ', its default' : '';
    throw bad(blame.steps, `${blame.at.host}:${blame.at.port} collides with ${pathText(other.steps, raw, ROOT)} (${other.at.host}:${other.at.port}${isDefault}); give each listener its own port`);
  });

  return deepFreeze(config);
}

/** The error for the value (or, with 'key', the key) at `steps`: its file line, or the command line. */
type Bad = (steps: readonly string[], problem: string, on?: 'key' | 'value') => TollgateError;

/** ca.bundleFile (resolved) or ca.bundlePem (checked to hold certificates): exactly one. */
function readBundleSource(raw: Raw, bad: Bad, file: (steps: readonly string[]) => string): { bundleFile: string } | { bundlePem: string } {
  const pem = raw.ca['bundlePem'];
  if (raw.ca['bundleFile'] !== undefined) {
    if (pem !== undefined) throw bad(['ca', 'bundlePem'], 'cannot be set together with ca.bundleFile; keep one of the two', 'key');
    return { bundleFile: file(['ca', 'bundleFile']) };
  }
  if (pem === undefined) throw bad(['ca'], `has no "bundleFile"; add a PEM file with the CA's roots, e.g. the bundle.pem written by \`tollgate ca init\` (or put its text in bundlePem)`);
  try {
    pemToCertDers(String(pem), 'it');
  } catch (e) {
    throw bad(['ca', 'bundlePem'], `is not PEM certificates (${(e as Error).message}); paste the text of the CA's bundle.pem, "-----BEGIN CERTIFICATE-----" lines included`);
  }
  return { bundlePem: String(pem) };
}

function readAttestation(raw: Raw, bad: Bad, file: (steps: readonly string[]) => string): Attestation {
  const a = raw.attestation;
  const kinds = a ? (['tokenFile', 'joinToken', 'joinTokenFile'] as const).filter((k) => a[k] !== undefined) : [];
  if (kinds.length === 0) {
    const how = 'tokenFile (a Kubernetes projected token), joinToken or joinTokenFile (from `tollgate ca token create`), or give --join-token';
    throw a ? bad(['attestation'], `is empty; set one of ${how}`) : bad([], `has no attestation; add attestation.${how}`);
  }
  if (kinds.length > 1) throw bad(['attestation', kinds[1]!], `cannot be set together with attestation.${kinds[0]}; keep exactly one of tokenFile, joinToken, joinTokenFile`, 'key');
  const kind = kinds[0]!;
  if (kind === 'tokenFile') return { kind: 'k8s', tokenFile: file(['attestation', 'tokenFile']) };
  let token = String(a![kind]);
  if (kind === 'joinTokenFile') {
    const path = file(['attestation', 'joinTokenFile']);
    try {
      token = readSecretFile(path);
    } catch (e) {
      if (e instanceof TollgateError) throw bad(['attestation', 'joinTokenFile'], `${e.message}`);
      const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (e as Error).message;
      throw bad(['attestation', 'joinTokenFile'], `${path} cannot be read (${why}); write the token printed by \`tollgate ca token create\` into it`);
    }
  }
  token = token.trim();
  if (token === '' || /\s/.test(token)) throw bad(['attestation', kind], `${kind === 'joinToken' ? 'is not' : 'does not hold'} a join token (it is empty or has spaces); use the token printed by \`tollgate ca token create\``);
  return { kind: 'join', token };
}

/**
 * Parse a sidecar config held in an environment variable (as the injector passes it in
 * TOLLGATE_SIDECAR_CONFIG); errors name the variable and the line. Relative paths resolve against
 * the current directory.
 */
export function loadSidecarConfigFromEnv(name: string, overrides?: SidecarConfigOverrides, env: NodeJS.ProcessEnv = process.env): SidecarConfig {
  const text = env[name];
  const source = `environment variable ${name}`;
  if (text === undefined || text.trim() === '') {
    throw new TollgateError('TG_CONFIG_INVALID', `cannot read sidecar config: ${source} is ${text === undefined ? 'not set' : 'empty'}; set it to the sidecar's YAML config (see examples/sidecar.yaml) or use --config FILE`, { details: { source } });
  }
  return parseSidecarConfig(text, { source, ...(overrides ? { overrides } : {}) });
}

/** Read and parse a sidecar config file; relative paths in it resolve against its directory. */
export function loadSidecarConfig(path: string, overrides?: SidecarConfigOverrides): SidecarConfig {
  const text = readSourceFile(path, 'sidecar config');
  return parseSidecarConfig(text, { source: path, baseDir: dirname(resolve(path)), ...(overrides ? { overrides } : {}) });
}
