// The driver that wires the pure Zab core (src/zab/peer.ts) to the world: peer TCP,
// a tick timer, LMDB storage and the client-facing CorralServer. It owns no protocol
// decisions: it feeds messages, ticks and storage completions in, and carries out each
// Ready in the order the core requires (hard state, storage, messages, commits, roles).

import type { CorralConfig } from '../config/types.js';
import type { CorralServer, TxnLog } from '../server/server.js';
import { QuorumLostError } from '../server/server.js';
import type { Logger } from '../server/log.js';
import { checkBlock, decodeMarker } from '../storage/snapformat.js';
import { loadSnapshot } from '../storage/snapload.js';
import type { Storage } from '../storage/storage.js';
import { zxidHex } from '../storage/zxid.js';
import { DataTree } from '../tree/datatree.js';
import type { Txn } from '../tree/types.js';
import type { ZabPeer } from '../zab/peer.js';
import { type Message, type Ready, makeZxid, zxidEpoch } from '../zab/types.js';
import { encodePeerMessage } from './codec.js';
import { writeHardState } from './hardstate.js';
import type { DriverMessage, PeerMessage, SnapState } from './messages.js';
import { type PeerAddress, PeerNet } from './peernet.js';

export interface QuorumMember {
  id: number;
  quorum: PeerAddress;
  election: PeerAddress;
}

/** The leader's log: proposals go into the core, and resolve when a quorum has them. */
class LeaderLog implements TxnLog {
  readonly maxInFlight = 16;
  private pending: { last: number; resolve: () => void; reject: (e: Error) => void }[] = [];

  constructor(private readonly driver: QuorumPeer) {}

  append(txns: Txn[]): Promise<void> {
    const logged = this.driver.zab.propose(txns);
    if (logged === null) return Promise.reject(new QuorumLostError('not leading'));
    for (let i = 0; i < txns.length; i++) {
      // prep numbers txns the way the core does (epoch << 32 | counter, in order); a
      // mismatch would mean the two disagree about what was proposed.
      if (logged[i]!.zxid !== txns[i]!.zxid) throw new Error(`leader: prepared zxid ${zxidHex(txns[i]!.zxid)} proposed as ${zxidHex(logged[i]!.zxid)}`);
    }
    this.driver.kick();
    return new Promise((resolve, reject) => this.pending.push({ last: txns[txns.length - 1]!.zxid, resolve, reject }));
  }

  committed(zxid: number): void {
    while (this.pending.length > 0 && this.pending[0]!.last <= zxid) this.pending.shift()!.resolve();
  }

  fail(): void {
    const p = this.pending;
    this.pending = [];
    for (const x of p) x.reject(new QuorumLostError('leadership lost'));
  }

  async close(): Promise<void> {
    this.fail();
  }
}

export interface QuorumPeerOptions {
  config: CorralConfig;
  zab: ZabPeer;
  storage: Storage;
  members: QuorumMember[];
  self: QuorumMember;
  /** Milliseconds per core tick. */
  tickMs: number;
  log: Logger;
}

export class QuorumPeer {
  readonly zab: ZabPeer;
  server!: CorralServer;
  private readonly storage: Storage;
  private readonly log: Logger;
  private readonly quorumNet: PeerNet;
  private readonly electionNet: PeerNet;
  private readonly leaderLog = new LeaderLog(this);
  private tickTimer: NodeJS.Timeout | undefined;
  private ticks = 0;
  private readonly touchEvery: number;
  private processing = false;
  private kicked = false;
  private stopped = false;
  /** Storage work is ordered: truncates and snapshot installs wait for earlier writes. */
  private diskTail: Promise<unknown> = Promise.resolve();
  private structural = 0;
  private reportTail: Promise<void> = Promise.resolve();
  /**
   * Leader: syncs waiting for the proposals before them to commit (Leader.processSync) and
   * for a quorum to answer a heartbeat sent after they arrived (see ZabPeer.heartbeat).
   * `from` is the learner that forwarded it, or this server for its own clients.
   */
  private leaderSyncs: { from: number; sessionId: bigint; cxid: number; zxid: number; seq: number }[] = [];
  private committedZxid = 0;
  /** When the last role change happened (ms, monotonic) and to what: logged with the time it took. */
  private lookingSince = performance.now();

  constructor(private readonly opts: QuorumPeerOptions) {
    this.zab = opts.zab;
    this.storage = opts.storage;
    this.log = opts.log;
    this.touchEvery = Math.max(1, Math.round(opts.config.tickTime / 2 / opts.tickMs));
    const peersOf = (pick: (m: QuorumMember) => PeerAddress) => new Map(opts.members.map((m) => [m.id, pick(m)]));
    const onMessage = (m: PeerMessage) => this.onMessage(m);
    const onDisconnect = (id: number) => {
      this.zab.step({ type: 'disconnected', peer: id });
      this.kick();
    };
    this.quorumNet = new PeerNet({ name: 'quorum', selfId: opts.self.id, listen: opts.self.quorum, peers: peersOf((m) => m.quorum), onMessage, onDisconnect, log: opts.log });
    this.electionNet = new PeerNet({ name: 'election', selfId: opts.self.id, listen: opts.self.election, peers: peersOf((m) => m.election), onMessage, onDisconnect, log: opts.log });
  }

  /** The server's link to the leader (CorralServer's `ensemble` option). */
  readonly link = {
    forward: (req: { sessionId: bigint; cxid: number; op: number; body: Buffer; authIds: { scheme: string; id: string }[]; timeout?: number }) =>
      this.sendToLeader({ type: 'REQUEST', from: this.zab.id, ...req }),
    sync: (sessionId: bigint, cxid: number) => {
      if (this.servingRole === 'leader') this.leaderSync(this.zab.id, sessionId, cxid);
      else this.sendToLeader({ type: 'SYNC', from: this.zab.id, sessionId, cxid });
    },
  };

  async start(): Promise<void> {
    await this.electionNet.start();
    await this.quorumNet.start();
    this.tickTimer = setInterval(() => this.tick(), this.opts.tickMs);
    this.process();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.leaderLog.fail();
    await Promise.all([this.quorumNet.close(), this.electionNet.close()]);
    await this.reportTail.catch(() => undefined);
    await this.diskTail.catch(() => undefined);
  }

  /** For mntr on the leader. */
  stats(): { learners: number; syncedFollowers: number; syncedObservers: number; pendingSyncs: number } {
    return { ...this.zab.learnerStats(), pendingSyncs: this.leaderSyncs.length };
  }

  /** The role the client server is serving in (leader, follower, observer), or null between roles. */
  private get servingRole(): string | null {
    return this.server.serving === null ? null : (this.server.role ?? null);
  }

  private tick(): void {
    if (this.stopped) return;
    this.zab.tick();
    this.ticks++;
    if (this.servingRole !== null && this.servingRole !== 'leader' && this.ticks % this.touchEvery === 0) {
      const sessions = this.server.takeTouched();
      if (sessions.length > 0) this.sendToLeader({ type: 'TOUCH', from: this.zab.id, sessions });
    }
    this.process();
  }

  /** Something changed in the core outside process(): drain its Ready once this turn ends. */
  kick(): void {
    if (this.kicked || this.stopped) return;
    this.kicked = true;
    queueMicrotask(() => {
      this.kicked = false;
      this.process();
    });
  }

  private onMessage(m: PeerMessage): void {
    if (this.stopped) return;
    switch (m.type) {
      case 'REQUEST':
      case 'TOUCH':
      case 'SYNC':
      case 'SYNCED':
        return this.onDriverMessage(m);
      default:
        this.zab.step({ type: 'message', msg: m });
        this.kick();
    }
  }

  private onDriverMessage(m: DriverMessage): void {
    switch (m.type) {
      case 'REQUEST':
        if (this.servingRole === 'leader') this.server.submitForwarded(m);
        return;
      case 'TOUCH':
        if (this.servingRole === 'leader') this.server.touchSessions(m.sessions);
        return;
      case 'SYNC':
        // Everything committed before this point is at or below our last proposal; answer
        // once that proposal commits, so the learner has the commit to wait for.
        if (this.servingRole === 'leader') this.leaderSync(m.from, m.sessionId, m.cxid);
        return;
      case 'SYNCED':
        if (m.from === this.zab.leader) this.server.syncReply(m.sessionId, m.cxid, m.zxid);
        return;
    }
  }

  private leaderSync(from: number, sessionId: bigint, cxid: number): void {
    this.leaderSyncs.push({ from, sessionId, cxid, zxid: this.zab.lastLogged, seq: this.zab.heartbeat() });
    this.kick();
  }

  private releaseSyncs(): void {
    const heard = this.zab.quorumHeartbeat();
    const committed = Math.max(this.committedZxid, this.server.tree.lastZxid);
    while (this.leaderSyncs.length > 0 && this.leaderSyncs[0]!.zxid <= committed && this.leaderSyncs[0]!.seq <= heard) {
      const s = this.leaderSyncs.shift()!;
      if (s.from === this.zab.id) this.server.syncReply(s.sessionId, s.cxid, s.zxid);
      else this.sendTo(s.from, { type: 'SYNCED', from: this.zab.id, sessionId: s.sessionId, cxid: s.cxid, zxid: s.zxid });
    }
  }

  private sendToLeader(m: DriverMessage): void {
    const leader = this.zab.leader;
    if (leader === null || leader === this.zab.id) return;
    this.sendTo(leader, m);
  }

  private sendTo(to: number, m: PeerMessage, cache?: Map<Message, Buffer>): void {
    let frame = cache?.get(m as Message);
    if (frame === undefined) {
      if (m.type === 'NEWLEADER' && m.sync.mode === 'SNAP') this.readSnapshotFor(m.sync.snapshot.state as SnapState | null);
      frame = encodePeerMessage(m);
      cache?.set(m as Message, frame);
    }
    (m.type === 'NOTIFICATION' ? this.electionNet : this.quorumNet).send(to, frame);
  }

  /** A SNAP plan names a stored snapshot; its bytes are read from LMDB when it is sent. */
  private readSnapshotFor(s: SnapState | null): void {
    if (s === null || s.raw !== undefined) return;
    const raw = this.storage.snapshots.readRaw(s.id);
    if (raw === undefined) throw new Error(`snapshot ${s.id} is no longer stored; cannot send it to a learner`);
    s.raw = raw;
  }

  private process(): void {
    if (this.processing || this.stopped) return;
    this.processing = true;
    try {
      while (this.zab.hasReady()) this.handle(this.zab.ready());
    } catch (e) {
      this.fatal(e as Error);
    } finally {
      this.processing = false;
    }
  }

  private handle(r: Ready): void {
    // 1. A promise (ACKEPOCH, a new currentEpoch) counts only once it is on disk.
    if (r.hardState !== undefined) writeHardState(this.opts.config.dataDir, r.hardState);
    // 2. The log.
    if (r.persistUpTo !== undefined) this.persist(r);
    // 3. Messages: one encoding per message, however many peers get it.
    if (r.messages.length > 0) {
      const cache = new Map<Message, Buffer>();
      for (const e of r.messages) {
        try {
          this.sendTo(e.to, e.msg, cache);
        } catch (err) {
          this.log('ERROR', `cannot send ${e.msg.type} to server ${e.to}: ${(err as Error).message}`);
        }
      }
      // A SNAP's bytes are not kept once sent.
      for (const m of cache.keys()) if (m.type === 'NEWLEADER' && m.sync.mode === 'SNAP' && m.sync.snapshot.state) delete (m.sync.snapshot.state as SnapState).raw;
    }
    // 4. Commits, after a received snapshot replaced the tree.
    if (r.snapshot !== undefined) this.installTree(r.snapshot.zxid, r.snapshot.state as SnapState | null);
    if (r.commit.length > 0) {
      const leading = this.zab.role === 'leading';
      const epoch = this.zab.epochLed;
      let own = -1;
      for (const t of r.commit) {
        // The leader's own proposals of this epoch complete through its pipeline (LeaderLog);
        // everything else (a learner's commits, a new leader's catch-up) is applied here.
        if (leading && zxidEpoch(t.zxid) === epoch && this.servingRole === 'leader') own = t.zxid;
        else this.server.applyCommitted(t);
      }
      if (own >= 0) this.leaderLog.committed(own);
      this.committedZxid = r.commit[r.commit.length - 1]!.zxid;
    }
    if (this.leaderSyncs.length > 0 && this.servingRole === 'leader') this.releaseSyncs();
    // 5. Roles.
    for (const rc of r.roleChanges) this.onRole(rc.role, rc.epoch, rc.active);
  }

  private persist(r: Ready): void {
    const upTo = r.persistUpTo!;
    let done: Promise<unknown>;
    if (r.truncate !== undefined || r.snapshot !== undefined || this.structural > 0) {
      this.structural++;
      const snap = r.snapshot;
      const trunc = r.truncate;
      const txns = r.persist;
      done = this.diskTail
        .then(async () => {
          if (snap !== undefined) {
            const s = snap.state as SnapState | null;
            if (s !== null && s.raw !== undefined) await this.storage.installSnapshot(s.id, snap.zxid, s.raw);
            else {
              // The leader never snapshotted: its history starts from the empty tree.
              await this.storage.txnLog.truncateAfter(-1);
              for (const e of this.storage.snapshots.list()) await this.storage.snapshots.remove(e.id);
            }
          }
          if (trunc !== undefined) await this.storage.truncateAfter(trunc);
          if (txns.length > 0) await this.storage.append(txns);
        })
        .finally(() => this.structural--);
    } else {
      done = this.storage.append(r.persist);
    }
    const prev = this.diskTail;
    this.diskTail = Promise.all([prev, done]);
    this.reportTail = this.reportTail
      .then(() => done)
      .then(
        () => {
          if (this.stopped) return;
          this.zab.step({ type: 'persisted', upToZxid: upTo });
          this.process();
        },
        (e: Error) => this.fatal(e),
      );
  }

  private installTree(zxid: number, s: SnapState | null): void {
    let tree: DataTree;
    if (s === null) tree = new DataTree();
    else {
      const raw = s.raw!;
      const c = checkBlock(raw.marker);
      if (!c.ok) throw new Error(`snapshot from the leader: marker ${c.message}`);
      const info = decodeMarker(raw.marker);
      tree = loadSnapshot(this.storage.snapshots, info, raw.chunks.map((value, chunkNo) => ({ chunkNo, value })));
    }
    this.server.replaceTree(tree);
    this.server.fuzzyEnd = s?.endZxid ?? 0;
    this.log('INFO', `installed the leader's snapshot at zxid ${zxidHex(zxid)}: ${tree.nodeCount} znodes`);
  }

  private onRole(role: string, epoch: number, active: boolean): void {
    const label = role === 'leading' ? 'leader' : role === 'following' ? 'follower' : role === 'observing' ? 'observer' : 'looking';
    if (active) {
      if (this.servingRole === label) return;
      const ms = (performance.now() - this.lookingSince).toFixed(0);
      if (label === 'leader') {
        this.leaderSyncs = [];
        this.server.quorumStats = () => this.stats();
        this.server.setTxnLog(this.leaderLog);
        this.server.startServing('leader', 'leader', makeZxid(epoch, 0));
      } else {
        this.server.startServing('learner', label);
      }
      this.log('INFO', `serving as ${label} of epoch ${epoch} (leader ${this.zab.leader}), ${ms} ms after the last role change, last zxid ${zxidHex(this.server.tree.lastZxid)}`);
      return;
    }
    if (this.servingRole !== null) {
      this.leaderLog.fail();
      this.server.stopServing(label);
      this.lookingSince = performance.now();
    } else {
      this.server.role = label;
    }
    if (role === 'looking') this.log('INFO', `looking for a leader (epoch ${this.zab.currentEpoch}, last zxid ${zxidHex(this.zab.lastLogged)})`);
    else this.log('INFO', `${label === 'leader' ? 'leading' : label === 'follower' ? 'following' : 'observing'} server ${this.zab.leader}${epoch >= 0 ? ` in epoch ${epoch}` : ''}: synchronising`);
  }

  private fatal(e: Error): void {
    this.log('ERROR', `quorum peer failed, stopping: ${e.stack ?? e.message}`);
    process.exitCode = 1;
    this.stopped = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    setImmediate(() => process.exit(1));
  }

  /** After a snapshot is durable, the core may drop the log before it. */
  compacted(zxid: number, id: number, endZxid: number): void {
    this.zab.compact(zxid, { id, endZxid } satisfies SnapState);
  }
}
