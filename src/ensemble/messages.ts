// What ensemble members say to each other besides the Zab core's own messages: the
// learner's side of ZooKeeper's Learner/LearnerHandler packets that are about clients,
// not about the log (REQUEST, REVALIDATE/ping session touches, SYNC), plus the snapshot
// bytes a SNAP plan carries. The core never sees these; the driver (quorum-peer.ts) does.

import type { Message, PeerId } from '../zab/types.js';
import type { Id } from '../tree/types.js';

/** A client write (or createSession/closeSession) a learner forwards to the leader. */
export interface ForwardedRequest {
  type: 'REQUEST';
  from: PeerId;
  sessionId: bigint;
  cxid: number;
  op: number;
  /** The request body as the client sent it (jute), parsed again by the leader's prep. */
  body: Buffer;
  authIds: Id[];
  /** createSession only: the negotiated timeout. */
  timeout?: number;
}

/** Sessions with activity on a learner since its last report (Learner's ping payload). */
export interface TouchMessage {
  type: 'TOUCH';
  from: PeerId;
  sessions: { id: bigint; timeout: number }[];
}

/** A learner's client asked for sync: the leader answers with the zxid to wait for. */
export interface SyncRequest {
  type: 'SYNC';
  from: PeerId;
  sessionId: bigint;
  cxid: number;
}

export interface SyncReply {
  type: 'SYNCED';
  from: PeerId;
  sessionId: bigint;
  cxid: number;
  /** Apply up to here, then answer the sync. */
  zxid: number;
}

export type DriverMessage = ForwardedRequest | TouchMessage | SyncRequest | SyncReply;

export type PeerMessage = Message | DriverMessage;

/**
 * What the opaque `Snapshot.state` of the core holds in a real server: which stored
 * snapshot it is, and (once read for a SNAP) its raw marker and chunks.
 */
export interface SnapState {
  id: number;
  /** The snapshot is fuzzy: txns up to endZxid may already be in it (replay them idempotently). */
  endZxid: number;
  raw?: { marker: Buffer; chunks: Buffer[] };
}
