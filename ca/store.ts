// The CA's directory store. The truth is records.json (the slot records of ca/slots.ts plus a
// revision) and one certificate/key pair per authority under authorities/ (keys PKCS#8 PEM, 0600, in
// a 0700 directory; every write atomic). Writers compare and swap: commit(expectedRevision, records)
// succeeds only if the revision read is still current, checked under an exclusive lock file, so
// `ca serve` processes and the CLI on one directory never lose an update. root.crt, root.key,
// intermediate.crt, intermediate.key and bundle.pem are views of the active authorities and the
// bundle, rewritten with every commit, for openssl and scripts; Tollgate never reads them except
// to migrate a store written before records.json existed.
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, watch as watchDir } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../common/clock.ts';
import { TollgateError } from '../common/errors.ts';
import { withFileLock, type FileLockOptions } from '../common/file-lock.ts';
import { writeFileAtomic, writingTo } from '../common/files.ts';
import type { Logger } from '../common/log.ts';
import { certsToPem, parsePemBlocks, pemToCertDers, toPem } from '../pki/pem.ts';
import { parseTrustDomain } from '../pki/spiffe-id.ts';
import { parseCertificate } from '../pki/x509.ts';
import { DirectoryJoinTokens, type JoinTokenStore } from './attestation/join-token-store.ts';
import { authorityRecord, loadAuthority, type Authority } from './authority.ts';
import { newCa } from './new-ca.ts';
import { active, bundleOf, validateRecords, type StoreRecords } from './slots.ts';

export const StoreFiles = {
  records: 'records.json',
  lock: 'records.lock',
  authorities: 'authorities',
  rootCert: 'root.crt',
  rootKey: 'root.key',
  intermediateCert: 'intermediate.crt',
  intermediateKey: 'intermediate.key',
  bundle: 'bundle.pem',
  tokens: 'tokens',
  /** Written by stores before records.json; migrated on first read. */
  legacyState: 'state.json',
} as const;

export interface Versioned {
  readonly revision: number;
  readonly records: StoreRecords;
}

/** A new authority's certificate and, unless its key is kept offline, its key (PKCS#8 DER). */
export interface NewMaterial {
  readonly id: string;
  readonly certificate: Buffer;
  readonly keyPkcs8?: Buffer | undefined;
}

/**
 * What every store offers (the directory here, a Kubernetes Secret in ca/kube-store.ts): read the
 * records with their revision; commit new records (and the material of authorities they add) only
 * if the revision is still `expectedRevision` (0: the store holds no records yet), else
 * TG_STORE_CONFLICT; read one authority's material.
 */
export interface AuthorityStore {
  read(): Promise<Versioned>;
  commit(expectedRevision: number, records: StoreRecords, material?: readonly NewMaterial[]): Promise<number>;
  certificate(id: string): Promise<Buffer>;
  /** undefined when the key is kept outside the store. */
  privateKey(id: string): Promise<Buffer | undefined>;
}

/** A store a running CA follows (`ca serve`): its revision, its changes, its join tokens. */
export interface CaStore extends AuthorityStore {
  /** Where the state lives, for messages: `directory ./ca`, `Secret tollgate-system/tollgate-ca`. */
  readonly where: string;
  /** The current revision, 0 while the store holds no records; cheap enough to poll. */
  revision(): Promise<number>;
  /** Call `changed` whenever the store may have changed, until the returned function is called. */
  watch(changed: () => void, logger: Logger): () => void;
  readonly joinTokens: JoinTokenStore;
  /**
   * Bring published copies of the bundle (the Kubernetes store's ConfigMap) up to `records`; a
   * store whose bundle is part of its commit has none.
   */
  publishBundle?(records: StoreRecords): Promise<void>;
}

/** The active authorities, loaded (the root's key only when it is in the store). */
export interface CaMaterial {
  readonly trustDomain: string;
  readonly root: Authority | undefined;
  readonly rootCertificate: Buffer;
  readonly intermediate: Authority;
  /** DER roots that peers must trust. */
  readonly bundle: readonly Buffer[];
  readonly bundleVersion: number;
  readonly revision: number;
  readonly records: StoreRecords;
}

/** The text of records.json (records plus their revision), checked; throws saying what is wrong. */
export function parseRecordsText(text: string): Versioned {
  const { revision, ...records } = JSON.parse(text) as StoreRecords & { revision: number };
  if (!Number.isSafeInteger(revision) || revision < 1) throw new Error('it has no revision');
  return { revision, records: validateRecords(records) };
}

/** records.json's text for `records` at `revision` (both stores write the same document). */
export function recordsText(revision: number, records: StoreRecords): string {
  return `${JSON.stringify({ revision, ...records }, null, 2)}\n`;
}

export interface InitOptions {
  readonly trustDomain: string;
  readonly clock: Clock;
  readonly force?: boolean;
  /** Offline-root mode: write the root key here (0600) and never into the store. */
  readonly rootKeyOut?: string | undefined;
  readonly rootLifetimeMs?: number | undefined;
  readonly intermediateLifetimeMs?: number | undefined;
}

export class DirectoryStore implements CaStore {
  readonly dir: string;
  readonly #lock: FileLockOptions;
  readonly joinTokens: JoinTokenStore;

  constructor(options: { dir: string; lock?: FileLockOptions }) {
    this.dir = options.dir;
    this.#lock = options.lock ?? {};
    this.joinTokens = new DirectoryJoinTokens({ dir: join(this.dir, StoreFiles.tokens) });
  }

  get where(): string {
    return `directory ${this.dir}`;
  }

  async revision(): Promise<number> {
    return this.#revision();
  }

  /** fs.watch on the directory: reacts within milliseconds to a commit by another process. */
  watch(changed: () => void, logger: Logger): () => void {
    try {
      const w = watchDir(this.dir, { persistent: false }, (_event, file) => {
        if (!file || file === StoreFiles.records) changed();
      });
      w.on('error', (e) => logger.warn('cannot watch the CA store; polling only', { error: e.message }));
      return () => w.close();
    } catch (e) {
      logger.warn('cannot watch the CA store; polling only', { error: (e as Error).message });
      return () => undefined;
    }
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  #authorityPath(id: string, ext: 'crt' | 'key'): string {
    return join(this.dir, StoreFiles.authorities, `${id}.${ext}`);
  }

  exists(): boolean {
    return [StoreFiles.records, StoreFiles.legacyState, StoreFiles.rootCert].some((f) => existsSync(this.path(f)));
  }

  /** Create a new root and intermediate. Refuses to replace an existing CA unless `force`. */
  async init(o: InitOptions): Promise<CaMaterial> {
    const trustDomain = parseTrustDomain(o.trustDomain);
    if (this.exists() && !o.force) {
      throw new TollgateError('TG_STORE_EXISTS', `a CA already exists in ${this.dir}; pass --force to replace it (every issued certificate will stop being trusted)`);
    }
    writingTo(this.dir, () => {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      chmodSync(this.dir, 0o700);
    });
    let previous: Versioned | undefined;
    try {
      previous = existsSync(this.path(StoreFiles.records)) ? this.readSync() : undefined;
    } catch {
      previous = undefined; // --force over a broken store starts over
    }
    const made = await newCa({ ...o, trustDomain }, previous?.records);
    const revision = this.commitSync(previous?.revision ?? this.#revision(), made.records, made.material);
    const { records } = made;
    return { trustDomain, root: made.root, rootCertificate: made.root.certificate, intermediate: made.intermediate, bundle: [made.root.certificate], bundleVersion: records.bundleVersion, revision, records };
  }

  async read(): Promise<Versioned> {
    return this.readSync();
  }

  async commit(expectedRevision: number, records: StoreRecords, material: readonly NewMaterial[] = []): Promise<number> {
    return this.commitSync(expectedRevision, records, material);
  }

  async certificate(id: string): Promise<Buffer> {
    return this.certificateSync(id);
  }

  async privateKey(id: string): Promise<Buffer | undefined> {
    return this.privateKeySync(id);
  }

  /** The records and their revision; a store from before records.json is migrated first. */
  readSync(): Versioned {
    if (!existsSync(this.path(StoreFiles.records))) {
      if (existsSync(this.path(StoreFiles.legacyState)) && existsSync(this.path(StoreFiles.rootCert))) this.#migrate();
      else throw new TollgateError('TG_STORE_MISSING', `no CA in ${this.dir}; create one with \`tollgate ca init --trust-domain TD --dir ${this.dir}\``);
    }
    try {
      return parseRecordsText(readFileSync(this.path(StoreFiles.records), 'utf8'));
    } catch (e) {
      throw this.#corrupt(StoreFiles.records, (e as Error).message, e);
    }
  }

  /** The current revision, 0 when there are no records yet. Cheap enough to poll. */
  revisionSync(): number {
    return this.#revision();
  }

  #revision(): number {
    try {
      const r = (JSON.parse(readFileSync(this.path(StoreFiles.records), 'utf8')) as { revision?: unknown }).revision;
      return typeof r === 'number' ? r : 0;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw this.#corrupt(StoreFiles.records, (e as Error).message, e);
    }
  }

  commitSync(expectedRevision: number, records: StoreRecords, material: readonly NewMaterial[] = []): number {
    validateRecords(records);
    writingTo(this.path(StoreFiles.authorities), () => mkdirSync(this.path(StoreFiles.authorities), { recursive: true, mode: 0o700 }));
    try {
      // Material first, under names no record uses yet: a crash or a lost race leaves only orphans,
      // and a failed write (disk full) removes them below.
      for (const m of material) {
        if (m.keyPkcs8) writeFileAtomic(this.#authorityPath(m.id, 'key'), toPem('PRIVATE KEY', m.keyPkcs8), 0o600);
        writeFileAtomic(this.#authorityPath(m.id, 'crt'), toPem('CERTIFICATE', m.certificate), 0o644);
      }
      return withFileLock(this.path(StoreFiles.lock), () => {
        const current = this.#revision();
        if (current !== expectedRevision) {
          throw new TollgateError('TG_STORE_CONFLICT', `the CA store ${this.dir} is at revision ${current}, not ${expectedRevision}: another process changed it; re-read and retry`, {
            details: { expected: expectedRevision, current },
          });
        }
        const revision = expectedRevision + 1;
        const before = this.#referencedIds();
        writeFileAtomic(this.path(StoreFiles.records), recordsText(revision, records), 0o644);
        this.#writeViews(records);
        // Authorities the records no longer hold (pruned long after they expired) lose their files.
        const kept = new Set(records.authorities.map((a) => a.id));
        for (const id of before) if (!kept.has(id)) for (const ext of ['crt', 'key'] as const) rmSync(this.#authorityPath(id, ext), { force: true });
        return revision;
      }, this.#lock);
    } catch (e) {
      const kept = this.#referencedIds();
      for (const m of material) if (!kept.has(m.id)) for (const ext of ['crt', 'key'] as const) rmSync(this.#authorityPath(m.id, ext), { force: true });
      throw e;
    }
  }

  // Ids the current records use (a concurrent migration writes the same ids as ours).
  #referencedIds(): Set<string> {
    try {
      const r = JSON.parse(readFileSync(this.path(StoreFiles.records), 'utf8')) as StoreRecords;
      return new Set(r.authorities.map((a) => a.id));
    } catch {
      return new Set();
    }
  }

  #writeViews(records: StoreRecords): void {
    const act = active(records);
    writeFileAtomic(this.path(StoreFiles.rootCert), toPem('CERTIFICATE', this.certificateSync(act.root.id)), 0o644);
    writeFileAtomic(this.path(StoreFiles.intermediateCert), toPem('CERTIFICATE', this.certificateSync(act.intermediate.id)), 0o644);
    for (const [a, file] of [[act.root, StoreFiles.rootKey], [act.intermediate, StoreFiles.intermediateKey]] as const) {
      const key = a.keyInStore ? this.privateKeySync(a.id) : undefined;
      if (key) writeFileAtomic(this.path(file), toPem('PRIVATE KEY', key), 0o600);
      else rmSync(this.path(file), { force: true });
    }
    writeFileAtomic(this.path(StoreFiles.bundle), certsToPem(bundleOf(records).rootIds.map((id) => this.certificateSync(id))), 0o644);
  }

  certificateSync(id: string): Buffer {
    const file = this.#authorityPath(id, 'crt');
    return this.#readCert(file);
  }

  privateKeySync(id: string): Buffer | undefined {
    const file = this.#authorityPath(id, 'key');
    if (!existsSync(file)) return undefined;
    return this.#readKey(file);
  }

  /** An authority with its key (TG_ROOT_KEY_MISSING when the key is not in the store). */
  authoritySync(id: string): Authority {
    const certificate = this.certificateSync(id);
    const keyPkcs8 = this.privateKeySync(id);
    if (!keyPkcs8) throw new TollgateError('TG_ROOT_KEY_MISSING', `the private key of ${id} is not in ${this.dir}; pass it with --root-key FILE`);
    try {
      return loadAuthority({ certificate, keyPkcs8, what: this.#authorityPath(id, 'key') });
    } catch (e) {
      throw this.#corrupt(join(StoreFiles.authorities, `${id}.key`), (e as Error).message, e);
    }
  }

  /** The active authorities and the bundle (for `cert issue`, the demo and the bench). */
  load(): CaMaterial {
    const { revision, records } = this.readSync();
    const act = active(records);
    const root = act.root.keyInStore && this.privateKeySync(act.root.id) ? this.authoritySync(act.root.id) : undefined;
    return {
      trustDomain: records.trustDomain,
      root,
      rootCertificate: this.certificateSync(act.root.id),
      intermediate: this.authoritySync(act.intermediate.id),
      bundle: bundleOf(records).rootIds.map((id) => this.certificateSync(id)),
      bundleVersion: records.bundleVersion,
      revision,
      records,
    };
  }

  readState(): { trustDomain: string; bundleVersion: number } {
    const { records } = this.readSync();
    return { trustDomain: records.trustDomain, bundleVersion: records.bundleVersion };
  }

  // A store written before records.json: root.crt (+ root.key), intermediate.crt + .key, state.json.
  // Its two authorities become the active ones, with the same bundle version, so sidecars see no change.
  #migrate(): void {
    let state: { trustDomain?: unknown; bundleVersion?: unknown };
    try {
      state = JSON.parse(readFileSync(this.path(StoreFiles.legacyState), 'utf8')) as typeof state;
    } catch (e) {
      throw this.#corrupt(StoreFiles.legacyState, (e as Error).message, e);
    }
    if (typeof state.trustDomain !== 'string' || !Number.isSafeInteger(state.bundleVersion)) throw this.#corrupt(StoreFiles.legacyState, 'it lacks trustDomain or bundleVersion');
    const rootCert = this.#readCert(this.path(StoreFiles.rootCert));
    const rootKey = existsSync(this.path(StoreFiles.rootKey)) ? this.#readKey(this.path(StoreFiles.rootKey)) : undefined;
    const intermediate = this.#readCert(this.path(StoreFiles.intermediateCert));
    const intKey = this.#readKey(this.path(StoreFiles.intermediateKey));
    const now = parseCertificate(intermediate).notBefore;
    const rootRec = authorityRecord(rootCert, { kind: 'root', slot: 'active', now, keyInStore: rootKey !== undefined });
    const intRec = authorityRecord(intermediate, { kind: 'intermediate', slot: 'active', parent: rootRec.id, now, keyInStore: true });
    const records: StoreRecords = { format: 2, trustDomain: parseTrustDomain(state.trustDomain), bundleVersion: state.bundleVersion as number, authorities: [rootRec, intRec], rotation: null };
    try {
      this.commitSync(0, records, [
        { id: rootRec.id, certificate: rootCert, keyPkcs8: rootKey },
        { id: intRec.id, certificate: intermediate, keyPkcs8: intKey },
      ]);
      rmSync(this.path(StoreFiles.legacyState), { force: true });
    } catch (e) {
      // Another process migrated it first: its records are as good as ours.
      if (!(e instanceof TollgateError && e.code === 'TG_STORE_CONFLICT')) throw e;
    }
  }

  #corrupt(file: string, why: string, cause?: unknown): TollgateError {
    const path = file.startsWith('/') ? file : this.path(file);
    return new TollgateError('TG_STORE_CORRUPT', `cannot read ${path}: ${why}; restore it from a backup, or re-create the CA with \`tollgate ca init --force\``, {
      cause,
      details: { file: path },
    });
  }

  #readText(path: string): string {
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      throw this.#corrupt(path, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'the file is missing' : (e as Error).message, e);
    }
  }

  #readCert(path: string): Buffer {
    const text = this.#readText(path);
    try {
      const [der] = pemToCertDers(text, path);
      parseCertificate(der!);
      return der!;
    } catch (e) {
      throw this.#corrupt(path, `it is not a PEM certificate (${(e as Error).message})`, e);
    }
  }

  #readKey(path: string): Buffer {
    const block = parsePemBlocks(this.#readText(path)).find((b) => b.label === 'PRIVATE KEY');
    if (!block) throw this.#corrupt(path, 'it holds no PEM "PRIVATE KEY" block');
    return block.der;
  }
}
