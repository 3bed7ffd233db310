// The CA's Kubernetes store (PRODUCT.md §3, §7): CA replicas keep no state of their own.
//
// - Secret `tollgate-ca` (ca.secretName) holds the truth: `records.json` (the slot records of
//   ca/slots.ts with their revision, the same document as the directory store's) and one
//   `<id>.crt` + `<id>.key` pair (PEM) per authority the records keep; an offline root has no key
//   there. A commit is ONE write of the whole Secret: a PUT carrying the resourceVersion it was
//   read at (a POST when there is no Secret yet: create-if-absent), so a 409 means another writer
//   won and becomes TG_STORE_CONFLICT; callers re-read and retry or find the work done. Records and
//   the authorities they name change together, so there is never a half-written state.
// - ConfigMap `tollgate-bundle`, key `bundle.pem`, is the public bundle for clients outside the
//   mesh, annotated with its bundle version. It is a copy: written after each commit, and checked by
//   every replica at each poll, which fixes it (again a CAS on its resourceVersion) when it lags the
//   records; a copy with a higher version is left alone.
// - Join tokens: Secrets `tollgate-join-tokens-0` ... `-f` (ca/attestation/kube-join-tokens.ts).
// - Replicas see each other's commits through a watch on the Secret (ca/kube-watch.ts) and a poll.
// A Secret written by `kubectl create secret generic tollgate-ca --from-file=ca/` from a directory
// store is read too: the active authorities come from its root.* and intermediate.* views, and the
// first commit rewrites it in the layout above. Nothing here logs or returns key material.
import type { Clock } from '../common/clock.ts';
import { TollgateError, isTollgateError } from '../common/errors.ts';
import type { KubeClient } from '../common/kube-client.ts';
import type { Logger } from '../common/log.ts';
import { certsToPem, parsePemBlocks, pemToCertDers, toPem } from '../pki/pem.ts';
import { parseCertificate } from '../pki/x509.ts';
import { KubernetesJoinTokens } from './attestation/kube-join-tokens.ts';
import { NamedObjectWatch } from './kube-watch.ts';
import { newCa, type NewCa } from './new-ca.ts';
import { active, bundleOf, validateRecords, type StoreRecords } from './slots.ts';
import { parseRecordsText, recordsText, StoreFiles, type CaStore, type InitOptions, type NewMaterial, type Versioned } from './store.ts';

export const KUBE_CA_SECRET = 'tollgate-ca';
export const KUBE_BUNDLE_CONFIGMAP = 'tollgate-bundle';
export const KUBE_BUNDLE_KEY = 'bundle.pem';
export const BUNDLE_VERSION_ANNOTATION = 'tollgate.io/bundle-version';
const LABELS = { 'app.kubernetes.io/part-of': 'tollgate', 'app.kubernetes.io/managed-by': 'tollgate' };
/** Views a Secret made from a directory store may hold; dropped by the first commit. */
const VIEWS = [StoreFiles.rootCert, StoreFiles.rootKey, StoreFiles.intermediateCert, StoreFiles.intermediateKey, StoreFiles.bundle, StoreFiles.legacyState] as const;
const PUBLISH_ATTEMPTS = 5;

interface KubeObject {
  apiVersion?: string;
  kind?: string;
  type?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string>; annotations?: Record<string, string>; managedFields?: unknown; [k: string]: unknown };
  data?: Record<string, string>;
}

export interface KubernetesStoreOptions {
  readonly client: KubeClient;
  readonly namespace: string;
  /** Default tollgate-ca. */
  readonly secretName?: string | undefined;
  /** Default tollgate-bundle. */
  readonly bundleConfigMap?: string | undefined;
  /** Prefix of the join tokens' 16 shard Secrets; default tollgate-join-tokens. */
  readonly joinTokensSecret?: string | undefined;
  readonly clock: Clock;
  /** Where a failed bundle publication after a commit is reported (the commit itself stands). */
  readonly logger?: Logger | undefined;
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const unb64 = (value: string): string => Buffer.from(value, 'base64').toString('utf8');
/** An object as sent back in a PUT: everything the server gave but its field bookkeeping. */
const forUpdate = (m: KubeObject['metadata']): KubeObject['metadata'] => {
  const { managedFields: _, ...rest } = m;
  return rest;
};

export class KubernetesStore implements CaStore {
  readonly joinTokens: KubernetesJoinTokens;
  readonly #o: KubernetesStoreOptions;
  readonly #secret: string;
  readonly #configMap: string;
  /** The Secret as last read or written (the highest records revision seen). */
  #latest: KubeObject | undefined;
  /** Certificates are immutable per authority id: kept once seen (PEM). */
  readonly #certs = new Map<string, string>();

  constructor(options: KubernetesStoreOptions) {
    this.#o = options;
    this.#secret = options.secretName ?? KUBE_CA_SECRET;
    this.#configMap = options.bundleConfigMap ?? KUBE_BUNDLE_CONFIGMAP;
    this.joinTokens = new KubernetesJoinTokens({ client: options.client, clock: options.clock, namespace: options.namespace, ...(options.joinTokensSecret ? { secretName: options.joinTokensSecret } : {}) });
  }

  get where(): string {
    return `Secret ${this.#o.namespace}/${this.#secret}`;
  }

  #collection(resource: 'secrets' | 'configmaps'): string {
    return `/api/v1/namespaces/${encodeURIComponent(this.#o.namespace)}/${resource}`;
  }

  async #fetch(resource: 'secrets' | 'configmaps', name: string): Promise<KubeObject | undefined> {
    try {
      return await this.#o.client.get<KubeObject>(`${this.#collection(resource)}/${encodeURIComponent(name)}`);
    } catch (e) {
      if (isTollgateError(e, 'TG_KUBE_NOT_FOUND')) return undefined;
      throw e;
    }
  }

  async #get(): Promise<KubeObject | undefined> {
    const s = await this.#fetch('secrets', this.#secret);
    if (s) this.#remember(s);
    return s;
  }

  #remember(s: KubeObject): void {
    const rev = this.#revisionOf(s);
    if (this.#latest && rev < this.#revisionOf(this.#latest)) return;
    this.#latest = s;
    for (const [k, v] of Object.entries(s.data ?? {})) if (k.endsWith('.crt') && !(VIEWS as readonly string[]).includes(k)) this.#certs.set(k.slice(0, -4), unb64(v));
  }

  #corrupt(why: string, cause?: unknown): TollgateError {
    return new TollgateError('TG_STORE_CORRUPT', `cannot read the CA in ${this.where}: ${why}; restore the Secret from a backup (kubectl apply -f), or re-create the CA with \`tollgate ca init --store kubernetes --force\``, {
      ...(cause !== undefined ? { cause } : {}),
    });
  }

  /** The records in `s`, undefined when it holds none yet. */
  #versioned(s: KubeObject): Versioned | undefined {
    const raw = s.data?.[StoreFiles.records];
    if (raw === undefined) {
      if (s.data?.[StoreFiles.legacyState] !== undefined) {
        throw this.#corrupt('it was made from a directory store older than records.json; run `tollgate ca status --dir DIR` once on that directory (it migrates it), then re-create the Secret from it');
      }
      return undefined;
    }
    try {
      return parseRecordsText(unb64(raw));
    } catch (e) {
      throw this.#corrupt(`${StoreFiles.records}: ${(e as Error).message}`, e);
    }
  }

  /** The records' revision: 0 without records, -1 when they cannot be read (only --force replaces them). */
  #revisionOf(s: KubeObject): number {
    try {
      return this.#versioned(s)?.revision ?? 0;
    } catch {
      return -1;
    }
  }

  async read(): Promise<Versioned> {
    const s = await this.#get();
    const v = s ? this.#versioned(s) : undefined;
    if (!v) {
      throw new TollgateError('TG_STORE_MISSING', `no CA in ${this.where}; create one with \`tollgate ca init --store kubernetes --namespace ${this.#o.namespace} --trust-domain TD\`, or start \`tollgate ca serve --store kubernetes --init-if-empty --trust-domain TD\``);
    }
    return v;
  }

  async revision(): Promise<number> {
    const s = await this.#get();
    return s ? this.#versioned(s)?.revision ?? 0 : 0;
  }

  async commit(expectedRevision: number, records: StoreRecords, material: readonly NewMaterial[] = []): Promise<number> {
    validateRecords(records);
    const cached = this.#latest && this.#revisionOf(this.#latest) === expectedRevision ? this.#latest : undefined;
    const base = cached ?? (await this.#get());
    const current = base ? this.#revisionOf(base) : 0;
    const conflict = (now: number | string): TollgateError =>
      new TollgateError('TG_STORE_CONFLICT', `the CA in ${this.where} is at revision ${now}, not ${expectedRevision}: another process changed it; re-read and retry`, {
        details: { expected: expectedRevision, current: now },
      });
    if (current !== expectedRevision) throw conflict(current);
    const revision = Math.max(expectedRevision, 0) + 1;
    const body: KubeObject = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: base?.type ?? 'Opaque',
      metadata: base ? { ...forUpdate(base.metadata), labels: { ...LABELS, ...base.metadata.labels } } : { name: this.#secret, namespace: this.#o.namespace, labels: LABELS },
      data: this.#dataFor(base, records, material, revision),
    };
    let saved: KubeObject;
    try {
      saved = base
        ? await this.#o.client.put<KubeObject>(`${this.#collection('secrets')}/${encodeURIComponent(this.#secret)}`, body)
        : await this.#o.client.post<KubeObject>(this.#collection('secrets'), body);
    } catch (e) {
      // 409: Conflict (a stale resourceVersion) or AlreadyExists (another first commit won).
      if (isTollgateError(e, 'TG_KUBE_CONFLICT')) throw conflict('newer');
      throw e;
    }
    this.#remember(saved);
    await this.publishBundle(records).catch((e: Error) => this.#o.logger?.warn('the CA store changed but its bundle ConfigMap is not updated yet; the replicas retry', { error: e.message }));
    return revision;
  }

  // The Secret's data for `records`: the previous data without the authorities no longer recorded
  // and without directory-store views, plus the new material and records.json.
  #dataFor(base: KubeObject | undefined, records: StoreRecords, material: readonly NewMaterial[], revision: number): Record<string, string> {
    const before = base?.data ?? {};
    const keep = new Set(records.authorities.map((a) => a.id));
    const data: Record<string, string> = {};
    for (const [k, v] of Object.entries(before)) {
      const id = /^(.+)\.(crt|key)$/.exec(k)?.[1];
      if ((VIEWS as readonly string[]).includes(k) || (id !== undefined && !keep.has(id))) continue;
      data[k] = v;
    }
    for (const a of records.authorities) {
      for (const ext of ['crt', 'key'] as const) {
        if (data[`${a.id}.${ext}`] !== undefined || (ext === 'key' && !a.keyInStore)) continue;
        const fromView = base ? this.#lookup(base, a.id, ext) : undefined;
        if (fromView !== undefined) data[`${a.id}.${ext}`] = b64(fromView);
      }
    }
    for (const m of material) {
      data[`${m.id}.crt`] = b64(toPem('CERTIFICATE', m.certificate));
      if (m.keyPkcs8) data[`${m.id}.key`] = b64(toPem('PRIVATE KEY', m.keyPkcs8));
    }
    for (const a of records.authorities) if (data[`${a.id}.crt`] === undefined) throw this.#corrupt(`the certificate of ${a.id} is missing`);
    data[StoreFiles.records] = b64(recordsText(revision, records));
    return data;
  }

  /** `<id>.<ext>` of `s` as PEM text, else the directory store's view of it when `id` is active there. */
  #lookup(s: KubeObject, id: string, ext: 'crt' | 'key'): string | undefined {
    const own = s.data?.[`${id}.${ext}`];
    if (own !== undefined) return unb64(own);
    let records: StoreRecords | undefined;
    try {
      records = this.#versioned(s)?.records;
    } catch {
      return undefined;
    }
    if (!records) return undefined;
    const act = active(records);
    const view = id === act.root.id ? `root.${ext}` : id === act.intermediate.id ? `intermediate.${ext}` : undefined;
    const v = view === undefined ? undefined : s.data?.[view];
    return v === undefined ? undefined : unb64(v);
  }

  async certificate(id: string): Promise<Buffer> {
    let pem = this.#certs.get(id) ?? (this.#latest ? this.#lookup(this.#latest, id, 'crt') : undefined);
    if (pem === undefined) {
      const fresh = await this.#get();
      pem = fresh ? this.#lookup(fresh, id, 'crt') : undefined;
    }
    if (pem === undefined) throw this.#corrupt(`the certificate of ${id} is missing`);
    try {
      const [der] = pemToCertDers(pem, `${id}.crt`);
      parseCertificate(der!);
      return der!;
    } catch (e) {
      throw this.#corrupt(`${id}.crt is not a PEM certificate (${(e as Error).message})`, e);
    }
  }

  async privateKey(id: string): Promise<Buffer | undefined> {
    const pem = this.#latest ? this.#lookup(this.#latest, id, 'key') : undefined;
    if (pem === undefined) return undefined;
    const block = parsePemBlocks(pem).find((b) => b.label === 'PRIVATE KEY');
    if (!block) throw this.#corrupt(`${id}.key holds no PEM "PRIVATE KEY" block`);
    return block.der;
  }

  /** A watch on the Secret; every event also refreshes what this store holds. */
  watch(changed: () => void, logger: Logger): () => void {
    const w = new NamedObjectWatch<KubeObject>({
      client: this.#o.client,
      collection: this.#collection('secrets'),
      name: this.#secret,
      clock: this.#o.clock,
      logger,
      onChange: (s) => {
        if (s) this.#remember(s);
        changed();
      },
    });
    w.start();
    return () => void w.stop();
  }

  /** Make ConfigMap tollgate-bundle hold `records`' bundle, unless it already holds a newer one. */
  async publishBundle(records: StoreRecords): Promise<void> {
    const pem = certsToPem(await Promise.all(bundleOf(records).rootIds.map((id) => this.certificate(id))));
    const version = String(records.bundleVersion);
    for (let attempt = 0; attempt < PUBLISH_ATTEMPTS; attempt++) {
      const cm = await this.#fetch('configmaps', this.#configMap);
      const held = Number(cm?.metadata.annotations?.[BUNDLE_VERSION_ANNOTATION] ?? 0);
      if (cm && (held > records.bundleVersion || (held === records.bundleVersion && cm.data?.[KUBE_BUNDLE_KEY] === pem))) return;
      const body: KubeObject = {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: cm
          ? { ...forUpdate(cm.metadata), annotations: { ...cm.metadata.annotations, [BUNDLE_VERSION_ANNOTATION]: version } }
          : { name: this.#configMap, namespace: this.#o.namespace, labels: LABELS, annotations: { [BUNDLE_VERSION_ANNOTATION]: version } },
        data: { ...cm?.data, [KUBE_BUNDLE_KEY]: pem },
      };
      try {
        if (cm) await this.#o.client.put(`${this.#collection('configmaps')}/${encodeURIComponent(this.#configMap)}`, body);
        else await this.#o.client.post(this.#collection('configmaps'), body);
        return;
      } catch (e) {
        if (!isTollgateError(e, 'TG_KUBE_CONFLICT')) throw e;
      }
    }
    throw new TollgateError('TG_STORE_CONFLICT', `ConfigMap ${this.#o.namespace}/${this.#configMap} changed under every one of ${PUBLISH_ATTEMPTS} writes; it is retried at the next poll`);
  }

  /**
   * `tollgate ca init --store kubernetes`: a new CA in the Secret (created if absent), refused over
   * an existing one unless `force`.
   */
  async init(o: InitOptions): Promise<NewCa & { revision: number }> {
    const s = await this.#get();
    const expected = s ? this.#revisionOf(s) : 0;
    if (expected !== 0 && !o.force) {
      throw new TollgateError('TG_STORE_EXISTS', `a CA already exists in ${this.where}; pass --force to replace it (every issued certificate will stop being trusted)`);
    }
    let previous: StoreRecords | undefined;
    try {
      previous = s ? this.#versioned(s)?.records : undefined;
    } catch {
      previous = undefined; // --force over a broken Secret starts over
    }
    const made = await newCa(o, previous);
    return { ...made, revision: await this.commit(expected, made.records, made.material) };
  }
}
