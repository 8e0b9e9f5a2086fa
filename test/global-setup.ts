import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Tests that run the real `corral` process (crash, threads) need dist/ to match src/.
// Build once here, before any test file starts, so no test rebuilds under another's feet.
export default function setup(): void {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tsc failed before the tests:\n${r.stdout}${r.stderr}`);
  // And the start-up snapshot `npm start` runs, which those tests start too (src/cli/launch.ts).
  const s = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-snapshot.mjs')], { cwd: root, encoding: 'utf8' });
  if (s.status !== 0) throw new Error(`build-snapshot failed before the tests:\n${s.stdout}${s.stderr}`);
}
