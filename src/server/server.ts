import { createServer, type Server as NetServer } from 'node:net';
import { authenticate } from '../acl/auth.js';
import type { CorralConfig, ServerSpec } from '../config/types.js';
import { Err, KeeperError, OpCode } from '../protocol/constants.js';
import { JuteError, JuteReader } from '../protocol/jute.js';
import { isWriteOp, readConnectRequest, readRequestBody, type RequestBody } from '../protocol/records.js';
import { checkPassword, initialSessionId, sessionPassword } from '../session/password.js';
import { SessionTracker } from '../session/tracker.js';
import { apply, DataTree, ttlOf } from '../tree/datatree.js';
import { replay } from '../storage/recovery.js';
import type { Id } from '../tree/types.js';
import type { ApplyResult, Txn } from '../tree/types.js';
import { type ClientSocket, Connection, type ConnectionHost, hex, type QueuedRequest } from './connection.js';
import { executeRead, type FinalContext, replyWrite } from './final.js';
import { runFourLetterWord } from './fourletter.js';
import type { Logger } from './log.js';
import { Prep } from './prep.js';
import { ServerStats } from './stats.js';
import { WatchManager } from './watches.js';

// The standalone server: TCP connections in, and one request pipeline:
//   prep (validate, assign zxid) -> log (group commit) -> apply -> reply.
// Reads skip the log but wait behind their own session's pending writes. The same
// stages serve the leader and followers later; only where txns come from differs.

/** Where prepared txns go to become durable (storage, or a quorum). */
export interface TxnLog {
  /** Resolves once the whole batch is durable. */
  append(txns: Txn[]): Promise<void>;
  close(): Promise<void>;
  /**
   * Batches that may be in flight at once. 1 (the default): the next batch forms while
   * one is written. A quorum log pipelines several; appends must then resolve in order.
   */
  readonly maxInFlight?: number;
}

/** A quorum log rejects with this when this server stopped leading: nothing to report. */
export class QuorumLostError extends Error {}

/** What a learner (follower or observer) asks of its leader on behalf of clients. */
export interface EnsembleLink {
  /** A write, createSession (op -10, with timeout) or closeSession to be prepared by the leader. */
  forward(req: { sessionId: bigint; cxid: number; op: number; body: Buffer; authIds: Id[]; timeout?: number }): void;
  /** A sync: the leader answers with the zxid to catch up to (syncReply). */
  sync(sessionId: bigint, cxid: number): void;
}

/** Whether and how the server takes client requests. */
export type ServingMode = 'standalone' | 'leader' | 'learner' | null;

/** No persistence: for tests that do not care about restarts. */
export class MemoryTxnLog implements TxnLog {
  async append(): Promise<void> {}
  async close(): Promise<void> {}
}

interface Proposal {
  txn: Txn;
  conn: Connection | null;
  item: QueuedRequest | null;
  /** Extra work once the txn is in the tree (finishing a handshake, closing a session). */
  after?: (r: ApplyResult) => void;
}

// Request.isValid: check (13) is valid only inside a multi, so alone it is UNIMPLEMENTED.
export const LISTEN_BACKLOG = 4096;

const VALID_OPS = new Set<number>([
  OpCode.create, OpCode.delete, OpCode.exists, OpCode.getData, OpCode.setData, OpCode.getACL,
  OpCode.setACL, OpCode.getChildren, OpCode.sync, OpCode.ping, OpCode.getChildren2,
  OpCode.multi, OpCode.create2, OpCode.reconfig, OpCode.checkWatches, OpCode.removeWatches,
  OpCode.createContainer, OpCode.createTTL, OpCode.multiRead, OpCode.setWatches, OpCode.getEphemerals,
  OpCode.getAllChildrenNumber, OpCode.setWatches2, OpCode.addWatch, OpCode.whoAmI, OpCode.closeSession,
  OpCode.deleteContainer, // valid from clients too in 3.9 (a DeleteContainerRequest)
]);

export interface ServerOptions {
  logger: Logger;
  txnLog?: TxnLog;
  tree?: DataTree;
  /** Server id used in session ids; 1 in standalone, as ZooKeeper does. */
  serverId?: number;
  /** Called after each applied batch with its size (snapshot scheduling). */
  onCommitted?: (txns: number) => void;
  /** Ensemble member: starts not serving; the quorum peer switches it on and off. */
  ensemble?: EnsembleLink;
}

interface PendingSync {
  conn: Connection;
  item: QueuedRequest;
  zxid: number;
}

export class CorralServer implements ConnectionHost, FinalContext {
  readonly tree: DataTree;
  readonly watches = new WatchManager();
  readonly prep: Prep;
  tracker: SessionTracker;
  readonly stats = new ServerStats();
  readonly connections = new Set<Connection>();
  /** sessionId -> the connection that currently holds it. */
  readonly sessionConns = new Map<bigint, Connection>();
  readonly maxFrame: number;
  readonly startedAt = Date.now();
  /** Set once the server takes part in a quorum (leader/follower/observer); 4lw report "standalone" until then. */
  role?: string;
  /** Ensemble member: its id and the server lines (for conf). */
  quorum?: { myid: number; servers: ServerSpec[] };
  /** Ensemble leader's gauges for mntr (set by the quorum peer). */
  quorumStats?: () => { learners: number; syncedFollowers: number; syncedObservers: number; pendingSyncs: number };
  /** null: an ensemble member between roles; client sessions are refused. */
  serving: ServingMode = 'standalone';
  /** Ensemble: txns up to here may already be in the tree (fuzzy snapshot): replay them. */
  fuzzyEnd = 0;
  private readonly ensemble?: EnsembleLink;
  /** Learner: sessions asked of the leader, by id, until their createSession commits. */
  private readonly pendingHandshakes = new Map<bigint, Connection>();
  private pendingSyncs: PendingSync[] = [];
  /** Learner: sessions with activity since the last report to the leader. */
  private touched = new Map<bigint, number>();
  /** Bumped whenever the pipeline is reset, so late completions of old batches are dropped. */
  private generation = 0;
  private inFlight = 0;
  private txnLog: TxnLog;
  private readonly onCommitted?: (txns: number) => void;
  private nextSessionId: bigint;
  private net: NetServer | null = null;
  private readonly dirty = new Set<Connection>();
  private flushScheduled = false;
  private batch: Proposal[] = [];
  private logBusy = false;
  private outstanding = 0;
  private readonly throttled = new Set<Connection>();
  private readonly perIp = new Map<string, number>();
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  readonly log: Logger;

  constructor(
    readonly config: CorralConfig,
    opts: ServerOptions,
  ) {
    this.log = opts.logger;
    this.tree = opts.tree ?? new DataTree();
    this.txnLog = opts.txnLog ?? new MemoryTxnLog();
    this.maxFrame = config.juteMaxBuffer;
    const now = Date.now();
    this.tracker = new SessionTracker(config.tickTime, now);
    // Sessions recovered from disk get their timeout afresh, as in ZooKeeper.
    for (const [id, timeout] of this.tree.sessions) this.tracker.add(id, timeout, now);
    this.onCommitted = opts.onCommitted;
    this.ensemble = opts.ensemble;
    if (opts.ensemble !== undefined) this.serving = null;
    // Never reuse a recovered session's id, even if the clock went backwards.
    let next = initialSessionId(opts.serverId ?? 1, now);
    for (const id of this.tree.sessions.keys()) if (id >= next && id >> 56n === next >> 56n) next = id + 1n;
    this.nextSessionId = next;
    this.prep = new Prep(this.tree, {
      extendedTypesEnabled: config.extendedTypesEnabled,
      sessionValid: (id) => {
        const s = this.tracker.get(id);
        return s !== undefined && !s.closing;
      },
      now: () => Date.now(),
    });
  }

  /** Starts the timers and, unless `listen` is false (threaded mode), the listener. */
  async start(listen = true): Promise<{ host: string; port: number }> {
    if (!listen) {
      this.startTimers();
      return { host: this.config.clientPortAddress, port: this.config.clientPort };
    }
    const net = createServer({ noDelay: true }, (s) => this.accept(s));
    this.net = net;
    await new Promise<void>((resolve, reject) => {
      net.once('error', reject);
      // A deep accept queue: with Node's default (511) a connection storm overflows it and
      // the overflowing clients wait a full SYN retransmission (1 s). The kernel caps it.
      net.listen({ port: this.config.clientPort, host: this.config.clientPortAddress, backlog: LISTEN_BACKLOG }, () => {
        net.off('error', reject);
        resolve();
      });
    });
    net.on('error', (e) => this.log('ERROR', `listener: ${e.message}`));
    const addr = net.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : this.config.clientPort;
    this.startTimers();
    return { host: this.config.clientPortAddress, port };
  }

  private startTimers(): void {
    this.scheduleTick();
    const reap = setInterval(() => this.reapContainers(), this.config.containerCheckIntervalMs);
    reap.unref();
    this.timers.push(reap);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    const closed = new Promise<void>((r) => (this.net ? this.net.close(() => r()) : r()));
    for (const c of [...this.connections]) c.close();
    await closed;
    // Let a batch that is being made durable finish before the log closes.
    while (this.logBusy) await new Promise((r) => setTimeout(r, 5));
    await this.txnLog.close();
  }

  // --- connections ---------------------------------------------------------------

  accept(socket: ClientSocket): void {
    const conn = new Connection(socket, this);
    const max = this.config.maxClientCnxns;
    const n = (this.perIp.get(conn.remoteIp) ?? 0) + 1;
    this.perIp.set(conn.remoteIp, n);
    this.connections.add(conn);
    if (max > 0 && n > max) {
      conn.fail(`too many connections from ${conn.remoteIp} - max is ${max}`);
    }
  }

  onClose(conn: Connection): void {
    if (!this.connections.delete(conn)) return;
    const n = (this.perIp.get(conn.remoteIp) ?? 1) - 1;
    if (n <= 0) this.perIp.delete(conn.remoteIp);
    else this.perIp.set(conn.remoteIp, n);
    this.watches.removeWatcher(conn);
    if (this.sessionConns.get(conn.sessionId) === conn) this.sessionConns.delete(conn.sessionId);
    this.throttled.delete(conn);
    this.dirty.delete(conn);
    // Requests this connection will never be answered for stop counting as outstanding
    // now (writes still in the pipeline are released when they commit).
    let unanswered = 0;
    for (const item of conn.queue) if (!item.write || item.done) unanswered++;
    if (unanswered > 0) this.release(unanswered);
  }

  /** `n` requests are no longer outstanding: resume throttled connections once below the limit. */
  private release(n: number): void {
    this.outstanding -= n;
    if (this.throttled.size > 0 && this.outstanding <= this.config.globalOutstandingLimit) {
      for (const c of this.throttled) c.resume();
      this.throttled.clear();
    }
  }

  markDirty(conn: Connection): void {
    this.dirty.add(conn);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flushAll());
    }
  }

  private flushAll(): void {
    this.flushScheduled = false;
    for (const c of this.dirty) c.flush();
    this.dirty.clear();
  }

  /** ConnectionHost: the one line logged when a connection is dropped. */
  warn(msg: string): void {
    this.log('WARN', msg);
  }

  onFourLetterWord(conn: Connection, word: string, rest: Buffer): void {
    const allowed = this.config.fourLetterWords;
    // As in ZooKeeper, srvr is always enabled (zkServer.sh uses it), and isro with read-only mode.
    const enabled =
      allowed.includes('*') || allowed.includes(word) || word === 'srvr' || (word === 'isro' && this.config.readonlyModeEnabled);
    // Counted before the command runs, so that it sees its own packet (packetReceived(4)).
    this.stats.packetsReceived++;
    conn.packetsReceived++;
    let text: string;
    if (!enabled) {
      text = `${word} is not executed because it is not in the whitelist.\n`;
    } else {
      text = runFourLetterWord(word, this, { conn, rest });
    }
    conn.socket.end(text);
    conn.state = 'closed';
    this.onClose(conn);
  }

  onConnect(conn: Connection, frame: JuteReader): void {
    const req = readConnectRequest(frame);
    conn.readOnlyByte = req.readOnly !== undefined;
    if (this.serving === null) {
      // ZooKeeper closes the socket when its ZooKeeperServer is not running: the client tries the next server.
      conn.fail(`refusing session from ${conn.label}: this server is not serving (${this.role ?? 'looking'} for a leader)`);
      return;
    }
    if (req.lastZxidSeen > this.tree.lastZxid) {
      conn.fail(
        `refusing session 0x${hex(req.sessionId)}: client has seen zxid 0x${req.lastZxidSeen.toString(16)}, ` +
          `our last zxid is 0x${this.tree.lastZxid.toString(16)}; client must try another server`,
      );
      return;
    }
    const timeout = Math.min(Math.max(req.timeOut, this.config.minSessionTimeout), this.config.maxSessionTimeout);
    conn.sessionTimeout = timeout;
    const now = Date.now();
    if (req.sessionId === 0n) {
      const id = this.nextSessionId;
      this.nextSessionId = BigInt.asIntN(64, id + 1n);
      conn.sessionId = id;
      if (this.serving === 'learner') {
        // Global sessions: the leader decides, through the log (createSession commits here too).
        this.pendingHandshakes.set(id, conn);
        this.ensemble!.forward({ sessionId: id, cxid: 0, op: OpCode.createSession, body: Buffer.alloc(0), authIds: [], timeout });
        return;
      }
      this.tracker.add(id, timeout, now);
      this.propose({
        txn: this.prep.prepareCreateSession(id, timeout),
        conn: null,
        item: null,
        after: () => this.finishHandshake(conn, true),
      });
      return;
    }
    const id = req.sessionId;
    const s = this.tracker.get(id);
    // processConnectRequest closes the session's current connection before it checks
    // the session and the password (reopenSession): even a refused reconnect drops it.
    const old = this.sessionConns.get(id);
    if (old !== undefined && old !== conn) old.close();
    conn.sessionId = id;
    // A learner knows sessions from the replicated tree; the leader's tracker decides expiry.
    const known = this.serving === 'learner' ? this.tree.sessions.has(id) : s !== undefined && !s.closing;
    if (!known) {
      this.log('INFO', `client ${conn.label} tried to renew session 0x${hex(id)}, which has expired`);
      this.finishHandshake(conn, false);
      return;
    }
    if (!checkPassword(id, req.passwd)) {
      this.log('WARN', `incorrect password from ${conn.label} for session 0x${hex(id)}`);
      this.finishHandshake(conn, false);
      return;
    }
    this.tracker.add(id, timeout, now);
    if (this.serving === 'learner') this.touched.set(id, timeout);
    this.finishHandshake(conn, true);
  }

  private finishHandshake(conn: Connection, valid: boolean): void {
    if (conn.state === 'closed') return;
    const w = conn.out;
    const at = w.beginFrame();
    w.int(0);
    w.int(valid ? conn.sessionTimeout : 0);
    w.long(valid ? conn.sessionId : 0n);
    w.buffer(valid ? sessionPassword(conn.sessionId) : Buffer.alloc(16));
    if (conn.readOnlyByte) w.bool(false);
    w.endFrame(at);
    conn.packetsSent++;
    if (!valid) {
      conn.closeAfterFlush();
      return;
    }
    this.sessionConns.set(conn.sessionId, conn);
    this.markDirty(conn);
    conn.connected();
  }

  onRequest(conn: Connection, frame: JuteReader): void {
    const xid = frame.int();
    const op = frame.int();
    const bodyStart = frame.pos;
    const now = Date.now();
    this.stats.packetsReceived++;
    conn.lastCxid = xid;
    if (op === OpCode.auth) return this.onAuth(conn, xid, frame);
    if (op === OpCode.sasl) {
      // No SASL server is configured: ZooKeeper answers OK with no token.
      const at = conn.beginReply(xid, 0, 0);
      conn.out.int(-1); // SetSASLResponse{token: null}, inside the frame
      conn.endReply(at);
      return;
    }
    if (!VALID_OPS.has(op)) {
      this.log('WARN', `received packet of unknown type ${op} from ${conn.label}`);
      // UnimplementedRequestProcessor answers with the request's zxid, -1 before prep.
      conn.endReply(conn.beginReply(xid, -1, Err.UNIMPLEMENTED));
      conn.closeAfterFlush();
      return;
    }
    let body: RequestBody | null = null;
    let err = 0;
    try {
      body = readRequestBody(op, frame);
      if (op === OpCode.multiRead && (body as { ops: RequestBody[] }).ops.some((o) => o.op !== OpCode.getData && o.op !== OpCode.getChildren)) {
        err = Err.MARSHALLINGERROR;
        // Reads mixed with writes fail to deserialize: header only. Writes alone fail in
        // FinalRequestProcessor after it made an empty MultiResponse, which goes out too.
        if ((body as { ops: RequestBody[] }).ops.some((o) => o.op === OpCode.getData || o.op === OpCode.getChildren)) body = null;
      }
    } catch (e) {
      if (!(e instanceof JuteError)) throw e;
      err = Err.MARSHALLINGERROR;
    }
    this.tracker.touch(conn.sessionId, now);
    if (this.serving === 'learner') this.touched.set(conn.sessionId, conn.sessionTimeout);
    this.outstanding++;
    if (this.outstanding > this.config.globalOutstandingLimit) {
      conn.pause();
      this.throttled.add(conn);
    }
    const write = err === 0 && isWriteOp(op);
    // In an ensemble a sync waits, like a write, for the leader's quorum check (and, on a
    // learner, for the leader's commits): reads behind it wait too.
    const quorumSync = err === 0 && op === OpCode.sync && (this.serving === 'learner' || (this.serving === 'leader' && this.ensemble !== undefined));
    const item: QueuedRequest = { xid, op, frame: null, body, write: write || quorumSync, received: now, done: false };
    if (err !== 0) item.result = err;
    if (!item.write && conn.queue.length === 0) {
      this.answer(conn, item);
      return;
    }
    conn.queue.push(item);
    if (!item.write) return;
    if (quorumSync) {
      this.ensemble!.sync(conn.sessionId, xid);
      return;
    }
    if (this.serving === 'learner') {
      if (op === OpCode.closeSession) this.tracker.setClosing(conn.sessionId);
      const bodyBytes = Buffer.from(frame.buf.subarray(bodyStart, frame.end));
      this.ensemble!.forward({ sessionId: conn.sessionId, cxid: xid, op, body: bodyBytes, authIds: [...conn.authIds] });
      return;
    }
    let txn: Txn;
    if (op === OpCode.closeSession) {
      this.tracker.setClosing(conn.sessionId);
      txn = this.prep.prepareClose(conn.sessionId, xid);
    } else if (op === OpCode.reconfig) {
      txn = this.errorTxn(conn, xid, Err.RECONFIGDISABLED);
    } else {
      txn = this.prep.prepare({ sessionId: conn.sessionId, cxid: xid, op, body: body!, authIds: conn.authIds });
    }
    this.propose({ txn, conn, item, after: op === OpCode.closeSession ? () => this.sessionClosed(conn.sessionId) : undefined });
  }

  private errorTxn(conn: Connection, xid: number, err: number): Txn {
    return { zxid: ++this.prep.zxid, time: Date.now(), sessionId: conn.sessionId, cxid: xid, op: { type: 'error', err } };
  }

  private onAuth(conn: Connection, xid: number, frame: JuteReader): void {
    let ids = null;
    let scheme = '?';
    try {
      frame.int(); // type, unused
      scheme = frame.string();
      const auth = frame.buffer() ?? Buffer.alloc(0);
      ids = authenticate(scheme, auth, { superDigest: this.config.superDigest }, conn.remoteIp);
    } catch (e) {
      if (!(e instanceof JuteError)) throw e;
    }
    if (ids === null) {
      this.log('WARN', `authentication failed for scheme ${scheme} from ${conn.label}`);
      conn.endReply(conn.beginReply(xid, 0, Err.AUTHFAILED)); // the request's xid, as processPacket does
      conn.closeAfterFlush();
      return;
    }
    for (const id of ids)
      if (!conn.authIds.some((x) => x.scheme === id.scheme && x.id === id.id)) conn.authIds = [...conn.authIds, id];
    conn.endReply(conn.beginReply(xid, 0, 0));
  }

  /** Replies to a request whose turn has come (reads run now; writes are applied). */
  private answer(conn: Connection, item: QueuedRequest): void {
    this.outstanding--;
    if (typeof item.result === 'number') {
      const at = conn.beginReply(item.xid, this.tree.lastZxid, item.result);
      if (item.op === OpCode.multiRead && item.body !== null) conn.out.int(-1).bool(true).int(-1); // empty MultiResponse
      conn.endReply(at);
    } else if (item.write && item.op !== OpCode.sync) {
      replyWrite(this, conn, item.xid, item.op, item.result as ApplyResult);
    } else {
      executeRead(this, conn, item.xid, item.op, item.body as RequestBody);
    }
    const latency = Date.now() - item.received;
    this.stats.recordLatency(latency);
    conn.recordLatency(item.op, latency, this.tree.lastZxid);
    if (this.throttled.size > 0 && this.outstanding <= this.config.globalOutstandingLimit) {
      for (const c of this.throttled) c.resume();
      this.throttled.clear();
    }
  }

  /** Answers what is at the head of a session's queue, up to its next unapplied write. */
  private drain(conn: Connection): void {
    const q = conn.queue;
    while (q.length > 0) {
      const head = q[0];
      if (head.write && !head.done) return;
      q.shift();
      this.answer(conn, head);
      if (head.op === OpCode.closeSession) {
        conn.closeAfterFlush();
        return;
      }
    }
  }

  // --- the log stage: group commit -----------------------------------------------

  propose(p: Proposal): void {
    this.batch.push(p);
    if (!this.logBusy) this.writeBatch();
  }

  /**
   * Batches go to the log one at a time (or up to maxInFlight at a time for a quorum);
   * what arrives meanwhile forms the next batch.
   */
  private writeBatch(): void {
    if (this.batch.length === 0) return;
    const b = this.batch;
    this.batch = [];
    this.logBusy = true;
    const gen = this.generation;
    // Give the rest of this turn's requests a chance to join the batch.
    queueMicrotask(() => {
      if (gen !== this.generation) return;
      const more = this.batch;
      this.batch = [];
      const all = more.length > 0 ? b.concat(more) : b;
      this.inFlight++;
      const pipelined = this.inFlight < (this.txnLog.maxInFlight ?? 1);
      this.txnLog.append(all.map((p) => p.txn)).then(
        () => {
          if (gen !== this.generation) return;
          this.inFlight--;
          if (!pipelined) this.logBusy = false;
          this.commit(all);
          if (!this.logBusy) this.writeBatch();
        },
        (e: Error) => {
          if (e instanceof QuorumLostError || gen !== this.generation) return;
          this.log('ERROR', `transaction log failed, stopping: ${e.message}`);
          process.exitCode = 1;
          void this.stop();
        },
      );
      if (pipelined) {
        this.logBusy = false;
        this.writeBatch();
      }
    });
  }

  /** Applies a durable batch in zxid order and releases the replies behind it. */
  private commit(batch: Proposal[]): void {
    for (const p of batch) {
      const r = apply(this.tree, p.txn);
      this.prep.applied(p.txn.zxid);
      for (const e of r.events) this.watches.trigger(e);
      p.after?.(r);
      if (p.item !== null && p.conn !== null) {
        p.item.result = r;
        p.item.done = true;
        if (p.conn.state === 'closed') this.release(1);
        else this.drain(p.conn);
      }
    }
    if (this.pendingSyncs.length > 0) this.checkSyncs();
    this.onCommitted?.(batch.length);
  }

  // --- ensemble: the quorum peer drives these -------------------------------------

  /** Swaps in another tree (a learner installed its leader's snapshot). */
  replaceTree(tree: DataTree): void {
    Object.assign(this.tree, tree);
  }

  /**
   * Starts taking client sessions in a role. A leader prepares from its tree with zxids
   * of its new epoch, and its tracker, rebuilt from the replicated session table, gives
   * every session its timeout afresh (as ZooKeeper's new leader does).
   */
  startServing(mode: 'leader' | 'learner', role: string, firstZxid = 0): void {
    this.resetPipeline();
    this.serving = mode;
    this.role = role;
    const now = Date.now();
    this.tracker = new SessionTracker(this.config.tickTime, now);
    for (const [id, timeout] of this.tree.sessions) this.tracker.add(id, timeout, now);
    if (mode === 'leader') this.prep.reset(firstZxid);
    if (this.timers[0] !== undefined) clearTimeout(this.timers[0]);
    this.scheduleTick();
  }

  /** Stops serving (lost the leader or the quorum): every client is told by a closed socket. */
  stopServing(role: string): void {
    const was = this.serving;
    this.serving = null;
    this.role = role;
    this.resetPipeline();
    if (was !== null) this.log('INFO', `not serving clients while ${role}: closing ${this.connections.size} client connection(s)`);
  }

  private resetPipeline(): void {
    this.generation++;
    this.batch = [];
    this.logBusy = false;
    this.inFlight = 0;
    // Connections still in 'handshake' have sent nothing yet (or are four-letter words).
    for (const c of [...this.connections]) if (c.state !== 'closed' && c.state !== 'handshake') c.close();
    this.pendingHandshakes.clear();
    this.pendingSyncs = [];
    this.touched.clear();
    this.outstanding = 0;
    this.throttled.clear();
  }

  /** Sets the log a leader proposes through (and back to none when not leading). */
  setTxnLog(log: TxnLog): void {
    this.txnLog = log;
  }

  /**
   * A committed txn that did not come through this server's own batches: everything on
   * a learner, and a new leader's catch-up. Applied, then matched to the request waiting
   * for it by session and cxid.
   */
  applyCommitted(txn: Txn): void {
    if (txn.zxid <= this.tree.lastZxid) return;
    if (txn.zxid <= this.fuzzyEnd) {
      replay(this.tree, txn);
      this.onCommitted?.(1);
      return;
    }
    const r = apply(this.tree, txn);
    this.prep.applied(txn.zxid);
    for (const e of r.events) this.watches.trigger(e);
    const op = txn.op;
    if (op.type === 'createSession') {
      const conn = this.pendingHandshakes.get(txn.sessionId);
      if (conn !== undefined) {
        this.pendingHandshakes.delete(txn.sessionId);
        this.tracker.add(txn.sessionId, op.timeout, Date.now());
        this.touched.set(txn.sessionId, op.timeout);
        this.finishHandshake(conn, true);
      }
    } else {
      const conn = this.sessionConns.get(txn.sessionId);
      if (conn !== undefined) {
        const item = conn.queue.find((q) => q.write && !q.done && q.op !== OpCode.sync);
        if (item !== undefined && item.xid === txn.cxid && !(op.type === 'closeSession' && item.op !== OpCode.closeSession)) {
          item.result = r;
          item.done = true;
        }
      }
      if (op.type === 'closeSession') this.sessionClosed(txn.sessionId);
      if (conn !== undefined && conn.state !== 'closed') this.drain(conn);
    }
    if (this.pendingSyncs.length > 0) this.checkSyncs();
    this.onCommitted?.(1);
  }

  /** Leader: a learner forwarded a client request; prepare and propose it like our own. */
  submitForwarded(req: { sessionId: bigint; cxid: number; op: number; body: Buffer; authIds: Id[]; timeout?: number }): void {
    if (this.serving !== 'leader') return;
    const now = Date.now();
    if (req.op === OpCode.createSession) {
      const timeout = req.timeout ?? this.config.minSessionTimeout;
      this.tracker.add(req.sessionId, timeout, now);
      this.propose({ txn: this.prep.prepareCreateSession(req.sessionId, timeout), conn: null, item: null });
      return;
    }
    this.tracker.touch(req.sessionId, now);
    let txn: Txn;
    if (req.op === OpCode.closeSession) {
      this.tracker.setClosing(req.sessionId);
      txn = this.prep.prepareClose(req.sessionId, req.cxid);
      this.propose({ txn, conn: null, item: null, after: () => this.sessionClosed(req.sessionId) });
      return;
    }
    if (req.op === OpCode.reconfig) {
      txn = { zxid: ++this.prep.zxid, time: now, sessionId: req.sessionId, cxid: req.cxid, op: { type: 'error', err: Err.RECONFIGDISABLED } };
    } else {
      let body: RequestBody;
      try {
        body = readRequestBody(req.op, new JuteReader(req.body));
      } catch (e) {
        if (!(e instanceof JuteError)) throw e;
        // The learner parsed it before forwarding; a body that fails here is a bug or damage.
        this.log('WARN', `forwarded request 0x${hex(req.sessionId)}/${req.cxid} op ${req.op} does not parse: ${e.message}`);
        txn = { zxid: ++this.prep.zxid, time: now, sessionId: req.sessionId, cxid: req.cxid, op: { type: 'error', err: Err.MARSHALLINGERROR } };
        this.propose({ txn, conn: null, item: null });
        return;
      }
      txn = this.prep.prepare({ sessionId: req.sessionId, cxid: req.cxid, op: req.op, body, authIds: req.authIds });
    }
    this.propose({ txn, conn: null, item: null });
  }

  /** Leader: sessions a learner saw activity on. */
  touchSessions(sessions: { id: bigint; timeout: number }[]): void {
    const now = Date.now();
    for (const s of sessions) this.tracker.touch(s.id, now);
  }

  /** Learner: sessions with activity since the last call (sent to the leader every tick). */
  takeTouched(): { id: bigint; timeout: number }[] {
    const out: { id: bigint; timeout: number }[] = [];
    for (const [id, timeout] of this.touched) out.push({ id, timeout });
    this.touched.clear();
    return out;
  }

  /** Learner: the leader answered a sync; reply once the tree has caught up to zxid. */
  syncReply(sessionId: bigint, cxid: number, zxid: number): void {
    const conn = this.sessionConns.get(sessionId);
    if (conn === undefined) return;
    const item = conn.queue.find((q) => q.op === OpCode.sync && q.write && !q.done && q.xid === cxid);
    if (item === undefined) return;
    this.pendingSyncs.push({ conn, item, zxid });
    this.checkSyncs();
  }

  private checkSyncs(): void {
    const ready = this.pendingSyncs.filter((s) => s.zxid <= this.tree.lastZxid);
    if (ready.length === 0) return;
    this.pendingSyncs = this.pendingSyncs.filter((s) => s.zxid > this.tree.lastZxid);
    for (const s of ready) {
      s.item.done = true;
      s.item.write = false;
      if (s.conn.state !== 'closed') this.drain(s.conn);
    }
  }

  get pendingSyncCount(): number {
    return this.pendingSyncs.length;
  }

  private sessionClosed(id: bigint): void {
    this.tracker.remove(id);
    const c = this.sessionConns.get(id);
    this.sessionConns.delete(id);
    // An expired session's connection is closed; the client learns on reconnect.
    if (c !== undefined && c.queue.length === 0) c.closeAfterFlush();
  }

  // --- timers ----------------------------------------------------------------------

  private scheduleTick(): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.expireSessions();
      this.scheduleTick();
    }, Math.max(1, this.tracker.msUntilNext(Date.now())));
    t.unref();
    this.timers[0] = t;
  }

  private expireSessions(): void {
    // In an ensemble only the leader expires sessions (through the log).
    if (this.serving !== 'standalone' && this.serving !== 'leader') return;
    for (const s of this.tracker.expire(Date.now())) {
      this.log('INFO', `expiring session 0x${hex(s.id)}, timeout of ${s.timeout}ms exceeded`);
      this.propose({
        txn: this.prep.prepareClose(s.id, 0),
        conn: null,
        item: null,
        after: () => this.sessionClosed(s.id),
      });
    }
  }

  /** ContainerManager: empty containers that once had children, and expired TTL nodes. */
  reapContainers(): void {
    if (this.serving !== 'standalone' && this.serving !== 'leader') return;
    const now = Date.now();
    const limit = Math.max(1, Math.ceil((this.config.containerMaxPerMinute * this.config.containerCheckIntervalMs) / 60000));
    const candidates: string[] = [];
    for (const p of this.tree.containers) {
      const n = this.tree.get(p);
      if (n !== undefined && n.numChildren === 0 && n.cversion > 0) candidates.push(p);
    }
    for (const p of this.tree.ttls) {
      const n = this.tree.get(p);
      if (n === undefined || n.numChildren > 0) continue;
      const ttl = ttlOf(n.ephemeralOwner);
      if (ttl !== 0 && now - n.mtime > ttl) candidates.push(p);
    }
    for (const p of candidates.slice(0, limit)) {
      this.propose({ txn: this.prep.prepareDeleteContainer(p), conn: null, item: null });
    }
  }

  /** The port the listener is bound to (clientPort, or the one the OS chose for clientPort=0). */
  get localPort(): number {
    const addr = this.net?.address();
    return typeof addr === 'object' && addr !== null ? addr.port : this.config.clientPort;
  }

  get outstandingRequests(): number {
    return this.outstanding;
  }
}

export { KeeperError };
