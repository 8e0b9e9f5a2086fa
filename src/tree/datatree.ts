import { CONTAINER_OWNER, Err, EventType, OpCode, TTL_MASK } from '../protocol/constants.js';
import { aclKey, OPEN_ACL_UNSAFE } from './acl-list.js';
import type { Acl, ApplyResult, OpResult, Txn, TxnOp, WatchEvent } from './types.js';
import { NodeColumns, NONE } from './columns.js';
import { ZNode } from './znode.js';

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

/** The znodes every tree starts with, parents first. */
export const SYSTEM_PATHS: readonly string[] = ['/', '/zookeeper', '/zookeeper/quota', '/zookeeper/config'];

/** Read-only Map-like view of the znodes by path, for code that walks the whole tree. */
export class NodeView {
  constructor(private readonly tree: DataTree) {}

  get size(): number {
    return this.tree.nodeCount;
  }

  get(path: string): ZNode | undefined {
    return this.tree.get(path);
  }

  has(path: string): boolean {
    return this.tree.has(path);
  }

  /**
   * Paths in slot order. Safe to walk while the tree changes: a znode that exists
   * throughout is seen once; one created or deleted meanwhile may or may not be.
   */
  *keys(): Generator<string> {
    for (const slot of this.tree.slots()) yield this.tree.pathOf(slot);
  }

  *entries(): Generator<[string, ZNode]> {
    for (const slot of this.tree.slots()) yield [this.tree.pathOf(slot), new ZNode(this.tree, slot)];
  }

  [Symbol.iterator](): Generator<[string, ZNode]> {
    return this.entries();
  }
}

/**
 * The replicated state: znodes, the ephemerals index, containers and TTL nodes (for
 * the periodic reaper), and the session table (sessions are replicated state in Zab).
 * It changes only through apply() (and snapshot loading); reads go through get().
 * Znodes live in columns (columns.ts), paths in a PathIndex (pathindex.ts).
 */
export class DataTree {
  readonly cols = new NodeColumns();
  readonly nodes = new NodeView(this);
  readonly ephemerals = new Map<bigint, Set<string>>();
  readonly containers = new Set<string>();
  readonly ttls = new Set<string>();
  /** sessionId -> negotiated timeout (ms), as recorded by createSession txns. */
  readonly sessions = new Map<bigint, number>();
  lastZxid = 0;
  /** Bytes of path + data, as ZooKeeper's approximate data size counts them. */
  dataSize = 0;
  /** Interned ACL lists: a million znodes usually share a handful. */
  private readonly acls: (readonly Acl[])[] = [];
  private readonly aclIds = new Map<string, number>();

  /** systemNodes false: no znodes at all (see empty()). */
  constructor(systemNodes = true) {
    if (!systemNodes) return;
    const open = this.internAclId(OPEN_ACL_UNSAFE);
    for (const path of SYSTEM_PATHS)
      this.insert(path, path === '/' ? -1 : this.slotOf(parentOf(path)), Buffer.alloc(0), open, 0, 0, 0, 0, 0, 0, 0, 0n, 0);
    // DataTree.addConfigNode: world READ only (ZOOKEEPER-2014), set with setACL(..., -1),
    // which leaves aversion at -1.
    const config = this.slotOf('/zookeeper/config');
    this.cols.acl[config] = this.internAclId([{ perms: 1, scheme: 'world', id: 'anyone' }]);
    this.cols.aversion[config] = -1;
  }

  /** A tree with no znodes at all, for loading a snapshot into. */
  static empty(): DataTree {
    return new DataTree(false);
  }

  /** The id of an interned copy of acl. */
  internAclId(acl: readonly Acl[]): number {
    const key = aclKey(acl);
    let id = this.aclIds.get(key);
    if (id === undefined) {
      id = this.acls.length;
      this.acls.push(Object.freeze(acl.map((a) => Object.freeze({ ...a }))));
      this.aclIds.set(key, id);
    }
    return id;
  }

  /** One shared array per distinct ACL. */
  internAcl(acl: readonly Acl[]): readonly Acl[] {
    return this.acls[this.internAclId(acl)]!;
  }

  aclAt(slot: number): readonly Acl[] {
    return this.acls[this.cols.acl[slot]!]!;
  }

  /** The znode's slot, or -1. */
  slotOf(path: string): number {
    return this.cols.paths.find(path);
  }

  get(path: string): ZNode | undefined {
    const slot = this.cols.paths.find(path);
    return slot < 0 ? undefined : new ZNode(this, slot);
  }

  has(path: string): boolean {
    return this.cols.paths.find(path) >= 0;
  }

  pathOf(slot: number): string {
    return this.cols.paths.pathOf(slot);
  }

  get nodeCount(): number {
    return this.cols.paths.size;
  }

  /** Every used slot, lowest first; see NodeView.keys() for walking while the tree changes. */
  *slots(): Generator<number> {
    for (let s = 1; s < this.cols.end; s++) if (this.cols.paths.used(s)) yield s;
  }

  childNames(slot: number): string[] {
    const c = this.cols;
    const out: string[] = [];
    for (let k = c.firstChild[slot]!; k !== NONE; k = c.next[k]!) out.push(c.paths.nameOf(k, slot));
    return out;
  }

  ephemeralCount(): number {
    let n = 0;
    for (const s of this.ephemerals.values()) n += s.size;
    return n;
  }

  /** Number of descendants of path (getAllChildrenNumber), not counting path itself. */
  countDescendants(path: string): number {
    const slot = this.slotOf(path);
    return slot < 0 ? 0 : this.descendants(slot);
  }

  private descendants(slot: number): number {
    const c = this.cols;
    let n = 0;
    for (let k = c.firstChild[slot]!; k !== NONE; k = c.next[k]!) n += 1 + this.descendants(k);
    return n;
  }

  /** Adds a znode; parent -1 leaves it unlinked (snapshot loading links afterwards). */
  insert(
    path: string,
    parent: number,
    data: Uint8Array | null,
    aclId: number,
    czxid: number,
    mzxid: number,
    ctime: number,
    mtime: number,
    version: number,
    cversion: number,
    aversion: number,
    owner: bigint,
    pzxid: number,
  ): number {
    const c = this.cols;
    const s = c.alloc();
    c.czxid[s] = czxid;
    c.mzxid[s] = mzxid;
    c.pzxid[s] = pzxid;
    c.ctime[s] = ctime;
    c.mtime[s] = mtime;
    c.version[s] = version;
    c.cversion[s] = cversion;
    c.aversion[s] = aversion;
    c.acl[s] = aclId;
    if (owner !== 0n) c.setOwner(s, owner);
    c.values.set(s, data);
    if (parent !== -1) c.link(parent, s);
    c.paths.add(path, s);
    return s;
  }

  /** Removes a znode (its children must be gone already). */
  remove(path: string, slot: number): void {
    this.cols.unlink(slot);
    this.cols.paths.remove(slot);
    this.cols.release(slot);
  }

  /**
   * After a snapshot load: links every znode to its parent and derives the ephemerals,
   * containers and TTL indexes. A fuzzy snapshot walks slots, not paths, so it can hold
   * a child whose parent it never saw: the child sat in a lower (reused) slot than its
   * parent, and was copied before both were deleted; or the parent was created, in a
   * slot already passed, after the snapshot began. Either way the child's own delete or
   * create comes after the snapshot's zxid, so replaying the log sets it right: such
   * orphans, and anything below them, are dropped here. Returns how many.
   */
  linkLoaded(): number {
    const c = this.cols;
    const loaded: number[] = [];
    const parents: number[] = [];
    for (const slot of this.slots()) {
      const path = this.pathOf(slot);
      loaded.push(slot);
      parents.push(path === '/' ? 0 : this.slotOf(parentOf(path)));
    }
    // An orphan's descendants are orphans too: mark until nothing changes (as deep as
    // the deepest orphaned subtree, usually one pass).
    const orphan = new Uint8Array(c.capacity);
    for (let changed = true; changed; ) {
      changed = false;
      for (let i = 0; i < loaded.length; i++) {
        const p = parents[i]!;
        if (orphan[loaded[i]!] === 0 && (p === -1 || (p !== 0 && orphan[p] === 1))) {
          orphan[loaded[i]!] = 1;
          changed = true;
        }
      }
    }
    let dropped = 0;
    for (let i = 0; i < loaded.length; i++) {
      const slot = loaded[i]!;
      if (orphan[slot] === 1) {
        this.remove(this.pathOf(slot), slot);
        dropped++;
      } else {
        if (parents[i] !== 0) c.link(parents[i]!, slot);
        this.track(this.pathOf(slot), slot);
      }
    }
    return dropped;
  }

  private track(path: string, slot: number): void {
    if (this.cols.owned[slot] === 0) return;
    const owner = this.cols.owner(slot);
    if (owner === CONTAINER_OWNER) this.containers.add(path);
    else if (isTtlOwner(owner)) this.ttls.add(path);
    else {
      let set = this.ephemerals.get(owner);
      if (set === undefined) this.ephemerals.set(owner, (set = new Set()));
      set.add(path);
    }
  }

  private untrack(path: string, slot: number): void {
    if (this.cols.owned[slot] === 0) return;
    const owner = this.cols.owner(slot);
    if (owner === CONTAINER_OWNER) this.containers.delete(path);
    else if (isTtlOwner(owner)) this.ttls.delete(path);
    else {
      const set = this.ephemerals.get(owner);
      if (set !== undefined) {
        set.delete(path);
        if (set.size === 0) this.ephemerals.delete(owner);
      }
    }
  }

  /** apply()'s create and delete, on slots. */
  createAt(path: string, parent: number, op: Extract<TxnOp, { type: 'create' }>, zxid: number, time: number): number {
    const s = this.insert(path, parent, op.data, this.internAclId(op.acl), zxid, zxid, time, time, 0, 0, 0, op.ephemeralOwner, zxid);
    this.track(path, s);
    return s;
  }

  deleteAt(path: string, slot: number): void {
    this.untrack(path, slot);
    this.remove(path, slot);
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
      const slot = tree.slotOf(op.path);
      if (slot < 0) return { type: 'setData', op: OpCode.setData, err: Err.NONODE, path: op.path };
      const c = tree.cols;
      tree.dataSize += (op.data?.length ?? 0) - Math.max(0, c.values.length(slot));
      c.values.set(slot, op.data);
      c.version[slot] = op.version;
      c.mzxid[slot] = txn.zxid;
      c.mtime[slot] = txn.time;
      const node = new ZNode(tree, slot);
      events.push({ type: EventType.NodeDataChanged, path: op.path, zxid: txn.zxid, acl: node.acl });
      return { type: 'setData', op: OpCode.setData, err: Err.OK, path: op.path, stat: node.stat() };
    }
    case 'setACL': {
      const slot = tree.slotOf(op.path);
      if (slot < 0) return { type: 'setACL', op: OpCode.setACL, err: Err.NONODE, path: op.path };
      tree.cols.acl[slot] = tree.internAclId(op.acl);
      tree.cols.aversion[slot] = op.version;
      return { type: 'setACL', op: OpCode.setACL, err: Err.OK, path: op.path, stat: new ZNode(tree, slot).stat() };
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
  const parent = tree.slotOf(parentPath);
  if (parent < 0) return { type: 'create', op: op.op, err: Err.NONODE, path: op.path };
  if (tree.has(op.path)) return { type: 'create', op: op.op, err: Err.NODEEXISTS, path: op.path };
  const z = txn.zxid;
  const c = tree.cols;
  // A replayed create may find the parent already past this cversion (fuzzy snapshot).
  if (op.parentCVersion > c.cversion[parent]!) {
    c.cversion[parent] = op.parentCVersion;
    c.pzxid[parent] = z;
  }
  const slot = tree.createAt(op.path, parent, op, z, txn.time);
  tree.dataSize += op.path.length + (op.data?.length ?? 0);
  const acl = tree.aclAt(slot);
  events.push({ type: EventType.NodeCreated, path: op.path, zxid: z, acl });
  events.push({ type: EventType.NodeChildrenChanged, path: parentPath, zxid: z, acl: tree.aclAt(parent) });
  return { type: 'create', op: op.op, err: Err.OK, path: op.path, stat: new ZNode(tree, slot).stat() };
}

function deleteNode(tree: DataTree, path: string, zxid: number, events: WatchEvent[]): number {
  const slot = tree.slotOf(path);
  const parentPath = parentOf(path);
  const parent = tree.slotOf(parentPath);
  if (slot < 0 || parent < 0) return Err.NONODE;
  const c = tree.cols;
  // ZooKeeper moves the parent's pzxid on a delete but not its cversion.
  if (zxid > c.pzxid[parent]!) c.pzxid[parent] = zxid;
  const acl = tree.aclAt(slot);
  tree.dataSize -= path.length + Math.max(0, c.values.length(slot));
  tree.deleteAt(path, slot);
  events.push({ type: EventType.NodeDeleted, path, zxid, acl });
  events.push({ type: EventType.NodeChildrenChanged, path: parentPath, zxid, acl: tree.aclAt(parent) });
  return Err.OK;
}
