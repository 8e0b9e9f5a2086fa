// The transaction log: zxid -> record in an LMDB environment, with group commit.
//
// Appends made in the same synchronous run are encoded and handed to lmdb-js together,
// at the next microtask, as one batch (up to MAX_BATCH records, an append never split).
// lmdb-js's write thread commits batches back to back: whatever was handed over while
// one LMDB transaction committed goes into the next, so transactions are one append when
// the server is idle and grow with load, with no timer anywhere. The main thread never
// waits for a commit before handing over more: a gate here (one batch in flight, the next
// started from the main thread when it resolves) cost ~10 % of closed-loop write
// throughput, the write thread idling until the main thread got round to it
// (native-notes/storage.md).

import type { Database, RootDatabase } from 'lmdb';
import type { Txn } from '../tree/types.js';
import { closeEnv, LOG_FILE, openEnv } from './env.js';
import { StorageError } from './errors.js';
import { decodeRecord, encodeTxn, RecordError, sealRecord } from './txncodec.js';
import { follows, zxidHex } from './zxid.js';

/** Upper bound on records per log commit; an append is never split. */
export const MAX_BATCH = 1000;
/** Records removed per LMDB transaction by purge/truncate. */
const REMOVE_CHUNK = 10000;

export interface TxnLogOptions {
  forceSync: boolean;
  readOnly?: boolean;
}

export interface TxnLogStats {
  /** Batches handed to LMDB by append; one LMDB transaction commits one or more. */
  commits: number;
  /** Txns made durable (or visible, without forceSync) by append. */
  txns: number;
  largestBatch: number;
}

interface Pending {
  zxids: number[];
  records: Buffer[];
  resolve: () => void;
  reject: (e: Error) => void;
}

export interface RawRecord {
  zxid: number;
  value: Buffer;
}

export class TxnLog {
  readonly stats: TxnLogStats = { commits: 0, txns: 0, largestBatch: 0 };
  readonly forceSync: boolean;
  private readonly env: RootDatabase;
  private readonly db: Database<Buffer, number>;
  private queue: Pending[] = [];
  /** Batches handed to LMDB and not yet resolved. */
  private inflight = 0;
  /** truncateAfter() holds new batches back while it cuts the log. */
  private held = false;
  private scheduled = false;
  private failed: Error | null = null;
  /** cutAfterFailure() has run. */
  private cut = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  /** zxid of the last txn committed. */
  private last: number;
  /** zxid of the last txn accepted by append(), committed or not. */
  private lastAccepted: number;

  private constructor(
    readonly dir: string,
    opts: TxnLogOptions,
  ) {
    this.forceSync = opts.forceSync;
    this.env = openEnv(dir, LOG_FILE, { durable: opts.forceSync, readOnly: opts.readOnly });
    this.db = this.env.openDB<Buffer, number>('txnlog', { encoding: 'binary' });
    this.last = this.lastKey() ?? 0;
    this.lastAccepted = this.last;
  }

  /** Opens (creating if needed) the log environment in `dir`, e.g. `<dataLogDir>/corral-log`. */
  static open(dir: string, opts: TxnLogOptions): TxnLog {
    return new TxnLog(dir, opts);
  }

  /** zxid of the newest committed txn, 0 when the log is empty. */
  get lastZxid(): number {
    return this.last;
  }

  /** zxid of the oldest txn still in the log, or undefined when empty. */
  get firstZxid(): number | undefined {
    for (const k of this.db.getKeys({ limit: 1 })) return k;
    return undefined;
  }

  private lastKey(): number | undefined {
    for (const k of this.db.getKeys({ reverse: true, limit: 1 })) return k;
    return undefined;
  }

  /**
   * Where the next append must continue from when the log holds nothing newer, e.g.
   * the zxid of a snapshot recovered while the log was lost or purged behind it.
   */
  setBase(zxid: number): void {
    if (zxid > this.lastAccepted) this.lastAccepted = zxid;
  }

  /**
   * Logs txns, in zxid order and continuing the log. Resolves once they are in a
   * committed LMDB transaction: on disk with forceSync, visible only without.
   */
  append(txns: Txn[]): Promise<void> {
    if (this.closed) return Promise.reject(new StorageError(`txn log ${this.dir} is closed`));
    if (this.failed !== null) return Promise.reject(this.failedError());
    if (txns.length === 0) return Promise.resolve();
    const zxids: number[] = [];
    const records: Buffer[] = [];
    let prev = this.lastAccepted;
    for (const t of txns) {
      // The rule recovery checks: a log append() accepts is a log recovery accepts.
      if (!follows(prev, t.zxid)) {
        return Promise.reject(new StorageError(`txn log ${this.dir}: zxid ${zxidHex(t.zxid)} does not follow ${zxidHex(prev)}`));
      }
      zxids.push(t.zxid);
      records.push(encodeTxn(t));
      prev = t.zxid;
    }
    this.lastAccepted = prev;
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ zxids, records, resolve, reject });
      this.schedule();
    });
  }

  // A microtask, not a timer: appends made in the same synchronous run share a batch.
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    if (this.held) return;
    while (this.queue.length > 0) this.handOver();
    if (this.inflight === 0) {
      if (this.failed !== null && !this.cut) this.cutAfterFailure();
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  /** Hands the oldest queued appends to lmdb-js as one batch. */
  private handOver(): void {
    let n = 0;
    let take = 0;
    while (take < this.queue.length && (take === 0 || n + this.queue[take]!.records.length <= MAX_BATCH)) {
      n += this.queue[take]!.records.length;
      take++;
    }
    const batch = this.queue.splice(0, take);
    const first = batch[0]!.zxids[0]!;
    const lastP = batch[batch.length - 1]!;
    const last = lastP.zxids[lastP.zxids.length - 1]!;
    this.inflight++;
    let done: Promise<boolean>;
    try {
      // One batch() callback is one LMDB transaction or part of one, never split.
      done = this.db.batch(() => {
        for (const p of batch) {
          for (let i = 0; i < p.records.length; i++) this.db.put(p.zxids[i]!, sealRecord(p.records[i]!, first, n));
        }
      });
    } catch (e) {
      done = Promise.reject(e);
    }
    done.then(
      () => {
        this.inflight--;
        // lmdb-js resolves in commit order. Once one batch failed, later ones may still
        // have committed: they are refused here and cut off below (cutAfterFailure).
        if (this.failed !== null) {
          const err = this.failedError();
          for (const p of batch) p.reject(err);
        } else {
          this.last = last;
          this.stats.commits++;
          this.stats.txns += n;
          if (n > this.stats.largestBatch) this.stats.largestBatch = n;
          for (const p of batch) p.resolve();
        }
        this.pump();
      },
      (e: unknown) => {
        // The log's state is now unknown: refuse everything after (at once, so a later
        // batch resolving meanwhile is refused too), the server must stop.
        const firstFailure = this.failed === null;
        if (firstFailure) this.failed = e instanceof Error ? e : new Error(String(e));
        const fail = (): void => {
          this.inflight--;
          const err = this.failedError();
          for (const p of batch) p.reject(err);
          for (const p of this.queue.splice(0)) p.reject(err);
          this.pump();
        };
        // lmdb-js rejects the batch with a summary, then a second promise (commitError)
        // with LMDB's own error: that one is handled (unhandled, it would kill the
        // process) and is what the failure reports, if it comes at once as it does.
        const detail = (e as { commitError?: Promise<unknown> }).commitError;
        detail?.catch(() => undefined);
        if (!firstFailure || detail === undefined) return fail();
        let timer: NodeJS.Timeout | undefined;
        void Promise.race([detail.then(() => e, (cause: unknown) => cause), new Promise((r) => (timer = setTimeout(() => r(e), 100)))]).then((cause) => {
          clearTimeout(timer);
          if (cause instanceof Error) this.failed = cause;
          fail();
        });
      },
    );
  }

  /**
   * After a failed commit, batches handed over behind it may have committed anyway: a
   * gap on disk that recovery would refuse as damage. They were never acknowledged, so
   * they are removed. Best effort: if the disk refuses this too, a restart reports the
   * gap and `corral check-data` shows it.
   */
  private cutAfterFailure(): void {
    this.cut = true;
    let keys: number[];
    try {
      keys = this.keysAfter(this.last);
    } catch {
      return;
    }
    if (keys.length > 0) this.removeKeys(keys).catch(() => undefined);
  }

  /** The stored zxids after zxid, in order. */
  private keysAfter(zxid: number): number[] {
    const keys: number[] = [];
    for (const k of this.db.getKeys({ start: zxid })) if (k > zxid) keys.push(k);
    return keys;
  }

  private failedError(): StorageError {
    return new StorageError(`txn log ${this.dir}: a commit failed (${this.failed?.message}); restart the server to recover from disk`);
  }

  /** Resolves when every append made so far has committed (or failed). */
  idle(): Promise<void> {
    if (this.inflight === 0 && !this.scheduled && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stored records with zxid > afterZxid, unverified, in zxid order. */
  *records(afterZxid = 0): Generator<RawRecord> {
    for (const { key, value } of this.db.getRange({ start: afterZxid })) {
      if (key <= afterZxid) continue;
      yield { zxid: key, value };
    }
  }

  /** The raw record at zxid (tests and tools). */
  getRaw(zxid: number): Buffer | undefined {
    return this.db.get(zxid);
  }

  /** Overwrites a stored record as is, bypassing checks: tests and repair tools only. */
  async putRaw(zxid: number, value: Buffer): Promise<void> {
    await this.db.put(zxid, value);
    if (zxid > this.last) this.last = zxid;
    if (zxid > this.lastAccepted) this.lastAccepted = zxid;
  }

  /** Txns with zxid > afterZxid, verified; throws StorageError on any damage. */
  *read(afterZxid = 0): Generator<Txn> {
    for (const { zxid, value } of this.records(afterZxid)) {
      try {
        const { txn } = decodeRecord(value);
        if (txn.zxid !== zxid) throw new RecordError('format', `record holds zxid ${zxidHex(txn.zxid)}`);
        yield txn;
      } catch (e) {
        if (!(e instanceof RecordError)) throw e;
        throw new StorageError(`txn log ${this.dir}: record ${zxidHex(zxid)} is damaged (${e.message}); run \`corral check-data\` on the data directory`);
      }
    }
  }

  /** Removes every txn after zxid (Zab TRUNC, torn tail), durably. Returns how many. */
  async truncateAfter(zxid: number): Promise<number> {
    await this.idle();
    this.held = true; // holds appends back until the log is cut
    try {
      const keys = this.keysAfter(zxid);
      await this.removeKeys(keys);
      this.last = this.lastKey() ?? 0;
      this.lastAccepted = Math.max(this.last, Math.min(this.lastAccepted, zxid));
      return keys.length;
    } finally {
      this.held = false;
      this.pump();
    }
  }

  /** Removes every txn before zxid (the oldest kept snapshot's zxid). Returns how many. */
  async purgeBefore(zxid: number): Promise<number> {
    let removed = 0;
    for (;;) {
      const keys: number[] = [];
      for (const k of this.db.getKeys({ end: zxid, limit: REMOVE_CHUNK })) keys.push(k);
      if (keys.length === 0) return removed;
      await this.removeKeys(keys);
      removed += keys.length;
    }
  }

  private async removeKeys(keys: number[]): Promise<void> {
    for (let i = 0; i < keys.length; i += REMOVE_CHUNK) {
      const slice = keys.slice(i, i + REMOVE_CHUNK);
      await this.db.batch(() => {
        for (const k of slice) this.db.remove(k);
      });
    }
  }

  /** Number of records stored with start <= zxid < end (all by default). */
  count(start?: number, end?: number): number {
    return this.db.getKeysCount({ start, end });
  }

  /** The stored record with the greatest zxid <= zxid, if any. */
  recordAtOrBefore(zxid: number): RawRecord | undefined {
    for (const { key, value } of this.db.getRange({ start: zxid, reverse: true, limit: 1 })) return { zxid: key, value };
    return undefined;
  }

  /** The LMDB environment's own commit counter (for tests that count real commits). */
  lmdbTxnId(): number {
    return (this.env.getStats() as { lastTxnId: number }).lastTxnId;
  }

  /** A consistent copy of the environment's newest committed state (lmdb's mdb_env_copy). */
  backup(file: string): Promise<void> {
    return this.env.backup(file, false);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.idle();
    await closeEnv(this.env);
  }
}
