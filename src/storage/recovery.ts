// Startup: the newest complete snapshot, then every logged txn after its zxid replayed
// through apply(). The snapshot is fuzzy, so replay meets effects it already holds:
// create on an existing node (NODEEXISTS) and delete of a missing one (NONODE) are
// results to ignore, and setData/setACL carry their resulting version.

import { Err } from '../protocol/constants.js';
import { apply, DataTree, parentOf } from '../tree/datatree.js';
import type { OpResult, Txn, TxnOp } from '../tree/types.js';
import { scanLog, type TornTail } from './logscan.js';
import type { SnapshotInfo } from './snapformat.js';
import { loadSnapshot, snapshotDamage } from './snapload.js';
import type { SnapshotStore } from './snapshot.js';
import type { TxnLog } from './txnlog.js';
import { zxidHex } from './zxid.js';

/** Where storage reports what it did on its own (one line each). */
export type StorageLogger = (line: string) => void;

export interface RecoverOptions {
  log: StorageLogger;
  /** Cut a torn tail off the log (default). false only reports it, for check-data. */
  repair?: boolean;
  /**
   * Hand the logged txns over here instead of replaying them: an ensemble member's log may
   * end in txns that were never committed, so its Zab core decides what is applied.
   */
  collect?: Txn[];
}

export interface Recovered {
  tree: DataTree;
  lastZxid: number;
  snapshot: SnapshotInfo | null;
  replayed: number;
  tornTail: TornTail | null;
}

export async function recover(snaps: SnapshotStore, txnLog: TxnLog, opts: RecoverOptions): Promise<Recovered> {
  const list = snaps.list();
  const newest = list[list.length - 1];
  let tree: DataTree;
  let snapshot: SnapshotInfo | null = null;
  if (newest === undefined) {
    tree = new DataTree();
  } else if (newest.info === undefined) {
    throw snapshotDamage(snaps, newest.id, undefined, newest.damage);
  } else {
    snapshot = newest.info;
    tree = loadSnapshot(snaps, snapshot);
  }
  const after = tree.lastZxid;
  const collect = opts.collect;
  const scan = scanLog(txnLog, { after, prev: after, onTxn: collect ? (t) => collect.push(t) : (t) => replay(tree, t) });
  if (scan.tornTail !== null) {
    const t = scan.tornTail;
    opts.log(
      `txn log ${txnLog.dir}: dropping a torn tail of ${t.count} record(s) from zxid ${zxidHex(t.firstZxid)} ` +
        `(the last commit was cut short, so none of it was acknowledged); the log now ends at ${zxidHex(t.keepThrough)}`,
    );
    if (opts.repair ?? true) await txnLog.truncateAfter(t.keepThrough);
    while (collect && collect.length > 0 && collect[collect.length - 1]!.zxid > t.keepThrough) collect.pop();
  }
  return { tree, lastZxid: tree.lastZxid, snapshot, replayed: scan.txns, tornTail: scan.tornTail };
}

/**
 * apply(), plus repairs for what the fuzzy snapshot already held. A logged create,
 * delete or closeSession succeeded when it was first applied (prep turns failures into
 * error txns, and lists exactly the ephemerals a close deletes), so when replay finds
 * its node already there or already gone, the parent's copy in the snapshot may predate
 * it: move the parent's cversion/pzxid on as the original did. ZooKeeper does the same
 * for creates (DataTree.setCversionPzxid); the delete side closes the same gap for pzxid.
 */
export function replay(tree: DataTree, txn: Txn): void {
  const op = txn.op;
  const missing = op.type === 'closeSession' ? op.paths.filter((p) => !tree.nodes.has(p)) : null;
  const r = apply(tree, txn);
  if (missing !== null) {
    for (const p of missing) raisePzxid(tree, p, txn.zxid);
  } else {
    fixOp(tree, txn, op, r);
  }
}

function fixOp(tree: DataTree, txn: Txn, op: TxnOp, r: OpResult & { multi?: OpResult[] }): void {
  if (op.type === 'create' && r.err === Err.NODEEXISTS) {
    const parent = tree.nodes.get(parentOf(op.path));
    if (parent !== undefined && op.parentCVersion > parent.cversion) {
      parent.cversion = op.parentCVersion;
      parent.pzxid = txn.zxid;
    }
  } else if (op.type === 'delete' && r.err === Err.NONODE) {
    raisePzxid(tree, op.path, txn.zxid);
  } else if (op.type === 'multi' && r.multi !== undefined) {
    for (let i = 0; i < op.ops.length && i < r.multi.length; i++) fixOp(tree, txn, op.ops[i]!, r.multi[i]!);
  }
}

function raisePzxid(tree: DataTree, path: string, zxid: number): void {
  const parent = tree.nodes.get(parentOf(path));
  if (parent !== undefined && zxid > parent.pzxid) parent.pzxid = zxid;
}
