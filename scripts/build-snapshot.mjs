// Builds the start-up snapshot that `npm start` runs (native-notes/startup.md):
//   1. esbuild bundles src/cli/main.ts into one CommonJS file, dist/snapshot/corral.cjs,
//      with the native packages (lmdb, uWebSockets.js) left outside. Each
//      module's import.meta.url becomes the URL of its own tsc output under dist/, so
//      paths resolved from it (package.json, the serverThreads worker) are the same.
//   2. node --build-snapshot runs that file's module bodies once and saves the heap as
//      dist/snapshot/node-<version>.blob; `node --snapshot-blob <blob> start ...` then
//      starts from it instead of loading ~60 ES modules.
// A blob only loads in the Node that built it, hence the version in its name; if the
// build fails, Corral still starts the ordinary way (scripts/start.sh) and this says so.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(root, 'dist', 'snapshot');
const bundle = path.join(outDir, 'corral.cjs');
const blob = path.join(outDir, `node-${process.version}.blob`);

function warn(msg) {
  process.stderr.write(`build-snapshot: ${msg}; \`npm start\` will start without the snapshot\n`);
}

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  warn('esbuild is not installed');
  process.exit(0);
}

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });

const srcDir = path.join(root, 'src');
const ownUrl = {
  name: 'own-import-meta-url',
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, (args) => {
      if (!args.path.startsWith(srcDir + path.sep)) return undefined;
      const rel = path.relative(root, args.path).replace(/\.ts$/, '.js');
      const url = pathToFileURL(path.join(root, 'dist', rel)).href;
      const contents = readFileSync(args.path, 'utf8').replaceAll('import.meta.url', JSON.stringify(url));
      return { contents, loader: 'ts' };
    });
  },
};

try {
  await esbuild.build({
    entryPoints: [path.join(srcDir, 'cli', 'main.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile: bundle,
    // Packages with native addons stay outside: src/ loads them through createRequire
    // when first used. Everything else is in the bundle, because a snapshot's own
    // require() only knows Node's built-in modules.
    external: ['lmdb', '@trufflesuite/uws-js-unofficial'],
    plugins: [ownUrl],
    logLevel: 'warning',
  });
} catch (e) {
  warn(`esbuild failed: ${e.message}`);
  process.exit(0);
}

const r = spawnSync(process.execPath, ['--snapshot-blob', blob, '--build-snapshot', bundle], { cwd: root, encoding: 'utf8' });
if (r.status !== 0) {
  rmSync(blob, { force: true });
  warn(`node --build-snapshot failed (${r.status}): ${(r.stderr || '').trim().split('\n').slice(-5).join(' | ')}`);
  process.exit(0);
}
process.stdout.write(`build-snapshot: ${path.relative(root, blob)}\n`);
