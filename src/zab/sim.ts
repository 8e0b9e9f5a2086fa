// A seeded, deterministic simulator for the Zab core (peer.ts): an ensemble of ZabPeers
// over a network that loses, duplicates, delays and reorders messages and can be
// partitioned, with storage that completes writes after a delay (in order) and loses
// whatever was not yet durable when its peer crashes. Clients propose writes at random.
// Invariants are checked after every step; a violation throws SimFailure naming the seed
// and step, and running the same seed again replays it exactly.

import { DataTree, apply } from '../tree/datatree.js';
import type { Txn, TxnOp } from '../tree/types.js';
import { treeDigest } from '../storage/digest.js';
import { ZabPeer } from './peer.js';
import {
  type DurableState,
  type HardState,
  type Message,
  type PeerId,
  type Ready,
  type Snapshot,
  type ZabConfig,
  emptyDurableState,
  zxidEpoch,
} from './types.js';

// ------------------------------------------------------------------------------ PRNG

/** mulberry32: small, fast, good enough, and identical on every platform. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  }
}

// ------------------------------------------------------------------------------ options

export interface SimOptions {
  seed: number;
  voters: number;
  observers: number;
  /** Steps with faults; then faults stop and liveness is checked. */
  steps: number;
  /** Time units per tick. */
  tickEvery: number;
  drop: number;
  dup: number;
  /** Message delay is 0..maxDelay time units (reordering comes from unequal delays). */
  maxDelay: number;
  /** Storage write latency 0..maxDiskDelay time units. */
  maxDiskDelay: number;
  crash: number;
  restart: number;
  partition: number;
  heal: number;
  write: number;
  compact: number;
  /** Ticks allowed after faults stop for a leader to serve and a write to commit everywhere. */
  livenessTicks: number;
  electionTimeout: number;
  /** Ticks a partial quorum waits for a better vote (the real server uses 200 ms worth). */
  finalizeWait: number;
  initLimit: number;
  syncLimit: number;
  /** Compare tree digests every this many committed txns (and always at the end). */
  digestEvery: number;
}

export function defaultOptions(seed: number, over: Partial<SimOptions> = {}): SimOptions {
  const r = new Rng(seed ^ 0x9e3779b9);
  return {
    seed,
    voters: r.chance(0.5) ? 3 : 5,
    observers: r.chance(0.3) ? 1 : 0,
    steps: 400,
    tickEvery: 4,
    drop: r.pick([0, 0.02, 0.1]),
    dup: r.pick([0, 0.02, 0.1]),
    maxDelay: r.pick([1, 4, 12]),
    maxDiskDelay: r.pick([0, 3, 10]),
    crash: r.pick([0, 0.005, 0.01]),
    restart: 0.02,
    partition: r.pick([0, 0.005, 0.01]),
    heal: 0.02,
    write: r.pick([0.1, 0.3]),
    compact: r.pick([0, 0.01]),
    livenessTicks: 150,
    electionTimeout: 2,
    finalizeWait: r.pick([1, 1, 2, 4]),
    initLimit: 10,
    syncLimit: 5,
    digestEvery: 4,
    ...over,
  };
}

export class SimFailure extends Error {
  constructor(
    readonly seed: number,
    readonly step: number,
    what: string,
  ) {
    super(`zab sim seed ${seed} step ${step}: ${what} (replay: ZAB_SIM_SEED=${seed})`);
  }
}

export interface SimResult {
  seed: number;
  voters: number;
  observers: number;
  steps: number;
  committed: number;
  proposed: number;
  crashes: number;
  partitions: number;
  snaps: number;
  truncs: number;
  /** Established leaders, one per epoch, in order. */
  leaders: { epoch: number; id: PeerId }[];
  /** Ticks from the end of faults to a serving leader with every member synced. */
  recoveryTicks: number;
  messages: number;
}

// ------------------------------------------------------------------------------ simulator

interface Write {
  truncate?: number;
  snapshot?: Snapshot;
  persist: Txn[];
  upTo: number;
  at: number;
}

interface Node {
  id: PeerId;
  cfg: ZabConfig;
  peer: ZabPeer | null;
  /** Durable storage: survives crashes. */
  disk: DurableState;
  /** Storage writes started but not yet durable, completed in order. */
  writes: Write[];
  tree: DataTree;
  /** Number of txns of the global committed sequence this replica has applied. */
  applied: number;
}

interface InFlight {
  from: PeerId;
  to: PeerId;
  msg: Message;
  at: number;
  seq: number;
}

const OPEN_ACL = [{ perms: 31, scheme: 'world', id: 'anyone' }];

function tag(t: Txn): string {
  return `${t.sessionId}:${t.cxid}`;
}

export class Sim {
  readonly rng: Rng;
  readonly nodes: Node[] = [];
  readonly voterIds: PeerId[] = [];
  readonly observerIds: PeerId[] = [];
  private net: InFlight[] = [];
  private seq = 0;
  time = 0;
  stepNo = 0;
  private faults = true;
  /** Partition group of each peer (same group = connected); empty = healed. */
  private group = new Map<PeerId, number>();
  /** The global committed sequence: what clients were told is committed, in order. */
  readonly committed: Txn[] = [];
  private readonly digests: string[] = [];
  private readonly zxidTag = new Map<number, string>();
  readonly leaderOfEpoch = new Map<number, PeerId>();
  readonly leaders: { epoch: number; id: PeerId }[] = [];
  private cxid = 0;
  readonly stats = { proposed: 0, crashes: 0, partitions: 0, snaps: 0, truncs: 0, messages: 0 };
  private readonly quorum: number;

  constructor(readonly opts: SimOptions) {
    this.rng = new Rng(opts.seed);
    const n = opts.voters + opts.observers;
    for (let i = 1; i <= n; i++) (i <= opts.voters ? this.voterIds : this.observerIds).push(i);
    this.quorum = Math.floor(opts.voters / 2) + 1;
    for (let i = 1; i <= n; i++) {
      const cfg: ZabConfig = {
        id: i,
        voters: this.voterIds,
        observers: this.observerIds,
        electionTimeout: opts.electionTimeout,
        finalizeWait: opts.finalizeWait,
        initLimit: opts.initLimit,
        syncLimit: opts.syncLimit,
      };
      const node: Node = { id: i, cfg, peer: null, disk: emptyDurableState(), writes: [], tree: new DataTree(), applied: 0 };
      this.nodes.push(node);
    }
    for (const node of this.nodes) this.start(node);
  }

  private fail(what: string): never {
    throw new SimFailure(this.opts.seed, this.stepNo, what);
  }

  private node(id: PeerId): Node {
    return this.nodes[id - 1]!;
  }

  // ---------------------------------------------------------------- lifecycle

  private start(node: Node): void {
    const d = node.disk;
    const restored: DurableState = { hardState: { ...d.hardState }, snapshot: d.snapshot, log: d.log.slice() };
    node.peer = new ZabPeer(node.cfg, restored);
    node.writes = [];
    // A restarted server rebuilds its tree from its snapshot; the log is replayed only
    // as the peer learns what is committed.
    this.resetTree(node, d.snapshot);
    this.drain(node);
  }

  private resetTree(node: Node, snap: Snapshot | null): void {
    const n = snap === null ? 0 : (snap.state as number | null) ?? 0;
    if (n > 0 && this.committed[n - 1]!.zxid !== snap!.zxid) this.fail(`snapshot at ${snap!.zxid} does not end at committed #${n}`);
    node.tree = new DataTree();
    for (let i = 0; i < n; i++) apply(node.tree, this.committed[i]!);
    node.applied = n;
  }

  private crash(node: Node): void {
    node.peer = null;
    node.writes = []; // never made durable: lost
    this.stats.crashes++;
    // The others' sockets to it close (the real transport reports this), usually.
    for (const other of this.nodes) if (other.peer !== null && this.rng.chance(0.7)) this.disconnect(other, node.id);
  }

  private disconnect(node: Node, peer: PeerId): void {
    node.peer!.step({ type: 'disconnected', peer });
    this.drain(node);
  }

  // ---------------------------------------------------------------- ready handling

  private drain(node: Node): void {
    const peer = node.peer;
    if (peer === null) return;
    while (peer.hasReady()) this.handleReady(node, peer.ready());
  }

  private handleReady(node: Node, r: Ready): void {
    if (r.hardState !== undefined) this.writeHardState(node, r.hardState);
    for (const t of r.persist) {
      const known = this.zxidTag.get(t.zxid);
      if (known === undefined) this.zxidTag.set(t.zxid, tag(t));
      else if (known !== tag(t)) this.fail(`zxid ${t.zxid.toString(16)} logged with two different txns at peer ${node.id}`);
    }
    if (r.persistUpTo !== undefined) {
      const w: Write = { persist: r.persist, upTo: r.persistUpTo, at: this.time + this.rng.int(this.opts.maxDiskDelay + 1) };
      if (r.truncate !== undefined) {
        w.truncate = r.truncate;
        this.stats.truncs++;
      }
      if (r.snapshot !== undefined) {
        w.snapshot = r.snapshot;
        this.stats.snaps++;
      }
      node.writes.push(w);
    }
    if (r.snapshot !== undefined) this.resetTree(node, r.snapshot.zxid === 0 ? null : r.snapshot);
    for (const c of r.commit) this.applyCommit(node, c);
    for (const rc of r.roleChanges) {
      if (rc.role === 'leading' && rc.active) this.onEstablished(node, rc.epoch);
    }
    for (const e of r.messages) this.sendMsg(node.id, e.to, e.msg);
  }

  private writeHardState(node: Node, hs: HardState): void {
    const old = node.disk.hardState;
    if (hs.acceptedEpoch < old.acceptedEpoch || hs.currentEpoch < old.currentEpoch) {
      this.fail(`peer ${node.id} hard state went back: ${JSON.stringify(old)} -> ${JSON.stringify(hs)}`);
    }
    node.disk.hardState = { ...hs };
  }

  private completeWrite(node: Node): void {
    const w = node.writes.shift()!;
    const d = node.disk;
    if (w.truncate !== undefined) d.log = d.log.filter((t) => t.zxid <= w.truncate!);
    if (w.snapshot !== undefined) {
      d.snapshot = w.snapshot.zxid === 0 ? null : w.snapshot;
      d.log = [];
    }
    const base = d.snapshot?.zxid ?? 0;
    for (const t of w.persist) {
      if (t.zxid <= base) continue;
      const last = d.log.length > 0 ? d.log[d.log.length - 1]!.zxid : base;
      if (t.zxid <= last) this.fail(`peer ${node.id} storage append ${t.zxid.toString(16)} after ${last.toString(16)}`);
      d.log.push(t);
    }
    node.peer!.step({ type: 'persisted', upToZxid: w.upTo });
    this.drain(node);
  }

  private applyCommit(node: Node, t: Txn): void {
    const i = node.applied;
    if (i < this.committed.length) {
      const g = this.committed[i]!;
      if (g.zxid !== t.zxid || tag(g) !== tag(t)) {
        this.fail(`peer ${node.id} committed #${i} = ${t.zxid.toString(16)}/${tag(t)} but the committed sequence has ${g.zxid.toString(16)}/${tag(g)}`);
      }
    } else {
      if (i > 0 && this.committed[i - 1]!.zxid >= t.zxid) this.fail(`commit order: ${t.zxid.toString(16)} after ${this.committed[i - 1]!.zxid.toString(16)}`);
      this.checkDurableOnQuorum(t);
      this.committed.push(t);
      // Every established leader of a later epoch must already hold it.
      for (const n of this.nodes) {
        const p = n.peer;
        if (p !== null && p.isActiveLeader && p.epochLed > zxidEpoch(t.zxid) && !this.holds(p, t)) {
          this.fail(`txn ${t.zxid.toString(16)} committed but missing from established leader ${n.id} of epoch ${p.epochLed}`);
        }
      }
    }
    apply(node.tree, t);
    node.applied = i + 1;
    if ((i + 1) % this.opts.digestEvery === 0) this.checkDigest(node);
  }

  private checkDigest(node: Node): void {
    const i = node.applied;
    if (i === 0) return;
    const d = treeDigest(node.tree);
    const known = this.digests[i];
    if (known === undefined) this.digests[i] = d;
    else if (known !== d) this.fail(`peer ${node.id} tree digest differs at committed #${i} (zxid ${this.committed[i - 1]!.zxid.toString(16)})`);
  }

  private checkDurableOnQuorum(t: Txn): void {
    let n = 0;
    for (const id of this.voterIds) {
      const d = this.node(id).disk;
      if ((d.snapshot !== null && d.snapshot.zxid >= t.zxid) || d.log.some((x) => x.zxid === t.zxid && tag(x) === tag(t))) n++;
    }
    if (n < this.quorum) this.fail(`txn ${t.zxid.toString(16)} committed while durable on only ${n} voters`);
  }

  private holds(p: ZabPeer, t: Txn): boolean {
    if (p.snapshotBase().zxid >= t.zxid) return true;
    return p.logEntries().some((x) => x.zxid === t.zxid && tag(x) === tag(t));
  }

  private onEstablished(node: Node, epoch: number): void {
    const prev = this.leaderOfEpoch.get(epoch);
    if (prev !== undefined && prev !== node.id) this.fail(`two leaders established in epoch ${epoch}: ${prev} and ${node.id}`);
    if (prev === undefined) {
      this.leaderOfEpoch.set(epoch, node.id);
      this.leaders.push({ epoch, id: node.id });
    }
    for (const t of this.committed) {
      if (!this.holds(node.peer!, t)) this.fail(`new leader ${node.id} of epoch ${epoch} lacks committed txn ${t.zxid.toString(16)}`);
    }
  }

  // ---------------------------------------------------------------- network

  private connected(a: PeerId, b: PeerId): boolean {
    if (this.group.size === 0) return true;
    return this.group.get(a) === this.group.get(b);
  }

  private sendMsg(from: PeerId, to: PeerId, msg: Message): void {
    this.stats.messages++;
    if (!this.connected(from, to)) return;
    if (this.faults && this.rng.chance(this.opts.drop)) return;
    const copies = this.faults && this.rng.chance(this.opts.dup) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      this.net.push({ from, to, msg, at: this.time + this.rng.int(this.opts.maxDelay + 1), seq: this.seq++ });
    }
  }

  // ---------------------------------------------------------------- clients

  private randomOp(): TxnOp {
    const id = this.cxid;
    if (id < 3 || this.rng.chance(0.4)) {
      return { type: 'create', op: 1, path: `/n${id}`, data: Buffer.from(`v${id}`), acl: OPEN_ACL, ephemeralOwner: 0n, parentCVersion: id + 1 };
    }
    const k = this.rng.int(id);
    return { type: 'setData', path: `/n${k}`, data: Buffer.from(`s${id}`), version: this.rng.int(100) };
  }

  private clientWrite(): void {
    const leaders = this.nodes.filter((n) => n.peer !== null && n.peer.isActiveLeader);
    if (leaders.length === 0) return;
    const node = this.rng.pick(leaders);
    const k = 1 + this.rng.int(3);
    const txns: Omit<Txn, 'zxid'>[] = [];
    for (let i = 0; i < k; i++) {
      txns.push({ time: this.time, sessionId: BigInt(1 + this.rng.int(4)), cxid: ++this.cxid, op: this.randomOp() });
    }
    if (node.peer!.propose(txns) !== null) this.stats.proposed += k;
    // Sometimes a second propose before the drain: both go out as one batch.
    if (this.rng.chance(0.3)) {
      const more = [{ time: this.time, sessionId: 9n, cxid: ++this.cxid, op: this.randomOp() }];
      if (node.peer!.propose(more) !== null) this.stats.proposed++;
    }
    this.drain(node);
  }

  // ---------------------------------------------------------------- faults

  private injectFaults(): void {
    const o = this.opts;
    const live = this.nodes.filter((n) => n.peer !== null);
    const dead = this.nodes.filter((n) => n.peer === null);
    if (live.length > 0 && this.rng.chance(o.crash)) {
      // Prefer crashing the leader half of the time: that is the interesting case.
      const leaders = live.filter((n) => n.peer!.role === 'leading');
      this.crash(leaders.length > 0 && this.rng.chance(0.5) ? this.rng.pick(leaders) : this.rng.pick(live));
    }
    if (dead.length > 0 && this.rng.chance(o.restart)) this.start(this.rng.pick(dead));
    if (this.rng.chance(o.partition)) {
      this.group.clear();
      const groups = 2 + this.rng.int(2);
      for (const n of this.nodes) this.group.set(n.id, this.rng.int(groups));
      this.stats.partitions++;
      // Connections across the cut may be seen to close, or just go silent.
      for (const a of this.nodes)
        for (const b of this.nodes)
          if (a !== b && a.peer !== null && this.group.get(a.id) !== this.group.get(b.id) && this.rng.chance(0.5)) this.disconnect(a, b.id);
    }
    if (this.group.size > 0 && this.rng.chance(o.heal)) this.group.clear();
    if (this.rng.chance(o.compact)) {
      const n = this.rng.pick(this.nodes);
      const p = n.peer;
      if (p !== null && p.appliedZxid > p.snapshotBase().zxid && n.applied > 0) {
        const snap: Snapshot = { zxid: p.appliedZxid, state: n.applied };
        if (this.committed[n.applied - 1]!.zxid !== snap.zxid) this.fail(`peer ${n.id} applied count and zxid disagree`);
        // The snapshot is made durable first, then the log before it is dropped.
        n.disk.snapshot = snap;
        n.disk.log = n.disk.log.filter((t) => t.zxid > snap.zxid);
        p.compact(snap.zxid, snap.state);
      }
    }
  }

  // ---------------------------------------------------------------- stepping

  step(): void {
    this.stepNo++;
    this.time++;
    if (this.faults) this.injectFaults();
    if (this.time % this.opts.tickEvery === 0) {
      for (const n of this.rng.shuffle(this.nodes.slice())) {
        if (n.peer === null) continue;
        n.peer.tick();
        this.drain(n);
      }
    }
    // Deliver what is due, in random order.
    const due: InFlight[] = [];
    const rest: InFlight[] = [];
    for (const m of this.net) (m.at <= this.time ? due : rest).push(m);
    this.net = rest;
    for (const m of this.rng.shuffle(due)) {
      const node = this.node(m.to);
      if (node.peer === null || !this.connected(m.from, m.to)) continue;
      node.peer.step({ type: 'message', msg: m.msg });
      this.drain(node);
    }
    for (const n of this.nodes) {
      while (n.peer !== null && n.writes.length > 0 && n.writes[0]!.at <= this.time) this.completeWrite(n);
    }
    if (this.faults && this.rng.chance(this.opts.write)) this.clientWrite();
  }

  /** Stop injecting faults and client writes: heal partitions, restart everyone. */
  stopFaults(): void {
    this.faults = false;
    this.group.clear();
    for (const n of this.nodes) if (n.peer === null) this.start(n);
  }

  /** One active leader, every other member an active learner of it, nothing uncommitted. */
  converged(): boolean {
    const leaders = this.nodes.filter((n) => n.peer !== null && n.peer.isActiveLeader);
    if (leaders.length !== 1) return false;
    const l = leaders[0]!.peer!;
    for (const n of this.nodes) {
      const p = n.peer!;
      if (p !== l && (!p.isActiveLearner || p.leader !== l.id)) return false;
      if (p.appliedZxid !== l.lastLogged) return false;
    }
    return true;
  }

  finalChecks(): void {
    const d0 = treeDigest(this.nodes[0]!.tree);
    for (const n of this.nodes) {
      if (n.applied !== this.committed.length) this.fail(`peer ${n.id} applied ${n.applied} of ${this.committed.length} committed txns`);
      if (treeDigest(n.tree) !== d0) this.fail(`peer ${n.id} tree differs at the end`);
    }
  }

  run(): SimResult {
    const o = this.opts;
    for (let i = 0; i < o.steps; i++) this.step();
    this.stopFaults();
    const startTime = this.time;
    const limit = o.livenessTicks * o.tickEvery;
    let recovered = -1;
    let marker = -1;
    while (this.time - startTime < limit) {
      this.step();
      if (recovered < 0 && this.converged()) {
        recovered = Math.ceil((this.time - startTime) / o.tickEvery);
        // A fresh write after recovery must commit everywhere too.
        const l = this.nodes.find((n) => n.peer!.isActiveLeader)!;
        const t = l.peer!.propose([{ time: this.time, sessionId: 99n, cxid: ++this.cxid, op: this.randomOp() }]);
        if (t === null) this.fail('recovered leader refused a write');
        marker = t[0]!.zxid;
        this.drain(l);
      }
      if (recovered >= 0 && this.converged() && this.committed.some((c) => c.zxid === marker)) break;
    }
    if (recovered < 0) this.fail(`no leader serving every member within ${o.livenessTicks} ticks after faults stopped`);
    if (!this.committed.some((c) => c.zxid === marker) || !this.converged()) {
      this.fail(`a write after recovery did not commit everywhere within ${o.livenessTicks} ticks`);
    }
    this.finalChecks();
    return {
      seed: o.seed,
      voters: o.voters,
      observers: o.observers,
      steps: this.stepNo,
      committed: this.committed.length,
      proposed: this.stats.proposed,
      crashes: this.stats.crashes,
      partitions: this.stats.partitions,
      snaps: this.stats.snaps,
      truncs: this.stats.truncs,
      leaders: this.leaders,
      recoveryTicks: recovered,
      messages: this.stats.messages,
    };
  }
}

export function runSim(seed: number, over: Partial<SimOptions> = {}): SimResult {
  return new Sim(defaultOptions(seed, over)).run();
}
