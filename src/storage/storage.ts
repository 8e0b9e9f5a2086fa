// The server's durable state: a txn log and fuzzy snapshots, each in an LMDB
// environment, with recovery, retention and purge. The server calls append() before
// acknowledging writes, snapshot() every snapCount txns, purge() on autopurge.

import path from 'node:path';
import type { DataTree } from '../tree/datatree.js';
import type { Txn } from '../tree/types.js';
import { LOG_SUBDIR, SNAP_SUBDIR } from './env.js';
import { recover, type Recovered, type StorageLogger } from './recovery.js';
import type { SnapshotInfo } from './snapformat.js';
import { SnapshotStore, type SnapshotOptions } from './snapshot.js';
import { TxnLog } from './txnlog.js';
import { zxidHex } from './zxid.js';

export type { StorageLogger } from './recovery.js';

export interface StorageOptions {
  /** Holds the snapshots (`<dataDir>/corral-snap`), and the log unless dataLogDir is set. */
  dataDir: string;
  /** Holds the txn log (`<dataLogDir>/corral-log`); ZooKeeper advises a separate disk. */
  dataLogDir?: string;
  /** zoo.cfg forceSync: append resolves only once the txns are on disk. */
  forceSync: boolean;
  log: StorageLogger;
  snapshot?: SnapshotOptions;
}

export interface ZabRecovered {
  tree: DataTree;
  snapshot: SnapshotInfo | null;
  /** Txns logged after the snapshot, committed or not. */
  log: Txn[];
}

export interface PurgeResult {
  snapshotsRemoved: number;
  txnsRemoved: number;
}

/** ZooKeeper's floor for autopurge.snapRetainCount. */
export const MIN_SNAP_RETAIN = 3;

export function logEnvDir(dataDir: string, dataLogDir?: string): string {
  return path.join(dataLogDir ?? dataDir, LOG_SUBDIR);
}

export function snapEnvDir(dataDir: string): string {
  return path.join(dataDir, SNAP_SUBDIR);
}

export class Storage {
  /**
   * The server may hand over a new batch while earlier ones are still being committed:
   * the txn log queues it and makes everything queued during one commit durable in the
   * next, so the disk never waits for the server to apply and answer the previous batch.
   * Appends resolve in order, which is all the server's pipeline needs.
   */
  readonly maxInFlight = 64;

  private constructor(
    readonly txnLog: TxnLog,
    readonly snapshots: SnapshotStore,
    private readonly opts: StorageOptions,
  ) {}

  static async open(opts: StorageOptions): Promise<Storage> {
    const txnLog = TxnLog.open(logEnvDir(opts.dataDir, opts.dataLogDir), { forceSync: opts.forceSync });
    const snapshots = SnapshotStore.open(snapEnvDir(opts.dataDir));
    const stale = await snapshots.removeIncomplete();
    if (stale > 0) opts.log(`snapshots ${snapshots.dir}: removed ${stale} interrupted snapshot(s)`);
    return new Storage(txnLog, snapshots, opts);
  }

  /** Rebuilds the tree from disk; call once, before the first append. */
  async recover(): Promise<Recovered> {
    const r = await recover(this.snapshots, this.txnLog, { log: this.opts.log });
    this.txnLog.setBase(r.lastZxid);
    return r;
  }

  /**
   * Startup for an ensemble member: the newest snapshot's tree and the txns logged
   * after it, *not* applied. A member's log may end in txns its leader never committed,
   * so the Zab core decides what is applied (and what a TRUNC removes first).
   */
  async recoverForZab(): Promise<ZabRecovered> {
    const log: Txn[] = [];
    const r = await recover(this.snapshots, this.txnLog, { log: this.opts.log, collect: log });
    this.txnLog.setBase(r.lastZxid);
    return { tree: r.tree, snapshot: r.snapshot, log };
  }

  /** Zab SNAP: the leader's snapshot replaces every snapshot and the whole log. */
  async installSnapshot(id: number, zxid: number, raw: { marker: Buffer; chunks: Buffer[] }): Promise<void> {
    await this.txnLog.truncateAfter(-1);
    await this.snapshots.adopt(id, raw);
    this.txnLog.setBase(zxid);
  }

  append(txns: Txn[]): Promise<void> {
    return this.txnLog.append(txns);
  }

  /** A fuzzy snapshot of tree; null if one is already being written. */
  async snapshot(tree: DataTree): Promise<SnapshotInfo | null> {
    const info = await this.snapshots.take(tree, this.opts.snapshot);
    if (info !== null) {
      this.opts.log(
        `snapshot ${info.id} at zxid ${zxidHex(info.zxid)}: ${info.nodeEntries} znodes, ${info.sessions} sessions, ` +
          `${info.bytes} bytes in ${info.durationMs.toFixed(0)} ms (longest slice ${info.worstSliceMs.toFixed(1)} ms)`,
      );
    }
    return info;
  }

  /**
   * Keeps the `retain` newest complete snapshots (at least 3) and removes older ones,
   * then the log before the oldest kept one: it can still be recovered from.
   */
  async purge(retain: number): Promise<PurgeResult> {
    const keep = Math.max(MIN_SNAP_RETAIN, Math.floor(retain));
    let snapshotsRemoved = await this.snapshots.removeIncomplete();
    const list = this.snapshots.list();
    // A damaged marker is evidence for check-data: neither removed nor purged behind.
    if (list.some((e) => e.info === undefined)) return { snapshotsRemoved, txnsRemoved: 0 };
    const kept = list.slice(-keep);
    for (const e of list.slice(0, Math.max(0, list.length - keep))) {
      await this.snapshots.remove(e.id);
      snapshotsRemoved++;
    }
    if (kept.length === 0) return { snapshotsRemoved, txnsRemoved: 0 };
    const oldest = Math.min(...kept.map((e) => e.info!.zxid));
    const txnsRemoved = await this.txnLog.purgeBefore(oldest);
    return { snapshotsRemoved, txnsRemoved };
  }

  /**
   * Zab TRUNC: drops every logged txn after zxid, and every snapshot that may hold
   * one of them (a fuzzy snapshot holds txns up to its endZxid). Recover afterwards.
   */
  async truncateAfter(zxid: number): Promise<number> {
    for (const e of this.snapshots.list()) {
      if (e.info === undefined || e.info.endZxid > zxid) await this.snapshots.remove(e.id);
    }
    return this.txnLog.truncateAfter(zxid);
  }

  async close(): Promise<void> {
    await this.txnLog.close();
    await this.snapshots.close();
  }
}
