// node:crypto, loaded on first use: it costs ~5 ms of every start, and most starts never
// hash (digest auth, tree digests). createRequire works on every Node 20, where
// process.getBuiltinModule needs 20.16.

import { createRequire } from 'node:module';

let loaded: typeof import('node:crypto') | undefined;

export function crypto(): typeof import('node:crypto') {
  return (loaded ??= createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto'));
}
