// A lean pipelining ZooKeeper session for load generation. It speaks the wire protocol
// directly (length-prefixed jute frames, ConnectRequest/ConnectResponse, RequestHeader
// {xid,type} / ReplyHeader {xid,zxid,err}) and does only what measuring needs:
//  - requests are encoded straight into one output buffer per session, and every
//    session's buffer is written once per event-loop turn (setImmediate), so a burst of
//    replies that releases a burst of requests costs one system call per session;
//  - a ZooKeeper server answers a session's requests in order, so outstanding requests
//    sit in a FIFO ring of typed arrays and a reply is matched against its head (a
//    mismatch is a protocol error, reported, never ignored);
//  - reply bodies are not decoded except where the workload needs them (the path a
//    sequential create returns; notification paths).

import { connect as netConnect, type Socket } from 'node:net';
import WebSocket from 'ws';
import type { Address } from './types.js';

/** Request kinds the load generator sends (internal numbering). */
export const Kind = {
  get: 1,
  set: 2,
  createEphSeq: 3,
  delete: 4,
  existsWatch: 5,
  create: 6,
  close: 7,
  getWatch: 8,
  /** WebSocket transport only: a ping is an ordinary request with an id and a response. */
  ping: 9,
} as const;

/** Name under which each kind's latency and errors are reported. */
export const KIND_NAME: readonly string[] = ['?', 'getData', 'setData', 'create', 'delete', 'exists', 'create', 'closeSession', 'getData', 'ping'];

const OP_OF: readonly number[] = [0, 4, 5, 1, 2, 3, 1, -11, 4, 11];

/** KeeperException codes by number, for error reports. */
export const ERR_NAME: Record<number, string> = {
  [-1]: 'SYSTEMERROR', [-2]: 'RUNTIMEINCONSISTENCY', [-3]: 'DATAINCONSISTENCY', [-4]: 'CONNECTIONLOSS',
  [-5]: 'MARSHALLINGERROR', [-6]: 'UNIMPLEMENTED', [-7]: 'OPERATIONTIMEOUT', [-8]: 'BADARGUMENTS',
  [-12]: 'UNKNOWNSESSION', [-13]: 'NEWCONFIGNOQUORUM', [-14]: 'RECONFIGINPROGRESS', [-100]: 'APIERROR',
  [-101]: 'NONODE', [-102]: 'NOAUTH', [-103]: 'BADVERSION', [-108]: 'NOCHILDRENFOREPHEMERALS',
  [-110]: 'NODEEXISTS', [-111]: 'NOTEMPTY', [-112]: 'SESSIONEXPIRED', [-114]: 'INVALIDACL',
  [-115]: 'AUTHFAILED', [-118]: 'SESSIONMOVED', [-119]: 'NOTREADONLY', [-122]: 'REQUESTTIMEOUT',
  [-125]: 'QUOTAEXCEEDED', [-127]: 'THROTTLEDOP',
};

export function errName(code: number): string {
  return ERR_NAME[code] ?? `ERR${code}`;
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across threads. */
const ORIGIN = performance.timeOrigin;
export function nowMs(): number {
  return ORIGIN + performance.now();
}

// world:anyone with all permissions, pre-encoded: vector<ACL> of one element.
const OPEN_ACL = (() => {
  const world = Buffer.from('world');
  const anyone = Buffer.from('anyone');
  const b = Buffer.alloc(4 + 4 + 4 + world.length + 4 + anyone.length);
  let p = b.writeInt32BE(1, 0);
  p = b.writeInt32BE(31, p);
  p = b.writeInt32BE(world.length, p);
  p += world.copy(b, p);
  p = b.writeInt32BE(anyone.length, p);
  anyone.copy(b, p);
  return b;
})();

/** FIFO of requests: parallel typed arrays in a power-of-two ring, grown by doubling. */
export class ReqRing {
  xid: Int32Array;
  kind: Uint8Array;
  t: Float64Array;
  /** When the request was encoded for sending (nowMs), for the wire-time histogram. */
  sent: Float64Array;
  aux: (Buffer | null)[];
  head = 0;
  size = 0;

  constructor(cap = 64) {
    this.xid = new Int32Array(cap);
    this.kind = new Uint8Array(cap);
    this.t = new Float64Array(cap);
    this.sent = new Float64Array(cap);
    this.aux = new Array<Buffer | null>(cap).fill(null);
  }

  push(xid: number, kind: number, t: number, aux: Buffer | null, sent = 0): void {
    if (this.size === this.kind.length) this.grow();
    const i = (this.head + this.size) & (this.kind.length - 1);
    this.xid[i] = xid;
    this.kind[i] = kind;
    this.t[i] = t;
    this.sent[i] = sent;
    this.aux[i] = aux;
    this.size++;
  }

  /** Index of the head slot; read its fields, then call shift(). */
  get first(): number {
    return this.head;
  }

  shift(): void {
    this.aux[this.head] = null;
    this.head = (this.head + 1) & (this.kind.length - 1);
    this.size--;
  }

  clear(): void {
    this.head = 0;
    this.size = 0;
    this.aux.fill(null);
  }

  private grow(): void {
    const cap = this.kind.length;
    const xid = new Int32Array(cap * 2);
    const kind = new Uint8Array(cap * 2);
    const t = new Float64Array(cap * 2);
    const sent = new Float64Array(cap * 2);
    const aux = new Array<Buffer | null>(cap * 2).fill(null);
    for (let k = 0; k < this.size; k++) {
      const i = (this.head + k) & (cap - 1);
      xid[k] = this.xid[i];
      kind[k] = this.kind[i];
      t[k] = this.t[i];
      sent[k] = this.sent[i];
      aux[k] = this.aux[i];
    }
    this.xid = xid;
    this.kind = kind;
    this.t = t;
    this.sent = sent;
    this.aux = aux;
    this.head = 0;
  }
}

// --- write coalescing across all sessions of this thread ---------------------------

const dirty: Session[] = [];
let flushPending = false;

function flushAll(): void {
  flushPending = false;
  for (let i = 0; i < dirty.length; i++) {
    const s = dirty[i];
    s.dirty = false;
    s.flush();
  }
  dirty.length = 0;
}

/** Writes what every session has queued now, instead of at the end of this turn. */
export function flushPendingWrites(): void {
  if (dirty.length > 0) flushAll();
}

function markDirty(s: Session): void {
  if (s.dirty) return;
  s.dirty = true;
  dirty.push(s);
  if (!flushPending) {
    flushPending = true;
    setImmediate(flushAll);
  }
}

export type ReplyHandler = (s: Session, kind: number, err: number, t: number, buf: Buffer, bodyStart: number, bodyEnd: number) => void;
export type NotificationHandler = (s: Session, type: number, path: string, at: number) => void;

export class ConnectError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface SessionOptions {
  /** Requested session timeout, ms. */
  sessionTimeoutMs: number;
  /** Give up on the TCP connect + handshake after this long. */
  connectTimeoutMs: number;
}

export class Session {
  readonly fifo = new ReqRing(64);
  /** Open loop: requests due but held back by the window, oldest first. */
  readonly backlog = new ReqRing(16);
  sessionId = 0n;
  timeoutMs = 0;
  open = false;
  dirty = false;
  /** Last time a request was written (for keep-alive pings). */
  lastSend = 0;
  /** During onReply: when the request being answered was encoded for sending (nowMs). */
  replySent = 0;
  notifications = 0;
  lastNotificationAt = 0;
  /** Why the connection closed, if it did. */
  closeReason: string | null = null;
  onReply: ReplyHandler = () => {};
  onNotification: NotificationHandler = () => {};
  onClosed: (s: Session) => void = () => {};
  /** Per-session scratch for drivers (e.g. a session's own rate share). */
  tag = 0;

  private out = Buffer.allocUnsafe(16 * 1024);
  private pos = 0;
  private nextXid = 1;
  private chunks: Buffer[] = [];
  private chunksLen = 0;
  private need = 4;
  private handshaking = true;
  private closeWaiter: (() => void) | null = null;

  /** The TCP socket (jute), or null on the WebSocket transport. */
  readonly sock: Socket | null;
  /** The WebSocket (protobuf, corral.v1), or null on TCP. */
  readonly ws: WebSocket | null;

  private constructor(
    conn: Socket | WebSocket,
    readonly index: number,
  ) {
    if (conn instanceof WebSocket) {
      this.ws = conn;
      this.sock = null;
    } else {
      this.ws = null;
      this.sock = conn;
    }
  }

  /** Connects over the address's transport (TCP jute unless `transport: 'ws'`). */
  static connectTo(a: Address, index: number, o: SessionOptions): Promise<Session> {
    return a.transport === 'ws' ? Session.connectWs(a.host, a.port, index, o) : Session.connect(a.host, a.port, index, o);
  }

  /** Drops the connection at once (no close handshake). */
  private cut(): void {
    if (this.ws !== null) this.ws.terminate();
    else this.sock!.destroy();
  }

  private get connGone(): boolean {
    return this.ws !== null ? this.ws.readyState !== WebSocket.OPEN : this.sock!.destroyed;
  }

  /**
   * WebSocket connect + ConnectRequest/ConnectResponse in protobuf (proto/corral.proto).
   * Rejects with ConnectError like connect().
   */
  static connectWs(host: string, port: number, index: number, o: SessionOptions): Promise<Session> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${host.includes(':') ? `[${host}]` : host}:${port}/`, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
      const s = new Session(ws, index);
      let settled = false;
      const fail = (code: string, msg: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ws.terminate();
        reject(new ConnectError(code, msg));
      };
      const timer = setTimeout(() => fail('timeout', `no ConnectResponse from ws://${host}:${port} within ${o.connectTimeoutMs} ms`), o.connectTimeoutMs);
      ws.on('error', (e: NodeJS.ErrnoException) => {
        s.closeReason ??= e.code ?? e.message;
        fail(e.code ?? 'error', e.message);
      });
      ws.on('close', (code: number) => {
        s.closeReason ??= `closed by peer (${code})`;
        const wasOpen = s.open;
        s.open = false;
        if (!settled) fail('closed', `WebSocket to ${host}:${port} closed during the handshake (${code})`);
        const w = s.closeWaiter;
        s.closeWaiter = null;
        w?.();
        if (wasOpen) s.onClosed(s);
      });
      ws.on('open', () => {
        // Frames{frames: [Frame{connect: ConnectRequest{timeout_ms}}]}
        const cr = Buffer.allocUnsafe(16);
        let n = 0;
        cr[n++] = 0x10;
        n = pbVarint(cr, n, o.sessionTimeoutMs);
        ws.send(pbEntry(0x0a, cr.subarray(0, n)));
      });
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (!isBinary) {
          s.fail('text message from the server');
          return;
        }
        s.parsePb(data);
        if (s.handshaking) return;
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          if (s.timeoutMs <= 0) {
            ws.terminate();
            reject(new ConnectError('refused', `ws://${host}:${port} refused the session (timeout 0 in ConnectResponse)`));
          } else {
            s.open = true;
            resolve(s);
          }
        }
      });
    });
  }

  /** TCP connect + handshake. Rejects with ConnectError (code: errno, 'timeout', 'refused', 'closed'). */
  static connect(host: string, port: number, index: number, o: SessionOptions): Promise<Session> {
    return new Promise((resolve, reject) => {
      const sock = netConnect({ host, port, noDelay: true });
      const s = new Session(sock, index);
      let settled = false;
      const fail = (code: string, msg: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sock.destroy();
        reject(new ConnectError(code, msg));
      };
      const timer = setTimeout(() => fail('timeout', `no ConnectResponse from ${host}:${port} within ${o.connectTimeoutMs} ms`), o.connectTimeoutMs);
      sock.on('error', (e: NodeJS.ErrnoException) => {
        s.closeReason ??= e.code ?? e.message;
        fail(e.code ?? 'error', e.message);
      });
      sock.on('close', () => {
        s.closeReason ??= 'closed by peer';
        const wasOpen = s.open;
        s.open = false;
        if (!settled) fail('closed', `connection to ${host}:${port} closed during the handshake`);
        const w = s.closeWaiter;
        s.closeWaiter = null;
        w?.();
        if (wasOpen) s.onClosed(s);
      });
      sock.on('connect', () => {
        // ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly.
        const b = Buffer.alloc(4 + 45);
        let p = b.writeInt32BE(45, 0);
        p = b.writeInt32BE(0, p);
        p = b.writeBigInt64BE(0n, p);
        p = b.writeInt32BE(o.sessionTimeoutMs, p);
        p = b.writeBigInt64BE(0n, p);
        p = b.writeInt32BE(16, p);
        p += 16; // zero password
        b[p] = 0; // readOnly = false
        sock.write(b);
      });
      sock.on('data', (chunk: Buffer) => {
        if (s.handshaking) {
          s.absorb(chunk);
          if (!s.handshaking) {
            settled = true;
            clearTimeout(timer);
            if (s.timeoutMs <= 0) {
              sock.destroy();
              reject(new ConnectError('refused', `${host}:${port} refused the session (timeout 0 in ConnectResponse)`));
            } else {
              s.open = true;
              resolve(s);
            }
          }
          return;
        }
        s.absorb(chunk);
      });
    });
  }

  get outstanding(): number {
    return this.fifo.size;
  }

  // --- sending -----------------------------------------------------------------------

  private ensure(n: number): void {
    if (this.pos + n <= this.out.length) return;
    let size = this.out.length * 2;
    while (size < this.pos + n) size *= 2;
    const nb = Buffer.allocUnsafe(size);
    this.out.copy(nb, 0, 0, this.pos);
    this.out = nb;
  }

  /**
   * Queues one request for this turn's write. `path` is the encoded path, `data` the
   * value for set/create, `t` the time the latency is measured from (the scheduled time
   * in open-loop runs, the send time in closed-loop runs).
   */
  send(kind: number, path: Buffer, data: Buffer | null, t: number): void {
    if (!this.open) throw new Error('session is closed');
    const xid = this.nextXid;
    this.nextXid = xid >= 0x7ffffff0 ? 1 : xid + 1;
    if (this.ws !== null) {
      this.sendPb(xid, kind, path, data);
      this.fifo.push(xid, kind, t, null, nowMs());
      markDirty(this);
      return;
    }
    const dlen = data === null ? 0 : data.length;
    this.ensure(64 + path.length + dlen + OPEN_ACL.length);
    const b = this.out;
    const at = this.pos;
    let p = at + 4;
    p = b.writeInt32BE(xid, p);
    p = b.writeInt32BE(OP_OF[kind], p);
    if (kind !== Kind.close) {
      p = b.writeInt32BE(path.length, p);
      p += path.copy(b, p);
      switch (kind) {
        case Kind.get:
        case Kind.existsWatch:
        case Kind.getWatch:
          b[p++] = kind === Kind.get ? 0 : 1;
          break;
        case Kind.set:
          p = b.writeInt32BE(dlen, p);
          if (data !== null) p += data.copy(b, p);
          p = b.writeInt32BE(-1, p);
          break;
        case Kind.createEphSeq:
        case Kind.create:
          p = b.writeInt32BE(dlen, p);
          if (data !== null) p += data.copy(b, p);
          p += OPEN_ACL.copy(b, p);
          p = b.writeInt32BE(kind === Kind.create ? 0 : 3, p);
          break;
        case Kind.delete:
          p = b.writeInt32BE(-1, p);
          break;
      }
    }
    b.writeInt32BE(p - at - 4, at);
    this.pos = p;
    this.fifo.push(xid, kind, t, null, nowMs());
    markDirty(this);
  }

  /** A ping (xid -2); its reply is not matched against the FIFO. */
  ping(): void {
    if (!this.open) return;
    if (this.ws !== null) {
      // An ordinary request on this transport: answered in order, so it goes through the FIFO.
      this.send(Kind.ping, EMPTY, null, nowMs());
      return;
    }
    this.ensure(12);
    let p = this.out.writeInt32BE(8, this.pos);
    p = this.out.writeInt32BE(-2, p);
    this.pos = this.out.writeInt32BE(11, p);
    markDirty(this);
  }

  flush(): void {
    if (this.pos === 0) return;
    if (this.open && !this.connGone) {
      const b = Buffer.allocUnsafe(this.pos);
      this.out.copy(b, 0, 0, this.pos);
      // One binary message per turn: the concatenated `frames` entries are one Frames message.
      if (this.ws !== null) this.ws.send(b, { binary: true });
      else this.sock!.write(b);
      this.lastSend = nowMs();
    }
    this.pos = 0;
  }

  // --- receiving ---------------------------------------------------------------------

  /** Collects chunks until a whole frame is there (one concat per large frame). */
  private absorb(chunk: Buffer): void {
    if (this.chunks.length > 0) {
      this.chunks.push(chunk);
      this.chunksLen += chunk.length;
      if (this.chunksLen < this.need) return;
      chunk = Buffer.concat(this.chunks, this.chunksLen);
      this.chunks = [];
      this.chunksLen = 0;
    }
    const end = this.parse(chunk);
    if (end < chunk.length) {
      const rest = chunk.subarray(end);
      this.chunks.push(rest);
      this.chunksLen = rest.length;
      this.need = rest.length >= 4 ? 4 + rest.readInt32BE(0) : 4;
    } else {
      this.need = 4;
    }
  }

  private parse(buf: Buffer): number {
    const n = buf.length;
    let pos = 0;
    while (pos + 4 <= n) {
      const len = buf.readInt32BE(pos);
      if (len < 0) {
        this.fail(`negative frame length ${len}`);
        return n;
      }
      if (pos + 4 + len > n) break;
      const start = pos + 4;
      pos = start + len;
      if (this.handshaking) {
        // ConnectResponse: protocolVersion, timeOut, sessionId, passwd[, readOnly]
        this.timeoutMs = buf.readInt32BE(start + 4);
        this.sessionId = buf.readBigInt64BE(start + 8);
        this.handshaking = false;
        continue;
      }
      if (len < 16) {
        this.fail(`reply frame of ${len} bytes is shorter than a ReplyHeader`);
        return n;
      }
      const xid = buf.readInt32BE(start);
      const err = buf.readInt32BE(start + 12);
      if (xid === -1) {
        // WatcherEvent: type, state, path
        const type = buf.readInt32BE(start + 16);
        const plen = buf.readInt32BE(start + 24);
        const path = plen > 0 ? buf.toString('utf8', start + 28, start + 28 + plen) : '';
        const at = nowMs();
        this.notifications++;
        this.lastNotificationAt = at;
        this.onNotification(this, type, path, at);
        continue;
      }
      if (xid === -2) continue; // ping reply
      const f = this.fifo;
      if (f.size === 0 || f.xid[f.head] !== xid) {
        this.fail(`reply xid ${xid} does not match the oldest outstanding request (${f.size === 0 ? 'none' : f.xid[f.head]})`);
        return n;
      }
      const h = f.head;
      const kind = f.kind[h];
      const t = f.t[h];
      this.replySent = f.sent[h];
      f.shift();
      if (kind === Kind.close) {
        const w = this.closeWaiter;
        this.closeWaiter = null;
        w?.();
        continue;
      }
      this.onReply(this, kind, err, t, buf, start + 16, start + len);
    }
    return pos;
  }

  /** A protocol violation: closes the connection; the driver counts what was in flight. */
  fail(reason: string): void {
    this.closeReason = `protocol: ${reason}`;
    this.cut();
  }

  /** Sends closeSession and waits for its reply (or the close), then closes the socket. */
  close(timeoutMs = 3000): Promise<void> {
    if (!this.open) {
      this.cut();
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, timeoutMs);
      const self = this;
      function done() {
        clearTimeout(t);
        self.closeReason ??= 'closed by load generator';
        self.open = false;
        self.cut();
        resolve();
      }
      this.closeWaiter = done;
      this.send(Kind.close, Buffer.alloc(0), null, nowMs());
    });
  }

  destroy(): void {
    this.closeReason ??= 'destroyed by load generator';
    this.open = false;
    this.cut();
  }

  // --- WebSocket transport: protobuf (corral.v1), encoded and decoded by hand ----------

  /** Appends one `frames` entry holding Frame{request: Request{id, <op>}} to the output. */
  private sendPb(id: number, kind: number, path: Buffer, data: Buffer | null): void {
    const dlen = data === null ? 0 : data.length;
    const pathF = path.length > 0 ? 1 + vlen(path.length) + path.length : 0;
    const dataF = dlen > 0 ? 1 + vlen(dlen) + dlen : 0;
    let opField: number;
    let opLen: number;
    switch (kind) {
      case Kind.get:
      case Kind.getWatch:
      case Kind.existsWatch:
        opField = kind === Kind.existsWatch ? 15 : 16;
        opLen = pathF + (kind === Kind.get ? 0 : 2);
        break;
      case Kind.set:
        opField = 17;
        opLen = pathF + dataF + 11;
        break;
      case Kind.create:
      case Kind.createEphSeq:
        opField = 10;
        opLen = pathF + dataF + PB_ACL.length + (kind === Kind.createEphSeq ? 2 : 0);
        break;
      case Kind.delete:
        opField = 14;
        opLen = pathF + 11;
        break;
      case Kind.close:
        opField = 34;
        opLen = 0;
        break;
      case Kind.ping:
        opField = 33;
        opLen = 0;
        break;
      default:
        throw new Error(`kind ${kind} has no WebSocket encoding`);
    }
    const opTag = (opField << 3) | 2;
    const reqLen = 1 + vlen(id) + vlen(opTag) + vlen(opLen) + opLen;
    const frameLen = 1 + vlen(reqLen) + reqLen;
    this.ensure(1 + vlen(frameLen) + frameLen);
    const b = this.out;
    let p = this.pos;
    b[p++] = 0x0a; // Frames.frames
    p = pbVarint(b, p, frameLen);
    b[p++] = 0x1a; // Frame.request
    p = pbVarint(b, p, reqLen);
    b[p++] = 0x08; // Request.id
    p = pbVarint(b, p, id);
    p = pbVarint(b, p, opTag);
    p = pbVarint(b, p, opLen);
    if (pathF > 0) {
      b[p++] = 0x0a;
      p = pbVarint(b, p, path.length);
      p += path.copy(b, p);
    }
    switch (kind) {
      case Kind.getWatch:
      case Kind.existsWatch:
        b[p++] = 0x10;
        b[p++] = 1;
        break;
      case Kind.set:
      case Kind.create:
      case Kind.createEphSeq:
        if (dlen > 0) {
          b[p++] = 0x12;
          p = pbVarint(b, p, dlen);
          p += data!.copy(b, p);
        }
        if (kind === Kind.set) {
          b[p++] = 0x18; // version = -1
          p += MINUS_ONE.copy(b, p);
        } else {
          p += PB_ACL.copy(b, p);
          if (kind === Kind.createEphSeq) {
            b[p++] = 0x20; // flags = 3, ephemeral sequential
            b[p++] = 3;
          }
        }
        break;
      case Kind.delete:
        b[p++] = 0x10; // version = -1
        p += MINUS_ONE.copy(b, p);
        break;
    }
    this.pos = p;
  }

  /** One binary message from the server: a Frames message. */
  private parsePb(buf: Buffer): void {
    const n = buf.length;
    let pos = 0;
    while (pos < n) {
      const tag = buf[pos++];
      if (tag !== 0x0a) {
        pos = skipField(buf, pos, tag);
        if (pos < 0) return this.fail(`undecodable Frames message (tag ${tag})`);
        continue;
      }
      const [len, p1] = readVarint(buf, pos);
      const end = p1 + len;
      if (end > n) return this.fail('truncated frame');
      pos = end;
      if (!this.frame(buf, p1, end)) return;
    }
  }

  /** One Frame; false once the connection has been failed. */
  private frame(buf: Buffer, pos: number, end: number): boolean {
    while (pos < end) {
      const tag = buf[pos++];
      if ((tag & 7) !== 2) {
        pos = skipField(buf, pos, tag);
        if (pos < 0) break;
        continue;
      }
      const [len, p1] = readVarint(buf, pos);
      const e = p1 + len;
      pos = e;
      switch (tag >> 3) {
        case 2: {
          // ConnectResponse {timeout_ms = 1, session_id = 2, ...}
          let q = p1;
          while (q < e) {
            const t = buf[q++];
            if (t === 0x08) {
              const [v, q1] = readVarint(buf, q);
              this.timeoutMs = v;
              q = q1;
            } else if (t === 0x12) {
              const [l, q1] = readVarint(buf, q);
              if (l === 8) this.sessionId = buf.readBigInt64BE(q1);
              q = q1 + l;
            } else q = skipField(buf, q, t);
            if (q < 0) break;
          }
          this.handshaking = false;
          break;
        }
        case 4:
          if (!this.responsePb(buf, p1, e)) return false;
          break;
        case 5: {
          // WatchEvent {type = 1, state = 2, path = 3, zxid = 4}
          let q = p1;
          let type = 0;
          let path = '';
          while (q < e) {
            const t = buf[q++];
            if (t === 0x08) {
              const [v, q1] = readVarint(buf, q);
              type = v;
              q = q1;
            } else if (t === 0x1a) {
              const [l, q1] = readVarint(buf, q);
              path = buf.toString('utf8', q1, q1 + l);
              q = q1 + l;
            } else q = skipField(buf, q, t);
            if (q < 0) break;
          }
          const at = nowMs();
          this.notifications++;
          this.lastNotificationAt = at;
          this.onNotification(this, type, path, at);
          break;
        }
        case 6: {
          let msg = '';
          let q = p1;
          while (q < e && q >= 0) {
            const t = buf[q++];
            if (t === 0x12) {
              const [l, q1] = readVarint(buf, q);
              msg = buf.toString('utf8', q1, q1 + l);
              q = q1 + l;
            } else q = skipField(buf, q, t);
          }
          this.fail(`server error frame: ${msg}`);
          return false;
        }
        default:
          break;
      }
    }
    return true;
  }

  /**
   * Response {id = 1, zxid = 2, err = 3 (sint32), path = 10 (PathResult {path = 1}), ...}.
   * The handler gets the created path (the only reply body a workload reads) in jute's
   * form, int32 length + bytes, as over TCP.
   */
  private responsePb(buf: Buffer, pos: number, end: number): boolean {
    let id = 0;
    let err = 0;
    let pathStart = -1;
    let pathLen = 0;
    while (pos < end) {
      const tag = buf[pos++];
      if (tag === 0x08) {
        const [v, p] = readVarint(buf, pos);
        id = v;
        pos = p;
      } else if (tag === 0x18) {
        const [v, p] = readVarint(buf, pos);
        err = (v >>> 1) ^ -(v & 1);
        pos = p;
      } else if (tag === 0x52) {
        const [l, p] = readVarint(buf, pos);
        let q = p;
        while (q < p + l) {
          const t = buf[q++];
          const [l2, q1] = readVarint(buf, q);
          if (t === 0x0a) {
            pathStart = q1;
            pathLen = l2;
          }
          q = (t & 7) === 2 ? q1 + l2 : skipField(buf, q, t);
          if (q < 0) break;
        }
        pos = p + l;
      } else {
        pos = skipField(buf, pos, tag);
        if (pos < 0) break;
      }
    }
    const f = this.fifo;
    if (f.size === 0 || f.xid[f.head] >>> 0 !== id) {
      this.fail(`response id ${id} does not match the oldest outstanding request (${f.size === 0 ? 'none' : f.xid[f.head]})`);
      return false;
    }
    const h = f.head;
    const kind = f.kind[h];
    const t = f.t[h];
    this.replySent = f.sent[h];
    f.shift();
    if (kind === Kind.close) {
      const w = this.closeWaiter;
      this.closeWaiter = null;
      w?.();
      return true;
    }
    if (kind === Kind.ping) return true;
    if (pathStart >= 0) {
      const body = Buffer.allocUnsafe(4 + pathLen);
      body.writeInt32BE(pathLen, 0);
      buf.copy(body, 4, pathStart, pathStart + pathLen);
      this.onReply(this, kind, err, t, body, 0, body.length);
    } else this.onReply(this, kind, err, t, EMPTY, 0, 0);
    return true;
  }
}

// --- protobuf helpers -------------------------------------------------------------

const EMPTY = Buffer.alloc(0);
/** int32 -1 as a protobuf varint (10 bytes: negative int32s are sign-extended to 64 bits). */
const MINUS_ONE = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
/** CreateRequest.acl = [Acl{perms: 31, scheme: 'world', id: 'anyone'}]. */
const PB_ACL = (() => {
  const acl = Buffer.concat([Buffer.from([0x08, 31, 0x12, 5]), Buffer.from('world'), Buffer.from([0x1a, 6]), Buffer.from('anyone')]);
  return Buffer.concat([Buffer.from([0x1a, acl.length]), acl]);
})();

function vlen(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

/** Writes a non-negative integer (< 2^32) as a varint; returns the next position. */
function pbVarint(b: Buffer, p: number, v: number): number {
  while (v >= 0x80) {
    b[p++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  b[p++] = v;
  return p;
}

/** Reads a varint of up to 64 bits as a number (exact below 2^53); [value, next position]. */
function readVarint(b: Buffer, p: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (;;) {
    const x = b[p++];
    if (x === undefined) return [v, p];
    v += (x & 0x7f) * mul;
    if (x < 0x80) return [v, p];
    mul *= 128;
  }
}

/** Skips the value of a field whose tag was just read; -1 if the wire type is unknown. */
function skipField(b: Buffer, p: number, tag: number): number {
  switch (tag & 7) {
    case 0:
      return readVarint(b, p)[1];
    case 1:
      return p + 8;
    case 2: {
      const [l, q] = readVarint(b, p);
      return q + l;
    }
    case 5:
      return p + 4;
    default:
      return -1;
  }
}

/** One length-delimited field `tag` around `body`. */
function pbEntry(tag: number, body: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(1 + vlen(body.length) + body.length);
  frame[0] = 0x0a; // Frame.connect
  const p = pbVarint(frame, 1, body.length);
  body.copy(frame, p);
  const out = Buffer.allocUnsafe(1 + vlen(frame.length) + frame.length);
  out[0] = tag; // Frames.frames
  const q = pbVarint(out, 1, frame.length);
  frame.copy(out, q);
  return out;
}
