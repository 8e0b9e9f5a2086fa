// Reads the txn log in order, verifying every record, and decides what damage means.
//
// A torn tail, the last log commit only partly written, is the one damage that is
// expected after a crash: its txns were never acknowledged, so they are dropped. It is
// recognised from the batch fields every record carries (batchFirst, batchSize): the
// damaged records must all lie in the last commit. Any other damage, a gap in zxids
// or a format version this code does not know is a StorageError.

import type { Txn } from '../tree/types.js';
import { StorageError } from './errors.js';
import { decodeRecord, RecordError, type LogRecord } from './txncodec.js';
import { MAX_BATCH, type RawRecord, type TxnLog } from './txnlog.js';
import { follows, zxidHex } from './zxid.js';

export interface ScanOptions {
  /** Hand on txns with zxid > after. */
  after: number;
  /** The zxid the first record must follow (usually `after`). */
  prev: number;
  onTxn: (txn: Txn) => void;
  /** May a gap prev -> next stand (e.g. a snapshot covers it)? Default: no. */
  gapAllowed?: (prev: number, next: number) => boolean;
}

export interface TornTail {
  /** zxid of the first damaged record; it and everything after is to be dropped. */
  firstZxid: number;
  count: number;
  /** The zxid the log should be cut back to. */
  keepThrough: number;
}

export interface ScanResult {
  /** zxid of the last good record handed on (or `after` if none). */
  lastZxid: number;
  txns: number;
  tornTail: TornTail | null;
}

type Decoded = { ok: true; rec: LogRecord } | { ok: false; err: RecordError };

function decodeAt(r: RawRecord): Decoded {
  try {
    const rec = decodeRecord(r.value);
    if (rec.txn.zxid !== r.zxid) return { ok: false, err: new RecordError('format', `record stored at ${zxidHex(r.zxid)} holds zxid ${zxidHex(rec.txn.zxid)}`) };
    return { ok: true, rec };
  } catch (e) {
    if (e instanceof RecordError) return { ok: false, err: e };
    throw e;
  }
}

function logDamage(log: TxnLog, what: string): StorageError {
  return new StorageError(
    `txn log ${log.dir} is damaged: ${what}. Corral will not start on a damaged log, since txns after the damage would be lost: ` +
      `restore ${log.dir} from a backup, or remove this server's data and log directories so it resyncs from the ensemble; ` +
      '`corral check-data <dataDir>` lists every problem found.',
  );
}

export function scanLog(log: TxnLog, opts: ScanOptions): ScanResult {
  let prev = opts.prev;
  let lastGood: LogRecord | null = null;
  let txns = 0;
  const it = log.records(opts.after);
  for (let step = it.next(); step.done !== true; step = it.next()) {
    const raw = step.value;
    const d = decodeAt(raw);
    if (!d.ok) {
      if (d.err.damage === 'version') throw unknownVersion(log, raw.zxid, d.err);
      const rest: RawRecord[] = [raw];
      for (let s = it.next(); s.done !== true; s = it.next()) rest.push(s.value);
      const torn = classifyTail(log, lastGood ?? predecessor(log, opts.after), rest);
      return { lastZxid: lastGood?.txn.zxid ?? opts.after, txns, tornTail: torn };
    }
    const z = d.rec.txn.zxid;
    if (!follows(prev, z) && !(opts.gapAllowed?.(prev, z) ?? false)) {
      throw logDamage(log, `zxid ${zxidHex(z)} follows ${zxidHex(prev)}: txns are missing`);
    }
    opts.onTxn(d.rec.txn);
    lastGood = d.rec;
    prev = z;
    txns++;
  }
  return { lastZxid: lastGood?.txn.zxid ?? opts.after, txns, tornTail: null };
}

function unknownVersion(log: TxnLog, zxid: number, err: RecordError): StorageError {
  return new StorageError(
    `txn log ${log.dir}: record ${zxidHex(zxid)} has ${err.message}: it was written by a newer Corral. ` +
      'Run that version, or move the data aside and resync this server from the ensemble.',
  );
}

/** The good record just before the scanned range, for its batch fields. */
function predecessor(log: TxnLog, after: number): LogRecord | null {
  const r = log.recordAtOrBefore(after);
  if (r === undefined) return null;
  const d = decodeAt(r);
  return d.ok ? d.rec : null;
}

/**
 * rest starts with the first damaged record and runs to the end of the log. It is a
 * torn tail if all of it lies within the last log commit; otherwise it is damage.
 */
function classifyTail(log: TxnLog, before: LogRecord | null, rest: RawRecord[]): TornTail {
  const first = rest[0]!;
  const goodAfter: LogRecord[] = [];
  for (const r of rest.slice(1)) {
    const d = decodeAt(r);
    if (d.ok) goodAfter.push(d.rec);
    else if (d.err.damage === 'version') throw unknownVersion(log, r.zxid, d.err);
  }
  const midLog = (why: string): StorageError =>
    logDamage(log, `record ${zxidHex(first.zxid)} fails its check (${decodeFailure(first)}) and ${why}`);
  const endZxid = rest[rest.length - 1]!.zxid;
  // The commit the damage is in: known from a good record of it, if any survived.
  let batchFirst: number | undefined;
  let batchSize: number | undefined;
  for (const g of goodAfter) {
    if (batchFirst === undefined) {
      batchFirst = g.batchFirst;
      batchSize = g.batchSize;
    } else if (g.batchFirst !== batchFirst) {
      throw midLog(`later commits are intact (${zxidHex(g.txn.zxid)})`);
    }
  }
  if (batchFirst !== undefined) {
    if (batchFirst > first.zxid) throw midLog(`a later commit is intact (from ${zxidHex(batchFirst)})`);
    if (batchFirst < first.zxid && (before === null || before.batchFirst !== batchFirst)) {
      throw midLog('the surrounding records disagree about their commit');
    }
  } else if (before !== null && log.count(before.batchFirst, before.txn.zxid + 1) < before.batchSize) {
    // The previous good record's commit continues into the damage.
    batchFirst = before.batchFirst;
    batchSize = before.batchSize;
  }
  if (batchFirst !== undefined) {
    const span = log.count(batchFirst, endZxid + 1);
    if (span > batchSize!) throw midLog(`${span - batchSize!} records after its commit follow it`);
  } else if (rest.length > MAX_BATCH) {
    // The damage starts a commit whose size is lost with it: bound it by the largest
    // commit append makes from small appends.
    throw midLog(`${rest.length} records from there on are more than one commit holds`);
  }
  return { firstZxid: first.zxid, count: rest.length, keepThrough: before?.txn.zxid ?? first.zxid - 1 };
}

function decodeFailure(r: RawRecord): string {
  const d = decodeAt(r);
  return d.ok ? 'ok' : d.err.message;
}
