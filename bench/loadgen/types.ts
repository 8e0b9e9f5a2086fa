// What the coordinator asks of load-generator threads, and what they answer. Everything
// here crosses a worker_threads boundary, so it is plain structured-clone data.

import type { HistogramData } from './histogram.js';

export interface Address {
  host: string;
  port: number;
  /** How the load generator talks to it: ZooKeeper's jute over TCP (default) or Corral's protobuf over WebSocket. */
  transport?: 'tcp' | 'ws';
}

/**
 * The znodes a phase picks from, as a function of an index, so that a million paths need
 * not be shipped to every thread:
 *  - flat: `${prefix}${i}` (i zero-padded to `pad` digits);
 *  - tree: `${root}/d${floor(i / fanout)}/n${i % fanout}` (leaves of a two-level tree);
 *  - treeDirs: `${root}/d${i}` (the tree's inner nodes).
 */
export type KeySpace =
  | { kind: 'flat'; prefix: string; count: number; pad: number }
  | { kind: 'tree'; root: string; count: number; fanout: number }
  | { kind: 'treeDirs'; root: string; count: number };

/** Relative weights of the operations a phase sends. */
export interface OpMix {
  get?: number;
  set?: number;
  /** An ephemeral-sequential create, followed by the delete of what it created. */
  churn?: number;
}

export interface PhaseSpec {
  /**
   * closed: each session keeps `depth` requests outstanding for warmupMs + durationMs.
   * open: requests are due at a fixed rate (this thread's share, `rate`/s) for durationMs;
   *       latency is measured from each one's scheduled time, and a due request waits in
   *       the session's backlog while the window (`depth`) is full: no coordinated omission.
   * sequence: create/delete/set every key of the keyspace once, `depth` per session.
   */
  mode: 'closed' | 'open' | 'sequence';
  mix: OpMix;
  keys: KeySpace;
  valueSize: number;
  depth: number;
  warmupMs: number;
  durationMs: number;
  /** Open loop: requests per second this thread must issue. */
  rate: number;
  /** Wall-clock ms (nowMs) at which every thread starts, so their windows line up. */
  startAt: number;
  /** How long to wait for outstanding requests after the window before counting them unfinished. */
  drainMs: number;
  /** Parent of churn's ephemeral-sequential nodes: `${churnPrefix}` + server's suffix. */
  churnPrefix: string;
  /** Sequence mode: which operation, and the slice of the keyspace [from, to) for this thread. */
  sequence?: { op: 'create' | 'delete' | 'set'; from: number; to: number; tolerate?: number[] };
  seed: number;
}

export interface PhaseResult {
  /** Requests counted (sent in the measured window, or every request in sequence mode). */
  requests: number;
  /** Of those, replies received (any err). */
  replies: number;
  /** Replies with err = 0 (or a tolerated error). */
  ok: number;
  /** Replies with err = 0 completed inside the window (closed loop throughput numerator). */
  okInWindow: number;
  /** Replies, by error name (NONODE, CONNECTIONLOSS, unfinished, protocol, ...). */
  errors: Record<string, number>;
  /** Errors seen during the warmup (not in the window), by name. */
  warmupErrors: Record<string, number>;
  /** Replies with an error the phase expects and does not count (setup: NODEEXISTS), by name. */
  tolerated: Record<string, number>;
  /** Per request kind name (getData, setData, create, delete): latency of counted requests. */
  hist: Record<string, HistogramData>;
  windowStart: number;
  windowEnd: number;
  lastReply: number;
  /** Fraction of the window this thread's event loop was busy (1 = the load generator was saturated). */
  elu: number;
  /** Open loop: largest backlog seen on one session (requests due but not yet sent). */
  maxBacklog: number;
  /** Open loop: the largest delay between a request's scheduled time and its send. */
  maxSendLagMs: number;
  /** Open loop: delay from each request's scheduled time to its write (load generator lateness). */
  sendLag: HistogramData;
  /** Open loop: reply time minus the request's actual send (what the server, the kernel and the reading side add). */
  wire?: HistogramData;
  /** Open loop: time between the scheduler's turns, naps included (its resolution and its stalls). */
  tickGap?: HistogramData;
  notifications: number;
  sessionsLost: number;
  /** Sessions that were open when the phase started. */
  openSessions: number;
}

export interface ConnectResult {
  connected: number;
  errors: Record<string, number>;
  /** ms from the first connect to each ConnectResponse. */
  hist: HistogramData;
  firstStart: number;
  lastConnected: number;
}

export interface StormResult extends ConnectResult {
  /** ms to close every session that connected (closeSession + reply). */
  closeMs: number;
}

export interface WatchArmResult {
  armed: number;
  errors: Record<string, number>;
}

export interface WatchFireResult {
  sentAt: number;
  repliedAt: number;
  err: number;
}

export interface WatchCollectResult {
  /** Arrival times (nowMs) of the first notification of each watching session. */
  arrivals: number[];
  missing: number;
}

export interface Progress {
  replies: number;
  errors: number;
}
