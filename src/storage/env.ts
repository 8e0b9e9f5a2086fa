// How the LMDB environments are opened. Each lives in its own subdirectory of dataDir
// (or dataLogDir), so that `myid` and other files can sit beside them:
//   <dataLogDir>/corral-log/txnlog.mdb   named db "txnlog": zxid -> log record
//   <dataDir>/corral-snap/snap.mdb       named dbs "snapchunk", "snapmark"

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { RootDatabase } from 'lmdb';

// lmdb ships a CommonJS bundle beside its ES modules. Loading it takes 21-38 ms here
// against 35-52 ms for the ES module graph, and it is on every server's start-up path
// (issue #5's start-to-serving target). Same code, same native binary. It is loaded on
// first use, not when this module is: a start-up snapshot cannot hold a native addon.
let lmdb: typeof import('lmdb') | undefined;
export const open: typeof import('lmdb').open = ((...args: Parameters<typeof import('lmdb').open>) => {
  lmdb ??= createRequire(import.meta.url)('lmdb') as typeof import('lmdb');
  return lmdb.open(...args);
}) as typeof import('lmdb').open;

export const LOG_SUBDIR = 'corral-log';
export const SNAP_SUBDIR = 'corral-snap';
export const LOG_FILE = 'txnlog.mdb';
export const SNAP_FILE = 'snap.mdb';

export interface EnvOptions {
  /**
   * true: a resolved write is on disk (overlappingSync off: LMDB fsyncs inside the
   * commit, on its write thread). false: a resolved write is visible and LMDB flushes
   * it shortly after (overlappingSync on), which keeps the file consistent after a
   * crash but may lose the newest commits, like ZooKeeper's forceSync=no.
   */
  durable: boolean;
  readOnly?: boolean;
}

export function envExists(dir: string, file: string): boolean {
  return fs.existsSync(path.join(dir, file));
}

export function openEnv(dir: string, file: string, opts: EnvOptions): RootDatabase {
  const file_ = path.join(dir, file);
  // A reader (check-data) leaves sync options alone: lmdb shares one environment per
  // file within a process and refuses to reopen a running server's with other flags.
  if (opts.readOnly) return open({ path: file_, maxDbs: 4, readOnly: true });
  fs.mkdirSync(dir, { recursive: true });
  // eventTurnBatching off: every write here is in an explicit batch() (or needs no
  // atomicity with others), and with it on lmdb-js drops the promise of each event
  // turn's batch start, so a failed commit (a full disk) became an unhandled rejection
  // that killed the process instead of being reported through our own batch.
  return open({ path: file_, maxDbs: 4, overlappingSync: !opts.durable, eventTurnBatching: false });
}
