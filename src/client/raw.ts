import { connect as netConnect, type Socket } from 'node:net';
import { OpCode, Xid } from '../protocol/constants.js';
import { JuteReader, JuteWriter } from '../protocol/jute.js';
import { writeAclList } from '../protocol/records.js';
import type { Acl } from '../tree/types.js';

// A low-level ZooKeeper protocol client: one session over one TCP connection, requests
// by opcode with the body written by the caller, replies as raw jute. Tests use it for
// what high-level clients cannot send; the load generator uses it because it pipelines
// without overhead and works against any ZooKeeper-protocol server.

export interface Reply {
  xid: number;
  zxid: number;
  err: number;
  /** The reply body (empty when err != 0). */
  body: JuteReader;
}

export interface Notification {
  type: number;
  state: number;
  path: string;
  zxid: number;
}

export interface RawConnectOptions {
  timeout?: number;
  sessionId?: bigint;
  passwd?: Buffer;
  lastZxidSeen?: number;
  /** Send the 45-byte ConnectRequest with readOnly (default true, as 3.9 clients do). */
  readOnlyByte?: boolean;
  readOnly?: boolean;
}

export interface Session {
  sessionId: bigint;
  passwd: Buffer;
  timeout: number;
  /** Total length of the ConnectResponse body (36 or 37). */
  responseLength: number;
}

export type BodyWriter = (w: JuteWriter) => void;

export const OPEN_ACL: Acl[] = [{ perms: 31, scheme: 'world', id: 'anyone' }];

export class RawClient {
  private buf: Buffer = Buffer.alloc(0);
  private readonly waiting = new Map<number, (r: Reply) => void>();
  private readonly specialWaiting = new Map<number, ((r: Reply) => void)[]>();
  readonly notifications: Notification[] = [];
  private notifyWaiters: (() => void)[] = [];
  private nextXid = 1;
  private closedResolve!: () => void;
  readonly closed: Promise<void>;
  isClosed = false;
  session!: Session;
  lastZxid = 0;
  private readonly w = new JuteWriter(4096);

  private constructor(readonly socket: Socket) {
    this.closed = new Promise((r) => (this.closedResolve = r));
    socket.setNoDelay(true);
    socket.on('close', () => {
      this.isClosed = true;
      this.closedResolve();
      for (const f of this.notifyWaiters) f();
    });
    socket.on('error', () => {});
  }

  /** Opens a TCP connection without a handshake (for 4lw and garbage tests). */
  static open(host: string, port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = netConnect(port, host);
      s.once('error', reject);
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new RawClient(s));
      });
    });
  }

  static async connect(host: string, port: number, o: RawConnectOptions = {}): Promise<RawClient> {
    const c = await RawClient.open(host, port);
    await c.handshake(o);
    return c;
  }

  /** Sends a ConnectRequest and waits for the ConnectResponse. */
  handshake(o: RawConnectOptions = {}): Promise<Session> {
    const w = new JuteWriter(64);
    const at = w.beginFrame();
    w.int(0).longNum(o.lastZxidSeen ?? 0).int(o.timeout ?? 30000).long(o.sessionId ?? 0n).buffer(o.passwd ?? Buffer.alloc(16));
    if (o.readOnlyByte ?? true) w.bool(o.readOnly ?? false);
    w.endFrame(at);
    this.socket.write(w.toBuffer());
    return new Promise((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        this.buf = Buffer.concat([this.buf, chunk]);
        if (this.buf.length < 4) return;
        const len = this.buf.readInt32BE(0);
        if (this.buf.length < 4 + len) return;
        const r = new JuteReader(this.buf, 4, 4 + len);
        r.int();
        const timeout = r.int();
        const sessionId = r.long();
        const passwd = r.buffer() ?? Buffer.alloc(0);
        this.session = { sessionId, passwd, timeout, responseLength: len };
        this.buf = this.buf.subarray(4 + len);
        this.socket.off('data', onData);
        this.socket.off('close', onClose);
        this.socket.on('data', (d: Buffer) => this.onData(d));
        if (this.buf.length > 0) this.onData(Buffer.alloc(0));
        resolve(this.session);
      };
      const onClose = () => reject(new Error('connection closed during handshake'));
      this.socket.on('data', onData);
      this.socket.once('close', onClose);
    });
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let pos = 0;
    while (pos + 4 <= this.buf.length) {
      const len = this.buf.readInt32BE(pos);
      if (pos + 4 + len > this.buf.length) break;
      const r = new JuteReader(this.buf, pos + 4, pos + 4 + len);
      pos += 4 + len;
      const xid = r.int();
      const zxid = r.longNum();
      const err = r.int();
      if (zxid > this.lastZxid && xid !== Xid.notification) this.lastZxid = zxid;
      const reply: Reply = { xid, zxid, err, body: r };
      if (xid === Xid.notification) {
        this.notifications.push({ type: r.int(), state: r.int(), path: r.string(), zxid });
        const ws = this.notifyWaiters;
        this.notifyWaiters = [];
        for (const f of ws) f();
        continue;
      }
      const special = this.specialWaiting.get(xid);
      if (special !== undefined && special.length > 0) {
        special.shift()!(reply);
        continue;
      }
      const f = this.waiting.get(xid);
      if (f !== undefined) {
        this.waiting.delete(xid);
        f(reply);
      }
    }
    this.buf = pos === this.buf.length ? Buffer.alloc(0) : Buffer.from(this.buf.subarray(pos));
  }

  /** Sends one request; resolves with its reply, rejects if the connection closes first. */
  request(op: number, body?: BodyWriter, xid?: number): Promise<Reply> {
    const id = xid ?? this.nextXid++;
    const w = this.w;
    w.reset();
    const at = w.beginFrame();
    w.int(id).int(op);
    body?.(w);
    w.endFrame(at);
    this.socket.write(w.toBuffer());
    return this.expect(id);
  }

  private expect(id: number): Promise<Reply> {
    return new Promise((resolve, reject) => {
      if (this.isClosed) return reject(new Error('connection closed'));
      const done = (r: Reply) => resolve(r);
      if (id < 0) {
        let l = this.specialWaiting.get(id);
        if (l === undefined) this.specialWaiting.set(id, (l = []));
        l.push(done);
      } else this.waiting.set(id, done);
      void this.closed.then(() => reject(new Error('connection closed')));
    });
  }

  sendRaw(b: Buffer): void {
    this.socket.write(b);
  }

  /** Waits until `n` notifications have arrived in total (or the timeout passes). */
  async waitNotifications(n: number, ms = 5000): Promise<Notification[]> {
    const deadline = Date.now() + ms;
    while (this.notifications.length < n && !this.isClosed && Date.now() < deadline) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.notifyWaiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.notifications;
  }

  close(): void {
    this.socket.destroy();
  }

  // --- request helpers -------------------------------------------------------------

  create(path: string, data = Buffer.alloc(0), flags = 0, acl: Acl[] = OPEN_ACL, op: number = OpCode.create): Promise<Reply> {
    return this.request(op, (w) => {
      w.ustring(path).buffer(data);
      writeAclList(w, acl);
      w.int(flags);
    });
  }

  getData(path: string, watch = false): Promise<Reply> {
    return this.request(OpCode.getData, (w) => w.ustring(path).bool(watch));
  }

  setData(path: string, data: Buffer, version = -1): Promise<Reply> {
    return this.request(OpCode.setData, (w) => w.ustring(path).buffer(data).int(version));
  }

  delete(path: string, version = -1): Promise<Reply> {
    return this.request(OpCode.delete, (w) => w.ustring(path).int(version));
  }

  exists(path: string, watch = false): Promise<Reply> {
    return this.request(OpCode.exists, (w) => w.ustring(path).bool(watch));
  }

  getChildren(path: string, watch = false, op: number = OpCode.getChildren): Promise<Reply> {
    return this.request(op, (w) => w.ustring(path).bool(watch));
  }

  ping(): Promise<Reply> {
    return this.request(OpCode.ping, undefined, Xid.ping);
  }

  auth(scheme: string, auth: string): Promise<Reply> {
    return this.request(OpCode.auth, (w) => w.int(0).ustring(scheme).buffer(Buffer.from(auth)), Xid.auth);
  }

  closeSession(): Promise<Reply> {
    return this.request(OpCode.closeSession);
  }
}
