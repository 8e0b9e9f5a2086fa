// How the LMDB environments are opened. Each lives in its own subdirectory of dataDir
// (or dataLogDir), so that `myid` and other files can sit beside them:
//   <dataLogDir>/corral-log/txnlog.mdb   named db "txnlog": zxid -> log record
//   <dataDir>/corral-snap/snap.mdb       named dbs "snapchunk", "snapmark"

import fs from 'node:fs';
import path from 'node:path';
import type { RootDatabase } from 'lmdb';
import { lazyRequire } from '../lazy-require.js';

// lmdb ships a CommonJS bundle beside its ES modules. Loading it takes 21-38 ms here
// against 35-52 ms for the ES module graph, and it is on every server's start-up path
// (issue #5's start-to-serving target). Same code, same native binary. It is loaded on
// first use, not when this module is: a start-up snapshot cannot hold a native addon.
const lmdb = lazyRequire<typeof import('lmdb')>('lmdb');
export const open: typeof import('lmdb').open = ((...args: Parameters<typeof import('lmdb').open>) =>
  lmdb().open(...args)) as typeof import('lmdb').open;

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
  if (opts.readOnly) return trackWriteJobs(open({ path: file_, maxDbs: 4, readOnly: true }));
  fs.mkdirSync(dir, { recursive: true });
  // eventTurnBatching off: every write here is in an explicit batch() (or needs no
  // atomicity with others), and with it on lmdb-js drops the promise of each event
  // turn's batch start, so a failed commit (a full disk) became an unhandled rejection
  // that killed the process instead of being reported through our own batch.
  return trackWriteJobs(open({ path: file_, maxDbs: 4, overlappingSync: !opts.durable, eventTurnBatching: false }));
}

// Closing an environment safely. lmdb-js runs each write job on a libuv pool thread and
// resolves a commit's promise as soon as the job has flagged it committed; the job
// then still touches the environment (it tells lmdb's 'committed' listeners). So a
// commit can be seen resolved, by the poll another job's end triggers, while the thread
// that made it is still at work; closing then frees what that thread is about to read,
// and the process dies with SIGSEGV (seen in CI; about one in two hundred in-process
// server stops under pipelined load here). Hence: count the jobs, and close only once
// each has reported its end on the main thread. lmdb 3.5.6, the newest, still has it.

/** lmdb-js's native environment, as far as the job count needs it. */
interface NativeEnv {
  startWriting(address: number, report: (status: number) => unknown): unknown;
}

interface WriteJobs {
  running: number;
  idle: (() => void)[];
}

const writeJobs = new WeakMap<RootDatabase, WriteJobs>();

function trackWriteJobs(root: RootDatabase): RootDatabase {
  const env = (root as unknown as { env?: NativeEnv }).env;
  const start = env?.startWriting;
  // lmdb is pinned to one version; one that moved this would fail here, at open, not at a close.
  if (env === undefined || typeof start !== 'function') throw new Error('lmdb-js has no env.startWriting to count write jobs with');
  const jobs: WriteJobs = { running: 0, idle: [] };
  writeJobs.set(root, jobs);
  const ended = (): void => {
    if (--jobs.running === 0) for (const wake of jobs.idle.splice(0)) wake();
  };
  // The native method is read-only on the prototype: shadow it on this instance.
  const startWriting: NativeEnv['startWriting'] = function (this: NativeEnv, address, report) {
    let over = false;
    jobs.running++;
    try {
      return start.call(this, address, (status: number) => {
        // 1 and 2 are reports from inside the job (a txn visible, txn callbacks due);
        // any other status is its end: 0, or the LMDB error it failed with.
        if (!over && status !== 1 && status !== 2) {
          over = true;
          ended();
        }
        return report(status);
      });
    } catch (e) {
      over = true;
      ended();
      throw e;
    }
  };
  Object.defineProperty(env, 'startWriting', { value: startWriting });
  return root;
}

/** lmdb-js write jobs started on this environment that have not yet reported their end. */
export function writeJobsRunning(root: RootDatabase): number {
  return writeJobs.get(root)!.running;
}

/**
 * Closes an environment once no lmdb-js write job is still running on it. The caller
 * has stopped writing and awaited its last write. A job that never reports its end (it
 * failed with errno 1 or 2, which read as progress) is waited for at most `capMs`.
 */
export async function closeEnv(root: RootDatabase, capMs = 2000): Promise<void> {
  const jobs = writeJobs.get(root)!;
  if (jobs.running > 0) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((r) => jobs.idle.push(r)),
      new Promise<void>((r) => (timer = setTimeout(r, capMs))),
    ]);
    clearTimeout(timer);
  }
  await root.close();
}
