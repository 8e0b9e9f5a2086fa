// The pure Zab core (src/zab/peer.ts) and its seeded simulator (src/zab/sim.ts).
//
//   npx vitest run test/zab.test.ts                     CI mode: a few hundred seeds
//   ZAB_SIM_SEEDS=100000 npx vitest run test/zab.test.ts  long mode (from ZAB_SIM_FROM, default 1)
//   ZAB_SIM_SEED=1234 npx vitest run test/zab.test.ts     replay one seed (prints its result)

import { describe, expect, it } from 'vitest';
import { epochOf, counterOf } from '../src/storage/zxid.js';
import { DataTree, apply } from '../src/tree/datatree.js';
import { treeDigest } from '../src/storage/digest.js';
import type { Txn, TxnOp } from '../src/tree/types.js';
import { ZabPeer } from '../src/zab/peer.js';
import { SimFailure, runSim, type SimOptions, type SimResult } from '../src/zab/sim.js';
import {
  type DurableState,
  type Envelope,
  type Message,
  type PeerId,
  type Vote,
  emptyDurableState,
  makeZxid,
  voteBetter,
  zxidCounter,
  zxidEpoch,
} from '../src/zab/types.js';

// ------------------------------------------------------------------------------ units

describe('zab: votes and zxids', () => {
  const v = (leader: number, peerEpoch: number, zxid: number): Vote => ({ leader, peerEpoch, zxid });

  it('orders votes by peerEpoch, then zxid, then server id', () => {
    expect(voteBetter(v(1, 2, 0), v(3, 1, makeZxid(1, 99)))).toBe(true); // epoch wins over zxid and sid
    expect(voteBetter(v(1, 1, makeZxid(1, 5)), v(3, 1, makeZxid(1, 4)))).toBe(true); // zxid wins over sid
    expect(voteBetter(v(3, 1, makeZxid(1, 5)), v(1, 1, makeZxid(1, 5)))).toBe(true); // sid breaks ties
    expect(voteBetter(v(1, 1, makeZxid(1, 5)), v(3, 1, makeZxid(1, 5)))).toBe(false);
    expect(voteBetter(v(2, 1, 7), v(2, 1, 7))).toBe(false); // not better than itself
    const votes = [v(1, 1, 3), v(2, 2, 1), v(3, 1, 3), v(4, 2, 1), v(5, 0, 100)];
    const best = votes.reduce((a, b) => (voteBetter(b, a) ? b : a));
    expect(best.leader).toBe(4);
  });

  it('packs zxid as epoch << 32 | counter, like the storage layer', () => {
    const z = makeZxid(7, 12345);
    expect(z).toBe(7 * 2 ** 32 + 12345);
    expect(zxidEpoch(z)).toBe(7);
    expect(zxidCounter(z)).toBe(12345);
    expect(epochOf(z)).toBe(7);
    expect(counterOf(z)).toBe(12345);
    expect(makeZxid(8, 0)).toBeGreaterThan(makeZxid(7, 2 ** 32 - 1));
    expect(zxidEpoch(makeZxid(2 ** 20, 1))).toBe(2 ** 20);
  });
});

// ------------------------------------------------------------------------------ a tiny driver

/** A perfect network and storage, under the test's control. */
class Cluster {
  readonly peers = new Map<PeerId, ZabPeer>();
  readonly trees = new Map<PeerId, DataTree>();
  readonly committed = new Map<PeerId, Txn[]>();
  readonly sent: { from: PeerId; env: Envelope }[] = [];
  private queue: { from: PeerId; env: Envelope }[] = [];
  /** Storage writes not yet reported durable, per peer. */
  readonly pendingWrites = new Map<PeerId, number[]>();
  /** Peers whose storage completes only when flush(id) is called. */
  readonly slowDisk = new Set<PeerId>();
  /** Peers cut off (messages to and from them are dropped). */
  readonly down = new Set<PeerId>();
  /** One-way links that drop what is sent over them, as `from>to`. */
  readonly cut = new Set<string>();

  constructor(
    readonly voters: PeerId[],
    readonly observers: PeerId[] = [],
  ) {
    for (const id of [...voters, ...observers]) {
      const p = this.newPeer(id, emptyDurableState());
      this.peers.set(id, p);
      this.trees.set(id, new DataTree());
      this.committed.set(id, []);
      this.pendingWrites.set(id, []);
    }
    for (const id of this.peers.keys()) this.drain(id);
  }

  private newPeer(id: PeerId, state: DurableState): ZabPeer {
    return new ZabPeer({ id, voters: this.voters, observers: this.observers, electionTimeout: 2, initLimit: 10, syncLimit: 5 }, state);
  }

  /** Replaces a peer with a fresh process that recovered `state` from its disk; the others notice nothing. */
  restart(id: PeerId, state: DurableState): void {
    this.peers.set(id, this.newPeer(id, state));
    this.drain(id);
  }

  peer(id: PeerId): ZabPeer {
    return this.peers.get(id)!;
  }

  drain(id: PeerId): void {
    const p = this.peer(id);
    while (p.hasReady()) {
      const r = p.ready();
      if (r.persistUpTo !== undefined) this.pendingWrites.get(id)!.push(r.persistUpTo);
      for (const t of r.commit) {
        apply(this.trees.get(id)!, t);
        this.committed.get(id)!.push(t);
      }
      for (const env of r.messages) {
        this.sent.push({ from: id, env });
        this.queue.push({ from: id, env });
      }
    }
    if (!this.slowDisk.has(id)) this.flush(id);
  }

  flush(id: PeerId): void {
    const w = this.pendingWrites.get(id)!;
    while (w.length > 0) {
      this.peer(id).step({ type: 'persisted', upToZxid: w.shift()! });
      this.drain(id);
    }
  }

  /** Deliver messages in FIFO order until the network is quiet. */
  settle(max = 10_000): void {
    for (let n = 0; this.queue.length > 0; n++) {
      if (n > max) throw new Error('network never settles');
      const { from, env } = this.queue.shift()!;
      if (this.down.has(from) || this.down.has(env.to) || this.cut.has(`${from}>${env.to}`)) continue;
      this.peer(env.to).step({ type: 'message', msg: env.msg });
      this.drain(env.to);
    }
  }

  tick(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const id of this.peers.keys()) {
        if (this.down.has(id)) continue;
        this.peer(id).tick();
        this.drain(id);
      }
      this.settle();
    }
  }

  sentOf(type: Message['type']): { from: PeerId; env: Envelope }[] {
    return this.sent.filter((s) => s.env.msg.type === type);
  }
}

let cxid = 0;
function writes(n: number): Omit<Txn, 'zxid'>[] {
  const out: Omit<Txn, 'zxid'>[] = [];
  for (let i = 0; i < n; i++) {
    const id = ++cxid;
    const op: TxnOp = { type: 'create', op: 1, path: `/w${id}`, data: Buffer.from(`d${id}`), acl: [{ perms: 31, scheme: 'world', id: 'anyone' }], ephemeralOwner: 0n, parentCVersion: id };
    out.push({ time: id, sessionId: 1n, cxid: id, op });
  }
  return out;
}

describe('zab: a clean 3-node ensemble', () => {
  it('elects the highest sid on equal logs, establishes epoch 1, then broadcasts a batch', () => {
    const c = new Cluster([1, 2, 3]);
    c.tick(2); // elections decide after finalizeWait (one tick)
    expect(c.peer(3).role).toBe('leading');
    expect(c.peer(3).isActiveLeader).toBe(true);
    expect(c.peer(1).role).toBe('following');
    expect(c.peer(2).role).toBe('following');
    for (const id of [1, 2, 3]) {
      expect(c.peer(id).currentEpoch).toBe(1);
      expect(c.peer(id).acceptedEpoch).toBe(1);
    }
    // Discovery and sync happened: FOLLOWERINFO, LEADERINFO, ACKEPOCH, NEWLEADER (an empty DIFF).
    expect(c.sentOf('FOLLOWERINFO').length).toBeGreaterThanOrEqual(2);
    expect(c.sentOf('LEADERINFO').every((s) => (s.env.msg as { epoch: number }).epoch === 1)).toBe(true);
    const nl = c.sentOf('NEWLEADER').map((s) => s.env.msg as Extract<Message, { type: 'NEWLEADER' }>);
    expect(nl.length).toBeGreaterThanOrEqual(2);
    expect(nl.every((m) => m.sync.mode === 'DIFF' && m.sync.txns.length === 0)).toBe(true);

    const acksBefore = c.sentOf('ACK').length;
    const proposalsBefore = c.sentOf('PROPOSAL').length;
    const logged = c.peer(3).propose(writes(3))!;
    expect(logged.map((t) => t.zxid)).toEqual([makeZxid(1, 1), makeZxid(1, 2), makeZxid(1, 3)]);
    c.drain(3);
    c.settle();
    // One PROPOSAL carrying the whole batch per follower, one ACK per follower.
    const props = c.sentOf('PROPOSAL').slice(proposalsBefore);
    expect(props.length).toBe(2);
    expect(props.every((p) => (p.env.msg as { txns: Txn[] }).txns.length === 3)).toBe(true);
    expect(c.sentOf('ACK').length - acksBefore).toBe(2);
    for (const id of [1, 2, 3]) {
      expect(c.committed.get(id)!.map((t) => t.zxid)).toEqual(logged.map((t) => t.zxid));
    }
    const d = treeDigest(c.trees.get(3)!);
    expect(treeDigest(c.trees.get(1)!)).toBe(d);
    expect(treeDigest(c.trees.get(2)!)).toBe(d);
    expect(propose(c.peer(1))).toBeNull(); // followers do not take writes
  });

  it('commits only when a quorum has the batch durably; the leader counts itself after its own persist', () => {
    const c = new Cluster([1, 2, 3]);
    c.tick(2); // elections decide after finalizeWait (one tick)
    c.slowDisk.add(3);
    c.slowDisk.add(2);
    c.peer(3).propose(writes(2));
    c.drain(3);
    c.settle();
    // Only follower 1 is durable: 1 of 3, no commit anywhere.
    expect(c.committed.get(3)!.length).toBe(0);
    expect(c.committed.get(1)!.length).toBe(0);
    c.flush(3); // leader durable: 2 of 3
    c.settle();
    expect(c.committed.get(3)!.length).toBe(2);
    expect(c.committed.get(1)!.length).toBe(2);
    expect(c.committed.get(2)!.length).toBe(2); // 2 commits what it logged even before its own fsync
    c.flush(2);
    c.settle();
  });

  it('pipelines batches and commits them in zxid order', () => {
    const c = new Cluster([1, 2, 3]);
    c.tick(2); // elections decide after finalizeWait (one tick)
    c.slowDisk.add(1);
    c.slowDisk.add(2);
    const a = c.peer(3).propose(writes(2))!;
    c.drain(3);
    const b = c.peer(3).propose(writes(3))!;
    c.drain(3);
    c.settle();
    expect(c.sentOf('PROPOSAL').length).toBe(4); // two batches in flight to each follower
    expect(c.committed.get(3)!.length).toBe(0);
    c.flush(1); // one durable write per batch: follower 1 acks each once
    c.settle();
    expect(c.committed.get(3)!.map((t) => t.zxid)).toEqual([...a, ...b].map((t) => t.zxid));
    expect(c.sentOf('ACK').filter((s) => s.from === 1).length).toBeGreaterThanOrEqual(2);
  });

  it('observers get committed txns by INFORM and never count toward the quorum', () => {
    const c = new Cluster([1, 2, 3], [4]);
    c.tick(2); // elections decide after finalizeWait (one tick)
    c.tick(3); // the observer finds the leader through the voters' answers
    expect(c.peer(4).role).toBe('observing');
    expect(c.peer(4).isActiveLearner).toBe(true);
    const logged = c.peer(3).propose(writes(2))!;
    c.drain(3);
    c.settle();
    expect(c.committed.get(4)!.map((t) => t.zxid)).toEqual(logged.map((t) => t.zxid));
    expect(c.sentOf('PROPOSAL').some((s) => s.env.to === 4)).toBe(false);
    expect(c.sentOf('INFORM').some((s) => s.env.to === 4)).toBe(true);
    // With both followers cut off, the observer's durable copy does not make a quorum.
    c.down.add(1);
    c.down.add(2);
    c.peer(3).propose(writes(1));
    c.drain(3);
    c.settle();
    expect(c.committed.get(3)!.length).toBe(2);
    // And the leader steps down after syncLimit ticks without a quorum.
    c.tick(8);
    expect(c.peer(3).role).toBe('looking');
  });

  it('the voter a quorum chose leads once it hears they follow it, though their votes to it were lost', () => {
    const c = new Cluster([1, 2, 3]);
    // 3 was not listening yet when 1 and 2 sent their votes: those are lost; 3's reach them.
    c.cut.add('1>3');
    c.cut.add('2>3');
    c.tick(2);
    expect(c.peer(1).role).toBe('following');
    expect(c.peer(2).role).toBe('following');
    expect(c.peer(3).role).toBe('looking');
    c.cut.clear();
    // 3 sends its vote again (electionTimeout, 2 ticks); 1 and 2 answer as its followers.
    // Before the fix 3 kept looking until they gave up after syncLimit and voted again.
    c.tick(3);
    expect(c.peer(3).isActiveLeader).toBe(true);
    for (const id of [1, 2]) {
      expect(c.peer(id).isActiveLearner).toBe(true);
      expect(c.peer(id).currentEpoch).toBe(1);
    }
    const logged = c.peer(3).propose(writes(1))!;
    c.drain(3);
    c.settle();
    expect(c.committed.get(1)!.map((t) => t.zxid)).toEqual(logged.map((t) => t.zxid));
  });

  it('a restarted voter does not lead on answers that name an earlier it, and a fair election follows', () => {
    const c = new Cluster([1, 2, 3]);
    c.tick(2);
    const logged = c.peer(3).propose(writes(2))!;
    c.drain(3);
    c.settle();
    // 3 restarts with what it made durable (epoch 1, both txns) before 1 and 2 notice. They
    // still follow the 3 they elected with an empty log: their vote is not 3's vote now.
    c.restart(3, { hardState: { acceptedEpoch: 1, acceptedLeader: 3, currentEpoch: 1 }, snapshot: null, log: [...c.committed.get(3)!] });
    c.settle();
    expect(c.peer(1).role).toBe('following');
    expect(c.peer(3).role).toBe('looking');
    // 1 and 2 give up on the old 3 after syncLimit, vote again, and 3 leads epoch 2 with every commit.
    c.tick(12);
    expect(c.peer(3).isActiveLeader).toBe(true);
    expect(c.peer(3).currentEpoch).toBe(2);
    const next = c.peer(3).propose(writes(1))!;
    c.drain(3);
    c.settle();
    expect(c.committed.get(1)!.map((t) => t.zxid)).toEqual([...logged, ...next].map((t) => t.zxid));
  });

  it('a follower that stops hearing the leader goes looking, and a new leader keeps every commit', () => {
    const c = new Cluster([1, 2, 3]);
    c.tick(2); // elections decide after finalizeWait (one tick)
    const first = c.peer(3).propose(writes(2))!;
    c.drain(3);
    c.settle();
    c.down.add(3);
    c.tick(8);
    expect(c.peer(1).role === 'looking' || c.peer(2).role === 'leading' || c.peer(1).role === 'leading').toBe(true);
    c.tick(10);
    const leader = [1, 2].find((id) => c.peer(id).isActiveLeader)!;
    expect(leader).toBeDefined();
    expect(c.peer(leader).currentEpoch).toBe(2);
    const next = c.peer(leader).propose(writes(1))!;
    expect(zxidEpoch(next[0]!.zxid)).toBe(2);
    c.drain(leader);
    c.settle();
    const other = leader === 1 ? 2 : 1;
    expect(c.committed.get(other)!.map((t) => t.zxid)).toEqual([...first, ...next].map((t) => t.zxid));
  });
});

describe('zab: synchronisation plans', () => {
  function logOf(...zxids: [number, number][]): Txn[] {
    return zxids.map(([e, c]) => ({ ...writes(1)[0]!, zxid: makeZxid(e, c) }));
  }
  function restored(currentEpoch: number, log: Txn[]) {
    return { hardState: { acceptedEpoch: currentEpoch, acceptedLeader: -1, currentEpoch }, snapshot: null, log };
  }
  function clusterFrom(states: Map<PeerId, ReturnType<typeof restored>>): Cluster {
    const c = new Cluster([]);
    const voters = [...states.keys()];
    for (const [id, st] of states) {
      c.peers.set(id, new ZabPeer({ id, voters, observers: [], electionTimeout: 2, initLimit: 10, syncLimit: 5 }, st));
      c.trees.set(id, new DataTree());
      c.committed.set(id, []);
      c.pendingWrites.set(id, []);
    }
    for (const id of voters) c.drain(id);
    return c;
  }
  const nl = (c: Cluster, to: PeerId) =>
    c.sentOf('NEWLEADER').filter((s) => s.env.to === to).map((s) => s.env.msg as Extract<Message, { type: 'NEWLEADER' }>);

  it('DIFF for a learner behind, TRUNC for one ahead in the same epoch', () => {
    const shared = logOf([1, 1], [1, 2], [1, 3]);
    const leaderLog = [...shared, ...logOf([2, 1])];
    const ahead = [...shared, ...logOf([1, 4], [1, 5])];
    const c = clusterFrom(
      new Map([
        [1, restored(0, [])],
        [2, restored(1, ahead)],
        [3, restored(2, leaderLog)],
      ]),
    );
    c.tick(3);
    expect(c.peer(3).isActiveLeader).toBe(true); // highest currentEpoch wins
    expect(c.peer(3).epochLed).toBe(3);
    expect(nl(c, 1)[0]!.sync.mode).toBe('DIFF');
    const t = nl(c, 2)[0]!.sync;
    expect(t.mode).toBe('TRUNC');
    expect(t.mode === 'TRUNC' && t.truncZxid).toBe(makeZxid(1, 3));
    const want = leaderLog.map((x) => x.zxid);
    for (const id of [1, 2, 3]) {
      expect(c.peer(id).logEntries().map((x) => x.zxid)).toEqual(want);
      expect(c.committed.get(id)!.map((x) => x.zxid)).toEqual(want); // the initial history commits
    }
  });

  it('SNAP when the learner cannot be truncated to a common point', () => {
    // The leader's largest zxid below the learner's last is 1:4, which the learner never had.
    const leaderLog = logOf([1, 1], [1, 2], [1, 3], [1, 4]);
    const other = [...leaderLog.slice(0, 3), ...logOf([2, 1], [2, 2])];
    const c = clusterFrom(
      new Map([
        [1, restored(3, leaderLog)],
        [2, restored(2, other)],
        [3, restored(0, [])],
      ]),
    );
    c.tick(3);
    expect(c.peer(1).isActiveLeader).toBe(true);
    expect(nl(c, 2)[0]!.sync.mode).toBe('SNAP');
    expect(c.peer(2).logEntries().map((x) => x.zxid)).toEqual(leaderLog.map((x) => x.zxid));
  });
});

function propose(p: ZabPeer): Txn[] | null {
  return p.propose(writes(1));
}

// ------------------------------------------------------------------------------ simulator

function envInt(name: string): number | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : Number(v);
}

interface Totals {
  seeds: number;
  steps: number;
  committed: number;
  crashes: number;
  partitions: number;
  truncs: number;
  snaps: number;
  leaders: number;
  maxRecovery: number;
}

function runSeeds(from: number, count: number, over: Partial<SimOptions>): Totals {
  const t: Totals = { seeds: 0, steps: 0, committed: 0, crashes: 0, partitions: 0, truncs: 0, snaps: 0, leaders: 0, maxRecovery: 0 };
  for (let s = from; s < from + count; s++) {
    let r: SimResult;
    try {
      r = runSim(s, over);
    } catch (e) {
      if (e instanceof SimFailure) throw e;
      throw new Error(`zab sim seed ${s} crashed (replay: ZAB_SIM_SEED=${s}): ${(e as Error).stack}`);
    }
    t.seeds++;
    t.steps += r.steps;
    t.committed += r.committed;
    t.crashes += r.crashes;
    t.partitions += r.partitions;
    t.truncs += r.truncs;
    t.snaps += r.snaps;
    t.leaders += r.leaders.length;
    t.maxRecovery = Math.max(t.maxRecovery, r.recoveryTicks);
  }
  return t;
}

const heavy: Partial<SimOptions> = { steps: 1500, crash: 0.01, partition: 0.01, drop: 0.1, dup: 0.1, compact: 0.01 };

describe('zab: simulator', () => {
  const one = envInt('ZAB_SIM_SEED');
  const many = envInt('ZAB_SIM_SEEDS');
  const from = envInt('ZAB_SIM_FROM') ?? 1;

  if (one !== undefined) {
    it(`replays seed ${one}`, () => {
      const heavyToo = process.env.ZAB_SIM_HEAVY === '1';
      const r = runSim(one, heavyToo ? heavy : {});
      console.log(`zab sim seed ${one}: ${JSON.stringify(r)}`);
    });
    return;
  }

  if (many !== undefined) {
    it(`runs ${many} seeds from ${from} (half with heavy faults)`, () => {
      const half = Math.ceil(many / 2);
      console.log(`zab sim: seeds ${from}..${from + half - 1} default, ${from + half}..${from + many - 1} heavy`);
      const a = runSeeds(from, half, {});
      const b = runSeeds(from + half, many - half, heavy);
      console.log(`zab sim default: ${JSON.stringify(a)}`);
      console.log(`zab sim heavy:   ${JSON.stringify(b)}`);
    }, 24 * 3600_000);
    return;
  }

  it('is deterministic: a seed replays to the same result', () => {
    const a = runSim(42, heavy);
    const b = runSim(42, heavy);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    expect(a.leaders.length).toBeGreaterThan(1);
  });

  it('CI: 400 seeds, 3 and 5 voters (some with an observer), default faults', () => {
    const t = runSeeds(1, 400, {});
    console.log(`zab sim CI seeds 1..400: ${JSON.stringify(t)}`);
    expect(t.committed).toBeGreaterThan(0);
    expect(t.crashes).toBeGreaterThan(0);
    expect(t.partitions).toBeGreaterThan(0);
    expect(t.truncs).toBeGreaterThan(0);
  }, 120_000);

  it('CI: 80 seeds with heavy faults (loss, duplication, crashes, partitions, compaction)', () => {
    const t = runSeeds(100_001, 80, heavy);
    console.log(`zab sim CI heavy seeds 100001..100080: ${JSON.stringify(t)}`);
    expect(t.snaps).toBeGreaterThan(0);
  }, 120_000);

  it('CI: fault-free runs commit everything proposed and recover quickly', () => {
    const t = runSeeds(200_001, 20, { drop: 0, dup: 0, crash: 0, partition: 0 });
    expect(t.leaders).toBe(20);
    expect(t.maxRecovery).toBeLessThanOrEqual(10);
  }, 120_000);
});

// ------------------------------------------------------------------------------ epoch guards
// The simulator rarely reaches these paths (see native-notes/zab.md), so they are driven
// here message by message.

describe('zab: epoch promises', () => {
  const cfg = (id: PeerId) => ({ id, voters: [1, 2, 3], observers: [], electionTimeout: 2, initLimit: 10, syncLimit: 5 });
  const drainAll = (p: ZabPeer) => {
    const out: Envelope[] = [];
    while (p.hasReady()) out.push(...p.ready().messages);
    return out;
  };
  const vote = (leader: PeerId): Vote => ({ leader, zxid: 0, peerEpoch: 0 });

  /** Peer 1 leads with peer 2's vote; returns it with its first LEADERINFO epoch decided by 2's FOLLOWERINFO. */
  function leaderWith(acceptedEpochOf2: number): { p: ZabPeer; epoch: number } {
    const p = new ZabPeer(cfg(1), emptyDurableState());
    drainAll(p);
    p.step({ type: 'message', msg: { type: 'NOTIFICATION', from: 2, state: 'looking', vote: vote(1), round: 1 } });
    p.tick(); // finalizeWait: decide at the next tick
    drainAll(p);
    expect(p.role).toBe('leading');
    p.step({ type: 'message', msg: { type: 'FOLLOWERINFO', from: 2, acceptedEpoch: acceptedEpochOf2, lastZxid: 0 } });
    const info = drainAll(p).find((e) => e.msg.type === 'LEADERINFO');
    expect(info).toBeDefined();
    return { p, epoch: (info!.msg as { epoch: number }).epoch };
  }

  it('a leader does not count an ACKEPOCH that is not a promise toward establishing its epoch', () => {
    const { p, epoch } = leaderWith(4);
    expect(epoch).toBe(5);
    // Peer 2 had accepted epoch 5 from someone else: it follows, without promising.
    p.step({ type: 'message', msg: { type: 'ACKEPOCH', from: 2, epoch, currentEpoch: 0, lastZxid: 0, promised: false } });
    expect(drainAll(p).filter((e) => e.msg.type === 'NEWLEADER')).toEqual([]);
    // A real promise from peer 3 makes the quorum (1 and 3); then both are synced.
    p.step({ type: 'message', msg: { type: 'FOLLOWERINFO', from: 3, acceptedEpoch: 0, lastZxid: 0 } });
    drainAll(p);
    p.step({ type: 'message', msg: { type: 'ACKEPOCH', from: 3, epoch, currentEpoch: 0, lastZxid: 0, promised: true } });
    const sent = drainAll(p).filter((e) => e.msg.type === 'NEWLEADER').map((e) => e.to).sort();
    expect(sent).toEqual([2, 3]);
  });

  it('a follower never acknowledges an epoch below the one it accepted, and persists a higher one before promising it', () => {
    const restored = emptyDurableState();
    restored.hardState = { acceptedEpoch: 5, acceptedLeader: 2, currentEpoch: 4 };
    const p = new ZabPeer(cfg(3), restored);
    drainAll(p);
    // Peers 1 and 2 say 1 leads (the out-of-election path): 3 follows 1.
    const v: Vote = { leader: 1, zxid: 0, peerEpoch: 4 };
    p.step({ type: 'message', msg: { type: 'NOTIFICATION', from: 1, state: 'leading', vote: v, round: 1 } });
    p.step({ type: 'message', msg: { type: 'NOTIFICATION', from: 2, state: 'following', vote: v, round: 1 } });
    drainAll(p);
    expect(p.role).toBe('following');
    p.step({ type: 'message', msg: { type: 'LEADERINFO', from: 1, epoch: 4 } });
    expect(drainAll(p).filter((e) => e.msg.type === 'ACKEPOCH')).toEqual([]);
    p.step({ type: 'message', msg: { type: 'LEADERINFO', from: 1, epoch: 6 } });
    expect(p.hasReady()).toBe(true);
    const r = p.ready();
    expect(r.hardState).toEqual({ acceptedEpoch: 6, acceptedLeader: 1, currentEpoch: 4 });
    const ack = r.messages.find((e) => e.msg.type === 'ACKEPOCH');
    expect(ack?.msg).toMatchObject({ epoch: 6, promised: true });
  });
});
