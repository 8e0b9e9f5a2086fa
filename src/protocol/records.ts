// The client records of zookeeper.jute, decoded from and encoded to jute.
import { type Acl, clientEphemeralOwner, type Stat, type ZNode } from '../tree/types.js';
import { OpCode } from './constants.js';
import { JuteError, type JuteReader, type JuteWriter } from './jute.js';

export interface ConnectRequest {
  protocolVersion: number;
  lastZxidSeen: number;
  timeOut: number;
  sessionId: bigint;
  passwd: Buffer;
  /** undefined when an old client sent the 44-byte form without the readOnly byte. */
  readOnly: boolean | undefined;
}

export function readConnectRequest(r: JuteReader): ConnectRequest {
  const protocolVersion = r.int();
  const lastZxidSeen = r.longNum();
  const timeOut = r.int();
  const sessionId = r.long();
  const passwd = r.buffer() ?? Buffer.alloc(0);
  const readOnly = r.remaining() >= 1 ? r.bool() : undefined;
  return { protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly };
}

export function writeStat(w: JuteWriter, s: Stat): void {
  w.longNum(s.czxid);
  w.longNum(s.mzxid);
  w.longNum(s.ctime);
  w.longNum(s.mtime);
  w.int(s.version);
  w.int(s.cversion);
  w.int(s.aversion);
  w.long(s.ephemeralOwner);
  w.int(s.dataLength);
  w.int(s.numChildren);
  w.longNum(s.pzxid);
}

/** A znode's Stat straight from the node: the read path's replies allocate no Stat object. */
export function writeNodeStat(w: JuteWriter, n: ZNode): void {
  w.longNum(n.czxid);
  w.longNum(n.mzxid);
  w.longNum(n.ctime);
  w.longNum(n.mtime);
  w.int(n.version);
  w.int(n.clientCversion);
  w.int(n.aversion);
  w.long(clientEphemeralOwner(n.ephemeralOwner));
  w.int(n.data === null ? 0 : n.data.length);
  w.int(n.numChildren);
  w.longNum(n.pzxid);
}

export function readStat(r: JuteReader): Stat {
  return {
    czxid: r.longNum(),
    mzxid: r.longNum(),
    ctime: r.longNum(),
    mtime: r.longNum(),
    version: r.int(),
    cversion: r.int(),
    aversion: r.int(),
    ephemeralOwner: r.long(),
    dataLength: r.int(),
    numChildren: r.int(),
    pzxid: r.longNum(),
  };
}

export function readAclList(r: JuteReader): Acl[] | null {
  const n = r.vectorLength();
  if (n === -1) return null;
  const out: Acl[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const perms = r.int();
    const scheme = r.ustring();
    const id = r.ustring();
    if (scheme === null || id === null) throw new JuteError('null ACL id');
    out[i] = { perms, scheme, id };
  }
  return out;
}

export function writeAclList(w: JuteWriter, acl: readonly Acl[]): void {
  w.int(acl.length);
  for (const a of acl) {
    w.int(a.perms);
    w.ustring(a.scheme);
    w.ustring(a.id);
  }
}

/** Bodies of the requests that reach the request pipeline, by opcode. */
export type RequestBody =
  | { op: typeof OpCode.create | typeof OpCode.create2 | typeof OpCode.createContainer; path: string; data: Buffer | null; acl: Acl[] | null; flags: number; ttl: number }
  | { op: typeof OpCode.createTTL; path: string; data: Buffer | null; acl: Acl[] | null; flags: number; ttl: number }
  | { op: typeof OpCode.delete; path: string; version: number }
  | { op: typeof OpCode.exists | typeof OpCode.getData | typeof OpCode.getChildren | typeof OpCode.getChildren2; path: string; watch: boolean }
  | { op: typeof OpCode.setData; path: string; data: Buffer | null; version: number }
  | { op: typeof OpCode.getACL | typeof OpCode.sync | typeof OpCode.getAllChildrenNumber; path: string }
  | { op: typeof OpCode.setACL; path: string; acl: Acl[] | null; version: number }
  | { op: typeof OpCode.check; path: string; version: number }
  | { op: typeof OpCode.multi | typeof OpCode.multiRead; ops: RequestBody[] }
  | { op: typeof OpCode.checkWatches | typeof OpCode.removeWatches; path: string; type: number }
  | { op: typeof OpCode.getEphemerals; prefix: string }
  | { op: typeof OpCode.addWatch; path: string; mode: number }
  | { op: typeof OpCode.setWatches | typeof OpCode.setWatches2; relativeZxid: number; data: string[]; exist: string[]; child: string[]; persistent: string[]; recursive: string[] }
  | { op: typeof OpCode.ping | typeof OpCode.closeSession | typeof OpCode.whoAmI }
  | { op: typeof OpCode.reconfig; joining: string | null; leaving: string | null; newMembers: string | null; curConfigId: number }
  | { op: typeof OpCode.sasl; token: Buffer | null }
  | { op: typeof OpCode.deleteContainer; path: string };

const MULTI_SUB_OPS = new Set<number>([
  OpCode.create, OpCode.create2, OpCode.createContainer, OpCode.createTTL, OpCode.delete,
  OpCode.setData, OpCode.check, OpCode.getChildren, OpCode.getData,
]);

/**
 * Inside multi the flags choose the create op (Op.create -> Create.getOpcode): TTL flags
 * make a createTTL (with ttl -1 unless the request was one), CONTAINER a createContainer,
 * and a createTTL without TTL flags is a plain create that ignores its ttl.
 */
function multiCreateOp(sub: RequestBody): RequestBody {
  if (sub.op !== OpCode.create && sub.op !== OpCode.create2 && sub.op !== OpCode.createContainer && sub.op !== OpCode.createTTL)
    return sub;
  if (sub.flags === 5 || sub.flags === 6) return { ...sub, op: OpCode.createTTL };
  if (sub.flags === 4) return { ...sub, op: OpCode.createContainer, ttl: -1 };
  if (sub.op === OpCode.createTTL) return { ...sub, op: OpCode.create, ttl: -1 };
  return sub;
}

function str(r: JuteReader): string {
  return r.string();
}

/** Decodes a request body; throws JuteError on anything malformed or an unknown opcode. */
export function readRequestBody(op: number, r: JuteReader): RequestBody {
  switch (op) {
    case OpCode.create:
    case OpCode.create2:
    case OpCode.createContainer: {
      const path = str(r);
      const data = r.buffer();
      const acl = readAclList(r);
      const flags = r.int();
      return { op, path, data, acl, flags, ttl: -1 };
    }
    case OpCode.createTTL: {
      const path = str(r);
      const data = r.buffer();
      const acl = readAclList(r);
      const flags = r.int();
      const ttl = r.longNum();
      return { op, path, data, acl, flags, ttl };
    }
    case OpCode.delete:
      return { op, path: str(r), version: r.int() };
    case OpCode.exists:
    case OpCode.getData:
    case OpCode.getChildren:
    case OpCode.getChildren2:
      return { op, path: str(r), watch: r.bool() };
    case OpCode.setData: {
      const path = str(r);
      const data = r.buffer();
      return { op, path, data, version: r.int() };
    }
    case OpCode.getACL:
    case OpCode.sync:
    case OpCode.getAllChildrenNumber:
      return { op, path: str(r) };
    case OpCode.deleteContainer:
      return { op, path: str(r) };
    case OpCode.setACL: {
      const path = str(r);
      const acl = readAclList(r);
      return { op, path, acl, version: r.int() };
    }
    case OpCode.check:
      return { op, path: str(r), version: r.int() };
    case OpCode.multi:
    case OpCode.multiRead: {
      const ops: RequestBody[] = [];
      for (;;) {
        const type = r.int();
        const done = r.bool();
        r.int(); // err, always -1 in requests
        if (done) break;
        // MultiOperationRecord.deserialize: only these op types, and a create's flags must
        // name a CreateMode; anything else fails the whole record ("Invalid type of op").
        if (!MULTI_SUB_OPS.has(type)) throw new JuteError(`invalid op type ${type} in multi`);
        const sub = readRequestBody(type, r);
        if ((type === OpCode.create || type === OpCode.create2 || type === OpCode.createContainer) &&
          ((sub as { flags: number }).flags < 0 || (sub as { flags: number }).flags > 6))
          throw new JuteError(`invalid flag ${(sub as { flags: number }).flags} for create mode`);
        ops.push(multiCreateOp(sub));
      }
      return { op, ops };
    }
    case OpCode.checkWatches:
    case OpCode.removeWatches:
      return { op, path: str(r), type: r.int() };
    case OpCode.getEphemerals:
      return { op, prefix: r.ustring() ?? '' };
    case OpCode.addWatch:
      return { op, path: str(r), mode: r.int() };
    case OpCode.setWatches:
    case OpCode.setWatches2: {
      const relativeZxid = r.longNum();
      const data = r.stringVector() ?? [];
      const exist = r.stringVector() ?? [];
      const child = r.stringVector() ?? [];
      const persistent = op === OpCode.setWatches2 ? (r.stringVector() ?? []) : [];
      const recursive = op === OpCode.setWatches2 ? (r.stringVector() ?? []) : [];
      return { op, relativeZxid, data, exist, child, persistent, recursive };
    }
    case OpCode.ping:
    case OpCode.closeSession:
    case OpCode.whoAmI:
      return { op };
    case OpCode.reconfig: {
      const joining = r.ustring();
      const leaving = r.ustring();
      const newMembers = r.ustring();
      return { op, joining, leaving, newMembers, curConfigId: r.longNum() };
    }
    case OpCode.sasl:
      return { op, token: r.buffer() };
    default:
      throw new JuteError(`unknown opcode ${op}`);
  }
}

export function isWriteOp(op: number): boolean {
  switch (op) {
    case OpCode.create:
    case OpCode.create2:
    case OpCode.createContainer:
    case OpCode.createTTL:
    case OpCode.delete:
    case OpCode.deleteContainer:
    case OpCode.setData:
    case OpCode.setACL:
    case OpCode.check:
    case OpCode.multi:
    case OpCode.closeSession:
    case OpCode.reconfig:
      return true;
    default:
      return false;
  }
}
