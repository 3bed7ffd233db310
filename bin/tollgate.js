#!/usr/bin/env node
// Entry point for `npx tollgate`. Runs dist/tollgate.cjs, one bundle of cli/main.ts and everything
// it imports, when that bundle was built from exactly the files now on disk (scripts/bundle.js);
// otherwise builds it first (about a second, once after a change). If it cannot be built (no
// esbuild, a read-only directory, a syntax error), runs the TypeScript sources through tsx, which
// also reports the error. So a fresh `npm ci` is all it takes: no build step that install-script
// policies could hold back, and never a stale bundle.
// TOLLGATE_BUNDLE=0 always runs the sources through tsx (stack traces then point into .ts files);
// TOLLGATE_BUNDLE=1 makes a failed build an error instead of a fallback;
// TOLLGATE_BUNDLE=prebuilt runs dist/tollgate.cjs as it is, unchecked: the container image (Dockerfile)
// ships the bundle without the sources it was built from.
const mode = process.env.TOLLGATE_BUNDLE;
let cli = null;
if (mode !== '0') {
  const { CLI_BUNDLE, buildBundle, currentBundle, loadBundle } = await import('../scripts/bundle.js');
  let bundle = mode === 'prebuilt' ? CLI_BUNDLE.out : currentBundle(CLI_BUNDLE);
  if (!bundle) {
    try {
      bundle = await buildBundle(CLI_BUNDLE);
    } catch (e) {
      if (mode === '1') throw e;
    }
  }
  if (bundle) {
    // Each command compiles different code, so each has its own code cache, made by the
    // first run after a build: 2 s after a server started, or when a command succeeds. --help and
    // failed commands have compiled too little to be worth keeping.
    const argv = process.argv.slice(2);
    const group = /^(ca|cert|sidecar|policy|demo|inject|capture)$/.test(argv[0] ?? '') ? argv[0] : 'main';
    const command = group !== 'main' && /^[a-z]+$/.test(argv[1] ?? '') ? `${group}-${argv[1]}` : group;
    // V8 rejects a code cache made under other flags, and a rejected cache is made again: so the
    // sidecar's old-generation setting (common/sidecar-runtime.ts, which `sidecar run` applies too)
    // goes in before the bundle is compiled, and node flags (NODE_OPTIONS included) are part of the
    // cache's name, so that processes started with different flags do not replace each other's.
    if (command === 'sidecar-run') (await import('node:v8')).setFlagsFromString('--optimize-for-size');
    const flags = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ').trim();
    const { createHash } = await import('node:crypto');
    const cacheKey = flags ? `${command}-${createHash('sha1').update(flags).digest('hex').slice(0, 8)}` : command;
    const { exports, saveCache } = loadBundle(bundle, { cacheKey });
    if (!argv.some((a) => a === '--help' || a === '-h' || a === 'help')) {
      setTimeout(saveCache, 2000).unref();
      process.once('exit', (code) => code === 0 && saveCache());
    }
    cli = exports;
  }
}
cli ??= await (async () => {
  const { register } = await import('tsx/esm/api');
  register();
  return import('../cli/main.ts');
})();
await cli.run();
