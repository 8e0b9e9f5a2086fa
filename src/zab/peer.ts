// A pure, deterministic Zab peer in the style of etcd's raft: messages, ticks and storage
// results go in (step, tick, propose); messages to send, txns to persist and commits to
// apply come out (ready). No sockets, timers, clocks, randomness or disk in here.
//
// Phases (ZooKeeper's names): election (FastLeaderElection), discovery (FOLLOWERINFO,
// LEADERINFO, ACKEPOCH), synchronisation (DIFF/TRUNC/SNAP fused into NEWLEADER, ACK,
// UPTODATE) and broadcast (PROPOSAL batches, cumulative ACK, COMMIT, INFORM, PING).
//
// The network may lose, duplicate, delay and reorder single messages: every message
// carries its epoch, cumulative fields make duplicates harmless, PROPOSAL/INFORM carry
// prevZxid so a gap is detected, and the side waiting for something resends on tick.

import type { Txn } from '../tree/types.js';
import {
  type DurableState,
  type Envelope,
  type HardState,
  type Input,
  type Message,
  type PeerId,
  type Ready,
  type Role,
  type RoleChange,
  type Snapshot,
  type SyncPlan,
  type Vote,
  type ZabConfig,
  makeZxid,
  voteBetter,
  voteEquals,
  zxidEpoch,
} from './types.js';

type LearnerPhase = 'info' | 'epoch' | 'synced' | 'acked' | 'active';
type LeaderPhase = 'gather' | 'epoch' | 'sync' | 'established';

/** The leader's view of one learner (LearnerHandler). */
interface LearnerView {
  id: PeerId;
  observer: boolean;
  acceptedEpoch: number;
  /** Set by ACKEPOCH: the learner's (currentEpoch, lastZxid) the sync plan is computed from. */
  ackEpoch: { currentEpoch: number; lastZxid: number } | null;
  newLeaderSent: boolean;
  /** Highest zxid the learner acked as durable in this epoch (-1: none). */
  ack: number;
  /** The learner's last logged zxid from its latest ACK: where resends start. */
  logged: number;
  loggedAtLastCheck: number;
  /** Some ACK arrived in this epoch: the learner finished a sync with us. */
  synced: boolean;
  uptodateSent: boolean;
  /** Observers: highest zxid whose commit they were told through INFORM. */
  informed: number;
  /** Newest heartbeat seq this learner acked. */
  pingAcked: number;
  lastHeard: number;
}

interface PendingWrite {
  last: number;
  /** A truncate or snapshot issued after this write: only up to cap stays in our log. */
  cap: number;
}

export class ZabPeer {
  readonly id: PeerId;
  readonly cfg: ZabConfig;
  readonly isObserver: boolean;
  private readonly quorum: number;

  // ---- replicated log -------------------------------------------------------------
  private hs: HardState;
  private hsDirty = false;
  private snap: Snapshot;
  /** Txns after snap.zxid, contiguous, in zxid order (durable prefix + pending tail). */
  private log: Txn[];
  /** Prefix of `log` known durable. */
  private durable: number;
  private readonly writes: PendingWrite[] = [];
  private lastApplied: number;

  // ---- outputs staged for ready() ---------------------------------------------------
  private stTruncate: number | undefined;
  private stSnapshot: Snapshot | undefined;
  private stPersist: Txn[] = [];
  private outMsgs: Envelope[] = [];
  private outCommit: Txn[] = [];
  private outRoles: RoleChange[] = [];

  // ---- time and role ---------------------------------------------------------------
  private now = 0;
  private _role: Role = 'looking';

  // ---- election ----------------------------------------------------------------------
  private round = 0;
  private vote: Vote;
  private readonly recv = new Map<PeerId, Vote>();
  private readonly others = new Map<PeerId, { vote: Vote; state: Role; round: number }>();
  private lastNotify = 0;
  /** A quorum agreed on this vote; decide on the next tick unless a better one arrives. */
  private finalizeVote: Vote | null = null;
  /** Tick at which finalizeVote is decided unless a better vote arrives. */
  private finalizeAt = 0;

  // ---- learner -------------------------------------------------------------------------
  private leaderId: PeerId | null = null;
  private lphase: LearnerPhase = 'info';
  private followEpoch = -1;
  /** Our ACKEPOCH for followEpoch is a promise (we had not accepted it from another leader). */
  private promised = false;
  private syncTarget = -1;
  private leaderCommit = 0;
  private phaseStart = 0;
  private lastHeard = 0;

  // ---- leader ------------------------------------------------------------------------
  private ldPhase: LeaderPhase = 'gather';
  private leaderEpoch = -1;
  private leadStart = 0;
  private initialLast = 0;
  private selfSynced = false;
  private counter = 0;
  private commitZxid = 0;
  private broadcastUpTo = 0;
  private learners = new Map<PeerId, LearnerView>();
  /** Heartbeat (PING) rounds sent in this epoch; a learner echoes the newest it saw. */
  private pingSeq = 0;
  /** Learner: newest PING seq received from the current leader. */
  private lastPingSeq = 0;
  private ackEpochs = new Set<PeerId>();

  constructor(cfg: ZabConfig, restored: DurableState) {
    this.cfg = cfg;
    this.id = cfg.id;
    this.isObserver = cfg.observers.includes(cfg.id);
    if (!this.isObserver && !cfg.voters.includes(cfg.id)) throw new Error(`peer ${cfg.id} is neither voter nor observer`);
    this.quorum = Math.floor(cfg.voters.length / 2) + 1;
    this.hs = { ...restored.hardState };
    this.snap = restored.snapshot ?? { zxid: 0, state: null };
    this.log = restored.log.filter((t) => t.zxid > this.snap.zxid);
    this.durable = this.lastLogged;
    this.lastApplied = this.snap.zxid;
    this.commitZxid = this.snap.zxid;
    this.vote = this.selfVote();
    this.startLooking();
  }

  // ======================================================================== queries

  get role(): Role {
    return this._role;
  }
  get currentEpoch(): number {
    return this.hs.currentEpoch;
  }
  get acceptedEpoch(): number {
    return this.hs.acceptedEpoch;
  }
  get lastLogged(): number {
    return this.log.length > 0 ? this.log[this.log.length - 1]!.zxid : this.snap.zxid;
  }
  get durableZxid(): number {
    return this.durable;
  }
  get appliedZxid(): number {
    return this.lastApplied;
  }
  get leader(): PeerId | null {
    return this._role === 'leading' ? this.id : this._role === 'looking' ? null : this.leaderId;
  }
  /** Leading with an established epoch: propose() is accepted. */
  get isActiveLeader(): boolean {
    return this._role === 'leading' && this.ldPhase === 'established';
  }
  /** The epoch being led (-1 before the epoch is decided). */
  get epochLed(): number {
    return this._role === 'leading' ? this.leaderEpoch : -1;
  }
  /** Learner synced and told the leader is serving (UPTODATE). */
  get isActiveLearner(): boolean {
    return (this._role === 'following' || this._role === 'observing') && this.lphase === 'active';
  }
  /** The whole in-memory log (after the snapshot), for tests and the simulator. */
  logEntries(): readonly Txn[] {
    return this.log;
  }
  snapshotBase(): Snapshot {
    return this.snap;
  }
  /**
   * Leader: sends a heartbeat round now and returns its seq. Once quorumHeartbeat() reaches
   * it, a quorum of voters still followed this leader after the call, so no later epoch
   * can have been established before it: a read served once the learner has applied up
   * to the leader's last zxid at the call is linearizable (Raft's ReadIndex). This is what
   * makes sync+read linearizable even when a partition leaves an old leader's sockets open.
   */
  heartbeat(): number {
    if (!this.isActiveLeader) return -1;
    const seq = ++this.pingSeq;
    for (const l of this.learners.values()) {
      if (!l.newLeaderSent || l.observer) continue;
      this.send(l.id, { type: 'PING', from: this.id, epoch: this.leaderEpoch, commitZxid: this.commitZxid, seq });
    }
    return seq;
  }

  /** Leader: the newest heartbeat seq acked by a quorum of voters (itself included). */
  quorumHeartbeat(): number {
    if (!this.isActiveLeader) return -1;
    const acked: number[] = [Infinity];
    for (const v of this.cfg.voters) {
      if (v === this.id) continue;
      const l = this.learners.get(v);
      acked.push(l !== undefined && l.synced ? l.pingAcked : 0);
    }
    acked.sort((a, b) => b - a);
    return acked[this.quorum - 1]!;
  }

  /** Leader: learners it is talking to, and how many of them are synced (for mntr). */
  learnerStats(): { learners: number; followers: number; syncedFollowers: number; syncedObservers: number } {
    const out = { learners: 0, followers: 0, syncedFollowers: 0, syncedObservers: 0 };
    if (this._role !== 'leading') return out;
    for (const l of this.learners.values()) {
      if (this.now - l.lastHeard > this.cfg.syncLimit) continue;
      out.learners++;
      if (!l.observer) out.followers++;
      if (l.synced) l.observer ? out.syncedObservers++ : out.syncedFollowers++;
    }
    return out;
  }

  // ======================================================================== inputs

  step(input: Input): void {
    if (input.type === 'persisted') this.onPersisted(input.upToZxid);
    else if (input.type === 'disconnected') this.onDisconnected(input.peer);
    else this.onMessage(input.msg);
  }

  tick(): void {
    this.now++;
    switch (this._role) {
      case 'looking':
        if (this.finalizeVote !== null && voteEquals(this.finalizeVote, this.vote) && this.now >= this.finalizeAt) {
          this.checkElection(true);
          if (this._role !== 'looking') break;
        }
        if (this.now - this.lastNotify >= this.cfg.electionTimeout) this.broadcastNotification();
        break;
      case 'following':
      case 'observing':
        this.learnerTick();
        break;
      case 'leading':
        this.leaderTick();
        break;
    }
  }

  /**
   * Leader only, once established: assigns zxids to the txns (their zxid field is
   * ignored) and appends them to the log. Everything proposed between two ready() calls
   * goes out as one PROPOSAL batch and one persist write. Returns the txns as logged, or
   * null if this peer is not an established leader (the caller retries elsewhere).
   */
  propose(txns: readonly Omit<Txn, 'zxid'>[]): Txn[] | null {
    if (!this.isActiveLeader) return null;
    const out: Txn[] = [];
    for (const t of txns) {
      const txn: Txn = { ...t, zxid: makeZxid(this.leaderEpoch, ++this.counter) };
      this.log.push(txn);
      this.stPersist.push(txn);
      out.push(txn);
    }
    return out;
  }

  /**
   * The driver made a snapshot of the tree at `zxid` (<= appliedZxid) durable: drop the
   * log up to it. A learner too far behind is later sent this snapshot (SNAP).
   */
  compact(zxid: number, state: unknown): void {
    if (zxid > this.lastApplied || zxid <= this.snap.zxid) return;
    const i = this.indexAfter(zxid);
    this.log = this.log.slice(i);
    this.snap = { zxid, state };
    if (this.durable < zxid) this.durable = zxid;
  }

  ready(): Ready {
    if (this._role === 'leading' && this.ldPhase === 'established') this.flushProposals();
    const r: Ready = {
      persist: this.stPersist,
      messages: this.outMsgs,
      commit: this.outCommit,
      roleChanges: this.outRoles,
    };
    if (this.hsDirty) {
      r.hardState = { ...this.hs };
      this.hsDirty = false;
    }
    if (this.stTruncate !== undefined || this.stSnapshot !== undefined || this.stPersist.length > 0) {
      if (this.stTruncate !== undefined) r.truncate = this.stTruncate;
      if (this.stSnapshot !== undefined) r.snapshot = this.stSnapshot;
      r.persistUpTo = this.lastLogged;
      this.writes.push({ last: this.lastLogged, cap: Infinity });
    }
    this.stTruncate = undefined;
    this.stSnapshot = undefined;
    this.stPersist = [];
    this.outMsgs = [];
    this.outCommit = [];
    this.outRoles = [];
    return r;
  }

  hasReady(): boolean {
    return (
      this.hsDirty ||
      this.stTruncate !== undefined ||
      this.stSnapshot !== undefined ||
      this.stPersist.length > 0 ||
      this.outMsgs.length > 0 ||
      this.outCommit.length > 0 ||
      this.outRoles.length > 0 ||
      (this._role === 'leading' && this.lastLogged > this.broadcastUpTo)
    );
  }

  // ======================================================================== log helpers

  /** Index of the first log entry with zxid > z. */
  private indexAfter(z: number): number {
    let lo = 0;
    let hi = this.log.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.log[mid]!.zxid <= z) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private hasZxid(z: number): boolean {
    if (z === this.snap.zxid) return true;
    const i = this.indexAfter(z);
    return i > 0 && this.log[i - 1]!.zxid === z;
  }

  private append(txns: readonly Txn[]): void {
    const last = this.lastLogged;
    for (const t of txns) {
      if (t.zxid <= last) continue;
      this.log.push(t);
      this.stPersist.push(t);
    }
  }

  private truncateLog(t: number): void {
    if (t < this.lastApplied) throw new Error(`zab: peer ${this.id} asked to truncate to ${t} below applied ${this.lastApplied}`);
    this.log = this.log.slice(0, this.indexAfter(t));
    this.stPersist = this.stPersist.filter((x) => x.zxid <= t);
    if (this.stSnapshot === undefined) this.stTruncate = Math.min(this.stTruncate ?? Infinity, t);
    this.capWrites(t);
  }

  private installSnapshot(s: Snapshot): void {
    this.log = [];
    this.snap = s;
    this.stSnapshot = s;
    this.stTruncate = undefined;
    this.stPersist = [];
    this.lastApplied = s.zxid;
    this.capWrites(-1);
  }

  private capWrites(t: number): void {
    if (this.durable > t) this.durable = t;
    for (const w of this.writes) if (w.cap > t) w.cap = t;
  }

  private onPersisted(upTo: number): void {
    const w = this.writes.shift();
    if (w === undefined) return; // a report from before a restart: nothing of ours
    if (w.last !== upTo) throw new Error(`zab: peer ${this.id} persisted report ${upTo} does not match write ${w.last}`);
    const d = Math.min(w.last, w.cap, this.lastLogged);
    if (d > this.durable) this.durable = d;
    if (this._role === 'leading') {
      this.leaderCheckSelf();
      this.leaderCheckEstablished();
      this.tryCommit();
    } else if (this._role === 'following' || this._role === 'observing') {
      if (this.lphase === 'synced') this.learnerCheckAcked();
      else if (this.lphase === 'acked' || this.lphase === 'active') this.sendAck();
    }
  }

  private onDisconnected(peer: PeerId): void {
    if ((this._role === 'following' || this._role === 'observing') && peer === this.leaderId) {
      this.startLooking();
    } else if (this._role === 'leading') {
      const l = this.learners.get(peer);
      // Counted out at the next tick's quorum check, unless it speaks again first.
      if (l !== undefined) l.lastHeard = this.now - this.cfg.syncLimit - 1;
    }
  }

  private emitCommitsTo(z: number): void {
    if (z <= this.lastApplied) return;
    const from = this.indexAfter(this.lastApplied);
    const to = this.indexAfter(z);
    for (let i = from; i < to; i++) this.outCommit.push(this.log[i]!);
    this.lastApplied = z;
  }

  // ======================================================================== messages

  private send(to: PeerId, msg: Message): void {
    if (to === this.id) return;
    this.outMsgs.push({ to, msg });
  }

  private onMessage(m: Message): void {
    switch (m.type) {
      case 'NOTIFICATION':
        return this.onNotification(m);
      case 'FOLLOWERINFO':
      case 'OBSERVERINFO':
        // A learner thinks we lead, but we follow: tell it (see onNotification).
        if (this._role === 'following' || this._role === 'observing') this.send(m.from, this.notification());
        else if (this._role === 'leading') this.leaderOnMessage(m);
        return;
      case 'ACKEPOCH':
      case 'ACK':
        if (this._role === 'leading') this.leaderOnMessage(m);
        return;
      default:
        if ((this._role === 'following' || this._role === 'observing') && m.from === this.leaderId) this.learnerOnMessage(m);
    }
  }

  // ======================================================================== election

  private selfVote(): Vote {
    return { leader: this.id, zxid: this.lastLogged, peerEpoch: this.hs.currentEpoch };
  }

  private setRole(role: Role, active: boolean): void {
    this._role = role;
    this.outRoles.push({
      role,
      epoch: role === 'leading' ? this.leaderEpoch : role === 'looking' ? this.hs.currentEpoch : this.followEpoch,
      leader: this.leader,
      active,
    });
  }

  private startLooking(): void {
    this.round++;
    this.recv.clear();
    this.others.clear();
    this.finalizeVote = null;
    this.leaderId = null;
    this.learners = new Map();
    this.ackEpochs = new Set();
    this.vote = this.isObserver ? { leader: -1, zxid: -1, peerEpoch: -1 } : this.selfVote();
    this.setRole('looking', false);
    if (!this.isObserver) this.recv.set(this.id, this.vote);
    this.broadcastNotification();
    if (!this.isObserver) this.checkElection();
  }

  private notification(): Message {
    return { type: 'NOTIFICATION', from: this.id, state: this._role, vote: this.vote, round: this.round };
  }

  private broadcastNotification(): void {
    this.lastNotify = this.now;
    const n = this.notification();
    for (const v of this.cfg.voters) this.send(v, n);
  }

  private onNotification(n: Extract<Message, { type: 'NOTIFICATION' }>): void {
    const fromVoter = this.cfg.voters.includes(n.from);
    if (this._role !== 'looking') {
      // Tell a looking peer who leads (FastLeaderElection answers with its current vote).
      if (n.state === 'looking') this.send(n.from, this.notification());
      // The peer we chose to follow follows someone else: it will not lead this round
      // (a quorum decided before our vote settled). Look again rather than wait syncLimit.
      else if (n.from === this.leaderId && (n.state === 'following' || n.state === 'observing') && (this.lphase === 'info' || this.lphase === 'epoch'))
        this.startLooking();
      return;
    }
    if (!fromVoter) return; // observers never vote
    if (n.state === 'looking') {
      if (this.isObserver) return;
      if (n.round > this.round) {
        this.round = n.round;
        this.recv.clear();
        const self = this.selfVote();
        this.vote = voteBetter(n.vote, self) ? n.vote : self;
        this.broadcastNotification();
      } else if (n.round < this.round) {
        this.send(n.from, this.notification());
        return;
      } else if (voteBetter(n.vote, this.vote)) {
        this.vote = n.vote;
        this.broadcastNotification();
      }
      this.recv.set(n.from, n.vote);
      this.recv.set(this.id, this.vote);
      this.checkElection();
      return;
    }
    // The sender is following or leading: an election we missed already ended.
    this.others.set(n.from, { vote: n.vote, state: n.state, round: n.round });
    const ldr = n.vote.leader;
    if (ldr === this.id) return this.ledByQuorum(n.round);
    const lead = this.others.get(ldr);
    if (lead === undefined || lead.state !== 'leading') return;
    // A quorum of voters says it follows (or is) `ldr`, and `ldr` says it leads. The votes
    // need not be identical: members that joined later carry the vote they joined with.
    let count = 0;
    for (const v of this.cfg.voters) {
      const o = this.others.get(v);
      if (o !== undefined && o.vote.leader === ldr) count++;
    }
    if (count >= this.quorum) {
      this.round = Math.max(this.round, n.round);
      this.vote = lead.vote;
      this.becomeLearner(ldr);
    }
  }

  /**
   * Voters that ended this round following us. Their looking votes can be lost (they
   * could not reach us yet when they sent them, and stopped looking once a quorum agreed
   * without us), so they answer our notifications as followers. With our own vote, a
   * quorum of them in our round elects us: lead now rather than leave them waiting
   * syncLimit to look again (FastLeaderElection's checkLeader accepts itself the same way).
   */
  private ledByQuorum(round: number): void {
    // Only while we still vote for ourselves: a better vote seen since says another should lead.
    if (round !== this.round || this.vote.leader !== this.id) return;
    let count = 1;
    for (const v of this.cfg.voters) {
      if (v === this.id) continue;
      const o = this.others.get(v);
      // Their vote must be ours as it stands (same zxid and epoch): one cast for an earlier
      // us (before our log or epoch moved on, e.g. across a restart) does not vouch for it now.
      if (o !== undefined && o.round === this.round && o.state === 'following' && voteEquals(o.vote, this.vote)) count++;
    }
    if (count >= this.quorum) this.becomeLeader();
  }

  /**
   * termPredicate: a quorum agrees with our vote. If every voter agrees, decide now;
   * otherwise wait finalizeWait (here: until the next tick) for a better vote to arrive,
   * as FastLeaderElection does, so a fast partial quorum does not pick a worse leader.
   */
  private checkElection(final = false): void {
    let count = 0;
    for (const v of this.cfg.voters) {
      const r = this.recv.get(v);
      if (r !== undefined && voteEquals(r, this.vote)) count++;
    }
    if (count < this.quorum) {
      this.finalizeVote = null;
      return;
    }
    if (count < this.cfg.voters.length && !final) {
      if (this.finalizeVote === null || !voteEquals(this.finalizeVote, this.vote)) {
        this.finalizeVote = this.vote;
        this.finalizeAt = this.now + (this.cfg.finalizeWait ?? 1);
      }
      return;
    }
    this.finalizeVote = null;
    if (this.vote.leader === this.id) this.becomeLeader();
    else this.becomeLearner(this.vote.leader);
  }

  // ======================================================================== learner

  private becomeLearner(leader: PeerId): void {
    this.leaderId = leader;
    this.lastPingSeq = 0;
    this.lphase = 'info';
    this.followEpoch = -1;
    this.syncTarget = -1;
    this.leaderCommit = this.lastApplied;
    this.phaseStart = this.now;
    this.lastHeard = this.now;
    this.setRole(this.isObserver ? 'observing' : 'following', false);
    this.sendInfo();
  }

  private sendInfo(): void {
    this.send(this.leaderId!, {
      type: this.isObserver ? 'OBSERVERINFO' : 'FOLLOWERINFO',
      from: this.id,
      acceptedEpoch: this.hs.acceptedEpoch,
      lastZxid: this.lastLogged,
    });
  }

  private sendAckEpoch(): void {
    this.send(this.leaderId!, {
      type: 'ACKEPOCH',
      from: this.id,
      epoch: this.followEpoch,
      currentEpoch: this.hs.currentEpoch,
      lastZxid: this.lastLogged,
      promised: this.promised,
    });
  }

  private sendAck(): void {
    this.send(this.leaderId!, {
      type: 'ACK',
      from: this.id,
      epoch: this.followEpoch,
      zxid: this.durable,
      logged: this.lastLogged,
      pingSeq: this.lastPingSeq,
    });
  }

  private learnerTick(): void {
    const synced = this.lphase === 'acked' || this.lphase === 'active';
    if (!synced && this.now - this.phaseStart > this.cfg.initLimit) return this.startLooking();
    if (this.now - this.lastHeard > this.cfg.syncLimit) return this.startLooking();
    if (this.lphase === 'info') this.sendInfo();
    else if (this.lphase === 'epoch') this.sendAckEpoch();
  }

  private learnerOnMessage(m: Message): void {
    if (m.type === 'LEADERINFO') {
      this.lastHeard = this.now;
      if (this.lphase !== 'info') {
        if (m.epoch === this.followEpoch && this.lphase === 'epoch') this.sendAckEpoch();
        return;
      }
      const e = m.epoch;
      // An epoch below one we promised: following it could let an old epoch commit behind
      // the back of the leader we promised to. Ignore it (ZooKeeper drops the connection);
      // initLimit sends us looking again.
      if (this.isObserver ? e < this.hs.currentEpoch : e < this.hs.acceptedEpoch) return;
      // The same epoch from another leader (one that never established it): follow, but
      // without promising (Learner.registerWithLeader's epoch -1 case).
      this.promised = this.isObserver || e > this.hs.acceptedEpoch || this.hs.acceptedLeader === m.from;
      if (e > this.hs.acceptedEpoch) {
        this.hs.acceptedEpoch = e;
        this.hs.acceptedLeader = m.from;
        this.hsDirty = true;
      }
      this.followEpoch = e;
      this.lphase = 'epoch';
      this.sendAckEpoch();
      return;
    }
    if (!('epoch' in m) || m.epoch !== this.followEpoch || this.followEpoch < 0) return;
    this.lastHeard = this.now;
    switch (m.type) {
      case 'NEWLEADER':
        return this.onNewLeader(m);
      case 'PROPOSAL':
        if (this.lphase === 'info' || this.lphase === 'epoch' || this.isObserver) return;
        if (m.prevZxid > this.lastLogged) return; // gap: the leader resends from our ACK
        this.append(m.txns);
        return;
      case 'INFORM':
        if (this.lphase === 'info' || this.lphase === 'epoch') return;
        if (m.prevZxid <= this.lastLogged) this.append(m.txns);
        this.learnCommit(m.commitZxid);
        return;
      case 'COMMIT':
        this.learnCommit(m.zxid);
        return;
      case 'UPTODATE':
        this.learnCommit(m.commitZxid);
        return;
      case 'PING':
        if (m.seq !== undefined && m.seq > this.lastPingSeq) this.lastPingSeq = m.seq;
        this.learnCommit(m.commitZxid);
        if (this.lphase === 'acked' || this.lphase === 'active') this.sendAck();
        return;
      default:
        return;
    }
  }

  private learnCommit(z: number): void {
    if (z > this.leaderCommit) this.leaderCommit = z;
    if (this.lphase === 'acked') {
      // UPTODATE, or a PING/COMMIT that only an established leader sends.
      this.lphase = 'active';
      // An observer makes no promises; its currentEpoch is the last epoch it saw
      // established, and it never follows an older leader (which could lack commits).
      if (this.isObserver && this.hs.currentEpoch < this.followEpoch) {
        this.hs.currentEpoch = this.followEpoch;
        this.hsDirty = true;
      }
      this.setRole(this._role, true);
    }
    this.learnerAdvanceCommit();
  }

  private learnerAdvanceCommit(): void {
    if (this.lphase === 'info' || this.lphase === 'epoch') return;
    this.emitCommitsTo(Math.min(this.leaderCommit, this.lastLogged));
  }

  private onNewLeader(m: Extract<Message, { type: 'NEWLEADER' }>): void {
    if (this.lphase === 'info') return;
    if (m.learnerZxid !== this.lastLogged) return; // a plan for another state of our log
    const plan = m.sync;
    if (plan.mode === 'TRUNC') {
      if (!this.hasZxid(plan.truncZxid)) return;
      this.truncateLog(plan.truncZxid);
    } else if (plan.mode === 'SNAP') {
      this.installSnapshot(plan.snapshot);
    }
    this.append(plan.txns);
    if (this.lastLogged !== m.lastZxid) throw new Error(`zab: peer ${this.id} sync ended at ${this.lastLogged}, leader expected ${m.lastZxid}`);
    this.syncTarget = m.lastZxid;
    if (this.lphase === 'epoch') this.lphase = 'synced';
    else if (this.lphase === 'acked' || this.lphase === 'active') this.lphase = 'synced';
    if (m.commitZxid > this.leaderCommit) this.leaderCommit = m.commitZxid;
    this.learnerAdvanceCommit();
    this.learnerCheckAcked();
  }

  private learnerCheckAcked(): void {
    if (this.lphase !== 'synced' || this.durable < this.syncTarget) return;
    // The synced history is durable: only now take the leader's epoch as ours
    // (ZOOKEEPER-3911 order: persist, then currentEpoch, then ACK).
    if (!this.isObserver && this.hs.currentEpoch !== this.followEpoch) {
      this.hs.currentEpoch = this.followEpoch;
      this.hsDirty = true;
    }
    this.lphase = 'acked';
    this.sendAck();
  }

  // ======================================================================== leader

  private becomeLeader(): void {
    this.ldPhase = 'gather';
    this.leaderEpoch = -1;
    this.leadStart = this.now;
    this.initialLast = this.lastLogged;
    this.selfSynced = false;
    this.counter = 0;
    this.commitZxid = this.lastApplied;
    this.broadcastUpTo = this.lastLogged;
    this.learners = new Map();
    this.pingSeq = 0;
    this.ackEpochs = new Set([this.id]);
    this.setRole('leading', false);
    this.leaderCheckGather();
  }

  private stepDown(): void {
    this.startLooking();
  }

  private learnerView(id: PeerId, observer: boolean): LearnerView {
    let l = this.learners.get(id);
    if (l === undefined) {
      l = {
        id,
        observer,
        acceptedEpoch: -1,
        ackEpoch: null,
        newLeaderSent: false,
        ack: -1,
        logged: -1,
        loggedAtLastCheck: -1,
        synced: false,
        uptodateSent: false,
        informed: -1,
        pingAcked: 0,
        lastHeard: this.now,
      };
      this.learners.set(id, l);
    }
    return l;
  }

  private leaderOnMessage(m: Message): void {
    switch (m.type) {
      case 'FOLLOWERINFO':
      case 'OBSERVERINFO': {
        const observer = m.type === 'OBSERVERINFO';
        if (observer !== this.cfg.observers.includes(m.from)) return;
        if (!observer && !this.cfg.voters.includes(m.from)) return;
        const l = this.learnerView(m.from, observer);
        l.lastHeard = this.now;
        if (this.ldPhase === 'gather') {
          l.acceptedEpoch = m.acceptedEpoch;
          this.leaderCheckGather();
        } else if (!observer && m.acceptedEpoch > this.leaderEpoch) {
          // A voter promised a later epoch (to a leader that never established it): it can
          // never follow us (ZooKeeper's "Leaders epoch is less than accepted epoch" loop).
          // Step down so that the next election proposes an epoch above its promise.
          this.stepDown();
        } else {
          this.send(m.from, { type: 'LEADERINFO', from: this.id, epoch: this.leaderEpoch });
        }
        return;
      }
      case 'ACKEPOCH': {
        if (m.epoch !== this.leaderEpoch || this.ldPhase === 'gather') return;
        const l = this.learners.get(m.from);
        if (l === undefined) return;
        l.lastHeard = this.now;
        l.ackEpoch = { currentEpoch: m.currentEpoch, lastZxid: m.lastZxid };
        l.logged = m.lastZxid;
        l.uptodateSent = false;
        if (this.ldPhase === 'epoch') {
          if (!l.observer) {
            // Leader.waitForEpochAck: a follower ahead of us means we should not lead.
            if (m.currentEpoch > this.hs.currentEpoch || (m.currentEpoch === this.hs.currentEpoch && m.lastZxid > this.lastLogged)) {
              return this.stepDown();
            }
            if (m.promised) this.ackEpochs.add(m.from);
          }
          if (this.ackEpochs.size >= this.quorum) {
            this.ldPhase = 'sync';
            this.leaderCheckSelf();
            for (const x of this.learners.values()) if (x.ackEpoch !== null) this.sendNewLeader(x);
            this.leaderCheckEstablished();
          }
        } else {
          this.sendNewLeader(l);
        }
        return;
      }
      case 'ACK': {
        if (m.epoch !== this.leaderEpoch) return;
        const l = this.learners.get(m.from);
        if (l === undefined) return;
        l.lastHeard = this.now;
        l.synced = true;
        if (m.zxid > l.ack) l.ack = m.zxid;
        if (m.pingSeq !== undefined && m.pingSeq > l.pingAcked) l.pingAcked = m.pingSeq;
        l.logged = m.logged;
        if (l.observer && l.informed < m.logged) l.informed = Math.min(m.logged, this.commitZxid);
        if (this.ldPhase === 'established') {
          if (!l.uptodateSent) {
            l.uptodateSent = true;
            this.send(l.id, { type: 'UPTODATE', from: this.id, epoch: this.leaderEpoch, commitZxid: this.commitZxid });
          }
          this.tryCommit();
        } else if (this.ldPhase === 'sync') {
          this.leaderCheckEstablished();
        }
        return;
      }
      default:
        return;
    }
  }

  private leaderCheckGather(): void {
    if (this.ldPhase !== 'gather') return;
    const voters = [this.id];
    let max = this.hs.acceptedEpoch;
    for (const l of this.learners.values()) {
      if (l.observer) continue;
      voters.push(l.id);
      if (l.acceptedEpoch > max) max = l.acceptedEpoch;
    }
    if (voters.length < this.quorum) return;
    // Leader.getEpochToPropose: one more than any epoch a quorum has accepted.
    this.leaderEpoch = max + 1;
    this.hs.acceptedEpoch = this.leaderEpoch;
    this.hs.acceptedLeader = this.id;
    this.hsDirty = true;
    this.ldPhase = 'epoch';
    this.outRoles.push({ role: 'leading', epoch: this.leaderEpoch, leader: this.id, active: false });
    for (const l of this.learners.values()) this.send(l.id, { type: 'LEADERINFO', from: this.id, epoch: this.leaderEpoch });
    if (this.ackEpochs.size >= this.quorum) {
      // A one-voter ensemble: nobody else to wait for.
      this.ldPhase = 'sync';
      this.leaderCheckSelf();
      this.leaderCheckEstablished();
    }
  }

  private planFor(z: number): SyncPlan {
    const last = this.lastLogged;
    const base = this.snap.zxid;
    if (z === last) return { mode: 'DIFF', txns: [] };
    if (z === base) return { mode: 'DIFF', txns: this.log.slice() };
    if (z > base) {
      const i = this.indexAfter(z);
      const t = i > 0 ? this.log[i - 1]!.zxid : base;
      const tail = this.log.slice(i);
      if (t === z) return { mode: 'DIFF', txns: tail };
      // The learner holds t for sure only if t is in the same epoch as its last zxid
      // (within an epoch every log is a contiguous prefix of that epoch's proposals).
      if (t > 0 && zxidEpoch(t) === zxidEpoch(z)) return { mode: 'TRUNC', truncZxid: t, txns: tail };
    }
    return { mode: 'SNAP', snapshot: this.snap, txns: this.log.slice() };
  }

  private sendNewLeader(l: LearnerView): void {
    if (l.ackEpoch === null) return;
    this.sendPlan(l, l.ackEpoch.lastZxid);
  }

  private sendPlan(l: LearnerView, z: number): void {
    l.newLeaderSent = true;
    this.send(l.id, {
      type: 'NEWLEADER',
      from: this.id,
      epoch: this.leaderEpoch,
      learnerZxid: z,
      sync: this.planFor(z),
      lastZxid: this.lastLogged,
      commitZxid: this.commitZxid,
    });
    if (l.observer && l.informed < this.lastLogged) l.informed = Math.min(this.lastLogged, this.commitZxid);
  }

  /** The leader acks its own NEWLEADER once its initial history is durable. */
  private leaderCheckSelf(): void {
    if (this.ldPhase !== 'sync' || this.selfSynced || this.durable < this.initialLast) return;
    this.selfSynced = true;
    if (this.hs.currentEpoch !== this.leaderEpoch) {
      this.hs.currentEpoch = this.leaderEpoch;
      this.hsDirty = true;
    }
  }

  private leaderCheckEstablished(): void {
    if (this.ldPhase !== 'sync' || !this.selfSynced) return;
    let count = 1;
    for (const v of this.cfg.voters) {
      if (v === this.id) continue;
      const l = this.learners.get(v);
      if (l !== undefined && l.ack >= this.initialLast && l.synced) count++;
    }
    if (count < this.quorum) return;
    this.ldPhase = 'established';
    this.broadcastUpTo = this.lastLogged;
    this.setRole('leading', true);
    for (const l of this.learners.values()) {
      if (l.synced) {
        l.uptodateSent = true;
        l.lastHeard = this.now;
      }
    }
    this.tryCommit();
    for (const l of this.learners.values()) {
      if (l.synced) this.send(l.id, { type: 'UPTODATE', from: this.id, epoch: this.leaderEpoch, commitZxid: this.commitZxid });
    }
  }

  private tryCommit(): void {
    if (this.ldPhase !== 'established') return;
    const acks: number[] = [this.selfSynced ? this.durable : -1];
    for (const v of this.cfg.voters) {
      if (v === this.id) continue;
      const l = this.learners.get(v);
      acks.push(l !== undefined && l.synced ? l.ack : -1);
    }
    acks.sort((a, b) => b - a);
    const q = Math.min(acks[this.quorum - 1]!, this.lastLogged);
    if (q <= this.commitZxid) return;
    this.commitZxid = q;
    this.emitCommitsTo(q);
    for (const l of this.learners.values()) {
      if (!l.newLeaderSent) continue;
      if (!l.observer) this.send(l.id, { type: 'COMMIT', from: this.id, epoch: this.leaderEpoch, zxid: q });
      else if (l.synced) this.sendInform(l);
    }
  }

  private sendInform(l: LearnerView): void {
    const from = Math.max(l.informed, this.snap.zxid);
    const i = this.indexAfter(from);
    const j = this.indexAfter(this.commitZxid);
    this.send(l.id, {
      type: 'INFORM',
      from: this.id,
      epoch: this.leaderEpoch,
      prevZxid: from,
      txns: this.log.slice(i, j),
      commitZxid: this.commitZxid,
    });
    if (this.commitZxid > l.informed) l.informed = this.commitZxid;
  }

  private flushProposals(): void {
    if (this.lastLogged <= this.broadcastUpTo) return;
    const batch = this.log.slice(this.indexAfter(this.broadcastUpTo));
    // One message object for every follower: the driver encodes it once.
    const msg: Message = { type: 'PROPOSAL', from: this.id, epoch: this.leaderEpoch, prevZxid: this.broadcastUpTo, txns: batch };
    for (const l of this.learners.values()) {
      if (l.observer || !l.newLeaderSent) continue;
      this.send(l.id, msg);
    }
    this.broadcastUpTo = this.lastLogged;
  }

  private leaderTick(): void {
    if (this.ldPhase !== 'established') {
      if (this.now - this.leadStart > this.cfg.initLimit) this.stepDown();
      return;
    }
    // Leader.lead's check every tick: do we still hear a quorum of synced followers?
    let heard = 1;
    for (const v of this.cfg.voters) {
      if (v === this.id) continue;
      const l = this.learners.get(v);
      if (l !== undefined && l.synced && this.now - l.lastHeard <= this.cfg.syncLimit) heard++;
    }
    if (heard < this.quorum) return this.stepDown();
    const seq = ++this.pingSeq;
    for (const l of this.learners.values()) {
      if (!l.newLeaderSent) continue;
      this.send(l.id, { type: 'PING', from: this.id, epoch: this.leaderEpoch, commitZxid: this.commitZxid, seq });
      if (!l.synced) continue;
      // A learner whose log stopped short of ours since the last tick lost a message:
      // resend from where it is (or resync it if we no longer have that part of the log).
      const target = l.observer ? this.commitZxid : this.broadcastUpTo;
      if (l.logged < target && l.logged === l.loggedAtLastCheck) {
        if (l.logged >= this.snap.zxid && this.hasZxid(l.logged)) {
          if (l.observer) {
            l.informed = l.logged;
            this.sendInform(l);
          } else {
            const txns = this.log.slice(this.indexAfter(l.logged), this.indexAfter(this.broadcastUpTo));
            this.send(l.id, { type: 'PROPOSAL', from: this.id, epoch: this.leaderEpoch, prevZxid: l.logged, txns });
          }
        } else {
          this.sendPlan(l, l.logged);
        }
      }
      l.loggedAtLastCheck = l.logged;
    }
  }
}
