// The CA's directory store: root.crt root.key intermediate.crt intermediate.key bundle.pem state.json.
// Keys are PKCS#8 PEM with mode 0600 in a 0700 directory; every write is atomic. Any unreadable file
// is reported as TG_STORE_CORRUPT with its path and what to do.
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../common/clock.ts';
import { TollgateError } from '../common/errors.ts';
import { writeFileAtomic } from '../common/files.ts';
import { certsToPem, parsePemBlocks, pemToCertDers, toPem } from '../pki/pem.ts';
import { parseTrustDomain } from '../pki/spiffe-id.ts';
import { parseCertificate } from '../pki/x509.ts';
import { createIntermediate, createRoot, loadAuthority, type Authority } from './authority.ts';

export const StoreFiles = {
  rootCert: 'root.crt',
  rootKey: 'root.key',
  intermediateCert: 'intermediate.crt',
  intermediateKey: 'intermediate.key',
  bundle: 'bundle.pem',
  state: 'state.json',
  tokens: 'tokens',
} as const;

export interface StoreState {
  readonly format: 1;
  readonly trustDomain: string;
  /** Increases on every change of bundle.pem; sidecars report the version they hold. */
  readonly bundleVersion: number;
  readonly updatedAt: string;
}

export interface CaMaterial {
  readonly trustDomain: string;
  /** Absent when the root key is kept offline (only root.crt present). */
  readonly root: Authority | undefined;
  readonly rootCertificate: Buffer;
  readonly intermediate: Authority;
  /** DER roots that peers must trust. */
  readonly bundle: readonly Buffer[];
  readonly bundleVersion: number;
}

export class DirectoryStore {
  readonly dir: string;
  constructor(options: { dir: string }) {
    this.dir = options.dir;
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  exists(): boolean {
    return existsSync(this.path(StoreFiles.state)) || existsSync(this.path(StoreFiles.rootCert));
  }

  /** Create a new root and intermediate. Refuses to overwrite an existing CA unless `force`. */
  async init(options: { trustDomain: string; clock: Clock; force?: boolean }): Promise<CaMaterial> {
    const trustDomain = parseTrustDomain(options.trustDomain);
    if (this.exists() && !options.force) {
      throw new TollgateError('TG_STORE_EXISTS', `a CA already exists in ${this.dir}; pass --force to replace it (every issued certificate will stop being trusted)`);
    }
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
    const root = await createRoot({ trustDomain, clock: options.clock });
    const intermediate = await createIntermediate({ trustDomain, root, clock: options.clock });
    this.writeAuthority(StoreFiles.rootCert, StoreFiles.rootKey, root);
    this.writeAuthority(StoreFiles.intermediateCert, StoreFiles.intermediateKey, intermediate);
    const bundle = [root.certificate];
    writeFileAtomic(this.path(StoreFiles.bundle), certsToPem(bundle), 0o644);
    const previous = this.tryReadState();
    const state: StoreState = {
      format: 1,
      trustDomain,
      bundleVersion: (previous?.bundleVersion ?? 0) + 1,
      updatedAt: new Date(options.clock.now()).toISOString(),
    };
    this.writeState(state);
    return { trustDomain, root, rootCertificate: root.certificate, intermediate, bundle, bundleVersion: state.bundleVersion };
  }

  writeAuthority(certFile: string, keyFile: string, a: Authority): void {
    // Key first: a certificate on disk without its key would be a broken store.
    writeFileAtomic(this.path(keyFile), toPem('PRIVATE KEY', a.keyPkcs8), 0o600);
    writeFileAtomic(this.path(certFile), toPem('CERTIFICATE', a.certificate), 0o644);
  }

  writeState(state: StoreState): void {
    writeFileAtomic(this.path(StoreFiles.state), `${JSON.stringify(state, null, 2)}\n`, 0o644);
  }

  private corrupt(file: string, why: string, cause?: unknown): TollgateError {
    return new TollgateError(
      'TG_STORE_CORRUPT',
      `cannot read ${this.path(file)}: ${why}; restore it from a backup, or re-create the CA with \`tollgate ca init --force\``,
      { cause, details: { file: this.path(file) } },
    );
  }

  private readText(file: string): string {
    try {
      return readFileSync(this.path(file), 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        if (!this.exists()) {
          throw new TollgateError('TG_STORE_MISSING', `no CA in ${this.dir}; create one with \`tollgate ca init --trust-domain TD --dir ${this.dir}\``);
        }
        throw this.corrupt(file, 'the file is missing');
      }
      throw this.corrupt(file, (e as Error).message, e);
    }
  }

  private tryReadState(): StoreState | undefined {
    if (!existsSync(this.path(StoreFiles.state))) return undefined;
    return this.readState();
  }

  readState(): StoreState {
    const text = this.readText(StoreFiles.state);
    let s: StoreState;
    try {
      s = JSON.parse(text) as StoreState;
    } catch (e) {
      throw this.corrupt(StoreFiles.state, 'it is not valid JSON', e);
    }
    if (s?.format !== 1 || typeof s.trustDomain !== 'string' || !Number.isSafeInteger(s.bundleVersion)) {
      throw this.corrupt(StoreFiles.state, 'it lacks format, trustDomain or bundleVersion');
    }
    return s;
  }

  private readCert(file: string): Buffer {
    let ders: Buffer[];
    try {
      ders = pemToCertDers(this.readText(file), this.path(file));
      for (const d of ders) parseCertificate(d);
    } catch (e) {
      if (e instanceof TollgateError && (e.code === 'TG_STORE_CORRUPT' || e.code === 'TG_STORE_MISSING')) throw e;
      throw this.corrupt(file, `it is not a PEM certificate (${(e as Error).message})`, e);
    }
    return ders[0]!;
  }

  private readKey(file: string): Buffer {
    const text = this.readText(file);
    const block = parsePemBlocks(text).find((b) => b.label === 'PRIVATE KEY');
    if (!block) throw this.corrupt(file, 'it holds no PEM "PRIVATE KEY" block');
    return block.der;
  }

  private readAuthority(certFile: string, keyFile: string): Authority {
    const certificate = this.readCert(certFile);
    const keyPkcs8 = this.readKey(keyFile);
    try {
      return loadAuthority({ certificate, keyPkcs8, what: `${this.path(certFile)} + ${this.path(keyFile)}` });
    } catch (e) {
      throw this.corrupt(keyFile, (e as Error).message, e);
    }
  }

  readBundle(): Buffer[] {
    try {
      const ders = pemToCertDers(this.readText(StoreFiles.bundle), this.path(StoreFiles.bundle));
      for (const d of ders) parseCertificate(d);
      return ders;
    } catch (e) {
      if (e instanceof TollgateError && (e.code === 'TG_STORE_CORRUPT' || e.code === 'TG_STORE_MISSING')) throw e;
      throw this.corrupt(StoreFiles.bundle, (e as Error).message, e);
    }
  }

  load(): CaMaterial {
    const state = this.readState();
    const trustDomain = parseTrustDomain(state.trustDomain);
    const rootCertificate = this.readCert(StoreFiles.rootCert);
    const root = existsSync(this.path(StoreFiles.rootKey)) ? this.readAuthority(StoreFiles.rootCert, StoreFiles.rootKey) : undefined;
    const intermediate = this.readAuthority(StoreFiles.intermediateCert, StoreFiles.intermediateKey);
    const bundle = this.readBundle();
    return { trustDomain, root, rootCertificate, intermediate, bundle, bundleVersion: state.bundleVersion };
  }
}
