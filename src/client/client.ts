// Corral's TypeScript client: a Promise API for every operation, watches as callbacks and
// async iterators, request pipelining, connection-state events, and reconnection across
// the servers of a connection string with session resumption. Transport-neutral and
// browser-safe: the transport (WebSocket+protobuf or TCP+jute) is given to it.
import { Err, EventType, KeeperError } from '../protocol/constants.js';
import {
  type PAcl, type PConnectResponse, type PErrorFrame, type PFrame, type POp, type POpResult, type PRequest, type PResponse,
  type PStat, type PWatchEvent, bytesToId, idToBytes, num,
} from '../ws/proto.js';
import type { Transport, TransportConnection } from './transport.js';

export { KeeperError, Err, EventType };

// The same Stat and ACL shapes as the server's (type-only: nothing of the tree is bundled).
export type { Acl, Stat } from '../tree/types.js';
import type { Acl, Stat } from '../tree/types.js';

export const OPEN_ACL_UNSAFE: Acl[] = [{ perms: 31, scheme: 'world', id: 'anyone' }];

/** CreateMode: persistent 0, ephemeral 1, persistent sequential 2, ephemeral sequential 3, container 4, TTL 5/6. */
export const CreateMode = {
  PERSISTENT: 0, EPHEMERAL: 1, PERSISTENT_SEQUENTIAL: 2, EPHEMERAL_SEQUENTIAL: 3, CONTAINER: 4,
  PERSISTENT_WITH_TTL: 5, PERSISTENT_SEQUENTIAL_WITH_TTL: 6,
} as const;

export interface WatchEvent {
  /** EventType: 1 created, 2 deleted, 3 data changed, 4 children changed. */
  type: number;
  path: string;
  zxid: number;
}
export type Watcher = (e: WatchEvent) => void;

export type State = 'connecting' | 'connected' | 'disconnected' | 'expired' | 'authFailed' | 'closed';
export type ClientEvent = 'connected' | 'disconnected' | 'expired' | 'authFailed' | 'closed' | 'error';

export interface ClientOptions {
  transport: Transport;
  /** Requested session timeout in ms (default 30000); the server may adjust it. */
  sessionTimeout?: number;
  /** Resume this session instead of creating one. */
  sessionId?: bigint;
  password?: Uint8Array;
  /** Delay before retrying after a failed attempt (ms, doubling up to 1000; default 50). */
  retryDelay?: number;
  /** Per-attempt connect timeout (default sessionTimeout / number of servers). */
  connectTimeout?: number;
}

export type OpSpec =
  | { op: 'create'; path: string; data?: Uint8Array | string; acl?: Acl[]; mode?: number; ttl?: number }
  | { op: 'delete'; path: string; version?: number }
  | { op: 'setData'; path: string; data: Uint8Array | string; version?: number }
  | { op: 'check'; path: string; version: number }
  | { op: 'getData'; path: string }
  | { op: 'getChildren'; path: string };

export interface OpResult {
  err: number;
  path?: string;
  stat?: Stat;
  data?: Uint8Array;
  children?: string[];
}

/** A failed multi: `code` is the first failing operation's, `results` has every result. */
export class MultiError extends KeeperError {
  constructor(code: number, readonly results: OpResult[]) {
    super(code, `multi failed: KeeperErrorCode ${code}`);
  }
}

interface Pending {
  resolve(r: PResponse): void;
  reject(e: Error): void;
  frame: PFrame;
}

const enc = new TextEncoder();
function bytes(d: Uint8Array | string | undefined): Uint8Array {
  if (d === undefined) return new Uint8Array(0);
  return typeof d === 'string' ? enc.encode(d) : d;
}

export function statFrom(s: PStat | null | undefined): Stat {
  const x = s ?? {};
  return {
    czxid: num(x.czxid), mzxid: num(x.mzxid), ctime: num(x.ctime), mtime: num(x.mtime), version: x.version ?? 0,
    cversion: x.cversion ?? 0, aversion: x.aversion ?? 0, ephemeralOwner: bytesToId(x.ephemeralOwner),
    dataLength: x.dataLength ?? 0, numChildren: x.numChildren ?? 0, pzxid: num(x.pzxid),
  };
}

function aclFrom(a: PAcl[] | null | undefined): Acl[] {
  return (a ?? []).map((x) => ({ perms: x.perms ?? 0, scheme: x.scheme ?? '', id: x.id ?? '' }));
}

function opResultFrom(r: POpResult): OpResult {
  const out: OpResult = { err: r.err ?? 0 };
  if (r.create) {
    out.path = r.create.path ?? '';
    if (r.create.stat) out.stat = statFrom(r.create.stat);
  }
  if (r.setData) out.stat = statFrom(r.setData.stat);
  if (r.getData) {
    out.data = r.getData.data ?? new Uint8Array(0);
    out.stat = statFrom(r.getData.stat);
  }
  if (r.getChildren) out.children = r.getChildren.children ?? [];
  return out;
}

function createOp(path: string, data: Uint8Array | string | undefined, acl: Acl[] | undefined, mode: number, ttl: number | undefined) {
  return { path, data: bytes(data), acl: acl ?? OPEN_ACL_UNSAFE, flags: mode, ttl: ttl ?? 0 };
}

/** Splits a connection string ("h1:p1,h2:p2[/chroot]" or ws:// URLs); chroots are not supported. */
export function parseServers(conn: string): string[] {
  const list = conn.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (list.length === 0) throw new Error(`no servers in connection string "${conn}"`);
  return list;
}

export class CorralClient {
  state: State = 'connecting';
  sessionId = 0n;
  password: Uint8Array = new Uint8Array(0);
  /** The negotiated session timeout (ms). */
  sessionTimeout: number;
  /** The highest zxid seen in a response: sent when reconnecting. */
  lastZxid = 0;
  /** The server currently connected to (as written in the connection string). */
  server: string | undefined;
  private readonly servers: string[];
  private serverIndex = 0;
  private conn: TransportConnection | null = null;
  private connecting = false;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Frames to send at the end of this turn (pipelining: one message per turn). */
  private outbox: PFrame[] = [];
  /** Requests made while disconnected, sent once connected. */
  private waiting: PFrame[] = [];
  private flushQueued = false;
  private readonly listeners = new Map<ClientEvent, Set<(arg?: unknown) => void>>();
  private readonly dataWatches = new Map<string, Set<Watcher>>();
  private readonly existWatches = new Map<string, Set<Watcher>>();
  private readonly childWatches = new Map<string, Set<Watcher>>();
  private readonly persistentWatches = new Map<string, Set<Watcher>>();
  private readonly recursiveWatches = new Map<string, Set<Watcher>>();
  private readonly auths: { scheme: string; auth: Uint8Array }[] = [];
  private lastSend = 0;
  private lastRecv = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private firstConnect: { resolve(): void; reject(e: Error): void } | undefined;
  /** close() was called: a dropped connection is not a disconnection to recover from. */
  private closing = false;

  private constructor(
    connectString: string,
    private readonly opts: ClientOptions,
  ) {
    this.servers = parseServers(connectString);
    this.sessionTimeout = opts.sessionTimeout ?? 30000;
    if (opts.sessionId !== undefined) {
      this.sessionId = opts.sessionId;
      this.password = opts.password ?? new Uint8Array(16);
    }
  }

  /** Connects (trying the servers in turn) and resolves once a session is established. */
  static connect(connectString: string, opts: ClientOptions): Promise<CorralClient> {
    const c = new CorralClient(connectString, opts);
    return new Promise((resolve, reject) => {
      c.firstConnect = { resolve: () => resolve(c), reject };
      c.attempt(0);
    });
  }

  get transportName(): string {
    return this.opts.transport.name;
  }

  // --- events ------------------------------------------------------------------------

  on(ev: 'error', f: (e: PErrorFrame) => void): this;
  on(ev: Exclude<ClientEvent, 'error'>, f: () => void): this;
  on(ev: ClientEvent, f: ((e: PErrorFrame) => void) | (() => void)): this {
    let s = this.listeners.get(ev);
    if (s === undefined) this.listeners.set(ev, (s = new Set()));
    s.add(f as (arg?: unknown) => void);
    return this;
  }

  off(ev: ClientEvent, f: ((e: PErrorFrame) => void) | (() => void)): this {
    this.listeners.get(ev)?.delete(f as (arg?: unknown) => void);
    return this;
  }

  private emit(ev: ClientEvent, arg?: unknown): void {
    for (const f of [...(this.listeners.get(ev) ?? [])]) {
      try {
        f(arg);
      } catch {
        /* a listener's error is its own */
      }
    }
  }

  // --- connection management -----------------------------------------------------------

  private attempt(delay: number): void {
    if (this.retry !== undefined || this.connecting || this.isDead()) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      void this.open();
    }, delay);
  }

  private isDead(): boolean {
    return this.state === 'closed' || this.state === 'expired' || this.state === 'authFailed';
  }

  private async open(): Promise<void> {
    if (this.isDead() || this.conn !== null) return;
    this.connecting = true;
    const server = this.servers[this.serverIndex % this.servers.length]!;
    this.serverIndex++;
    const attemptTimeout = this.opts.connectTimeout ?? Math.max(1000, Math.floor(this.sessionTimeout / this.servers.length));
    let conn: TransportConnection | undefined;
    let gotConnected = false;
    let timedOut: ReturnType<typeof setTimeout> | undefined;
    let done = false;
    const failed = (reason: string) => {
      if (timedOut !== undefined) clearTimeout(timedOut);
      if (done) return;
      done = true;
      if (gotConnected) {
        // lost() already ran if the client itself dropped this connection.
        if (this.conn === conn) this.lost(reason);
      } else {
        this.connecting = false;
        this.retryLater();
      }
    };
    try {
      conn = await this.opts.transport.open(server, {
        onConnected: (c) => {
          if (timedOut !== undefined) clearTimeout(timedOut);
          this.connecting = false;
          gotConnected = true;
          this.onConnected(conn!, server, c);
        },
        onResponse: (r) => this.onResponse(r),
        onEvent: (e) => this.onEvent(e),
        onError: (e) => this.emit('error', e),
        onClose: (reason) => failed(reason),
      });
    } catch {
      failed('connect failed');
      return;
    }
    if (this.isDead()) {
      conn.close();
      this.connecting = false;
      return;
    }
    timedOut = setTimeout(() => {
      if (!gotConnected) {
        conn!.close();
        failed('connect timed out');
      }
    }, attemptTimeout);
    conn.send([{
      connect: {
        lastZxidSeen: this.lastZxid, timeoutMs: this.sessionTimeout,
        sessionId: this.sessionId === 0n ? new Uint8Array(0) : idToBytes(this.sessionId), password: this.password,
      },
    }]);
  }

  private retryDelay = 0;
  private retryLater(): void {
    const base = this.opts.retryDelay ?? 50;
    this.retryDelay = this.retryDelay === 0 ? base : Math.min(1000, this.retryDelay * 2);
    // Around the ring of servers without waiting; back off once per full round.
    this.attempt(this.serverIndex % this.servers.length === 0 ? this.retryDelay : 0);
  }

  private onConnected(conn: TransportConnection, server: string, c: PConnectResponse): void {
    if ((c.timeoutMs ?? 0) <= 0) {
      // The session expired (or could not be resumed): nothing will bring it back.
      conn.close();
      this.die('expired', Err.SESSIONEXPIRED);
      return;
    }
    const resumed = this.sessionId !== 0n;
    this.conn = conn;
    this.server = server;
    this.sessionId = bytesToId(c.sessionId);
    this.password = c.password ?? new Uint8Array(0);
    this.sessionTimeout = c.timeoutMs ?? this.sessionTimeout;
    this.state = 'connected';
    this.retryDelay = 0;
    this.lastRecv = this.lastSend = Date.now();
    // Re-arm what this session had: auth, then watches, then the queued requests.
    const frames: PFrame[] = [];
    if (resumed) {
      for (const a of this.auths) frames.push(this.track({ auth: { scheme: a.scheme, auth: a.auth } }, () => {}, () => {}));
      const w = this.watchLists();
      if (w.data.length + w.exist.length + w.child.length + w.persistent.length + w.recursive.length > 0)
        frames.push(this.track({ setWatches: { relativeZxid: this.lastZxid, ...w } }, () => {}, () => {}));
    }
    frames.push(...this.waiting);
    this.waiting = [];
    this.outbox.unshift(...frames);
    this.flush();
    this.startTimer();
    this.emit('connected');
    const fc = this.firstConnect;
    this.firstConnect = undefined;
    fc?.resolve();
  }

  private watchLists() {
    const keys = (m: Map<string, Set<Watcher>>) => [...m.keys()];
    return {
      data: keys(this.dataWatches), exist: keys(this.existWatches), child: keys(this.childWatches),
      persistent: keys(this.persistentWatches), recursive: keys(this.recursiveWatches),
    };
  }

  /** The connection dropped: fail what was in flight, and reconnect to the next server. */
  private lost(reason: string): void {
    this.conn = null;
    this.stopTimer();
    this.outbox = []; // their requests are in `pending`, failed below
    const inFlight = [...this.pending.values()];
    this.pending.clear();
    for (const p of inFlight) p.reject(new KeeperError(Err.CONNECTIONLOSS, `connection loss (${reason})`));
    if (this.isDead() || this.closing) return;
    this.state = 'disconnected';
    this.emit('disconnected', reason);
    this.retryLater();
  }

  private die(state: 'expired' | 'authFailed' | 'closed', code: number): void {
    if (this.isDead()) return;
    this.state = state;
    this.stopTimer();
    if (this.retry !== undefined) clearTimeout(this.retry);
    this.retry = undefined;
    const c = this.conn;
    this.conn = null;
    c?.close();
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(new KeeperError(code));
    this.waiting = [];
    this.outbox = [];
    const orphans = [...this.pendingOrphans.values()];
    this.pendingOrphans.clear();
    for (const p of orphans) p.reject(new KeeperError(code));
    this.emit(state);
    const fc = this.firstConnect;
    this.firstConnect = undefined;
    fc?.reject(new KeeperError(code, `session ${state}`));
  }

  private startTimer(): void {
    this.stopTimer();
    const tick = Math.max(10, Math.floor(this.sessionTimeout / 6));
    this.timer = setInterval(() => {
      if (this.conn === null) return;
      const now = Date.now();
      if (now - this.lastRecv > (this.sessionTimeout * 2) / 3) {
        // Nothing heard for 2/3 of the timeout: this server is gone for us; try another.
        const c = this.conn;
        this.lost('read timeout');
        c.close();
        return;
      }
      if (now - this.lastSend > this.sessionTimeout / 3) void this.ping().catch(() => {});
    }, tick);
    (this.timer as { unref?: () => void }).unref?.();
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  // --- requests ------------------------------------------------------------------------

  /** Requests queued but not yet sent, by id (so a dying session can fail them). */
  private readonly pendingOrphans = new Map<number, Pending>();

  private track(q: Omit<PRequest, 'id'>, resolve: (r: PResponse) => void, reject: (e: Error) => void): PFrame {
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    const frame: PFrame = { request: { ...q, id } };
    this.pending.set(id, { resolve, reject, frame });
    return frame;
  }

  /** Sends a request (pipelined with the others of this turn); resolves with its response. */
  request(q: Omit<PRequest, 'id'>): Promise<PResponse> {
    if (this.isDead()) return Promise.reject(new KeeperError(this.state === 'expired' ? Err.SESSIONEXPIRED : Err.CONNECTIONLOSS, `client ${this.state}`));
    return new Promise((resolve, reject) => {
      if (this.conn === null) {
        // Not connected: hold it until a connection is established.
        const id = this.nextId;
        this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
        const frame: PFrame = { request: { ...q, id } };
        const p: Pending = { resolve, reject, frame };
        this.pendingOrphans.set(id, p);
        this.waiting.push(frame);
        return;
      }
      this.outbox.push(this.track(q, resolve, reject));
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.conn === null || this.outbox.length === 0) return;
    const frames = this.outbox;
    this.outbox = [];
    for (const f of frames) {
      const id = f.request?.id;
      if (id !== undefined && id !== null) {
        const o = this.pendingOrphans.get(id);
        if (o !== undefined) {
          this.pendingOrphans.delete(id);
          this.pending.set(id, o);
        }
      }
    }
    this.lastSend = Date.now();
    this.conn.send(frames);
  }

  private onResponse(r: PResponse): void {
    this.lastRecv = Date.now();
    const z = num(r.zxid);
    if (z > this.lastZxid) this.lastZxid = z;
    const p = this.pending.get(r.id ?? 0);
    if (p === undefined) return;
    this.pending.delete(r.id ?? 0);
    if (p.frame.request?.auth && r.err === Err.AUTHFAILED) {
      p.reject(new KeeperError(Err.AUTHFAILED));
      this.die('authFailed', Err.AUTHFAILED);
      return;
    }
    p.resolve(r);
  }

  private onEvent(e: PWatchEvent): void {
    this.lastRecv = Date.now();
    const ev: WatchEvent = { type: e.type ?? 0, path: e.path ?? '', zxid: num(e.zxid) };
    const fire = new Set<Watcher>();
    const take = (m: Map<string, Set<Watcher>>) => {
      const s = m.get(ev.path);
      if (s === undefined) return;
      m.delete(ev.path);
      for (const f of s) fire.add(f);
    };
    switch (ev.type) {
      case EventType.NodeCreated:
      case EventType.NodeDataChanged:
        take(this.dataWatches);
        take(this.existWatches);
        break;
      case EventType.NodeDeleted:
        take(this.dataWatches);
        take(this.existWatches);
        take(this.childWatches);
        break;
      case EventType.NodeChildrenChanged:
        take(this.childWatches);
        break;
    }
    for (const f of this.persistentWatches.get(ev.path) ?? []) fire.add(f);
    if (ev.type !== EventType.NodeChildrenChanged) {
      for (const [p, s] of this.recursiveWatches) {
        if (ev.path === p || ev.path.startsWith(p === '/' ? '/' : p + '/')) for (const f of s) fire.add(f);
      }
    }
    for (const f of fire) {
      try {
        f(ev);
      } catch {
        /* a watcher's error is its own */
      }
    }
  }

  private async call(q: Omit<PRequest, 'id'>, ok: number[] = []): Promise<PResponse> {
    const r = await this.request(q);
    const err = r.err ?? 0;
    if (err !== 0 && !ok.includes(err)) throw new KeeperError(err);
    return r;
  }

  private addWatcher(m: Map<string, Set<Watcher>>, path: string, w: Watcher): void {
    let s = m.get(path);
    if (s === undefined) m.set(path, (s = new Set()));
    s.add(w);
  }

  // --- the operations ------------------------------------------------------------------

  /** Creates a node; resolves with its path (sequential nodes get their suffix). */
  async create(path: string, data?: Uint8Array | string, o: { acl?: Acl[]; mode?: number; ttl?: number } = {}): Promise<string> {
    return (await this.create2(path, data, o)).path;
  }

  /** Creates a node; resolves with its path and Stat (createContainer/createTTL by mode). */
  async create2(path: string, data?: Uint8Array | string, o: { acl?: Acl[]; mode?: number; ttl?: number } = {}): Promise<{ path: string; stat: Stat }> {
    const mode = o.mode ?? 0;
    const body = createOp(path, data, o.acl, mode, o.ttl);
    const q = mode === 4 ? { createContainer: body } : mode === 5 || mode === 6 ? { createTtl: body } : { create2: body };
    const r = await this.call(q);
    return { path: r.path?.path ?? '', stat: statFrom(r.path?.stat) };
  }

  async delete(path: string, version = -1): Promise<void> {
    await this.call({ delete: { path, version } });
  }

  /** The node's Stat, or null if it does not exist; a watcher fires on its creation, change or deletion. */
  async exists(path: string, watcher?: Watcher): Promise<Stat | null> {
    const r = await this.call({ exists: { path, watch: watcher !== undefined } }, [Err.NONODE]);
    if (r.err === Err.NONODE) {
      if (watcher) this.addWatcher(this.existWatches, path, watcher);
      return null;
    }
    if (watcher) this.addWatcher(this.dataWatches, path, watcher);
    return statFrom(r.stat?.stat);
  }

  async getData(path: string, watcher?: Watcher): Promise<{ data: Uint8Array; stat: Stat }> {
    const r = await this.call({ getData: { path, watch: watcher !== undefined } });
    if (watcher) this.addWatcher(this.dataWatches, path, watcher);
    return { data: r.data?.data ?? new Uint8Array(0), stat: statFrom(r.data?.stat) };
  }

  async setData(path: string, data: Uint8Array | string, version = -1): Promise<Stat> {
    const r = await this.call({ setData: { path, data: bytes(data), version } });
    return statFrom(r.stat?.stat);
  }

  async getACL(path: string): Promise<{ acl: Acl[]; stat: Stat }> {
    const r = await this.call({ getAcl: { path } });
    return { acl: aclFrom(r.acl?.acl), stat: statFrom(r.acl?.stat) };
  }

  async setACL(path: string, acl: Acl[], version = -1): Promise<Stat> {
    const r = await this.call({ setAcl: { path, acl, version } });
    return statFrom(r.stat?.stat);
  }

  async getChildren(path: string, watcher?: Watcher): Promise<string[]> {
    const r = await this.call({ getChildren: { path, watch: watcher !== undefined } });
    if (watcher) this.addWatcher(this.childWatches, path, watcher);
    return r.children?.children ?? [];
  }

  async getChildren2(path: string, watcher?: Watcher): Promise<{ children: string[]; stat: Stat }> {
    const r = await this.call({ getChildren2: { path, watch: watcher !== undefined } });
    if (watcher) this.addWatcher(this.childWatches, path, watcher);
    return { children: r.children?.children ?? [], stat: statFrom(r.children?.stat) };
  }

  async getAllChildrenNumber(path: string): Promise<number> {
    return (await this.call({ getAllChildrenNumber: { path } })).count?.count ?? 0;
  }

  async getEphemerals(prefix = '/'): Promise<string[]> {
    return (await this.call({ getEphemerals: { prefix } })).paths?.paths ?? [];
  }

  async sync(path: string): Promise<string> {
    return (await this.call({ sync: { path } })).path?.path ?? '';
  }

  private static ops(ops: OpSpec[]): POp[] {
    return ops.map((o): POp => {
      switch (o.op) {
        case 'create': {
          const mode = o.mode ?? 0;
          const b = createOp(o.path, o.data, o.acl, mode, o.ttl);
          return mode === 4 ? { createContainer: b } : mode === 5 || mode === 6 ? { createTtl: b } : { create: b };
        }
        case 'delete':
          return { delete: { path: o.path, version: o.version ?? -1 } };
        case 'setData':
          return { setData: { path: o.path, data: bytes(o.data), version: o.version ?? -1 } };
        case 'check':
          return { check: { path: o.path, version: o.version } };
        case 'getData':
          return { getData: { path: o.path } };
        case 'getChildren':
          return { getChildren: { path: o.path } };
      }
    });
  }

  /** An atomic transaction; rejects with a MultiError (holding every result) if any operation fails. */
  async multi(ops: OpSpec[]): Promise<OpResult[]> {
    const r = await this.call({ multi: { ops: CorralClient.ops(ops) } });
    const results = (r.multi?.results ?? []).map(opResultFrom);
    const failed = results.find((x) => x.err !== 0 && x.err !== Err.RUNTIMEINCONSISTENCY) ?? results.find((x) => x.err !== 0);
    if (failed !== undefined) throw new MultiError(failed.err, results);
    return results;
  }

  /** Several reads answered together; each result carries its own error code. */
  async multiRead(ops: OpSpec[]): Promise<OpResult[]> {
    const r = await this.call({ multiRead: { ops: CorralClient.ops(ops) } });
    return (r.multi?.results ?? []).map(opResultFrom);
  }

  /** A persistent (optionally recursive) watch: `watcher` sees every event until removed. */
  async addWatch(path: string, watcher: Watcher, o: { recursive?: boolean } = {}): Promise<void> {
    await this.call({ addWatch: { path, mode: o.recursive ? 1 : 0 } });
    this.addWatcher(o.recursive ? this.recursiveWatches : this.persistentWatches, path, watcher);
  }

  /**
   * Removes watches of `type` (WatcherType: 1 children, 2 data, 3 any, 4 persistent,
   * 5 recursive) on `path` at the server, and every local watcher of that kind.
   */
  async removeWatches(path: string, type: number): Promise<void> {
    await this.call({ removeWatches: { path, type } });
    const drop = (m: Map<string, Set<Watcher>>) => m.delete(path);
    if (type === 1 || type === 3) drop(this.childWatches);
    if (type === 2 || type === 3) {
      drop(this.dataWatches);
      drop(this.existWatches);
    }
    if (type === 4 || type === 3) drop(this.persistentWatches);
    if (type === 5 || type === 3) drop(this.recursiveWatches);
  }

  /** Resolves if the server holds a watch of `type` on `path`; rejects with NOWATCHER otherwise. */
  async checkWatches(path: string, type: number): Promise<void> {
    await this.call({ checkWatches: { path, type } });
  }

  /** Events under `path` as an async iterator (a persistent watch, removed when the loop ends). */
  watch(path: string, o: { recursive?: boolean } = {}): AsyncIterableIterator<WatchEvent> {
    const queue: WatchEvent[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    const watcher: Watcher = (e) => {
      queue.push(e);
      wake?.();
    };
    const started = this.addWatch(path, watcher, o);
    const it: AsyncIterableIterator<WatchEvent> = {
      [Symbol.asyncIterator]: () => it,
      next: async () => {
        await started;
        while (queue.length === 0 && !done && !this.isDead()) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        if (queue.length > 0) return { value: queue.shift()!, done: false };
        return { value: undefined, done: true };
      },
      return: async () => {
        done = true;
        wake?.();
        const m = o.recursive ? this.recursiveWatches : this.persistentWatches;
        const s = m.get(path);
        s?.delete(watcher);
        if (s !== undefined && s.size === 0) {
          m.delete(path);
          await this.call({ removeWatches: { path, type: o.recursive ? 5 : 4 } }).catch(() => {});
        }
        return { value: undefined, done: true };
      },
    };
    return it;
  }

  /** Adds credentials to the session (re-sent after a reconnect); rejects with AUTHFAILED. */
  async addAuth(scheme: string, auth: Uint8Array | string): Promise<void> {
    const a = { scheme, auth: bytes(auth) };
    await this.call({ auth: a });
    this.auths.push(a);
  }

  async whoAmI(): Promise<{ scheme: string; user: string }[]> {
    const r = await this.call({ whoAmI: {} });
    return (r.whoAmI?.clients ?? []).map((c) => ({ scheme: c.authScheme ?? '', user: c.user ?? '' }));
  }

  /** A round trip to the server; resolves with the time it took (ms). */
  async ping(): Promise<number> {
    const t = Date.now();
    await this.call({ ping: {} });
    return Date.now() - t;
  }

  /** Closes the session (its ephemerals go) and the connection. */
  async close(): Promise<void> {
    if (this.isDead()) return;
    this.closing = true;
    if (this.conn !== null) {
      const bye = this.request({ close: {} }).catch(() => undefined);
      await Promise.race([bye, new Promise((r) => setTimeout(r, 2000))]);
    }
    this.die('closed', Err.CONNECTIONLOSS);
  }

  /** Drops the connection without closing the session (it resumes on the next server). */
  disconnect(): void {
    const c = this.conn;
    if (c === null) return;
    this.lost('disconnect requested');
    c.close();
  }
}
