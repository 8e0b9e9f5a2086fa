// How to run `corral`: from the start-up snapshot when one was built for this Node
// (scripts/build-snapshot.mjs), else from its ES modules. scripts/start.sh makes the same
// choice for `npm start`; the bench and the tests use this, so they start what it starts.

import { existsSync } from 'node:fs';
import path from 'node:path';

/** dist/snapshot/node-<version>.blob under the project root, if it was built. */
export function snapshotBlob(root: string): string | undefined {
  const blob = path.join(root, 'dist', 'snapshot', `node-${process.version}.blob`);
  return existsSync(blob) ? blob : undefined;
}

/** Node arguments that run `corral <args>` (prepend process.execPath). */
export function corralArgv(root: string, args: string[]): string[] {
  const blob = snapshotBlob(root);
  return blob !== undefined ? ['--snapshot-blob', blob, ...args] : [path.join(root, 'dist', 'src', 'cli', 'main.js'), ...args];
}
