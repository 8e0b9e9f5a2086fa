// A module loaded on first use rather than at import: start-up pays only for what it
// uses (node:crypto ~5 ms, lmdb 21-38 ms), and a start-up snapshot cannot hold a native
// addon. createRequire works on every Node 20 (process.getBuiltinModule needs 20.16).

import { createRequire } from 'node:module';

/** A getter that requires `id` the first time it is called (the require, too, is made then). */
export function lazyRequire<T>(id: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= createRequire(import.meta.url)(id) as T);
}
