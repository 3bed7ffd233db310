// The prebuilt bundle that bin/tollgate.js runs instead of the TypeScript sources when it is current.
// tsx resolves, transforms and loads every module (ours and our dependencies') on each start; one
// file of cli/main.ts and everything it imports, run with V8's code cache, starts several times
// faster (PRODUCT.md §9: a sidecar is ready within 500 ms).
//
// Current means built from exactly the files on disk now. The bundle's first line lists each input
// with a stat signature (size, mtime, ctime, inode) taken *before* the file was read for the build,
// so an edit during a build makes the bundle stale rather than wrong. ctime cannot be set from user
// space: an edit, copy, checkout, `npm ci` (which sets every mtime to 1985) or `touch` changes it.
// Files are written under a temporary name and renamed, so concurrent builds and runs are safe.
//
// The code cache (compiled bytecode, one file per command group) is keyed by a hash of the bundle's
// text: V8 itself checks only the text's length, and must never run code compiled from another build.
//
// esbuild is the one tsx already depends on, loaded through tsx so it resolves wherever npm put it.
// `npm run build` (and `npm ci`, through `prepare`) builds the bundle ahead, e.g. for a read-only image.
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Script } from 'node:vm';

/** Bump when the build options change: bundles of another format are rebuilt. */
export const BUNDLE_FORMAT = 4;
const HEADER = '// tollgate-bundle ';
const THIS_FILE = fileURLToPath(import.meta.url);

/** The bundle of the `tollgate` command. */
export const CLI_BUNDLE = Object.freeze({
  root: fileURLToPath(new URL('..', import.meta.url)),
  entry: 'cli/main.ts',
  out: fileURLToPath(new URL('../dist/tollgate.cjs', import.meta.url)),
});

// Large dependencies used only by rare commands (PKCS#12 export, the CA's X.509 authority): left out
// of the bundle and required from node_modules when the code that imports them first runs, so that
// every other start does not read them. @grpc/proto-loader (and protobufjs under it) is required by
// grpc-js only to serve channelz or ORCA, which Tollgate never does (our messages have a static codec,
// common/protobuf-wire.ts); npm installs it as grpc-js's own dependency.
const LAZY_EXTERNAL = /^(node-forge|@peculiar\/x509|reflect-metadata|@grpc\/proto-loader)$/;

const WRAP_HEAD = '(function (exports, require, module, __filename, __dirname) {';
const WRAP_TAIL = '\n})';

const LOADERS = { '.ts': 'ts', '.mts': 'ts', '.cts': 'ts', '.js': 'js', '.mjs': 'js', '.cjs': 'js', '.json': 'json' };

/** What identifies one version of a file without reading it. */
function signature(path) {
  const s = statSync(path);
  return `${s.size}:${s.mtimeMs}:${s.ctimeMs}:${s.ino}`;
}

function readHeader(path) {
  const fd = openSync(path, 'r');
  try {
    const chunks = [];
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) return null;
      const nl = buf.subarray(0, n).indexOf(10);
      chunks.push(Buffer.from(buf.subarray(0, nl < 0 ? n : nl)));
      if (nl >= 0) break;
    }
    const line = Buffer.concat(chunks).toString('utf8');
    return line.startsWith(HEADER) ? JSON.parse(line.slice(HEADER.length)) : null;
  } finally {
    closeSync(fd);
  }
}

function writeAtomic(path, data) {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * `out` if it exists, was built from `entry` and every file it was built from is as it was, else null.
 * @param {{ root: string, entry: string, out: string }} o
 * @returns {string | null}
 */
export function currentBundle({ root, entry, out }) {
  let header;
  try {
    header = readHeader(out);
  } catch {
    return null;
  }
  if (!header || header.format !== BUNDLE_FORMAT || header.entry !== entry || !Array.isArray(header.inputs)) return null;
  for (const [rel, sig] of header.inputs) {
    try {
      if (signature(join(root, rel)) !== sig) return null;
    } catch {
      return null;
    }
  }
  return out;
}

/**
 * The bundle as ASCII bytes. esbuild escapes every string, regular expression and name (its default
 * charset), but keeps a few comments as written; one "→" in a comment makes V8 hold the whole 2.4 MB
 * source as a two-byte string (4.8 MB of every process's heap, kept for lazy compilation). In a
 * comment the escape is as good as the character.
 * @param {string} text
 */
export function asciiOnly(text) {
  return Buffer.from(text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`), 'latin1');
}

/**
 * Bundle `entry` (and everything it imports) into `out`, a CommonJS file; resolves to `out`.
 * @param {{ root: string, entry: string, out: string }} o
 * @returns {Promise<string>}
 */
export async function buildBundle({ root, entry, out }) {
  const esbuild = createRequire(fileURLToPath(import.meta.resolve('tsx/esm/api')))('esbuild');
  const inputs = new Map();
  const track = (path) => inputs.set(relative(root, path).split(sep).join('/'), signature(path));
  // Files the build depends on without importing them: compiler options, this script, the installed set.
  for (const extra of [join(root, 'tsconfig.json'), join(root, 'package.json'), join(root, 'node_modules', '.package-lock.json'), THIS_FILE]) {
    try {
      track(extra);
    } catch {
      // absent: nothing to watch
    }
  }
  const ownSource = (path) => !relative(root, path).split(sep).includes('node_modules');
  const tracked = {
    name: 'tollgate-inputs',
    setup(build) {
      build.onResolve({ filter: LAZY_EXTERNAL }, (a) =>
        a.namespace === 'lazy-external' ? { path: a.path, external: true } : { path: a.path, namespace: 'lazy-external' },
      );
      build.onLoad({ filter: /.*/, namespace: 'lazy-external' }, (a) => ({ contents: `module.exports = require(${JSON.stringify(a.path)});`, loader: 'js', resolveDir: root }));
      build.onLoad({ filter: /.*/, namespace: 'file' }, (a) => {
        track(a.path);
        const loader = LOADERS[extname(a.path)];
        if (!loader) return undefined;
        let contents = readFileSync(a.path, 'utf8');
        // Our modules find files next to them (package.json): keep their own location.
        if (loader === 'ts' && ownSource(a.path)) {
          contents = contents.replace(/\bimport\.meta\.(url|dirname|filename)\b/g, (_, k) =>
            JSON.stringify(k === 'url' ? pathToFileURL(a.path).href : k === 'dirname' ? dirname(a.path) : a.path),
          );
        }
        return { contents, loader };
      });
    },
  };
  const built = esbuild.build({
    absWorkingDir: root,
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    // CommonJS, because Node 20 keeps a code cache only for scripts (vm.Script), not ES modules.
    format: 'cjs',
    target: 'node20',
    write: false,
    outfile: out,
    logLevel: 'silent',
    // The file is already the CommonJS wrapper function, so loading it does not concatenate a second
    // copy of its 2 MB text (Module.wrap), which V8 would then keep next to the first.
    banner: { js: WRAP_HEAD },
    footer: { js: WRAP_TAIL },
    plugins: [tracked],
  });
  // The build runs in an esbuild child process, which would otherwise live as long as this one.
  const result = await built.finally(() => esbuild.stop());
  const header = `${HEADER}${JSON.stringify({ format: BUNDLE_FORMAT, entry, inputs: [...inputs].sort(([a], [b]) => (a < b ? -1 : 1)) })}\n`;
  mkdirSync(dirname(out), { recursive: true });
  writeAtomic(out, Buffer.concat([Buffer.from(header), asciiOnly(result.outputFiles[0].text)]));
  return out;
}

/**
 * Run a bundle and return its exports. `cacheKey` names its code cache (one per command, as each
 * compiles different functions). Call `saveCache()` after the work whose compiled code should
 * be kept; it writes the cache once, and only when this run had none (a new build starts afresh).
 * @param {string} path
 * @param {{ cacheKey: string }} o
 * @returns {{ exports: any, cacheUsed: boolean, saveCache: () => void }}
 */
export function loadBundle(path, { cacheKey }) {
  const source = readFileSync(path, 'utf8');
  const digest = createHash('sha1').update(source).digest();
  const cacheFile = `${path}.${cacheKey.replace(/[^a-z0-9-]/gi, '_')}.v8cache`;
  let cachedData;
  try {
    const file = readFileSync(cacheFile);
    if (file.subarray(0, digest.length).equals(digest)) cachedData = file.subarray(digest.length);
  } catch {
    // no cache yet
  }
  const script = new Script(source, { filename: path, ...(cachedData ? { cachedData } : {}) });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(path), module, path, dirname(path));
  const cacheUsed = cachedData !== undefined && !script.cachedDataRejected;
  cachedData = undefined; // V8 has copied what it needs
  let saved = false;
  return {
    exports: module.exports,
    cacheUsed,
    saveCache() {
      if (saved) return;
      saved = true;
      // A cache that was used stays: making another costs a copy of all compiled code (MiBs of
      // memory the process would keep), and the next build starts a new one anyway.
      if (cacheUsed) return;
      try {
        const data = script.createCachedData();
        writeAtomic(cacheFile, Buffer.concat([digest, data]));
      } catch {
        // a read-only install still runs, only without the cache
      }
    },
  };
}

// `node scripts/bundle.js [--optional]`: build the CLI bundle now; with --optional (the `prepare`
// script) a failure is only a warning, since bin/tollgate.js builds or falls back on its own.
if (process.argv[1] === THIS_FILE) {
  try {
    if (!currentBundle(CLI_BUNDLE)) await buildBundle(CLI_BUNDLE);
    process.stdout.write(`${relative(process.cwd(), CLI_BUNDLE.out)} is current\n`);
  } catch (e) {
    process.stderr.write(`could not build ${CLI_BUNDLE.out}: ${e instanceof Error ? e.message : String(e)}\n`);
    if (!process.argv.includes('--optional')) process.exitCode = 1;
  }
}
