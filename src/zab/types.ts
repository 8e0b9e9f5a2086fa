// Vocabulary of the pure Zab core (peer.ts): peer ids, roles, the messages peers exchange,
// the inputs the driver feeds in and the Ready batch it drains. Nothing here does I/O.
//
// zxid = epoch << 32 | counter, carried as a double like the rest of Corral (exact up to
// epoch 2^21); see src/storage/zxid.ts.

import type { Txn } from '../tree/types.js';

export type PeerId = number;

export type Role = 'looking' | 'following' | 'leading' | 'observing';

const TWO32 = 4294967296;

export function makeZxid(epoch: number, counter: number): number {
  return epoch * TWO32 + counter;
}
export function zxidEpoch(zxid: number): number {
  return Math.floor(zxid / TWO32);
}
export function zxidCounter(zxid: number): number {
  return zxid % TWO32;
}

/** A FastLeaderElection vote: who, and that candidate's (currentEpoch, last logged zxid). */
export interface Vote {
  leader: PeerId;
  zxid: number;
  peerEpoch: number;
}

/**
 * FastLeaderElection.totalOrderPredicate: is `a` a better vote than `b`?
 * Higher peerEpoch, then higher zxid, then higher server id.
 */
export function voteBetter(a: Vote, b: Vote): boolean {
  if (a.peerEpoch !== b.peerEpoch) return a.peerEpoch > b.peerEpoch;
  if (a.zxid !== b.zxid) return a.zxid > b.zxid;
  return a.leader > b.leader;
}

export function voteEquals(a: Vote, b: Vote): boolean {
  return a.leader === b.leader && a.zxid === b.zxid && a.peerEpoch === b.peerEpoch;
}

/** What must survive a crash besides the log (currentEpoch / acceptedEpoch files). */
export interface HardState {
  /** Highest epoch this peer promised (LEADERINFO accepted, or proposed as leader). */
  acceptedEpoch: number;
  /** Who proposed acceptedEpoch: a second leader can never reuse the same epoch with us. */
  acceptedLeader: PeerId;
  /** Epoch of the last leader whose history this peer durably holds (NEWLEADER acked). */
  currentEpoch: number;
}

/** A snapshot is opaque to the core: the driver produces it (compact) and installs it. */
export interface Snapshot {
  zxid: number;
  state: unknown;
}

/**
 * How the leader brings a learner to its history (LearnerHandler.syncFollower).
 * DIFF: the learner's last zxid is in the leader's log; txns follow it.
 * TRUNC: the learner has txns the leader does not: drop everything after `truncZxid`,
 *        then append txns.
 * SNAP: the leader no longer has the txns the learner needs: install `snapshot`, then txns.
 */
export type SyncPlan =
  | { mode: 'DIFF'; txns: Txn[] }
  | { mode: 'TRUNC'; truncZxid: number; txns: Txn[] }
  | { mode: 'SNAP'; snapshot: Snapshot; txns: Txn[] };

/**
 * Messages. Every message carries the sender; leader/learner messages carry the epoch
 * they belong to so that stale or duplicated ones are recognised and dropped. Cumulative
 * fields (ACK zxid, COMMIT zxid, commitZxid on PING/UPTODATE) make duplicates harmless;
 * `prevZxid` on PROPOSAL/INFORM lets a learner detect a gap left by a lost or reordered
 * message (the leader resends from the learner's last logged zxid, reported in ACKs).
 */
export type Message =
  | {
      type: 'NOTIFICATION';
      from: PeerId;
      state: Role;
      vote: Vote;
      /** The sender's logical clock (election round). */
      round: number;
    }
  | { type: 'FOLLOWERINFO' | 'OBSERVERINFO'; from: PeerId; acceptedEpoch: number; lastZxid: number }
  | { type: 'LEADERINFO'; from: PeerId; epoch: number }
  | {
      type: 'ACKEPOCH';
      from: PeerId;
      epoch: number;
      currentEpoch: number;
      lastZxid: number;
      /**
       * False when the learner had already accepted this epoch from another leader (ZooKeeper
       * sends currentEpoch -1 then): it may be synced, but its ack does not count toward the
       * quorum that establishes the epoch, so no two leaders can establish the same epoch.
       */
      promised: boolean;
    }
  | {
      /**
       * NEWLEADER fused with the DIFF/TRUNC/SNAP that precedes it in ZooKeeper, so that the
       * pair is atomic on a network that may lose or reorder single messages.
       * `learnerZxid` is the learner's last zxid the plan was computed against: a learner
       * whose log moved since (a stale plan) refuses it.
       */
      type: 'NEWLEADER';
      from: PeerId;
      epoch: number;
      learnerZxid: number;
      sync: SyncPlan;
      /** The leader's last zxid once the plan is applied: ACK this (durably) to finish sync. */
      lastZxid: number;
      commitZxid: number;
    }
  | {
      /** Cumulative: everything up to zxid is durable in the learner's log. Also the PING reply. */
      type: 'ACK';
      from: PeerId;
      epoch: number;
      zxid: number;
      /** Last zxid the learner has logged (maybe not yet durable): where resends start. */
      logged: number;
      /** The newest PING `seq` this learner has received in this epoch (0: none). */
      pingSeq?: number;
    }
  | { type: 'UPTODATE'; from: PeerId; epoch: number; commitZxid: number }
  | { type: 'PROPOSAL'; from: PeerId; epoch: number; prevZxid: number; txns: Txn[] }
  | { type: 'COMMIT'; from: PeerId; epoch: number; zxid: number }
  | { type: 'INFORM'; from: PeerId; epoch: number; prevZxid: number; txns: Txn[]; commitZxid: number }
  /** `seq` numbers the leader's heartbeats; learners echo it in ACK (see ZabPeer.heartbeat). */
  | { type: 'PING'; from: PeerId; epoch: number; commitZxid: number; seq?: number };

export type MessageType = Message['type'];

export interface Envelope {
  to: PeerId;
  msg: Message;
}

/** Inputs to ZabPeer.step(). Ticks go through tick(), client writes through propose(). */
export type Input =
  | { type: 'message'; msg: Message }
  /**
   * The driver finished the storage work of one Ready (truncate, snapshot, persist, in that
   * order) and made it durable. `upToZxid` echoes that Ready's `persistUpTo`. Reports must
   * come back in the order the Readys were drained.
   */
  | { type: 'persisted'; upToZxid: number }
  /**
   * The transport saw the connection from a peer close (it crashed or restarted). Only a
   * hint, and safe to drop: a learner whose leader went away looks for a new one now
   * instead of after syncLimit ticks of silence, as ZooKeeper's followers do on a closed socket.
   */
  | { type: 'disconnected'; peer: PeerId };

export interface RoleChange {
  role: Role;
  /** The epoch being established (leading/following/observing) or the current epoch. */
  epoch: number;
  leader: PeerId | null;
  /** True once the role is serving: leader established, or learner told UPTODATE. */
  active: boolean;
}

/**
 * The batch of work the driver must carry out, drained by ZabPeer.ready(), in this order:
 * 1. write `hardState` durably (synchronously) if present;
 * 2. start the storage write: truncate the log after `truncate`, install `snapshot`
 *    (replacing log and tree), append `persist`; report `persisted(persistUpTo)` once durable;
 * 3. send `messages` (they never depend on step 2 being durable yet);
 * 4. apply `commit` to the data tree in order (after installing `snapshot`, if any).
 */
export interface Ready {
  hardState?: HardState;
  truncate?: number;
  snapshot?: Snapshot;
  persist: Txn[];
  /** Last zxid of the log after this Ready's storage work; undefined if there is none. */
  persistUpTo?: number;
  messages: Envelope[];
  commit: Txn[];
  roleChanges: RoleChange[];
}

export interface ZabConfig {
  id: PeerId;
  /** Participants: they vote and their acks count. Must include id unless id is an observer. */
  voters: PeerId[];
  observers: PeerId[];
  /** Ticks a looking peer waits before resending its notifications. */
  electionTimeout: number;
  /**
   * Ticks to wait, once a quorum (but not every voter) agrees, for a better vote before
   * deciding (FastLeaderElection's finalizeWait). Default 1.
   */
  finalizeWait?: number;
  /** Ticks allowed for discovery + sync (ZooKeeper initLimit). */
  initLimit: number;
  /** Ticks without hearing the other side before giving up (ZooKeeper syncLimit). */
  syncLimit: number;
}

/** What a peer restarts from: exactly what its storage made durable. */
export interface DurableState {
  hardState: HardState;
  snapshot: Snapshot | null;
  /** Txns after the snapshot, in zxid order. */
  log: Txn[];
}

export function emptyDurableState(): DurableState {
  return { hardState: { acceptedEpoch: 0, acceptedLeader: -1, currentEpoch: 0 }, snapshot: null, log: [] };
}
