import { checkAcl } from '../acl/auth.js';
import { Err, EventType, KeeperError, OpCode, Perms, Xid } from '../protocol/constants.js';
import { type RequestBody, writeAclList, writeNodeStat, writeStat } from '../protocol/records.js';
import type { DataTree } from '../tree/datatree.js';
import type { Acl, ApplyResult, OpResult } from '../tree/types.js';
import type { Connection } from './connection.js';
import type { WatchManager } from './watches.js';

// The final stage (FinalRequestProcessor): answers reads from the tree and turns the
// result of an applied write into its reply. Replies carry the zxid of the last
// applied txn, and go straight into the connection's output buffer.

export interface FinalContext {
  tree: DataTree;
  watches: WatchManager;
}

type Body<K extends string> = Extract<RequestBody, Record<K, unknown>>;

function nodeFor(ctx: FinalContext, path: string, conn: Connection, perm: number) {
  const n = ctx.tree.get(path);
  if (n === undefined) throw new KeeperError(Err.NONODE);
  if (!checkAcl(n.acl, perm, conn.authIds)) throw new KeeperError(Err.NOAUTH);
  return n;
}

/** Executes a read-type request and writes its reply. */
export function executeRead(ctx: FinalContext, conn: Connection, xid: number, op: number, body: RequestBody): void {
  const zxid = ctx.tree.lastZxid;
  const w = conn.out;
  let at = -1;
  try {
    switch (op) {
      case OpCode.ping: {
        at = conn.beginReply(Xid.ping, zxid, 0);
        break;
      }
      case OpCode.exists: {
        const b = body as Body<'watch'>;
        if (b.path.includes('\0')) throw new KeeperError(Err.BADARGUMENTS);
        const n = ctx.tree.get(b.path);
        if (n !== undefined && !checkAcl(n.acl, Perms.READ, conn.authIds)) throw new KeeperError(Err.NOAUTH);
        // An exists watch is set whether or not the node is there.
        if (b.watch) ctx.watches.addData(b.path, conn);
        if (n === undefined) throw new KeeperError(Err.NONODE);
        at = conn.beginReply(xid, zxid, 0);
        writeNodeStat(w, n);
        break;
      }
      case OpCode.getData: {
        const b = body as Body<'watch'>;
        const n = nodeFor(ctx, b.path, conn, Perms.READ);
        if (b.watch) ctx.watches.addData(b.path, conn);
        at = conn.beginReply(xid, zxid, 0);
        w.buffer(n.data);
        writeNodeStat(w, n);
        break;
      }
      case OpCode.getChildren:
      case OpCode.getChildren2: {
        const b = body as Body<'watch'>;
        const n = nodeFor(ctx, b.path, conn, Perms.READ);
        if (b.watch) ctx.watches.addChild(b.path, conn);
        at = conn.beginReply(xid, zxid, 0);
        w.int(n.numChildren);
        if (n.children !== null) for (const c of n.children) w.ustring(c);
        if (op === OpCode.getChildren2) writeNodeStat(w, n);
        break;
      }
      case OpCode.getAllChildrenNumber: {
        const b = body as Body<'path'>;
        nodeFor(ctx, b.path, conn, Perms.READ);
        at = conn.beginReply(xid, zxid, 0);
        w.int(ctx.tree.countDescendants(b.path));
        break;
      }
      case OpCode.getACL: {
        const b = body as Body<'path'>;
        const n = nodeFor(ctx, b.path, conn, Perms.READ | Perms.ADMIN);
        // Digest hashes are for admins only: others see `user:x`.
        const acl: readonly Acl[] = checkAcl(n.acl, Perms.ADMIN, conn.authIds)
          ? n.acl
          : n.acl.map((a) => (a.scheme === 'digest' ? { ...a, id: a.id.replace(/:.*/s, ':x') } : a));
        at = conn.beginReply(xid, zxid, 0);
        writeAclList(w, acl);
        writeNodeStat(w, n);
        break;
      }
      case OpCode.sync: {
        const b = body as Body<'path'>;
        at = conn.beginReply(xid, zxid, 0);
        w.ustring(b.path);
        break;
      }
      case OpCode.getEphemerals: {
        const b = body as { prefix: string };
        const all = ctx.tree.ephemerals.get(conn.sessionId) ?? new Set<string>();
        const prefix = b.prefix.trim();
        const list = prefix === '' || prefix === '/' ? [...all] : [...all].filter((p) => p.startsWith(b.prefix));
        at = conn.beginReply(xid, zxid, 0);
        w.stringVector(list);
        break;
      }
      case OpCode.addWatch: {
        const b = body as { path: string; mode: number };
        if (b.mode !== 0 && b.mode !== 1) throw new KeeperError(Err.MARSHALLINGERROR);
        ctx.watches.addPersistent(b.path, conn, b.mode === 1);
        at = conn.beginReply(xid, zxid, 0);
        w.int(0); // ErrorResponse{err}
        break;
      }
      case OpCode.checkWatches:
      case OpCode.removeWatches: {
        const b = body as { path: string; type: number };
        // WatcherType.fromInt throws on anything else: a marshalling error in ZooKeeper.
        if (b.type < 1 || b.type > 5) throw new KeeperError(Err.MARSHALLINGERROR);
        if (!ctx.watches.removeOrCheck(b.path, b.type, conn, op === OpCode.removeWatches))
          throw new KeeperError(Err.NOWATCHER);
        at = conn.beginReply(xid, zxid, 0);
        break;
      }
      case OpCode.setWatches:
      case OpCode.setWatches2: {
        const b = body as Extract<RequestBody, { relativeZxid: number }>;
        setWatches(ctx, conn, b);
        // The reply echoes the request's xid, as every reply does: Java clients send -8,
        // others (node-zookeeper-client) an ordinary xid and match the reply on it.
        at = conn.beginReply(xid, zxid, 0);
        break;
      }
      case OpCode.whoAmI: {
        at = conn.beginReply(xid, zxid, 0);
        w.int(conn.authIds.length);
        // AuthUtil.getClientInfos: the provider's user name (digest: the part before ':').
        for (const id of conn.authIds) w.ustring(id.scheme).ustring(id.scheme === 'digest' ? id.id.split(':')[0] : id.id);
        break;
      }
      case OpCode.multiRead: {
        const b = body as { ops: RequestBody[] };
        at = conn.beginReply(xid, zxid, 0);
        for (const sub of b.ops) {
          try {
            // Op.getData/getChildren drop the watch flag: multiRead never sets watches.
            const sb = sub as Body<'watch'>;
            const n = nodeFor(ctx, sb.path, conn, Perms.READ);
            if (sub.op === OpCode.getChildren) {
              w.int(OpCode.getChildren).bool(false).int(0);
              w.int(n.numChildren);
              if (n.children !== null) for (const c of n.children) w.ustring(c);
            } else {
              w.int(OpCode.getData).bool(false).int(0);
              w.buffer(n.data);
              writeNodeStat(w, n);
            }
          } catch (e) {
            if (!(e instanceof KeeperError)) throw e;
            w.int(OpCode.error).bool(false).int(e.code);
            w.int(e.code);
          }
        }
        w.int(-1).bool(true).int(-1);
        break;
      }
      default:
        throw new KeeperError(Err.UNIMPLEMENTED);
    }
  } catch (e) {
    if (!(e instanceof KeeperError)) throw e;
    if (at !== -1) w.pos = at; // discard a half-written reply
    at = conn.beginReply(xid, zxid, e.code);
  }
  conn.endReply(at);
}

/** setWatches(2): re-arm watches after a reconnect, firing what changed since relativeZxid. */
function setWatches(ctx: FinalContext, conn: Connection, b: Extract<RequestBody, { relativeZxid: number }>): void {
  const fire = (type: number, path: string) => conn.deliver({ type, path, zxid: -1, acl: [] });
  for (const p of b.data) {
    const n = ctx.tree.get(p);
    if (n === undefined) fire(EventType.NodeDeleted, p);
    else if (n.mzxid > b.relativeZxid) fire(EventType.NodeDataChanged, p);
    else ctx.watches.addData(p, conn);
  }
  for (const p of b.exist) {
    if (ctx.tree.get(p) !== undefined) fire(EventType.NodeCreated, p);
    else ctx.watches.addData(p, conn);
  }
  for (const p of b.child) {
    const n = ctx.tree.get(p);
    if (n === undefined) fire(EventType.NodeDeleted, p);
    else if (n.pzxid > b.relativeZxid) fire(EventType.NodeChildrenChanged, p);
    else ctx.watches.addChild(p, conn);
  }
  for (const p of b.persistent) ctx.watches.addPersistent(p, conn, false);
  for (const p of b.recursive) ctx.watches.addPersistent(p, conn, true);
}

/** The reply to an applied write. */
export function replyWrite(ctx: FinalContext, conn: Connection, xid: number, op: number, r: ApplyResult): void {
  const zxid = ctx.tree.lastZxid;
  const w = conn.out;
  if (op === OpCode.multi && r.multi !== undefined) {
    const at = conn.beginReply(xid, zxid, 0);
    for (const sub of r.multi) writeMultiResult(w, sub);
    w.int(-1).bool(true).int(-1);
    conn.endReply(at);
    return;
  }
  if (r.err !== Err.OK) {
    conn.endReply(conn.beginReply(xid, zxid, r.err));
    return;
  }
  const at = conn.beginReply(xid, zxid, 0);
  switch (op) {
    case OpCode.create:
      w.ustring(r.path!);
      break;
    case OpCode.create2:
    case OpCode.createContainer:
    case OpCode.createTTL:
      w.ustring(r.path!);
      writeStat(w, r.stat!);
      break;
    case OpCode.setData:
    case OpCode.setACL:
      writeStat(w, r.stat!);
      break;
    default:
      break; // delete, closeSession, check: header only
  }
  conn.endReply(at);
}

function writeMultiResult(w: Connection['out'], r: OpResult): void {
  switch (r.type) {
    case 'error':
      w.int(OpCode.error).bool(false).int(r.err);
      w.int(r.err);
      return;
    case 'create':
      // create2, createContainer and createTTL all answer with a create2 result.
      w.int(r.op === OpCode.create ? OpCode.create : OpCode.create2).bool(false).int(0);
      w.ustring(r.path!);
      if (r.op !== OpCode.create) writeStat(w, r.stat!);
      return;
    case 'delete':
      w.int(OpCode.delete).bool(false).int(0);
      return;
    case 'setData':
      w.int(OpCode.setData).bool(false).int(0);
      writeStat(w, r.stat!);
      return;
    case 'check':
      w.int(OpCode.check).bool(false).int(0);
      return;
    default:
      w.int(OpCode.error).bool(false).int(Err.SYSTEMERROR);
      w.int(Err.SYSTEMERROR);
  }
}
