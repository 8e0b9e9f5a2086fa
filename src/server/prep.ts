import { checkAcl, isAuthenticatedScheme, isValidAclId } from '../acl/auth.js';
import {
  CONTAINER_OWNER,
  CreateFlag,
  Err,
  KeeperError,
  MAX_TTL,
  OpCode,
  Perms,
  TTL_MASK,
} from '../protocol/constants.js';
import type { RequestBody } from '../protocol/records.js';
import { type DataTree, isSessionOwner, parentOf } from '../tree/datatree.js';
import { invalidPath, isSpecialPath } from '../tree/path.js';
import type { Acl, Id, Txn, TxnOp } from '../tree/types.js';

// The prep stage (PrepRequestProcessor): turns a write request into a transaction.
// It validates against the tree *plus* the changes of transactions that are prepared
// but not yet applied (they may be waiting for the disk or for a quorum), assigns the
// zxid, and decides everything apply() must not: sequential names, new versions, the
// ephemeral owner, which ephemerals a closing session loses.

type CreateBody = { path: string; data: Buffer | null; acl: Acl[] | null; flags: number; ttl: number };

interface ChangeRecord {
  zxid: number;
  path: string;
  /** null: deleted by a pending txn. */
  stat: { version: number; cversion: number; aversion: number; ephemeralOwner: bigint } | null;
  childCount: number;
  acl: readonly Acl[];
}

export interface PrepRequest {
  sessionId: bigint;
  cxid: number;
  op: number;
  body: RequestBody;
  authIds: readonly Id[];
}

export interface PrepOptions {
  extendedTypesEnabled: boolean;
  /** checkSession: the session is known and not closing. */
  sessionValid(sessionId: bigint): boolean;
  /** The session's ephemerals that the tree and pending txns give it (for closeSession). */
  now(): number;
}

export class Prep {
  private readonly pending = new Map<string, ChangeRecord>();
  /** Change records in zxid order; those before `head` are applied (dropped in bulk, not one splice per txn). */
  private readonly queue: ChangeRecord[] = [];
  private head = 0;
  /** Last zxid handed out. */
  zxid: number;

  constructor(
    private readonly tree: DataTree,
    private readonly opts: PrepOptions,
  ) {
    this.zxid = tree.lastZxid;
  }

  get outstandingChanges(): number {
    return this.queue.length - this.head;
  }

  /** Forget change records of transactions that are now in the tree. */
  applied(zxid: number): void {
    const q = this.queue;
    let n = this.head;
    while (n < q.length && q[n].zxid <= zxid) {
      const cr = q[n++];
      if (this.pending.get(cr.path) === cr) this.pending.delete(cr.path);
    }
    if (n === q.length) {
      q.length = 0;
      n = 0;
    } else if (n >= 1024 && n * 2 >= q.length) {
      q.splice(0, n);
      n = 0;
    }
    this.head = n;
  }

  /** Drops every pending change (a new leader re-prepares from its tree). */
  reset(zxid: number): void {
    this.pending.clear();
    this.queue.length = 0;
    this.head = 0;
    this.zxid = zxid;
  }

  private record(path: string): ChangeRecord {
    const cr = this.pending.get(path);
    if (cr !== undefined) {
      if (cr.stat === null) throw new KeeperError(Err.NONODE, path);
      return cr;
    }
    const n = this.tree.get(path);
    if (n === undefined) throw new KeeperError(Err.NONODE, path);
    return {
      zxid: n.mzxid,
      path,
      stat: statOf(n.version, n.cversion, n.aversion, n.ephemeralOwner),
      childCount: n.numChildren,
      acl: n.acl,
    };
  }

  private exists(path: string): boolean {
    const cr = this.pending.get(path);
    if (cr !== undefined) return cr.stat !== null;
    return this.tree.get(path) !== undefined;
  }

  private add(cr: ChangeRecord): void {
    this.queue.push(cr);
    this.pending.set(cr.path, cr);
  }

  private checkSession(sessionId: bigint): void {
    if (!this.opts.sessionValid(sessionId)) throw new KeeperError(Err.SESSIONEXPIRED);
  }

  /**
   * Prepares one write. Failures become an error txn with its own zxid, as in
   * ZooKeeper (they are logged and consume a zxid).
   */
  prepare(req: PrepRequest): Txn {
    const zxid = ++this.zxid;
    const time = this.opts.now();
    let op: TxnOp;
    try {
      op = req.op === OpCode.multi ? this.multi(req, zxid) : this.one(req.op, req.body, req, zxid, time);
    } catch (e) {
      if (!(e instanceof KeeperError)) throw e;
      op = { type: 'error', err: e.code };
    }
    return { zxid, time, sessionId: req.sessionId, cxid: req.cxid, op };
  }

  /** A closeSession from the session tracker (expiry) or the client. */
  prepareClose(sessionId: bigint, cxid: number): Txn {
    const zxid = ++this.zxid;
    const paths = new Set(this.tree.ephemerals.get(sessionId) ?? []);
    for (let i = this.head; i < this.queue.length; i++) {
      const cr = this.queue[i];
      if (cr.stat === null) paths.delete(cr.path);
      else if (cr.stat.ephemeralOwner === sessionId) paths.add(cr.path);
    }
    const list = [...paths].sort();
    for (const p of list) {
      const parent = this.pending.get(parentOf(p));
      if (parent?.stat) this.add(changed(parent, zxid, parent.stat, parent.childCount - 1, parent.acl));
      this.add({ zxid, path: p, stat: null, childCount: 0, acl: [] });
    }
    return { zxid, time: this.opts.now(), sessionId, cxid, op: { type: 'closeSession', paths: list } };
  }

  prepareCreateSession(sessionId: bigint, timeout: number): Txn {
    const zxid = ++this.zxid;
    return { zxid, time: this.opts.now(), sessionId, cxid: 0, op: { type: 'createSession', timeout } };
  }

  /** deleteContainer from the container/TTL reaper: no session, no ACL check. */
  prepareDeleteContainer(path: string): Txn {
    const zxid = ++this.zxid;
    let op: TxnOp;
    try {
      op = this.deleteContainer(path, zxid);
    } catch (e) {
      if (!(e instanceof KeeperError)) throw e;
      op = { type: 'error', err: e.code };
    }
    return { zxid, time: this.opts.now(), sessionId: 0n, cxid: 0, op };
  }

  /**
   * deleteContainer, from the reaper or (a valid opcode in 3.9) a client: no session or
   * ACL check, and only a session's ephemeral is refused (EphemeralType NORMAL), so an
   * empty container, TTL or plain znode goes.
   */
  private deleteContainer(path: string, zxid: number): TxnOp {
    const parentPath = this.parentForDelete(path);
    const node = this.record(path);
    if (node.childCount > 0) throw new KeeperError(Err.NOTEMPTY, path);
    if (isSessionOwner(node.stat!.ephemeralOwner)) throw new KeeperError(Err.BADVERSION, path);
    this.recordDelete(parentPath, path, zxid);
    return { type: 'delete', op: OpCode.deleteContainer, path };
  }

  private multi(req: PrepRequest, zxid: number): TxnOp {
    const body = req.body as { ops: RequestBody[] };
    for (const sub of body.ops) if (!isMultiWriteOp(sub.op)) throw new KeeperError(Err.MARSHALLINGERROR);
    const mark = this.queue.length;
    const saved = new Map<string, ChangeRecord | undefined>();
    for (const sub of body.ops) {
      const p = (sub as { path: string }).path;
      for (const q of [p, parentOf(p)]) if (!saved.has(q)) saved.set(q, this.pending.get(q));
    }
    const ops: TxnOp[] = [];
    const time = this.opts.now();
    let failed = false;
    for (const sub of body.ops) {
      if (failed) {
        ops.push({ type: 'error', err: Err.RUNTIMEINCONSISTENCY });
        continue;
      }
      try {
        ops.push(this.one(sub.op, sub, req, zxid, time));
      } catch (e) {
        if (!(e instanceof KeeperError)) throw e;
        failed = true;
        ops.push({ type: 'error', err: e.code });
        // Roll back what the earlier ops of this multi recorded.
        this.queue.length = mark;
        for (const [p, cr] of saved) {
          if (cr === undefined) this.pending.delete(p);
          else this.pending.set(p, cr);
        }
      }
    }
    if (failed) {
      // Ops before the failure report OK and after it RUNTIMEINCONSISTENCY (DataTree).
      const at = ops.findIndex((o) => o.type === 'error');
      for (let i = 0; i < at; i++) ops[i] = { type: 'error', err: Err.OK };
    }
    return { type: 'multi', ops };
  }

  private one(op: number, body: RequestBody, req: PrepRequest, zxid: number, time: number): TxnOp {
    switch (op) {
      case OpCode.create:
      case OpCode.create2:
      case OpCode.createContainer:
      case OpCode.createTTL:
        return this.create(op, body as CreateBody, req, zxid);
      case OpCode.delete: {
        this.checkSession(req.sessionId);
        const b = body as { path: string; version: number };
        const parentPath = this.parentForDelete(b.path);
        const parent = this.record(parentPath);
        this.checkPerm(parent.acl, Perms.DELETE, req.authIds);
        const node = this.record(b.path);
        checkVersion(node.stat!.version, b.version, b.path);
        if (node.childCount > 0) throw new KeeperError(Err.NOTEMPTY, b.path);
        this.recordDelete(parentPath, b.path, zxid);
        return { type: 'delete', op: OpCode.delete, path: b.path };
      }
      case OpCode.setData: {
        this.checkSession(req.sessionId);
        const b = body as { path: string; data: Buffer | null; version: number };
        validate(b.path);
        const node = this.record(b.path);
        this.checkPerm(node.acl, Perms.WRITE, req.authIds);
        const version = checkVersion(node.stat!.version, b.version, b.path);
        const st = node.stat!;
        this.add(changed(node, zxid, statOf(version, st.cversion, st.aversion, st.ephemeralOwner), node.childCount, node.acl));
        return { type: 'setData', path: b.path, data: b.data, version };
      }
      case OpCode.setACL: {
        this.checkSession(req.sessionId);
        const b = body as { path: string; acl: Acl[] | null; version: number };
        validate(b.path);
        const acl = fixupAcl(b.acl, req.authIds);
        const node = this.record(b.path);
        this.checkPerm(node.acl, Perms.ADMIN, req.authIds);
        const version = checkVersion(node.stat!.aversion, b.version, b.path);
        const st = node.stat!;
        this.add(changed(node, zxid, statOf(st.version, st.cversion, version, st.ephemeralOwner), node.childCount, acl));
        return { type: 'setACL', path: b.path, acl, version };
      }
      case OpCode.check: {
        this.checkSession(req.sessionId);
        const b = body as { path: string; version: number };
        validate(b.path);
        const node = this.record(b.path);
        this.checkPerm(node.acl, Perms.READ, req.authIds);
        return { type: 'check', path: b.path, version: checkVersion(node.stat!.version, b.version, b.path) };
      }
      case OpCode.deleteContainer:
        return this.deleteContainer((body as { path: string }).path, zxid);
      default:
        void time;
        throw new KeeperError(Err.MARSHALLINGERROR);
    }
  }

  private parentForDelete(path: string): string {
    const slash = path.lastIndexOf('/');
    if (slash === -1 || path.includes('\0') || isSpecialPath(path)) throw new KeeperError(Err.BADARGUMENTS, path);
    return slash === 0 ? '/' : path.substring(0, slash);
  }

  private recordDelete(parentPath: string, path: string, zxid: number): void {
    const parent = this.record(parentPath);
    this.add(changed(parent, zxid, parent.stat, parent.childCount - 1, parent.acl));
    this.add({ zxid, path, stat: null, childCount: 0, acl: [] });
  }

  private checkPerm(acl: readonly Acl[], perm: number, ids: readonly Id[]): void {
    if (!checkAcl(acl, perm, ids)) throw new KeeperError(Err.NOAUTH);
  }

  private create(
    op: number,
    b: CreateBody,
    req: PrepRequest,
    zxid: number,
  ): TxnOp {
    const flags = b.flags;
    if (flags < CreateFlag.PERSISTENT || flags > CreateFlag.PERSISTENT_SEQUENTIAL_WITH_TTL)
      throw new KeeperError(Err.BADARGUMENTS, b.path);
    const isTtl = flags === CreateFlag.PERSISTENT_WITH_TTL || flags === CreateFlag.PERSISTENT_SEQUENTIAL_WITH_TTL;
    // The opcode, not the flag, makes a container: ZooKeeper applies a plain create's
    // CreateTxn as a persistent znode even with the CONTAINER flag, and a
    // CreateContainerTxn as a container whatever the flags.
    const isContainer = op === OpCode.createContainer;
    const isSequential = flags === 2 || flags === 3 || flags === CreateFlag.PERSISTENT_SEQUENTIAL_WITH_TTL;
    const isEphemeral = flags === 1 || flags === 3;
    // validateCreateRequest
    if (isTtl && !this.opts.extendedTypesEnabled) throw new KeeperError(Err.UNIMPLEMENTED);
    if (isTtl ? b.ttl <= 0 || b.ttl > Number(MAX_TTL) : b.ttl >= 0) throw new KeeperError(Err.BADARGUMENTS, b.path);
    if (op === OpCode.createTTL && !isTtl) throw new KeeperError(Err.BADARGUMENTS, b.path);
    this.checkSession(req.sessionId);
    // validatePathForCreate
    const slash = b.path.lastIndexOf('/');
    if (slash === -1 || b.path.includes('\0')) throw new KeeperError(Err.BADARGUMENTS, b.path);
    const parentPath = slash === 0 ? '/' : b.path.substring(0, slash);
    const acl = fixupAcl(b.acl, req.authIds);
    const parent = this.record(parentPath);
    this.checkPerm(parent.acl, Perms.CREATE, req.authIds);
    const parentCVersion = parent.stat!.cversion;
    const path = isSequential ? b.path + sequenceSuffix(parentCVersion) : b.path;
    validate(path);
    if (this.exists(path)) throw new KeeperError(Err.NODEEXISTS, path);
    if (isSessionOwner(parent.stat!.ephemeralOwner)) throw new KeeperError(Err.NOCHILDRENFOREPHEMERALS, path);
    const newCversion = (parentCVersion + 1) | 0; // a Java int: wraps past 2^31-1
    const ephemeralOwner = isContainer
      ? CONTAINER_OWNER
      : isTtl
        ? BigInt.asIntN(64, TTL_MASK | BigInt(b.ttl))
        : isEphemeral
          ? req.sessionId
          : 0n;
    const ps = parent.stat!;
    this.add(changed(parent, zxid, statOf(ps.version, newCversion, ps.aversion, ps.ephemeralOwner), parent.childCount + 1, parent.acl));
    this.add({ zxid, path, stat: { version: 0, cversion: 0, aversion: 0, ephemeralOwner }, childCount: 0, acl });
    return { type: 'create', op, path, data: b.data, acl, ephemeralOwner, parentCVersion: newCversion };
  }
}

function isMultiWriteOp(op: number): boolean {
  return (
    op === OpCode.create ||
    op === OpCode.create2 ||
    op === OpCode.createTTL ||
    op === OpCode.createContainer ||
    op === OpCode.delete ||
    op === OpCode.setData ||
    op === OpCode.check
  );
}

/** Java's String.format("%010d"): zero padded to 10, the sign first when negative (overflow). */
export function sequenceSuffix(n: number): string {
  return n < 0 ? '-' + String(-n).padStart(9, '0') : String(n).padStart(10, '0');
}

// Change records are built by these two, never by object spread: one shape for all of
// them keeps prep's property accesses monomorphic (spreads were ~9 % of a write profile).
function statOf(version: number, cversion: number, aversion: number, ephemeralOwner: bigint): NonNullable<ChangeRecord['stat']> {
  return { version, cversion, aversion, ephemeralOwner };
}

function changed(
  from: ChangeRecord,
  zxid: number,
  stat: ChangeRecord['stat'],
  childCount: number,
  acl: readonly Acl[],
): ChangeRecord {
  return { zxid, path: from.path, stat, childCount, acl };
}

function validate(path: string): void {
  if (invalidPath(path) !== null) throw new KeeperError(Err.BADARGUMENTS, path);
}

/** checkAndIncVersion: -1 matches any version; the next version skips -1 (ZOOKEEPER-4743). */
function checkVersion(current: number, expected: number, path: string): number {
  if (expected !== -1 && expected !== current) throw new KeeperError(Err.BADVERSION, path);
  const next = (current + 1) | 0;
  return next === -1 ? 0 : next;
}

/** PrepRequestProcessor.fixupACL: dedupe, validate, expand `auth` to the caller's ids. */
export function fixupAcl(acl: readonly Acl[] | null, authIds: readonly Id[]): Acl[] {
  if (acl === null || acl.length === 0) throw new KeeperError(Err.INVALIDACL);
  const uniq: Acl[] = [];
  for (const a of acl) if (!uniq.some((u) => u.perms === a.perms && u.scheme === a.scheme && u.id === a.id)) uniq.push(a);
  const out: Acl[] = [];
  for (const a of uniq) {
    if (a.scheme === 'world' && a.id === 'anyone') out.push(a);
    else if (a.scheme === 'auth') {
      let any = false;
      for (const id of authIds) {
        if (isAuthenticatedScheme(id.scheme)) {
          any = true;
          out.push({ perms: a.perms, scheme: id.scheme, id: id.id });
        }
      }
      if (!any) throw new KeeperError(Err.INVALIDACL);
    } else if (isValidAclId(a.scheme, a.id)) out.push(a);
    else throw new KeeperError(Err.INVALIDACL);
  }
  return out;
}
