import { CONTAINER_OWNER, Err, EventType, OpCode, TTL_MASK } from '../protocol/constants.js';
import { aclKey, OPEN_ACL_UNSAFE } from './acl-list.js';
import type { Acl, ApplyResult, OpResult, Txn, TxnOp, WatchEvent } from './types.js';
import { ZNode } from './types.js';

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.substring(0, i);
}

export function baseName(path: string): string {
  return path.substring(path.lastIndexOf('/') + 1);
}

/** TTL nodes: high byte 0xFF, the 16 reserved bits clear, the TTL in the low 40 bits. */
export function isTtlOwner(owner: bigint): boolean {
  const u = BigInt.asUintN(64, owner);
  return (u & TTL_MASK) === TTL_MASK && (u & 0x00ffff0000000000n) === 0n;
}

export function ttlOf(owner: bigint): number {
  return Number(BigInt.asUintN(64, owner) & 0xffffffffffn);
}

/** Ephemeral owned by a session (not a container, not a TTL node). */
export function isSessionOwner(owner: bigint): boolean {
  return owner !== 0n && owner !== CONTAINER_OWNER && !isTtlOwner(owner);
}

/**
 * The replicated state: znodes, the ephemerals index, containers and TTL nodes (for
 * the periodic reaper), and the session table (sessions are replicated state in Zab).
 * It changes only through apply(); reads go through get().
 */
export class DataTree {
  readonly nodes = new Map<string, ZNode>();
  readonly ephemerals = new Map<bigint, Set<string>>();
  readonly containers = new Set<string>();
  readonly ttls = new Set<string>();
  /** sessionId -> negotiated timeout (ms), as recorded by createSession txns. */
  readonly sessions = new Map<bigint, number>();
  lastZxid = 0;
  /** Bytes of path + data, as ZooKeeper's approximate data size counts them. */
  dataSize = 0;
  private readonly aclCache = new Map<string, readonly Acl[]>();

  constructor() {
    const root = new ZNode(Buffer.alloc(0), this.internAcl(OPEN_ACL_UNSAFE), 0, 0, 0, 0, 0, 0, 0, 0n, 0);
    this.nodes.set('/', root);
    this.addSystemNode('/zookeeper');
    this.addSystemNode('/zookeeper/quota');
    this.addSystemNode('/zookeeper/config');
    // DataTree.addConfigNode: world READ only (ZOOKEEPER-2014), set with setACL(..., -1),
    // which leaves aversion at -1.
    const config = this.nodes.get('/zookeeper/config')!;
    config.acl = this.internAcl([{ perms: 1, scheme: 'world', id: 'anyone' }]);
    config.aversion = -1;
  }

  private addSystemNode(path: string): void {
    const node = new ZNode(Buffer.alloc(0), this.internAcl(OPEN_ACL_UNSAFE), 0, 0, 0, 0, 0, 0, 0, 0n, 0);
    this.nodes.set(path, node);
    this.linkChild(parentOf(path), baseName(path));
  }

  private linkChild(parent: string, name: string): void {
    const p = this.nodes.get(parent)!;
    (p.children ??= new Set()).add(name);
  }

  /** One shared array per distinct ACL: a million znodes usually share a handful. */
  internAcl(acl: readonly Acl[]): readonly Acl[] {
    const key = aclKey(acl);
    let cached = this.aclCache.get(key);
    if (cached === undefined) {
      cached = Object.freeze(acl.map((a) => Object.freeze({ ...a })));
      this.aclCache.set(key, cached);
    }
    return cached;
  }

  get(path: string): ZNode | undefined {
    return this.nodes.get(path);
  }

  get nodeCount(): number {
    return this.nodes.size;
  }

  ephemeralCount(): number {
    let n = 0;
    for (const s of this.ephemerals.values()) n += s.size;
    return n;
  }

  /** Number of descendants of path (getAllChildrenNumber), not counting path itself. */
  countDescendants(path: string): number {
    const node = this.nodes.get(path);
    if (node === undefined || node.children === null) return 0;
    let n = 0;
    const prefix = path === '/' ? '/' : path + '/';
    for (const c of node.children) n += 1 + this.countDescendants(prefix + c);
    return n;
  }
}

/**
 * Applies one transaction. Deterministic in (tree, txn): no clock, no randomness, no
 * I/O; everything that varies was decided when the txn was prepared. Live traffic, log
 * replay and followers all go through here.
 */
export function apply(tree: DataTree, txn: Txn): ApplyResult {
  const events: WatchEvent[] = [];
  const r = applyOp(tree, txn, txn.op, events) as ApplyResult;
  r.events = events;
  if (txn.zxid > tree.lastZxid) tree.lastZxid = txn.zxid;
  return r;
}

function applyOp(tree: DataTree, txn: Txn, op: TxnOp, events: WatchEvent[]): OpResult & { multi?: OpResult[] } {
  switch (op.type) {
    case 'create':
      return createNode(tree, txn, op, events);
    case 'delete': {
      const err = deleteNode(tree, op.path, txn.zxid, events);
      return { type: 'delete', op: op.op, err, path: op.path };
    }
    case 'setData': {
      const node = tree.nodes.get(op.path);
      if (node === undefined) return { type: 'setData', op: OpCode.setData, err: Err.NONODE, path: op.path };
      tree.dataSize += (op.data?.length ?? 0) - (node.data?.length ?? 0);
      node.data = op.data;
      node.version = op.version;
      node.mzxid = txn.zxid;
      node.mtime = txn.time;
      events.push({ type: EventType.NodeDataChanged, path: op.path, zxid: txn.zxid, acl: node.acl });
      return { type: 'setData', op: OpCode.setData, err: Err.OK, path: op.path, stat: node.stat() };
    }
    case 'setACL': {
      const node = tree.nodes.get(op.path);
      if (node === undefined) return { type: 'setACL', op: OpCode.setACL, err: Err.NONODE, path: op.path };
      node.acl = tree.internAcl(op.acl);
      node.aversion = op.version;
      return { type: 'setACL', op: OpCode.setACL, err: Err.OK, path: op.path, stat: node.stat() };
    }
    case 'check':
      return { type: 'check', op: OpCode.check, err: Err.OK, path: op.path };
    case 'error':
      return { type: 'error', op: OpCode.error, err: op.err };
    case 'createSession':
      tree.sessions.set(txn.sessionId, op.timeout);
      return { type: 'createSession', op: OpCode.createSession, err: Err.OK };
    case 'closeSession': {
      // The paths were listed when the close was prepared (CloseSessionTxn), so that a
      // replica deletes exactly what the leader decided, including ephemerals created
      // by writes that were still in flight then.
      const paths = new Set(op.paths);
      for (const p of tree.ephemerals.get(txn.sessionId) ?? []) paths.add(p);
      for (const p of [...paths].sort()) deleteNode(tree, p, txn.zxid, events);
      tree.ephemerals.delete(txn.sessionId);
      tree.sessions.delete(txn.sessionId);
      return { type: 'closeSession', op: OpCode.closeSession, err: Err.OK };
    }
    case 'multi': {
      const failed = op.ops.some((o) => o.type === 'error');
      const results: OpResult[] = [];
      if (failed) {
        // Nothing applies; prep already turned each op into its error result.
        for (const o of op.ops) results.push({ type: 'error', op: OpCode.error, err: o.type === 'error' ? o.err : Err.OK });
        const first = results.find((x) => x.err !== Err.OK);
        return { type: 'multi', op: OpCode.multi, err: first?.err ?? Err.OK, multi: results };
      }
      for (const o of op.ops) results.push(applyOp(tree, txn, o, events));
      return { type: 'multi', op: OpCode.multi, err: Err.OK, multi: results };
    }
  }
}

function createNode(
  tree: DataTree,
  txn: Txn,
  op: Extract<TxnOp, { type: 'create' }>,
  events: WatchEvent[],
): OpResult {
  const parentPath = parentOf(op.path);
  const parent = tree.nodes.get(parentPath);
  if (parent === undefined) return { type: 'create', op: op.op, err: Err.NONODE, path: op.path };
  if (tree.nodes.has(op.path)) return { type: 'create', op: op.op, err: Err.NODEEXISTS, path: op.path };
  const z = txn.zxid;
  const node = new ZNode(op.data, tree.internAcl(op.acl), z, z, txn.time, txn.time, 0, 0, 0, op.ephemeralOwner, z);
  // A replayed create may find the parent already past this cversion (fuzzy snapshot).
  if (op.parentCVersion > parent.cversion) {
    parent.cversion = op.parentCVersion;
    parent.pzxid = z;
  }
  (parent.children ??= new Set()).add(baseName(op.path));
  tree.nodes.set(op.path, node);
  tree.dataSize += op.path.length + (op.data?.length ?? 0);
  const owner = op.ephemeralOwner;
  if (owner === CONTAINER_OWNER) tree.containers.add(op.path);
  else if (isTtlOwner(owner)) tree.ttls.add(op.path);
  else if (owner !== 0n) {
    let set = tree.ephemerals.get(owner);
    if (set === undefined) tree.ephemerals.set(owner, (set = new Set()));
    set.add(op.path);
  }
  events.push({ type: EventType.NodeCreated, path: op.path, zxid: z, acl: node.acl });
  events.push({ type: EventType.NodeChildrenChanged, path: parentPath, zxid: z, acl: parent.acl });
  return { type: 'create', op: op.op, err: Err.OK, path: op.path, stat: node.stat() };
}

function deleteNode(tree: DataTree, path: string, zxid: number, events: WatchEvent[]): number {
  const node = tree.nodes.get(path);
  const parentPath = parentOf(path);
  const parent = tree.nodes.get(parentPath);
  if (node === undefined || parent === undefined) return Err.NONODE;
  parent.children?.delete(baseName(path));
  // ZooKeeper moves the parent's pzxid on a delete but not its cversion.
  if (zxid > parent.pzxid) parent.pzxid = zxid;
  tree.nodes.delete(path);
  tree.dataSize -= path.length + (node.data?.length ?? 0);
  const owner = node.ephemeralOwner;
  if (owner === CONTAINER_OWNER) tree.containers.delete(path);
  else if (isTtlOwner(owner)) tree.ttls.delete(path);
  else if (owner !== 0n) {
    const set = tree.ephemerals.get(owner);
    if (set !== undefined) {
      set.delete(path);
      if (set.size === 0) tree.ephemerals.delete(owner);
    }
  }
  events.push({ type: EventType.NodeDeleted, path, zxid, acl: node.acl });
  events.push({ type: EventType.NodeChildrenChanged, path: parentPath, zxid, acl: parent.acl });
  return Err.OK;
}
