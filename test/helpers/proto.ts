// Helpers for protocol-level tests: request bodies, multi framing, reply parsing, and a
// byte-level socket for input no client would send.
import { connect as netConnect, type Socket } from 'node:net';
import { type BodyWriter, OPEN_ACL, RawClient, type Reply } from '../../src/client/raw.js';
import { OpCode } from '../../src/protocol/constants.js';
import { type JuteReader, JuteWriter } from '../../src/protocol/jute.js';
import { readAclList, readStat, writeAclList } from '../../src/protocol/records.js';
import type { Acl, Stat } from '../../src/tree/types.js';

export { OPEN_ACL, readAclList, readStat };

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves true once the client's connection is closed, false if it is still open after `ms`. */
export function closedWithin(c: { closed: Promise<void> }, ms = 2000): Promise<boolean> {
  return Promise.race([c.closed.then(() => true), sleep(ms).then(() => false)]);
}

/** Polls until `f` is true (or throws after `ms`). */
export async function until(f: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export interface SubOp {
  type: number;
  body: BodyWriter;
}

export const ops = {
  create(path: string, data = '', flags = 0, acl: Acl[] = OPEN_ACL, type: number = OpCode.create): SubOp {
    return {
      type,
      body: (w) => {
        w.ustring(path).buffer(Buffer.from(data));
        writeAclList(w, acl);
        w.int(flags);
      },
    };
  },
  createTTL(path: string, data: string, flags: number, ttl: number, acl: Acl[] = OPEN_ACL): SubOp {
    return {
      type: OpCode.createTTL,
      body: (w) => {
        w.ustring(path).buffer(Buffer.from(data));
        writeAclList(w, acl);
        w.int(flags).longNum(ttl);
      },
    };
  },
  delete(path: string, version = -1): SubOp {
    return { type: OpCode.delete, body: (w) => w.ustring(path).int(version) };
  },
  setData(path: string, data: string, version = -1): SubOp {
    return { type: OpCode.setData, body: (w) => w.ustring(path).buffer(Buffer.from(data)).int(version) };
  },
  check(path: string, version: number): SubOp {
    return { type: OpCode.check, body: (w) => w.ustring(path).int(version) };
  },
  getData(path: string, watch = false): SubOp {
    return { type: OpCode.getData, body: (w) => w.ustring(path).bool(watch) };
  },
  getChildren(path: string, watch = false): SubOp {
    return { type: OpCode.getChildren, body: (w) => w.ustring(path).bool(watch) };
  },
};

/** A MultiOperationRecord: MultiHeader{type,false,-1}+body per op, then {-1,true,-1}. */
export function multiBody(list: SubOp[]): BodyWriter {
  return (w) => {
    for (const o of list) {
      w.int(o.type).bool(false).int(-1);
      o.body(w);
    }
    w.int(-1).bool(true).int(-1);
  };
}

export interface MultiResult {
  type: number;
  err: number;
  path?: string;
  stat?: Stat;
  data?: Buffer | null;
  children?: string[] | null;
}

/** Parses a MultiResponse, checking the terminator and that nothing follows it. */
export function readMulti(r: JuteReader): MultiResult[] {
  const out: MultiResult[] = [];
  for (;;) {
    const type = r.int();
    const done = r.bool();
    const err = r.int();
    if (done) {
      if (type !== -1 || err !== -1) throw new Error(`bad multi terminator ${type}/${err}`);
      break;
    }
    const res: MultiResult = { type, err };
    switch (type) {
      case OpCode.create:
        res.path = r.string();
        break;
      case OpCode.create2:
        res.path = r.string();
        res.stat = readStat(r);
        break;
      case OpCode.delete:
      case OpCode.check:
        break;
      case OpCode.setData:
        res.stat = readStat(r);
        break;
      case OpCode.getData:
        res.data = r.buffer();
        res.stat = readStat(r);
        break;
      case OpCode.getChildren:
        res.children = r.stringVector();
        break;
      case OpCode.error: {
        const e = r.int();
        if (e !== err) throw new Error(`ErrorResponse ${e} differs from header err ${err}`);
        break;
      }
      default:
        throw new Error(`unexpected multi result type ${type}`);
    }
    out.push(res);
  }
  if (r.remaining() !== 0) throw new Error(`${r.remaining()} bytes after the multi response`);
  return out;
}

/** create2/createContainer/createTTL reply: path + stat. */
export function readCreate2(rep: Reply): { path: string; stat: Stat } {
  return { path: rep.body.string(), stat: readStat(rep.body) };
}

export function readGetData(rep: Reply): { data: Buffer | null; stat: Stat } {
  return { data: rep.body.buffer(), stat: readStat(rep.body) };
}

export async function statOf(c: RawClient, path: string): Promise<Stat> {
  const r = await c.exists(path);
  if (r.err !== 0) throw new Error(`exists ${path}: ${r.err}`);
  return readStat(r.body);
}

export async function childrenOf(c: RawClient, path: string): Promise<string[]> {
  const r = await c.getChildren(path);
  if (r.err !== 0) throw new Error(`getChildren ${path}: ${r.err}`);
  return (r.body.stringVector() ?? []).sort();
}

export async function mustCreate(c: RawClient, path: string, data = '', flags = 0, acl: Acl[] = OPEN_ACL): Promise<string> {
  const r = await c.create(path, Buffer.from(data), flags, acl);
  if (r.err !== 0) throw new Error(`create ${path}: ${r.err}`);
  return r.body.string();
}

// --- byte-level framing ---------------------------------------------------------------

export function frame(body: Buffer): Buffer {
  const b = Buffer.alloc(4 + body.length);
  b.writeInt32BE(body.length, 0);
  body.copy(b, 4);
  return b;
}

export interface ConnectFields {
  protocolVersion?: number;
  lastZxidSeen?: number;
  timeout?: number;
  sessionId?: bigint;
  passwd?: Buffer;
  /** undefined: the 44-byte form without the byte. */
  readOnly?: boolean;
}

export function connectFrame(f: ConnectFields = {}): Buffer {
  const w = new JuteWriter(64);
  const at = w.beginFrame();
  w.int(f.protocolVersion ?? 0).longNum(f.lastZxidSeen ?? 0).int(f.timeout ?? 30000).long(f.sessionId ?? 0n);
  w.buffer(f.passwd ?? Buffer.alloc(16));
  if (f.readOnly !== undefined) w.bool(f.readOnly);
  w.endFrame(at);
  return w.toBuffer();
}

export function requestFrame(xid: number, op: number, body?: BodyWriter): Buffer {
  const w = new JuteWriter(256);
  const at = w.beginFrame();
  w.int(xid).int(op);
  body?.(w);
  w.endFrame(at);
  return w.toBuffer();
}

export interface ReplyFrame {
  xid: number;
  zxid: number;
  err: number;
  /** The body after the ReplyHeader. */
  body: Buffer;
}

/**
 * A plain TCP connection that records every byte the server sends, for input that
 * RawClient cannot produce and for inspecting replies byte for byte.
 */
export class ByteSocket {
  private chunks: Buffer[] = [];
  private size = 0;
  readonly closed: Promise<void>;
  isClosed = false;
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    this.closed = new Promise((r) =>
      socket.on('close', () => {
        this.isClosed = true;
        r();
        this.wake();
      }),
    );
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.size += d.length;
      this.wake();
    });
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const f of ws) f();
  }

  static open(port: number, host = '127.0.0.1'): Promise<ByteSocket> {
    return new Promise((resolve, reject) => {
      const s = netConnect(port, host);
      s.setNoDelay(true);
      s.once('error', reject);
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new ByteSocket(s));
      });
    });
  }

  get localPort(): number {
    return this.socket.localPort ?? 0;
  }

  write(b: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }

  get received(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  /** Waits until at least `n` bytes arrived, the socket closed, or `ms` passed. */
  async waitBytes(n: number, ms = 3000): Promise<Buffer> {
    const deadline = Date.now() + ms;
    while (this.size < n && !this.isClosed && Date.now() < deadline) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.received;
  }

  /** The ConnectResponse (first frame) and the reply frames after it, of what arrived so far. */
  parse(): { connect: Buffer | null; replies: ReplyFrame[]; trailing: number } {
    const b = this.received;
    let pos = 0;
    let connect: Buffer | null = null;
    const replies: ReplyFrame[] = [];
    while (pos + 4 <= b.length) {
      const len = b.readInt32BE(pos);
      if (pos + 4 + len > b.length) break;
      const f = b.subarray(pos + 4, pos + 4 + len);
      pos += 4 + len;
      if (connect === null) connect = f;
      else {
        const hi = f.readInt32BE(4);
        const lo = f.readUInt32BE(8);
        replies.push({ xid: f.readInt32BE(0), zxid: hi * 4294967296 + lo, err: f.readInt32BE(12), body: f.subarray(16) });
      }
    }
    return { connect, replies, trailing: b.length - pos };
  }

  waitClosed(ms = 3000): Promise<boolean> {
    return closedWithin(this, ms);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Log lines about one client connection (matched by its local port). */
export function logsFor(logs: string[], localPort: number): string[] {
  return logs.filter((l) => l.includes(`127.0.0.1:${localPort}`));
}

export { RawClient, JuteWriter };

/**
 * A session over a ByteSocket that keeps every frame after the ConnectResponse in
 * arrival order, notifications (xid -1) included, to check ordering across them.
 */
export class OrderedSession {
  private constructor(
    readonly s: ByteSocket,
    readonly sessionId: bigint,
  ) {}

  static async connect(port: number, f: ConnectFields = {}): Promise<OrderedSession> {
    const s = await ByteSocket.open(port);
    s.write(connectFrame({ readOnly: false, ...f }));
    await s.waitBytes(4 + 37);
    const c = s.parse().connect;
    if (c === null) throw new Error('no ConnectResponse');
    return new OrderedSession(s, c.readBigInt64BE(8));
  }

  get frames(): ReplyFrame[] {
    return this.s.parse().replies;
  }

  send(xid: number, op: number, body?: BodyWriter): void {
    this.s.write(requestFrame(xid, op, body));
  }

  /** Waits for the reply with this xid; returns all frames so far. */
  async waitXid(xid: number, ms = 3000): Promise<ReplyFrame[]> {
    const deadline = Date.now() + ms;
    for (;;) {
      const fs = this.frames;
      if (fs.some((f) => f.xid === xid)) return fs;
      if (this.s.isClosed || Date.now() > deadline) throw new Error(`no reply for xid ${xid}`);
      await this.s.waitBytes(this.s.received.length + 1, Math.max(1, deadline - Date.now()));
    }
  }

  close(): void {
    this.s.close();
  }
}

/** The WatcherEvent in a notification frame's body. */
export function eventOf(f: ReplyFrame): { type: number; state: number; path: string } {
  const len = f.body.readInt32BE(8);
  return { type: f.body.readInt32BE(0), state: f.body.readInt32BE(4), path: f.body.toString('utf8', 12, 12 + len) };
}
