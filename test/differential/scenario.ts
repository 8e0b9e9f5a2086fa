// The differential test's scenario language and runner.
//
// A scenario is a list of steps, each one request from one named client (session).
// The runner sends every step with RawClient, so Corral and the reference server get
// byte-identical requests, and records a transcript: each reply decoded into plain
// JSON, every notification each client received during the step, in arrival order
// relative to the step's reply, and which connections the server closed.
//
// Paths in steps are relative to the scenario's root, a fresh znode named
// /diff-<scenario>-<random> so that runs against a shared reference server never
// collide. A path is written as:
//   '/a/b'    -> <root>/a/b
//   ''        -> <root> itself
//   '@/x'     -> /x, absolute (system znodes, the real root)
//   'rel'     -> 'rel' as is (no leading slash: relative paths, for validation tests)
//   Buffer    -> <root> bytes followed by these raw bytes (invalid UTF-8)
// Transcripts have the root replaced by '' again, so they compare across servers.
//
// Values that legitimately differ between servers are normalised before comparing:
//   - zxids: each positive zxid becomes its rank ('z1', 'z2', ...) among all zxids the
//     scenario saw on that server, so equalities and order compare, values do not.
//     0 and -1 stay literal (they are not positions in the log).
//   - times: ctime/mtime become 't(zN)', the time of the txn with rank N. Per server we
//     check that this is a function (one zxid, one time), non-decreasing in zxid, and
//     close to the wall clock. 0 stays 0 (the system znodes).
//   - session ids (ephemeralOwner) become the scenario's client names.

import { RawClient, type Reply } from '../../src/client/raw.js';
import { CONTAINER_OWNER, Err, OpCode, Xid } from '../../src/protocol/constants.js';
import { JuteReader, type JuteWriter } from '../../src/protocol/jute.js';
import { readAclList, readStat, writeAclList } from '../../src/protocol/records.js';
import type { Acl, Stat } from '../../src/tree/types.js';

export type PathArg = string | Buffer;

export const WORLD: Acl[] = [{ perms: 31, scheme: 'world', id: 'anyone' }];

/** Differences between Apache ZooKeeper 3.8 and 3.9 a step may show; see compare(). */
export type KnownDifference =
  | 'exists-read-acl'
  | 'watch-acl-filter'
  | 'watch-modes'
  | 'top-level-check'
  | 'delete-container-body';

interface Base {
  /** The client (session) that sends it; default 'a'. */
  c?: string;
  /** Expected error code on Corral (3.9 behaviour); default 0 (OK). */
  err?: number;
  /** For multi/multiRead: the expected per-op error codes. */
  results?: number[];
  /** Name to refer to this step's reply zxid (setWatches relativeZxid). */
  label?: string;
  /**
   * Connections the server closes during this step: true for the step's own client,
   * or the list of clients. Default: none.
   */
  closes?: true | string[];
  /** The order of this step's notifications is not defined (e.g. several ephemerals of a closed session). */
  unorderedEvents?: boolean;
  /** A known 3.8/3.9 difference allowed at this step (3.9 is what Corral does). */
  known?: KnownDifference;
  /** Wait this long (ms) before sending, e.g. for a TTL to pass. */
  delay?: number;
}

export type CreateOpcode = 'create' | 'create2' | 'createContainer' | 'createTTL';

export interface CreateOp {
  op: 'create';
  path: PathArg;
  data?: string;
  flags?: number;
  acl?: Acl[] | null;
  opcode?: CreateOpcode;
  ttl?: number;
}
export interface DeleteOp { op: 'delete'; path: PathArg; version?: number }
export interface SetDataOp { op: 'setData'; path: PathArg; data: string; version?: number }
export interface CheckOp { op: 'check'; path: PathArg; version: number }
export interface GetDataOp { op: 'getData'; path: PathArg; watch?: boolean }
export interface GetChildrenOp { op: 'getChildren'; path: PathArg; watch?: boolean }

export type MultiSubOp = CreateOp | DeleteOp | SetDataOp | CheckOp;
export type MultiReadSubOp = GetDataOp | GetChildrenOp;

export type Step = Base &
  (
    | CreateOp
    | DeleteOp
    | SetDataOp
    | CheckOp
    | GetDataOp
    | GetChildrenOp
    | { op: 'exists' | 'getChildren2'; path: PathArg; watch?: boolean }
    | { op: 'getACL' | 'sync' | 'getAllChildrenNumber' | 'deleteContainer'; path: PathArg }
    | { op: 'setACL'; path: PathArg; acl: Acl[] | null; version?: number }
    | { op: 'getEphemerals'; prefix: PathArg }
    | { op: 'multi'; ops: MultiSubOp[] }
    | { op: 'multiRead'; ops: MultiReadSubOp[] }
    | { op: 'checkWatches' | 'removeWatches'; path: PathArg; type: number }
    | { op: 'addWatch'; path: PathArg; mode: number }
    | {
        op: 'setWatches' | 'setWatches2';
        /** A step label (its reply's zxid), or a literal zxid. */
        relativeZxid: string | number;
        data?: PathArg[];
        exist?: PathArg[];
        child?: PathArg[];
        persistent?: PathArg[];
        recursive?: PathArg[];
      }
    | { op: 'whoAmI' | 'closeSession' | 'ping' }
    | { op: 'auth'; scheme: string; auth: string }
    | { op: 'sasl'; token: string | null }
    | { op: 'reconfig'; joining: string | null; leaving: string | null; newMembers: string | null; curConfigId: number }
    /** Any opcode with a raw body (unknown opcodes, top-level check, ...). */
    | { op: 'raw'; opcode: number; body?: Buffer }
    /**
     * Opens a new connection as client `c`. With `resume`, reconnects to that client's
     * session (with its password, or a wrong one when `badPassword`).
     */
    | { op: 'connect'; timeout?: number; readOnlyByte?: boolean; resume?: string; badPassword?: boolean }
    /** Waits `ms` and records the notifications that arrived meanwhile. */
    | { op: 'wait'; ms: number }
  );

export interface Scenario {
  name: string;
  /** Clients connected (in this order) before the first step. */
  clients: string[];
  steps: Step[];
  /** Extra zoo.cfg for the Corral server this scenario needs. */
  corralCfg?: string;
  /** Runs against the reference only if it has (true) / lacks (false) extended types. */
  extendedTypes?: boolean;
  /** Needs a container/TTL reaper that runs within about a second (see the test's probe). */
  fastReaper?: boolean;
}

// --- raw values: zxids and times stay tagged until normalisation --------------------

class Z {
  constructor(readonly v: number) {}
}
/** A notification's zxid: ranked among the others, but never adds a rank of its own. */
class NZ extends Z {}
class T {
  constructor(
    readonly t: number,
    readonly z: number,
  ) {}
}
class Owner {
  constructor(readonly v: bigint) {}
}

type RawValue = unknown;

export interface StepRecord {
  i: number;
  c: string;
  op: string;
  err?: number;
  zxid?: RawValue;
  body?: RawValue;
  /** Everything each client received during the step, in order ('REPLY' marks the reply). */
  events: Record<string, RawValue[]>;
  /** Clients whose connection the server closed during this step. */
  closed: string[];
  noReply?: string;
  /** Why the step was not sent to this server (see RunOptions.skip). */
  skipped?: string;
}

export interface RunOptions {
  /** Steps not to send to this server, with the reason (e.g. they would damage it). */
  skip?: (s: Step) => string | undefined;
}

export interface RunResult {
  server: string;
  transcript: StepRecord[];
  /** Invariant violations found on this server alone (times, decoding). */
  problems: string[];
  root: string;
}

// --- one tapped client -----------------------------------------------------------

interface TapFrame {
  kind: 'reply' | 'notification';
  xid: number;
  zxid: number;
  type?: number;
  state?: number;
  path?: string;
}

class Tapped {
  frames: TapFrame[] = [];
  cursor = 0;
  closedSeen = false;
  private buf: Buffer = Buffer.alloc(0);

  constructor(readonly rc: RawClient) {
    rc.socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  /** Frame order as it arrived (RawClient resolves replies in microtasks, too late to order). */
  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let pos = 0;
    while (pos + 4 <= this.buf.length) {
      const len = this.buf.readInt32BE(pos);
      if (len < 16 || pos + 4 + len > this.buf.length) break;
      const r = new JuteReader(this.buf, pos + 4, pos + 4 + len);
      pos += 4 + len;
      const xid = r.int();
      const zxid = r.longNum();
      r.int();
      if (xid === Xid.notification) {
        const type = r.int();
        const state = r.int();
        const path = r.string();
        this.frames.push({ kind: 'notification', xid, zxid, type, state, path });
      } else this.frames.push({ kind: 'reply', xid, zxid });
    }
    this.buf = pos === this.buf.length ? Buffer.alloc(0) : Buffer.from(this.buf.subarray(pos));
  }

  take(): TapFrame[] {
    const f = this.frames.slice(this.cursor);
    this.cursor = this.frames.length;
    return f;
  }
}

// --- encoding requests -----------------------------------------------------------

const CREATE_OPCODES: Record<CreateOpcode, number> = {
  create: OpCode.create,
  create2: OpCode.create2,
  createContainer: OpCode.createContainer,
  createTTL: OpCode.createTTL,
};

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

class Runner {
  readonly clients = new Map<string, Tapped>();
  /** Session ids of every client, for ephemeralOwner normalisation. */
  readonly sessions = new Map<bigint, string>();
  readonly labels = new Map<string, number>();
  readonly rootBytes: Buffer;

  constructor(
    readonly host: string,
    readonly port: number,
    readonly root: string,
  ) {
    this.rootBytes = Buffer.from(root);
  }

  path(p: PathArg): string | Buffer {
    if (Buffer.isBuffer(p)) return Buffer.concat([this.rootBytes, p]);
    if (p.startsWith('@')) return p.substring(1);
    if (p === '' || p.startsWith('/')) return this.root + p;
    return p;
  }

  writePath(w: JuteWriter, p: PathArg): void {
    const r = this.path(p);
    if (Buffer.isBuffer(r)) w.buffer(r);
    else w.ustring(r);
  }

  writeCreate(w: JuteWriter, s: CreateOp): void {
    this.writePath(w, s.path);
    w.buffer(Buffer.from(s.data ?? ''));
    if (s.acl === null) w.int(-1);
    else writeAclList(w, s.acl ?? WORLD);
    w.int(s.flags ?? 0);
    if ((s.opcode ?? 'create') === 'createTTL') w.longNum(s.ttl ?? -1);
  }

  /** The body of a sub-op of multi/multiRead, or of the same op on its own. */
  writeSub(w: JuteWriter, s: MultiSubOp | MultiReadSubOp): number {
    switch (s.op) {
      case 'create':
        this.writeCreate(w, s);
        return CREATE_OPCODES[s.opcode ?? 'create'];
      case 'delete':
        this.writePath(w, s.path);
        w.int(s.version ?? -1);
        return OpCode.delete;
      case 'setData':
        this.writePath(w, s.path);
        w.buffer(Buffer.from(s.data));
        w.int(s.version ?? -1);
        return OpCode.setData;
      case 'check':
        this.writePath(w, s.path);
        w.int(s.version);
        return OpCode.check;
      case 'getData':
        this.writePath(w, s.path);
        w.bool(s.watch ?? false);
        return OpCode.getData;
      case 'getChildren':
        this.writePath(w, s.path);
        w.bool(s.watch ?? false);
        return OpCode.getChildren;
    }
  }

  subOpcode(s: MultiSubOp | MultiReadSubOp): number {
    if (s.op === 'create') return CREATE_OPCODES[s.opcode ?? 'create'];
    return { delete: OpCode.delete, setData: OpCode.setData, check: OpCode.check, getData: OpCode.getData, getChildren: OpCode.getChildren }[s.op];
  }

  zxidOf(ref: string | number): number {
    if (typeof ref === 'number') return ref;
    const z = this.labels.get(ref);
    if (z === undefined) throw new Error(`unknown label ${ref}`);
    return z;
  }

  /** Sends a step; resolves with its reply and a decoder for its body. */
  send(rc: RawClient, s: Step): { p: Promise<Reply>; opcode: number } {
    const pathVec = (w: JuteWriter, ps: PathArg[] | undefined) => {
      const l = ps ?? [];
      w.int(l.length);
      for (const p of l) this.writePath(w, p);
    };
    switch (s.op) {
      case 'create': {
        const opcode = CREATE_OPCODES[s.opcode ?? 'create'];
        return { opcode, p: rc.request(opcode, (w) => this.writeCreate(w, s)) };
      }
      case 'delete':
      case 'setData':
      case 'check':
      case 'getData':
      case 'getChildren': {
        const opcode = this.subOpcode(s);
        return { opcode, p: rc.request(opcode, (w) => void this.writeSub(w, s)) };
      }
      case 'exists':
      case 'getChildren2': {
        const opcode = s.op === 'exists' ? OpCode.exists : OpCode.getChildren2;
        return { opcode, p: rc.request(opcode, (w) => (this.writePath(w, s.path), w.bool(s.watch ?? false))) };
      }
      case 'getACL':
      case 'sync':
      case 'getAllChildrenNumber':
      case 'deleteContainer': {
        const opcode = OpCode[s.op];
        return { opcode, p: rc.request(opcode, (w) => this.writePath(w, s.path)) };
      }
      case 'setACL':
        return {
          opcode: OpCode.setACL,
          p: rc.request(OpCode.setACL, (w) => {
            this.writePath(w, s.path);
            if (s.acl === null) w.int(-1);
            else writeAclList(w, s.acl);
            w.int(s.version ?? -1);
          }),
        };
      case 'getEphemerals':
        return { opcode: OpCode.getEphemerals, p: rc.request(OpCode.getEphemerals, (w) => this.writePath(w, s.prefix)) };
      case 'multi':
      case 'multiRead': {
        const opcode = OpCode[s.op];
        return {
          opcode,
          p: rc.request(opcode, (w) => {
            for (const sub of s.ops) {
              w.int(this.subOpcode(sub)).bool(false).int(-1);
              this.writeSub(w, sub);
            }
            w.int(-1).bool(true).int(-1);
          }),
        };
      }
      case 'checkWatches':
      case 'removeWatches': {
        const opcode = OpCode[s.op];
        return { opcode, p: rc.request(opcode, (w) => (this.writePath(w, s.path), w.int(s.type))) };
      }
      case 'addWatch':
        return { opcode: OpCode.addWatch, p: rc.request(OpCode.addWatch, (w) => (this.writePath(w, s.path), w.int(s.mode))) };
      case 'setWatches':
      case 'setWatches2': {
        const opcode = OpCode[s.op];
        const rel = this.zxidOf(s.relativeZxid);
        return {
          opcode,
          p: rc.request(
            opcode,
            (w) => {
              w.longNum(rel);
              pathVec(w, s.data);
              pathVec(w, s.exist);
              pathVec(w, s.child);
              if (s.op === 'setWatches2') {
                pathVec(w, s.persistent);
                pathVec(w, s.recursive);
              }
            },
            Xid.setWatches,
          ),
        };
      }
      case 'whoAmI':
        return { opcode: OpCode.whoAmI, p: rc.request(OpCode.whoAmI) };
      case 'closeSession':
        return { opcode: OpCode.closeSession, p: rc.request(OpCode.closeSession) };
      case 'ping':
        return { opcode: OpCode.ping, p: rc.ping() };
      case 'auth':
        return { opcode: OpCode.auth, p: rc.auth(s.scheme, s.auth) };
      case 'sasl':
        return {
          opcode: OpCode.sasl,
          p: rc.request(OpCode.sasl, (w) => w.buffer(s.token === null ? null : Buffer.from(s.token))),
        };
      case 'reconfig':
        return {
          opcode: OpCode.reconfig,
          p: rc.request(OpCode.reconfig, (w) => {
            w.ustring(s.joining).ustring(s.leaving).ustring(s.newMembers).longNum(s.curConfigId);
          }),
        };
      case 'raw':
        return {
          opcode: s.opcode,
          p: rc.request(s.opcode, (w) => {
            if (s.body !== undefined) {
              w.ensure(s.body.length);
              w.buf.set(s.body, w.pos);
              w.pos += s.body.length;
            }
          }),
        };
      case 'connect':
      case 'wait':
        throw new Error('not a request');
    }
  }
}

// --- decoding replies ------------------------------------------------------------

function data(b: Buffer | null): string | null {
  if (b === null) return null;
  const s = b.toString('utf8');
  return Buffer.from(s).equals(b) && !/[\0-\x08\x0e-\x1f]/.test(s) ? s : `hex:${b.toString('hex')}`;
}

function stat(r: JuteReader): Record<string, unknown> {
  const s: Stat = readStat(r);
  return {
    czxid: new Z(s.czxid),
    mzxid: new Z(s.mzxid),
    ctime: new T(s.ctime, s.czxid),
    mtime: new T(s.mtime, s.mzxid),
    version: s.version,
    cversion: s.cversion,
    aversion: s.aversion,
    ephemeralOwner: new Owner(s.ephemeralOwner),
    dataLength: s.dataLength,
    numChildren: s.numChildren,
    pzxid: new Z(s.pzxid),
  };
}

function children(r: JuteReader): string[] | null {
  const l = r.stringVector();
  // The order of getChildren is a HashSet's in ZooKeeper: undefined, so compare sets.
  return l === null ? null : [...l].sort();
}

/** Decodes a reply body into plain values, by opcode. */
export function decodeBody(opcode: number, r: JuteReader): unknown {
  switch (opcode) {
    case OpCode.create:
      return { path: r.ustring() };
    case OpCode.create2:
    case OpCode.createContainer:
    case OpCode.createTTL:
      return { path: r.ustring(), stat: stat(r) };
    case OpCode.exists:
    case OpCode.setData:
    case OpCode.setACL:
      return { stat: stat(r) };
    case OpCode.getData:
      return { data: data(r.bufferView()), stat: stat(r) };
    case OpCode.getACL:
      return { acl: readAclList(r), stat: stat(r) };
    case OpCode.getChildren:
      return { children: children(r) };
    case OpCode.getChildren2:
      return { children: children(r), stat: stat(r) };
    case OpCode.sync:
      return { path: r.ustring() };
    case OpCode.getAllChildrenNumber:
      return { totalNumber: r.int() };
    case OpCode.getEphemerals: {
      const l = r.stringVector();
      return { ephemerals: l === null ? null : [...l].sort() };
    }
    case OpCode.whoAmI: {
      const n = r.int();
      const out: { scheme: string | null; user: string | null }[] = [];
      for (let i = 0; i < n; i++) out.push({ scheme: r.ustring(), user: r.ustring() });
      // ServerCnxn.authInfo is a hash set: the order is not defined.
      out.sort((x, y) => `${x.scheme}:${x.user}`.localeCompare(`${y.scheme}:${y.user}`));
      return { clientInfo: out };
    }
    case OpCode.addWatch:
      return r.remaining() > 0 ? { errorResponse: r.int() } : {};
    case OpCode.sasl:
      return r.remaining() > 0 ? { token: data(r.bufferView()) } : {};
    case OpCode.reconfig:
      return { data: data(r.bufferView()), stat: stat(r) };
    case OpCode.multi:
    case OpCode.multiRead: {
      const out: unknown[] = [];
      for (;;) {
        const type = r.int();
        const done = r.bool();
        const err = r.int();
        if (done) {
          if (type !== -1 || err !== -1) out.push({ terminator: { type, err } });
          break;
        }
        if (type === OpCode.error) out.push({ type, err, errBody: r.int() });
        else out.push({ type, err, ...(decodeSub(type, r) as object) });
      }
      return { results: out };
    }
    default:
      return {};
  }
}

function decodeSub(type: number, r: JuteReader): unknown {
  switch (type) {
    case OpCode.delete:
    case OpCode.check:
      return {};
    default:
      return decodeBody(type, r);
  }
}

// --- running a scenario ------------------------------------------------------------

export function rootFor(name: string): string {
  return `/diff-${name}-${Math.random().toString(36).slice(2, 10)}`;
}

async function barrier(runner: Runner): Promise<void> {
  // A ping on every open connection: its reply comes after anything the server queued
  // for that connection before it read the ping, notifications from others' writes included.
  await Promise.all(
    [...runner.clients.values()].map(async (t) => {
      if (t.rc.isClosed) return;
      try {
        await withTimeout(t.rc.ping(), 5000, 'barrier ping');
      } catch {
        // closed: recorded by the caller
      }
    }),
  );
}

function notificationValue(f: TapFrame): unknown {
  return { type: f.type, state: f.state, path: f.path, zxid: new NZ(f.zxid) };
}

export async function runScenario(sc: Scenario, host: string, port: number, label: string, opts: RunOptions = {}): Promise<RunResult> {
  const root = rootFor(sc.name);
  const runner = new Runner(host, port, root);
  const problems: string[] = [];
  const transcript: StepRecord[] = [];
  const started = Date.now();
  /** zxid of each successful write step -> the wall-clock window it ran in. */
  const windows = new Map<number, [number, number]>();
  const setup = await RawClient.connect(host, port);
  try {
    const r = await setup.create(root, Buffer.alloc(0), 0, WORLD);
    if (r.err !== 0) throw new Error(`creating the scenario root ${root} failed: ${r.err}`);
    const connect = async (name: string, o: Parameters<typeof RawClient.connect>[2] = {}) => {
      const rc = await RawClient.connect(host, port, o);
      const t = new Tapped(rc);
      runner.clients.set(name, t);
      if (rc.session.sessionId !== 0n && !runner.sessions.has(rc.session.sessionId))
        runner.sessions.set(rc.session.sessionId, name);
      return t;
    };
    for (const name of sc.clients) await connect(name);

    for (let i = 0; i < sc.steps.length; i++) {
      const s = sc.steps[i];
      const c = s.c ?? 'a';
      if (s.delay) await new Promise((r) => setTimeout(r, s.delay));
      const rec: StepRecord = { i, c, op: s.op, events: {}, closed: [] };
      let replyXid: number | null = null;
      const skipped = opts.skip?.(s);
      if (skipped !== undefined) {
        rec.skipped = skipped;
      } else if (s.op === 'connect') {
        const prev = s.resume !== undefined ? runner.clients.get(s.resume) : undefined;
        if (s.resume !== undefined && prev === undefined) throw new Error(`no client ${s.resume}`);
        let passwd = prev?.rc.session.passwd;
        if (passwd !== undefined && s.badPassword) {
          passwd = Buffer.from(passwd);
          passwd[0] ^= 0xff;
        }
        try {
          const t = await connect(c, {
            timeout: s.timeout ?? 30000,
            readOnlyByte: s.readOnlyByte ?? true,
            sessionId: prev?.rc.session.sessionId,
            passwd,
            lastZxidSeen: prev?.rc.lastZxid,
          });
          const ss = t.rc.session;
          rec.body = {
            responseLength: ss.responseLength,
            timeout: ss.timeout,
            session: ss.sessionId === 0n ? 0 : prev !== undefined && ss.sessionId === prev.rc.session.sessionId ? `session of ${s.resume}` : 'new',
            passwdLength: ss.passwd.length,
            passwdZero: ss.passwd.every((b) => b === 0),
          };
          if (ss.sessionId !== 0n && prev === undefined) runner.sessions.set(ss.sessionId, c);
        } catch (e) {
          rec.noReply = (e as Error).message;
        }
      } else if (s.op === 'wait') {
        await new Promise((r) => setTimeout(r, s.ms));
      } else {
        const t = runner.clients.get(c);
        if (t === undefined) throw new Error(`step ${i}: no client ${c}`);
        const before = Date.now();
        const { p, opcode } = runner.send(t.rc, s);
        try {
          const reply = await withTimeout(p, 5000, `step ${i} ${s.op}`);
          if (reply.err === 0 && WRITE_STEPS.has(s.op)) windows.set(reply.zxid, [before, Date.now()]);
          replyXid = reply.xid;
          rec.err = reply.err;
          rec.zxid = new Z(reply.zxid);
          if (s.label !== undefined) runner.labels.set(s.label, reply.zxid);
          if (reply.err === 0) {
            try {
              rec.body = decodeBody(opcode, reply.body);
              if (reply.body.remaining() !== 0) problems.push(`step ${i} ${s.op}: ${reply.body.remaining()} bytes left after the reply body`);
            } catch (e) {
              rec.body = { undecodable: (e as Error).message };
            }
          } else if (reply.body.remaining() !== 0) {
            rec.body = { errorBodyBytes: reply.body.remaining() };
          }
        } catch (e) {
          rec.noReply = (e as Error).message.startsWith('timeout') ? 'timeout' : 'connection closed';
        }
      }
      await barrier(runner);
      for (const [name, t] of runner.clients) {
        const evs: unknown[] = [];
        for (const f of t.take()) {
          if (f.kind === 'notification') evs.push(notificationValue(f));
          else if (f.xid === Xid.ping) continue;
          else if (name === c && f.xid === replyXid) evs.push('REPLY');
          else evs.push({ strayReply: f.xid });
        }
        if (evs.length > 0 && !(name === c && evs.length === 1 && evs[0] === 'REPLY')) rec.events[name] = evs;
        if (t.rc.isClosed && !t.closedSeen) {
          t.closedSeen = true;
          rec.closed.push(name);
        }
      }
      transcript.push(rec);
    }
  } finally {
    for (const t of runner.clients.values()) t.rc.close();
    // Best effort: leave the reference server as we found it.
    await deleteTree(setup, root).catch(() => {});
    setup.close();
  }
  const ended = Date.now();
  checkTimes(transcript, started, ended, windows, problems);
  const norm = normalise(transcript, runner, root);
  sc.steps.forEach((s, i) => {
    if (!s.unorderedEvents || norm[i] === undefined) return;
    for (const evs of Object.values(norm[i].events))
      if (Array.isArray(evs)) evs.sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
  });
  return { server: label, transcript: norm, problems, root };
}

async function deleteTree(c: RawClient, path: string): Promise<void> {
  const r = await c.getChildren(path);
  if (r.err !== 0) return;
  for (const child of r.body.stringVector() ?? []) await deleteTree(c, `${path}/${child}`);
  await c.delete(path);
}

// --- normalisation -----------------------------------------------------------------

function walk(v: unknown, f: (x: unknown) => unknown): unknown {
  const m = f(v);
  if (m !== v) return m;
  if (Array.isArray(v)) return v.map((x) => walk(x, f));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = walk(x, f);
    return out;
  }
  return v;
}

/**
 * Per server: a txn's time is one value (ctime/mtime of the same zxid agree), times do
 * not go back as zxids go up, and a txn made by a step happened while that step ran
 * (the servers and the test read the same clock; 2 ms for rounding). The last check
 * is what catches a stale mtime, which the zxid-based labels alone would not.
 */
function checkTimes(
  transcript: StepRecord[],
  start: number,
  end: number,
  windows: Map<number, [number, number]>,
  problems: string[],
): void {
  const byZxid = new Map<number, number>();
  walk(transcript, (x) => {
    if (x instanceof T) {
      if (x.z <= 0) {
        if (x.t !== 0) problems.push(`time ${x.t} for zxid ${x.z}`);
        return x;
      }
      const seen = byZxid.get(x.z);
      if (seen !== undefined && seen !== x.t) problems.push(`zxid 0x${x.z.toString(16)} has two times: ${seen} and ${x.t}`);
      byZxid.set(x.z, x.t);
      if (x.t < start - 5000 || x.t > end + 5000) problems.push(`time ${x.t} of zxid 0x${x.z.toString(16)} is not near the test's wall clock`);
      const w = windows.get(x.z);
      if (w !== undefined && (x.t < w[0] - 2 || x.t > w[1] + 2))
        problems.push(`time ${x.t} of zxid 0x${x.z.toString(16)} is outside the window [${w[0]}, ${w[1]}] of the step that made it`);
    }
    return x;
  });
  const sorted = [...byZxid].sort((a, b) => a[0] - b[0]);
  for (let k = 1; k < sorted.length; k++)
    if (sorted[k][1] < sorted[k - 1][1]) problems.push(`time goes back: zxid 0x${sorted[k][0].toString(16)} at ${sorted[k][1]} < ${sorted[k - 1][1]}`);
}

function normalise(transcript: StepRecord[], runner: Runner, root: string): StepRecord[] {
  // Notification zxids do not count as ranks of their own: a 3.8 server sends -1 where
  // 3.9 sends the txn's zxid, and a txn seen only that way (a reaper's delete) must not
  // shift the ranks of everything after it. One not seen elsewhere reads 'zN-' (after
  // z(N-1), before zN) or 'zN+' (after the last).
  const zs = new Set<number>();
  walk(transcript, (x) => {
    if (x instanceof Z && !(x instanceof NZ) && x.v > 0) zs.add(x.v);
    if (x instanceof T && x.z > 0) zs.add(x.z);
    return x;
  });
  const sorted = [...zs].sort((a, b) => a - b);
  const rank = new Map(sorted.map((z, k) => [z, k + 1]));
  const zname = (z: number) => {
    if (z <= 0) return z;
    const r = rank.get(z);
    if (r !== undefined) return `z${r}`;
    const next = sorted.findIndex((x) => x > z);
    return next === -1 ? `z${sorted.length}+` : `z${next + 1}-`;
  };
  const strip = (s: string) => (s === root ? '<root>' : s.startsWith(root + '/') ? s.substring(root.length) : s);
  return walk(transcript, (x) => {
    if (x instanceof Z) return zname(x.v);
    if (x instanceof T) return x.t === 0 ? 0 : `t(${zname(x.z)})`;
    if (x instanceof Owner) {
      if (x.v === 0n) return 0;
      if (x.v === CONTAINER_OWNER) return 'container';
      if (BigInt.asUintN(64, x.v) >> 56n === 0xffn) return `ttl:${Number(BigInt.asUintN(64, x.v) & 0xffffffffffn)}`;
      const n = runner.sessions.get(x.v);
      return n !== undefined ? `session:${n}` : `unknown:0x${BigInt.asUintN(64, x.v).toString(16)}`;
    }
    if (typeof x === 'string') return strip(x);
    return x;
  }) as StepRecord[];
}

// --- expectations and comparison ------------------------------------------------------

/** Checks a Corral transcript against the error codes the scenario states. */
export function checkExpectations(sc: Scenario, run: RunResult): string[] {
  const out: string[] = [...run.problems.map((p) => `${run.server}: ${p}`)];
  sc.steps.forEach((s, i) => {
    const rec = run.transcript[i];
    const where = `step ${i} (${s.c ?? 'a'} ${s.op}${'path' in s ? ` ${String(s.path)}` : ''})`;
    if (s.op === 'connect' || s.op === 'wait') {
      if (s.op === 'connect' && rec.noReply !== undefined) out.push(`${where}: no ConnectResponse (${rec.noReply})`);
    } else if (rec.noReply !== undefined) {
      out.push(`${where}: no reply (${rec.noReply})`);
    } else if (rec.err !== (s.err ?? Err.OK)) {
      out.push(`${where}: err ${rec.err}, expected ${s.err ?? 0}`);
    }
    if (s.results !== undefined) {
      const res = ((rec.body as { results?: { err: number }[] } | undefined)?.results ?? []).map((r) => r.err);
      if (JSON.stringify(res) !== JSON.stringify(s.results)) out.push(`${where}: results ${JSON.stringify(res)}, expected ${JSON.stringify(s.results)}`);
    }
    const closed = [...rec.closed].sort();
    const expected = (s.closes === true ? [s.c ?? 'a'] : (s.closes ?? [])).slice().sort();
    if (JSON.stringify(closed) !== JSON.stringify(expected))
      out.push(`${where}: connections closed ${JSON.stringify(closed)}, expected ${JSON.stringify(expected)}`);
  });
  return out;
}

export interface Comparison {
  differences: string[];
  /** Named 3.8/3.9 exceptions that were needed, with where. */
  exceptions: string[];
}

type Notif = { type: number; state: number; path: string; zxid: string | number };

function isNotif(x: unknown): x is Notif {
  return typeof x === 'object' && x !== null && 'type' in x && 'state' in x && 'path' in x;
}

function diff(a: unknown, b: unknown, at: string, out: string[]): void {
  if (JSON.stringify(a) === JSON.stringify(b)) return;
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    a.forEach((x, k) => diff(x, b[k], `${at}[${k}]`, out));
    return;
  }
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) diff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${at}.${k}`, out);
    return;
  }
  out.push(`${at}: corral=${JSON.stringify(a)} reference=${JSON.stringify(b)}`);
}

const WRITE_STEPS = new Set(['create', 'delete', 'setData', 'setACL', 'multi', 'closeSession', 'deleteContainer']);

/** Notifications in `ref` that `mine` lacks (by type and path), optionally about one path only. */
function extraNotifications(mine: unknown[], ref: unknown[], path?: string): unknown[] {
  return ref.filter(
    (r) => isNotif(r) && (path === undefined || r.path === path) && !mine.some((e) => isNotif(e) && e.type === r.type && e.path === r.path),
  );
}

/**
 * Compares Corral's transcript with the reference's, field by field. Corral implements
 * ZooKeeper 3.9; the reference may be 3.8 (Debian's 3.8.0). Only these named
 * differences are allowed, each where it can occur and in its precise form:
 *
 *  - 'notification-zxid' (ZOOKEEPER-4655, 3.9.0): a notification's header zxid is the
 *    zxid of the txn that triggered it; 3.8 sends -1. Applied to every notification,
 *    but only when the reference sent -1 and Corral's is exactly the zxid of the write
 *    this step made (so the relation is still checked). Events fired by setWatches
 *    carry -1 in both.
 *  - 'multi-create2' (ZOOKEEPER-4026, 3.9.0): a create2 inside multi answers with a
 *    create2 result (path and Stat); 3.8 turns the op into a create and answers with
 *    the path only. Applied to multi results of ops sent as create2, when the paths agree.
 *  - 'exists-read-acl' (ZOOKEEPER-2590, 3.9.2): exists on a znode the caller cannot
 *    READ is NOAUTH; 3.8.0 answers with the Stat. Only at steps marked so, where Corral
 *    says NOAUTH and the reference OK.
 *  - 'watch-acl-filter' (ZOOKEEPER-4799, 3.9.2): an event about a znode the watcher
 *    cannot READ is not delivered; 3.8.0 delivers it. Only at steps marked so, and only
 *    for events about that step's path that Corral did not send.
 *  - 'watch-modes' (ZOOKEEPER-4466/4471/4472, 3.9.0): WatcherType Persistent (4) and
 *    PersistentRecursive (5) in checkWatches/removeWatches, and checks that look at the
 *    watch's mode. 3.8.0 has no such WatcherType (MARSHALLINGERROR), and its
 *    containsWatcher/removeWatcher answer yes for any watch on the path (even another
 *    session's). Only at steps marked so: checkWatches/removeWatches where the reference
 *    says MARSHALLINGERROR for type 4/5, or OK where Corral says NOWATCHER; and writes
 *    whose extra events on the reference come from a watch 3.8 could not remove.
 *  - 'top-level-check' (ZOOKEEPER-2623, 3.9.3): check (13) outside multi is an unknown
 *    request (UNIMPLEMENTED, connection closed). 3.8.0 logs it as a txn of type 13,
 *    fails to answer (NPE in FinalRequestProcessor), and then cannot restart: replaying
 *    its own log fails with "Unsupported Txn with type=13". So the test does not send
 *    it to a reference older than 3.9.3 (RunOptions.skip). Only at steps marked so.
 *  - 'delete-container-body' (ZOOKEEPER-4575, 3.9.0): deleteContainer carries a
 *    DeleteContainerRequest{path}; 3.8.0 reads the whole body as the path (so a jute
 *    string's length prefix makes it BADARGUMENTS). Only at steps marked so, where the
 *    reference says BADARGUMENTS.
 */
export function compare(sc: Scenario, corral: RunResult, ref: RunResult): Comparison {
  const differences: string[] = [];
  const exceptions: string[] = [];
  for (let i = 0; i < sc.steps.length; i++) {
    const s = sc.steps[i];
    const a = structuredClone(corral.transcript[i]);
    const b = structuredClone(ref.transcript[i]);
    const where = `step ${i} (${s.c ?? 'a'} ${s.op}${'path' in s ? ` ${String(s.path)}` : ''})`;
    const allow = (name: string, note: string) => exceptions.push(`${where}: ${name} (${note})`);
    if (s.known === 'exists-read-acl' && a.err === Err.NOAUTH && b.err === Err.OK) {
      allow(s.known, '3.9.2: NOAUTH; 3.8.0: OK with the Stat');
      b.err = a.err;
      delete b.body;
    }
    if (s.known === 'watch-acl-filter' && 'path' in s && typeof s.path === 'string') {
      for (const [name, refEvs] of Object.entries(b.events)) {
        const extra = extraNotifications(a.events[name] ?? [], refEvs, s.path);
        if (extra.length === 0) continue;
        allow(s.known, `3.9.2: no event for ${name}, which cannot READ the znode; 3.8.0 delivers it`);
        const kept = refEvs.filter((e) => !extra.includes(e));
        if (kept.length === 0) delete b.events[name];
        else b.events[name] = kept;
      }
    }
    if (s.known === 'watch-modes') {
      if (s.op === 'checkWatches' || s.op === 'removeWatches') {
        const noType = b.err === Err.MARSHALLINGERROR && (s.type === 4 || s.type === 5);
        const anyWatch = b.err === Err.OK && a.err === Err.NOWATCHER;
        if (noType || anyWatch) {
          allow(s.known, noType ? `3.8.0 has no WatcherType ${s.type}` : '3.8.0 matches any watch on the path');
          b.err = a.err;
          b.body = a.body;
        }
      } else if (WRITE_STEPS.has(s.op)) {
        for (const [name, refEvs] of Object.entries(b.events)) {
          const extra = extraNotifications(a.events[name] ?? [], refEvs);
          if (extra.length === 0) continue;
          allow(s.known, `an event for ${name} from a watch 3.8.0 did not remove`);
          const kept = refEvs.filter((e) => !extra.includes(e));
          if (kept.length === 0) delete b.events[name];
          else b.events[name] = kept;
        }
      }
    }
    if (s.known === 'top-level-check' && a.err === Err.UNIMPLEMENTED && (b.noReply === 'timeout' || b.skipped !== undefined)) {
      allow(s.known, `3.9.3: UNIMPLEMENTED and closed; older: ${b.skipped !== undefined ? 'not sent, ' + b.skipped : 'no reply'}`);
      for (const k of ['err', 'zxid', 'closed', 'noReply', 'events', 'skipped'] as const) (b as unknown as Record<string, unknown>)[k] = a[k];
    }
    if (s.known === 'delete-container-body' && b.err === Err.BADARGUMENTS && a.err !== Err.BADARGUMENTS) {
      allow(s.known, '3.8.0 reads the whole body as the path');
      b.err = a.err;
      b.body = a.body;
    }
    if (s.op === 'multi' && a.err === Err.OK && b.err === Err.OK) {
      const ra = (a.body as { results?: Record<string, unknown>[] }).results ?? [];
      const rb = (b.body as { results?: Record<string, unknown>[] }).results ?? [];
      s.ops.forEach((sub, k) => {
        if (sub.op !== 'create' || sub.opcode !== 'create2') return;
        if (ra[k]?.type === OpCode.create2 && rb[k]?.type === OpCode.create && ra[k].path === rb[k].path) {
          allow('multi-create2', '3.9: a create2 result with the Stat; 3.8: a create result');
          ra[k] = { type: OpCode.create, err: ra[k].err, path: ra[k].path };
        }
      });
    }
    // Notification zxids: 3.8 sends -1, 3.9 the triggering txn's zxid.
    for (const [name, evs] of Object.entries(a.events)) {
      const refEvs = b.events[name];
      if (!Array.isArray(refEvs)) continue;
      evs.forEach((e, k) => {
        const r = refEvs[k];
        if (!isNotif(e) || !isNotif(r) || r.zxid !== -1 || e.zxid === -1) return;
        if (WRITE_STEPS.has(s.op) && e.zxid === a.zxid) {
          allow('notification-zxid', `3.9: the zxid of the triggering txn; 3.8: -1; for ${name}`);
          r.zxid = e.zxid;
        } else if (s.op === 'wait' && typeof e.zxid === 'string') {
          // Deletes by the server itself (the container/TTL reaper): no reply to relate to,
          // but the zxid must be a txn's.
          allow('notification-zxid', `3.9: the zxid of the reaper's txn; 3.8: -1; for ${name}`);
          r.zxid = e.zxid;
        }
      });
    }
    diff(a, b, where, differences);
  }
  return { differences, exceptions };
}
