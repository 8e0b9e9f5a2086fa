// Byte formats of a snapshot: chunks of entries, and the marker that makes it complete.
//
// Chunk (snapchunk db, key [snapId, chunkNo]):
//   0  u8   format version (SNAP_VERSION)
//   1  u32  CRC-32 of byte 0 and of bytes 5..end
//   5  u32  snapId, u32 chunkNo
//   13 ...  entries, each a kind byte then:
//        ACL_DEF  u32 aclId, ACL list          (defined before first use; ACLs are shared)
//        SESSION  i64 sessionId, i32 timeout
//        NODE     str path, bytes data, u32 aclId, num czxid, num mzxid, num ctime,
//                 num mtime, i32 version, i32 cversion, i32 aversion, i64 ephemeralOwner,
//                 num pzxid                    (dataLength, numChildren are derived)
//   end-4   u32 entry count (a trailer, so the CRC can be folded in as the chunk grows)
//
// Marker (snapmark db, key snapId), written only after every chunk is durable:
//   0  u8 version, 1 u32 CRC (as above), then u32 snapId, num zxid, num endZxid, u32 chunks,
//   u32 nodeEntries, u32 sessions, num bytes, u32 chunksCrc (CRC-32 over each chunk's
//   CRC in order), num startedAt, num durationUs, num worstSliceUs, u32 slices.

import { ByteReader, ByteWriter } from './binary.js';
import { crc32 } from './crc32.js';
import { FormatError } from './errors.js';

export const SNAP_VERSION = 1;
export const CHUNK_HEADER = 13;

export const Entry = {
  ACL_DEF: 1,
  SESSION: 2,
  NODE: 3,
} as const;

export interface SnapshotInfo {
  id: number;
  /** tree.lastZxid when the snapshot started: replay resumes after it. */
  zxid: number;
  /** tree.lastZxid when the last node was copied: the snapshot holds no txn after it. */
  endZxid: number;
  chunks: number;
  /** Node entries written; a fuzzy snapshot may hold a path twice (the later wins). */
  nodeEntries: number;
  sessions: number;
  bytes: number;
  chunksCrc: number;
  startedAt: number;
  durationMs: number;
  /** Longest single stretch the main thread spent serialising without yielding. */
  worstSliceMs: number;
  slices: number;
}

/** CRC over the version byte and everything after the CRC field. */
export function blockCrc(buf: Buffer): number {
  return crc32(buf, 5, buf.length, crc32(buf, 0, 1));
}

export type BlockCheck = { ok: true } | { ok: false; damage: 'checksum' | 'version'; message: string };

export function checkBlock(buf: Buffer): BlockCheck {
  if (buf.length < 5) return { ok: false, damage: 'checksum', message: `${buf.length}-byte block is shorter than its header` };
  if (buf.readUInt32BE(1) !== blockCrc(buf)) return { ok: false, damage: 'checksum', message: 'checksum mismatch' };
  if (buf[0] !== SNAP_VERSION) return { ok: false, damage: 'version', message: `unknown snapshot format version ${buf[0]} (written by a newer Corral)` };
  return { ok: true };
}

/**
 * Builds one chunk. fold() runs the checksum over what was written since the last
 * call, so the serialising loop pays for it inside its time budget, not after it.
 */
export class ChunkBuilder {
  readonly w: ByteWriter;
  entries = 0;
  private crc: number;
  private crcPos = 5;

  constructor(snapId: number, chunkNo: number, size: number) {
    this.w = new ByteWriter(size);
    this.w.u8(SNAP_VERSION);
    this.w.u32(0);
    this.w.u32(snapId);
    this.w.u32(chunkNo);
    this.crc = crc32(this.w.buf, 0, 1);
  }

  fold(): void {
    this.crc = crc32(this.w.buf, this.crcPos, this.w.pos, this.crc);
    this.crcPos = this.w.pos;
  }

  /** The finished chunk: a view of the builder's buffer, not a copy. */
  finish(): Buffer {
    this.w.u32(this.entries);
    this.fold();
    const buf = this.w.buf.subarray(0, this.w.pos);
    buf.writeUInt32BE(this.crc, 1);
    return buf;
  }
}

export interface ChunkHeader {
  snapId: number;
  chunkNo: number;
  entries: number;
}

/** Reads a verified chunk's header and trailer; the reader covers the entries. */
export function readChunkHeader(buf: Buffer): { header: ChunkHeader; reader: ByteReader } {
  if (buf.length < CHUNK_HEADER + 4) throw new FormatError(`chunk of ${buf.length} bytes is too short`);
  const end = buf.length - 4;
  const r = new ByteReader(buf, 5, end);
  const snapId = r.u32();
  const chunkNo = r.u32();
  return { header: { snapId, chunkNo, entries: buf.readUInt32BE(end) }, reader: r };
}

export function encodeMarker(info: SnapshotInfo): Buffer {
  const w = new ByteWriter(128);
  w.u8(SNAP_VERSION);
  w.u32(0);
  w.u32(info.id);
  w.num(info.zxid);
  w.num(info.endZxid);
  w.u32(info.chunks);
  w.u32(info.nodeEntries);
  w.u32(info.sessions);
  w.num(info.bytes);
  w.u32(info.chunksCrc);
  w.num(Math.round(info.startedAt));
  w.num(Math.round(info.durationMs * 1000));
  w.num(Math.round(info.worstSliceMs * 1000));
  w.u32(info.slices);
  const buf = w.take();
  buf.writeUInt32BE(blockCrc(buf), 1);
  return buf;
}

/** Decodes a verified marker. */
export function decodeMarker(buf: Buffer): SnapshotInfo {
  const r = new ByteReader(buf, 5);
  const info: SnapshotInfo = {
    id: r.u32(),
    zxid: r.num(),
    endZxid: r.num(),
    chunks: r.u32(),
    nodeEntries: r.u32(),
    sessions: r.u32(),
    bytes: r.num(),
    chunksCrc: r.u32(),
    startedAt: r.num(),
    durationMs: r.num() / 1000,
    worstSliceMs: r.num() / 1000,
    slices: r.u32(),
  };
  if (!r.done) throw new FormatError('trailing bytes in snapshot marker');
  return info;
}
