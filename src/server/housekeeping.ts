// The storage chores every server does, standalone or ensemble member: opening the data
// directories, a snapshot every snapCount txns (randomised as ZooKeeper does, so an ensemble's members don't all
// snapshot at once), and the autopurge timer.

import type { CorralConfig } from '../config/types.js';
import { mkdirSync } from 'node:fs';
import type { SnapshotInfo } from '../storage/snapformat.js';
import { Storage } from '../storage/storage.js';
import type { DataTree } from '../tree/datatree.js';
import type { Logger } from './log.js';

/** Creates dataDir (and dataLogDir) if needed and opens the storage; says so when writes will not be durable. */
export async function openStorage(config: CorralConfig, logger: Logger): Promise<Storage> {
  mkdirSync(config.dataDir, { recursive: true });
  if (config.dataLogDir !== undefined) mkdirSync(config.dataLogDir, { recursive: true });
  if (!config.forceSync)
    logger('WARN', 'forceSync=no: writes are acknowledged before they are durable; a crash can lose acknowledged writes');
  return Storage.open({
    dataDir: config.dataDir,
    dataLogDir: config.dataLogDir,
    forceSync: config.forceSync,
    log: (line) => logger('INFO', line),
  });
}

/**
 * Returns the server's onCommitted callback: counts applied txns and starts a fuzzy
 * snapshot of `tree()` once enough have gone by (never two at once). `onSnapshot` hears
 * of each one that completes (an ensemble member then compacts its Zab log).
 */
export function snapshotSchedule(
  config: CorralConfig,
  storage: Storage,
  tree: () => DataTree,
  logger: Logger,
  onSnapshot?: (info: SnapshotInfo) => void,
): (txns: number) => void {
  let since = 0;
  let at = nextSnapPoint(config.snapCount);
  let running = false;
  return (n) => {
    since += n;
    if (since < at || running) return;
    since = 0;
    at = nextSnapPoint(config.snapCount);
    running = true;
    storage.snapshot(tree()).then(
      (info) => {
        running = false;
        if (info !== null) onSnapshot?.(info);
      },
      (e: Error) => {
        running = false;
        logger('ERROR', `snapshot failed: ${e.message}`);
      },
    );
  };
}

/** ZooKeeper snapshots at a random point in [snapCount/2 + 1, snapCount]. */
export function nextSnapPoint(snapCount: number): number {
  const half = Math.floor(snapCount / 2);
  return half + 1 + Math.floor(Math.random() * Math.max(1, snapCount - half));
}

/** autopurge.purgeInterval (hours; 0 = off). Returns what stops it. */
export function startAutopurge(config: CorralConfig, storage: Storage, logger: Logger): () => void {
  if (config.autopurgePurgeInterval <= 0) return () => undefined;
  const timer = setInterval(
    () =>
      storage.purge(config.autopurgeSnapRetainCount).then(
        (r) => logger('INFO', `autopurge: removed ${r.snapshotsRemoved} snapshots, ${r.txnsRemoved} txns`),
        (e: Error) => logger('ERROR', `autopurge failed: ${e.message}`),
      ),
    config.autopurgePurgeInterval * 3600_000,
  );
  timer.unref();
  return () => clearInterval(timer);
}
