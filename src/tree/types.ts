// The replicated state's vocabulary: znodes, ACLs, transactions. A transaction is
// everything apply() needs, decided in advance by the prep stage (zxid, time, owner,
// sequential names, new versions), so that applying it is deterministic on every
// replica and on replay from the log.

export interface Id {
  scheme: string;
  id: string;
}

export interface Acl {
  perms: number;
  scheme: string;
  id: string;
}

export interface Stat {
  czxid: number;
  mzxid: number;
  ctime: number;
  mtime: number;
  version: number;
  cversion: number;
  aversion: number;
  ephemeralOwner: bigint;
  dataLength: number;
  numChildren: number;
  pzxid: number;
}

/** DataNode.getClientEphemeralOwner: only a session's ephemeral shows its owner. */
export function clientEphemeralOwner(owner: bigint): bigint {
  if (owner === 0n) return owner; // persistent: most znodes, and bigint arithmetic is not free
  if (owner === -0x8000000000000000n) return 0n; // container
  const u = BigInt.asUintN(64, owner);
  if (u >> 56n === 0xffn && ((u >> 40n) & 0xffffn) === 0n) return 0n; // TTL
  return owner;
}

export { ZNode } from './znode.js';

/** Transaction bodies, after zookeeper.jute's txn module (CreateTxn, DeleteTxn, ...). */
export type TxnOp =
  | {
      type: 'create';
      /** The opcode the client used (create, create2, createContainer, createTTL): replies differ. */
      op: number;
      path: string;
      data: Buffer | null;
      acl: Acl[];
      ephemeralOwner: bigint;
      parentCVersion: number;
    }
  | { type: 'delete'; op: number; path: string }
  | { type: 'setData'; path: string; data: Buffer | null; version: number }
  | { type: 'setACL'; path: string; acl: Acl[]; version: number }
  | { type: 'check'; path: string; version: number }
  | { type: 'error'; err: number }
  | { type: 'createSession'; timeout: number }
  | { type: 'closeSession'; paths: string[] }
  | { type: 'multi'; ops: TxnOp[] };

/** TxnHeader plus body: the unit of the log and of replication. */
export interface Txn {
  zxid: number;
  time: number;
  sessionId: bigint;
  cxid: number;
  op: TxnOp;
}

/** What a watcher is told: WatcherEvent plus the zxid that caused it (3.9). */
export interface WatchEvent {
  type: number;
  path: string;
  zxid: number;
  /** ACL of the znode the event is about: watchers without READ on it are not told. */
  acl: readonly Acl[];
}

/** The outcome of applying one op, what the reply needs (ProcessTxnResult). */
export interface OpResult {
  type: TxnOp['type'];
  op: number;
  err: number;
  path?: string;
  stat?: Stat;
}

export interface ApplyResult extends OpResult {
  multi?: OpResult[];
  events: WatchEvent[];
}
