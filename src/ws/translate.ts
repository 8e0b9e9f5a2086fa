// Between the protobuf protocol (proto/corral.proto) and the ZooKeeper wire protocol (jute):
// protobuf requests become jute request frames and jute replies become protobuf responses.
// The server's WebSocket bridge uses it to feed the TCP pipeline, and the client's TCP
// transport uses it to speak jute to Corral or to Apache ZooKeeper. Node-only (Buffer).
import { Buffer } from 'node:buffer';
import { OpCode, Xid } from '../protocol/constants.js';
import { JuteError, type JuteReader, type JuteWriter } from '../protocol/jute.js';
import { readAclList, readStat, writeAclList } from '../protocol/records.js';
import type { Stat } from '../tree/types.js';
import {
  type PAcl, type PConnectRequest, type PConnectResponse, type POp, type POpResult, type PRequest, type PResponse,
  type PStat, type PWatchEvent, type RequestOp, bytesToId, idToBytes, num, requestOp,
} from './proto.js';

/** A request the translator cannot express in jute (no operation set, bad multi op). */
export class TranslateError extends Error {}

const OPCODES: Record<RequestOp, number> = {
  create: OpCode.create, create2: OpCode.create2, createContainer: OpCode.createContainer, createTtl: OpCode.createTTL,
  delete: OpCode.delete, exists: OpCode.exists, getData: OpCode.getData, setData: OpCode.setData,
  getAcl: OpCode.getACL, setAcl: OpCode.setACL, getChildren: OpCode.getChildren, getChildren2: OpCode.getChildren2,
  getAllChildrenNumber: OpCode.getAllChildrenNumber, getEphemerals: OpCode.getEphemerals, sync: OpCode.sync,
  multi: OpCode.multi, multiRead: OpCode.multiRead, addWatch: OpCode.addWatch, removeWatches: OpCode.removeWatches,
  checkWatches: OpCode.checkWatches, setWatches: OpCode.setWatches2, auth: OpCode.auth, whoAmI: OpCode.whoAmI,
  ping: OpCode.ping, close: OpCode.closeSession, check: OpCode.check,
};

/** Requests with a fixed xid in the ZooKeeper protocol; their replies come back in order. */
const SPECIAL_XID: Partial<Record<RequestOp, number>> = { ping: Xid.ping, auth: Xid.auth, setWatches: Xid.setWatches };

const EMPTY = Buffer.alloc(0);
const NO_PASSWORD = Buffer.alloc(16);

function bytes(b: Uint8Array | null | undefined): Uint8Array {
  return b ?? EMPTY;
}

function str(s: string | null | undefined): string {
  return s ?? '';
}

function writeAcl(w: JuteWriter, acl: PAcl[] | null | undefined): void {
  writeAclList(w, (acl ?? []).map((a) => ({ perms: a.perms ?? 0, scheme: str(a.scheme), id: str(a.id) })));
}

export function statToProto(s: Stat): PStat {
  return {
    czxid: s.czxid, mzxid: s.mzxid, ctime: s.ctime, mtime: s.mtime, version: s.version, cversion: s.cversion,
    aversion: s.aversion, ephemeralOwner: idToBytes(s.ephemeralOwner), dataLength: s.dataLength,
    numChildren: s.numChildren, pzxid: s.pzxid,
  };
}

/** Writes one jute ConnectRequest frame. */
export function writeConnect(w: JuteWriter, c: PConnectRequest): void {
  const at = w.beginFrame();
  const pw = c.password !== null && c.password !== undefined && c.password.length > 0 ? c.password : NO_PASSWORD;
  w.int(0).longNum(num(c.lastZxidSeen)).int(c.timeoutMs ?? 30000).long(bytesToId(c.sessionId)).buffer(pw).bool(c.readOnly ?? false);
  w.endFrame(at);
}

/** Reads a jute ConnectResponse body. */
export function readConnectResponse(r: JuteReader): PConnectResponse {
  r.int(); // protocolVersion
  const timeoutMs = r.int();
  const sessionId = r.long();
  const password = r.buffer() ?? EMPTY;
  const readOnly = r.remaining() >= 1 ? r.bool() : false;
  return { timeoutMs, sessionId: sessionId === 0n ? EMPTY : idToBytes(sessionId), password, readOnly };
}

function writeCreate(w: JuteWriter, op: number, c: NonNullable<PRequest['create']>): void {
  w.ustring(str(c.path)).buffer(bytes(c.data));
  writeAcl(w, c.acl);
  w.int(c.flags ?? 0);
  if (op === OpCode.createTTL) w.longNum(num(c.ttl));
}

const MULTI_OPS: Record<string, number> = {
  create: OpCode.create, create2: OpCode.create2, createContainer: OpCode.createContainer, createTtl: OpCode.createTTL,
  delete: OpCode.delete, setData: OpCode.setData, check: OpCode.check, getData: OpCode.getData, getChildren: OpCode.getChildren,
};

function multiOp(o: POp): [string, number] {
  for (const k in MULTI_OPS) if ((o as Record<string, unknown>)[k] !== null && (o as Record<string, unknown>)[k] !== undefined) return [k, MULTI_OPS[k]!];
  throw new TranslateError('multi: an operation with nothing set');
}

/** Writes the body of a request (everything after the header). */
function writeBody(w: JuteWriter, name: RequestOp, op: number, q: PRequest): void {
  switch (name) {
    case 'create': case 'create2': case 'createContainer': case 'createTtl':
      return writeCreate(w, op, q[name]!);
    case 'delete': case 'check': {
      const b = q[name]!;
      w.ustring(str(b.path)).int(b.version ?? -1);
      return;
    }
    case 'exists': case 'getData': case 'getChildren': case 'getChildren2': {
      const b = q[name]!;
      w.ustring(str(b.path)).bool(b.watch ?? false);
      return;
    }
    case 'setData': {
      const b = q.setData!;
      w.ustring(str(b.path)).buffer(bytes(b.data)).int(b.version ?? -1);
      return;
    }
    case 'getAcl': case 'sync': case 'getAllChildrenNumber':
      w.ustring(str(q[name]!.path));
      return;
    case 'setAcl': {
      const b = q.setAcl!;
      w.ustring(str(b.path));
      writeAcl(w, b.acl);
      w.int(b.version ?? -1);
      return;
    }
    case 'getEphemerals':
      w.ustring(str(q.getEphemerals!.prefix));
      return;
    case 'multi': case 'multiRead':
      for (const o of q[name]!.ops ?? []) {
        const [k, sub] = multiOp(o);
        w.int(sub).bool(false).int(-1);
        const b = (o as Record<string, unknown>)[k] as never;
        if (k.startsWith('create')) writeCreate(w, sub, b);
        else if (k === 'delete' || k === 'check') w.ustring(str((b as { path?: string }).path)).int((b as { version?: number }).version ?? -1);
        else if (k === 'setData') {
          const s = b as { path?: string; data?: Uint8Array; version?: number };
          w.ustring(str(s.path)).buffer(bytes(s.data)).int(s.version ?? -1);
        } else w.ustring(str((b as { path?: string }).path)).bool(false);
      }
      w.int(-1).bool(true).int(-1);
      return;
    case 'addWatch':
      w.ustring(str(q.addWatch!.path)).int(q.addWatch!.mode ?? 0);
      return;
    case 'removeWatches': case 'checkWatches':
      w.ustring(str(q[name]!.path)).int(q[name]!.type ?? 3);
      return;
    case 'setWatches': {
      const b = q.setWatches!;
      w.longNum(num(b.relativeZxid)).stringVector(b.data ?? []).stringVector(b.exist ?? []).stringVector(b.child ?? [])
        .stringVector(b.persistent ?? []).stringVector(b.recursive ?? []);
      return;
    }
    case 'auth':
      w.int(0).ustring(str(q.auth!.scheme)).buffer(bytes(q.auth!.auth));
      return;
    case 'whoAmI': case 'ping': case 'close':
      return;
  }
}

interface Outstanding {
  id: number;
  name: RequestOp;
  op: number;
}

/**
 * One session's translation state: which request each jute reply answers (and so how to
 * decode its body). Ordinary requests get xids of their own; pings, auth and setWatches
 * use ZooKeeper's fixed xids and are matched first-in first-out.
 */
export class JuteTranslator {
  private nextXid = 1;
  private readonly byXid = new Map<number, Outstanding>();
  private readonly special = new Map<number, Outstanding[]>();

  get outstanding(): number {
    let n = this.byXid.size;
    for (const l of this.special.values()) n += l.length;
    return n;
  }

  /** Appends one jute request frame for `q`; throws TranslateError for an empty request. */
  writeRequest(w: JuteWriter, q: PRequest): void {
    const name = requestOp(q);
    if (name === undefined) throw new TranslateError(`request ${q.id ?? 0} names no operation`);
    const op = OPCODES[name];
    const o: Outstanding = { id: q.id ?? 0, name, op };
    let xid = SPECIAL_XID[name];
    const start = w.pos;
    const at = w.beginFrame();
    if (xid === undefined) {
      xid = this.nextXid;
      this.nextXid = this.nextXid >= 0x7fffffff ? 1 : this.nextXid + 1;
    }
    w.int(xid).int(op);
    try {
      writeBody(w, name, op, q);
    } catch (e) {
      w.pos = start;
      throw e;
    }
    w.endFrame(at);
    if (xid < 0) {
      let l = this.special.get(xid);
      if (l === undefined) this.special.set(xid, (l = []));
      l.push(o);
    } else this.byXid.set(xid, o);
  }

  /**
   * Decodes one jute reply frame (after the length): a response to a request sent through
   * this translator, a watch event, or undefined for a reply nobody is waiting for.
   */
  readReply(r: JuteReader): { response: PResponse } | { event: PWatchEvent } | undefined {
    const xid = r.int();
    const zxid = r.longNum();
    const err = r.int();
    if (xid === Xid.notification) {
      const type = r.int();
      const state = r.int();
      const path = r.string();
      return { event: { type, state, path, zxid } };
    }
    let o: Outstanding | undefined;
    if (xid < 0) o = this.special.get(xid)?.shift();
    else {
      o = this.byXid.get(xid);
      this.byXid.delete(xid);
    }
    if (o === undefined) return undefined;
    const res: PResponse = { id: o.id, zxid, err };
    if (err === 0) readResult(r, o.op, res);
    return { response: res };
  }
}

function readResult(r: JuteReader, op: number, res: PResponse): void {
  switch (op) {
    case OpCode.create:
      res.path = { path: r.string() };
      return;
    case OpCode.create2: case OpCode.createContainer: case OpCode.createTTL:
      res.path = { path: r.string(), stat: statToProto(readStat(r)) };
      return;
    case OpCode.sync:
      res.path = { path: r.ustring() ?? '' };
      return;
    case OpCode.exists: case OpCode.setData: case OpCode.setACL:
      res.stat = { stat: statToProto(readStat(r)) };
      return;
    case OpCode.getData:
      res.data = { data: r.buffer() ?? EMPTY, stat: statToProto(readStat(r)) };
      return;
    case OpCode.getACL:
      res.acl = { acl: readAclList(r) ?? [], stat: statToProto(readStat(r)) };
      return;
    case OpCode.getChildren:
      res.children = { children: r.stringVector() ?? [] };
      return;
    case OpCode.getChildren2:
      res.children = { children: r.stringVector() ?? [], stat: statToProto(readStat(r)) };
      return;
    case OpCode.getAllChildrenNumber:
      res.count = { count: r.int() };
      return;
    case OpCode.getEphemerals:
      res.paths = { paths: r.stringVector() ?? [] };
      return;
    case OpCode.whoAmI: {
      const n = r.vectorLength();
      const clients = [];
      for (let i = 0; i < n; i++) clients.push({ authScheme: r.ustring() ?? '', user: r.ustring() ?? '' });
      res.whoAmI = { clients };
      return;
    }
    case OpCode.multi: case OpCode.multiRead: {
      const results: POpResult[] = [];
      for (;;) {
        const type = r.int();
        const done = r.bool();
        const err = r.int();
        if (done) break;
        results.push(readOpResult(r, type, err));
      }
      res.multi = { results };
      return;
    }
    default:
      return; // delete, check, setWatches, removeWatches, checkWatches, addWatch, auth, ping, close
  }
}

function readOpResult(r: JuteReader, type: number, err: number): POpResult {
  switch (type) {
    case OpCode.create:
      return { err, create: { path: r.string() } };
    case OpCode.create2: case OpCode.createContainer: case OpCode.createTTL:
      return { err, create: { path: r.string(), stat: statToProto(readStat(r)) } };
    case OpCode.setData:
      return { err, setData: { stat: statToProto(readStat(r)) } };
    case OpCode.getData:
      return { err, getData: { data: r.buffer() ?? EMPTY, stat: statToProto(readStat(r)) } };
    case OpCode.getChildren:
      return { err, getChildren: { children: r.stringVector() ?? [] } };
    case OpCode.delete: case OpCode.check:
      return { err, done: {} };
    case OpCode.error:
      return { err: r.int() };
    default:
      throw new JuteError(`unexpected op ${type} in multi reply`);
  }
}
