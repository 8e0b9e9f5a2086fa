// The txn log record: one Txn, versioned and checksummed.
//
//   off  size  field
//   0    1     format version (RECORD_VERSION)
//   1    4     CRC-32 of byte 0 and of bytes 5..end
//   5    8     zxid
//   13   8     batchFirst: zxid of the first record of the log commit this one went out in
//   21   4     batchSize: records in that commit (the two find a torn last batch)
//   25   8     time (ms)
//   33   8     sessionId (signed 64-bit)
//   41   4     cxid
//   45   ...   op: a tag byte, then the op's fields (multi nests ops)
//
// Every future version keeps bytes 0..4 as they are, so a reader can tell damage
// (checksum fails) from a newer format (checksum holds, version unknown).

import { putI32, putNum } from '../protocol/bytes.js';
import type { Txn, TxnOp } from '../tree/types.js';
import { ByteReader, ByteWriter } from './binary.js';
import { crc32 } from './crc32.js';
import { FormatError } from './errors.js';

export const RECORD_VERSION = 1;
const HEADER = 5;
const BATCH_FIRST_OFF = 13;
const BATCH_SIZE_OFF = 21;
const MAX_MULTI_DEPTH = 8;

const Tag = {
  create: 1,
  delete: 2,
  setData: 3,
  setACL: 4,
  check: 5,
  error: 6,
  createSession: 7,
  closeSession: 8,
  multi: 9,
} as const;

export interface LogRecord {
  txn: Txn;
  batchFirst: number;
  batchSize: number;
}

/** Why a stored record cannot be used. */
export type RecordDamage = 'checksum' | 'version' | 'format';

export class RecordError extends Error {
  constructor(
    readonly damage: RecordDamage,
    message: string,
  ) {
    super(message);
  }
}

const scratch = new ByteWriter(1024);

/** Encodes a txn, unsealed: sealRecord() sets the batch fields and the checksum at commit. */
export function encodeTxn(txn: Txn): Buffer {
  const w = scratch;
  w.reset();
  w.u8(RECORD_VERSION);
  w.u32(0);
  w.num(txn.zxid);
  w.num(0);
  w.u32(0);
  w.num(txn.time);
  w.i64(txn.sessionId);
  w.i32(txn.cxid);
  writeOp(w, txn.op, 0);
  return w.take();
}

/** Fills in the batch fields and the checksum (in place). */
export function sealRecord(rec: Buffer, batchFirst: number, batchSize: number): Buffer {
  putNum(rec, BATCH_FIRST_OFF, batchFirst);
  putI32(rec, BATCH_SIZE_OFF, batchSize);
  putI32(rec, 1, recordCrc(rec));
  return rec;
}

/** A sealed record on its own (batch of one), e.g. for shipping a txn elsewhere. */
export function encodeRecord(txn: Txn): Buffer {
  return sealRecord(encodeTxn(txn), txn.zxid, 1);
}

function recordCrc(rec: Buffer): number {
  return crc32(rec, HEADER, rec.length, crc32(rec, 0, 1));
}

/** Decodes and verifies a stored record; throws RecordError saying what is wrong. */
export function decodeRecord(rec: Buffer): LogRecord {
  if (rec.length < HEADER) throw new RecordError('checksum', `record of ${rec.length} bytes is shorter than its header`);
  if (rec.readUInt32BE(1) !== recordCrc(rec)) throw new RecordError('checksum', 'checksum mismatch');
  if (rec[0] !== RECORD_VERSION) throw new RecordError('version', `unknown record format version ${rec[0]}`);
  try {
    const r = new ByteReader(rec, HEADER);
    const zxid = r.num();
    const batchFirst = r.num();
    const batchSize = r.u32();
    const time = r.num();
    const sessionId = r.i64();
    const cxid = r.i32();
    const op = readOp(r, 0);
    if (!r.done) throw new FormatError(`${rec.length - r.pos} trailing bytes`);
    return { txn: { zxid, time, sessionId, cxid, op }, batchFirst, batchSize };
  } catch (e) {
    if (e instanceof FormatError || e instanceof RangeError) throw new RecordError('format', e.message);
    throw e;
  }
}

function writeOp(w: ByteWriter, op: TxnOp, depth: number): void {
  switch (op.type) {
    case 'create':
      w.u8(Tag.create);
      w.i32(op.op);
      w.str(op.path);
      w.bytesOrNull(op.data);
      w.acl(op.acl);
      w.i64(op.ephemeralOwner);
      w.i32(op.parentCVersion);
      return;
    case 'delete':
      w.u8(Tag.delete);
      w.i32(op.op);
      w.str(op.path);
      return;
    case 'setData':
      w.u8(Tag.setData);
      w.str(op.path);
      w.bytesOrNull(op.data);
      w.i32(op.version);
      return;
    case 'setACL':
      w.u8(Tag.setACL);
      w.str(op.path);
      w.acl(op.acl);
      w.i32(op.version);
      return;
    case 'check':
      w.u8(Tag.check);
      w.str(op.path);
      w.i32(op.version);
      return;
    case 'error':
      w.u8(Tag.error);
      w.i32(op.err);
      return;
    case 'createSession':
      w.u8(Tag.createSession);
      w.i32(op.timeout);
      return;
    case 'closeSession':
      w.u8(Tag.closeSession);
      w.u32(op.paths.length);
      for (const p of op.paths) w.str(p);
      return;
    case 'multi':
      if (depth >= MAX_MULTI_DEPTH) throw new RangeError('multi nested too deep');
      w.u8(Tag.multi);
      w.u32(op.ops.length);
      for (const o of op.ops) writeOp(w, o, depth + 1);
      return;
  }
}

function readOp(r: ByteReader, depth: number): TxnOp {
  const tag = r.u8();
  switch (tag) {
    case Tag.create: {
      const op = r.i32();
      const path = r.str();
      const data = r.bytesOrNull();
      const acl = r.acl();
      const ephemeralOwner = r.i64();
      const parentCVersion = r.i32();
      return { type: 'create', op, path, data, acl, ephemeralOwner, parentCVersion };
    }
    case Tag.delete: {
      const op = r.i32();
      return { type: 'delete', op, path: r.str() };
    }
    case Tag.setData: {
      const path = r.str();
      const data = r.bytesOrNull();
      return { type: 'setData', path, data, version: r.i32() };
    }
    case Tag.setACL: {
      const path = r.str();
      const acl = r.acl();
      return { type: 'setACL', path, acl, version: r.i32() };
    }
    case Tag.check: {
      const path = r.str();
      return { type: 'check', path, version: r.i32() };
    }
    case Tag.error:
      return { type: 'error', err: r.i32() };
    case Tag.createSession:
      return { type: 'createSession', timeout: r.i32() };
    case Tag.closeSession: {
      const n = r.u32();
      if (n > r.end - r.pos) throw new FormatError(`path count ${n} exceeds record`);
      const paths: string[] = [];
      for (let i = 0; i < n; i++) paths.push(r.str());
      return { type: 'closeSession', paths };
    }
    case Tag.multi: {
      if (depth >= MAX_MULTI_DEPTH) throw new FormatError('multi nested too deep');
      const n = r.u32();
      if (n > r.end - r.pos) throw new FormatError(`op count ${n} exceeds record`);
      const ops: TxnOp[] = [];
      for (let i = 0; i < n; i++) ops.push(readOp(r, depth + 1));
      return { type: 'multi', ops };
    }
    default:
      throw new FormatError(`unknown op tag ${tag}`);
  }
}
