import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as UWS from '@trufflesuite/uws-js-unofficial';

export type { UWS };

/** The redistribution Corral loads uWebSockets.js from (pinned exactly in package.json). */
export const UWS_PACKAGE = '@trufflesuite/uws-js-unofficial';

let loaded: typeof UWS | undefined;

/**
 * Loads uWebSockets.js's native binary for this platform and Node ABI directly. The
 * package's own entry point silently falls back to a JavaScript implementation when the
 * binary fails to load; going to the binary makes that failure an error instead.
 */
export function loadUws(): typeof UWS {
  if (loaded !== undefined) return loaded;
  const require = createRequire(import.meta.url);
  const dir = dirname(require.resolve(`${UWS_PACKAGE}/package.json`));
  const file = join(dir, 'binaries', `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
  try {
    loaded = require(file) as typeof UWS;
  } catch (e) {
    throw new Error(`cannot load uWebSockets.js binary ${file} (${UWS_PACKAGE}): ${(e as Error).message}`);
  }
  return loaded;
}
