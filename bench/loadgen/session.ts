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
} as const;

/** Name under which each kind's latency and errors are reported. */
export const KIND_NAME: readonly string[] = ['?', 'getData', 'setData', 'create', 'delete', 'exists', 'create', 'closeSession', 'getData'];

const OP_OF: readonly number[] = [0, 4, 5, 1, 2, 3, 1, -11, 4];

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
  aux: (Buffer | null)[];
  head = 0;
  size = 0;

  constructor(cap = 64) {
    this.xid = new Int32Array(cap);
    this.kind = new Uint8Array(cap);
    this.t = new Float64Array(cap);
    this.aux = new Array<Buffer | null>(cap).fill(null);
  }

  push(xid: number, kind: number, t: number, aux: Buffer | null): void {
    if (this.size === this.kind.length) this.grow();
    const i = (this.head + this.size) & (this.kind.length - 1);
    this.xid[i] = xid;
    this.kind[i] = kind;
    this.t[i] = t;
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
    const aux = new Array<Buffer | null>(cap * 2).fill(null);
    for (let k = 0; k < this.size; k++) {
      const i = (this.head + k) & (cap - 1);
      xid[k] = this.xid[i];
      kind[k] = this.kind[i];
      t[k] = this.t[i];
      aux[k] = this.aux[i];
    }
    this.xid = xid;
    this.kind = kind;
    this.t = t;
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

  private constructor(
    readonly sock: Socket,
    readonly index: number,
  ) {}

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
    this.fifo.push(xid, kind, t, null);
    markDirty(this);
  }

  /** A ping (xid -2); its reply is not matched against the FIFO. */
  ping(): void {
    if (!this.open) return;
    this.ensure(12);
    let p = this.out.writeInt32BE(8, this.pos);
    p = this.out.writeInt32BE(-2, p);
    this.pos = this.out.writeInt32BE(11, p);
    markDirty(this);
  }

  flush(): void {
    if (this.pos === 0) return;
    if (this.open && !this.sock.destroyed) {
      const b = Buffer.allocUnsafe(this.pos);
      this.out.copy(b, 0, 0, this.pos);
      this.sock.write(b);
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
    this.sock.destroy();
  }

  /** Sends closeSession and waits for its reply (or the close), then closes the socket. */
  close(timeoutMs = 3000): Promise<void> {
    if (!this.open) {
      this.sock.destroy();
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, timeoutMs);
      const self = this;
      function done() {
        clearTimeout(t);
        self.closeReason ??= 'closed by load generator';
        self.open = false;
        self.sock.destroy();
        resolve();
      }
      this.closeWaiter = done;
      this.send(Kind.close, Buffer.alloc(0), null, nowMs());
    });
  }

  destroy(): void {
    this.closeReason ??= 'destroyed by load generator';
    this.open = false;
    this.sock.destroy();
  }
}
