// Znode values, off the V8 heap. A Buffer per znode costs ~90 bytes of object before its
// first data byte, and a million of them keep the GC busy; instead values are appended
// to 256 KiB segments and a znode records (segment, offset, length) in typed arrays.
//
// A value's bytes are never written over (segments are appended to; only the 4-byte
// header before a value changes when it is freed): a view handed to a reader stays
// valid however the tree changes later. Space comes back by dropping segments
// whose values are all gone, and by moving the survivors out of a segment once less
// than half of it is live (so the copying is at most one byte per byte freed). Values
// of 16 KiB or more get a segment of their own, which goes as soon as its value does.

import { resized } from './growable.js';

const SEGMENT = 256 << 10;
const OWN_SEGMENT = 16 << 10;
/**
 * Each value in a segment is preceded by 4 bytes: its slot while it lives (the length is
 * in the slot's column), minus its length once freed, so that a segment can be walked.
 */
const HEADER = 4;
const EMPTY = Buffer.alloc(0);

export class ValueArena {
  // Per slot: segment id + 1 (0: none), offset of the bytes in it, length + 1 (0: null
  // data). Zero means "nothing" so that growing needs no fill, and the pages of slots not
  // used yet are never touched.
  seg: Int32Array;
  off: Int32Array;
  len: Int32Array;
  private segs: (Buffer | null)[] = [];
  private live: number[] = [];
  /** Bytes written into each segment so far. */
  private used: number[] = [];
  private freeSegs: number[] = [];
  private cur = -1;
  private pos = SEGMENT;
  /** Bytes in segments (headers included), for mntr-style accounting and tests. */
  segmentBytes = 0;

  constructor(capacity: number) {
    this.seg = new Int32Array(capacity);
    this.off = new Int32Array(capacity);
    this.len = new Int32Array(capacity);
  }

  grow(capacity: number): void {
    this.seg = resized(this.seg, capacity);
    this.off = resized(this.off, capacity);
    this.len = resized(this.len, capacity);
  }

  /** The value's length, -1 for null. */
  length(slot: number): number {
    return this.len[slot]! - 1;
  }

  /** A view of the value (shared memory: callers must not write to it), or null. */
  get(slot: number): Buffer | null {
    const len = this.len[slot]! - 1;
    if (len <= 0) return len === 0 ? EMPTY : null;
    const o = this.off[slot]!;
    return this.segs[this.seg[slot]! - 1]!.subarray(o, o + len);
  }

  /** Whether the slot's value, of the same length as s, holds s's char codes (ASCII s). */
  equalsAscii(slot: number, s: string): boolean {
    const buf = this.segs[this.seg[slot]! - 1]!;
    const o = this.off[slot]!;
    for (let k = s.length - 1; k >= 0; k--) if (buf[o + k] !== s.charCodeAt(k)) return false;
    return true;
  }

  /** The segment holding the slot's bytes (at off[slot]), or null for null/empty values. */
  segmentOf(slot: number): Buffer | null {
    return this.seg[slot] === 0 ? null : this.segs[this.seg[slot]! - 1]!;
  }

  /** Whether the slot's value is the first n bytes of q (compared from the end). */
  equals(slot: number, q: Uint8Array, n: number): boolean {
    if (this.len[slot]! - 1 !== n) return false;
    if (n === 0) return true;
    const buf = this.segs[this.seg[slot]! - 1]!;
    const o = this.off[slot]!;
    for (let k = n - 1; k >= 0; k--) if (buf[o + k] !== q[k]) return false;
    return true;
  }

  /** The value decoded as UTF-8 from byte `from` on ('' for null). */
  utf8(slot: number, from = 0): string {
    const len = this.len[slot]! - 1;
    if (len <= from) return '';
    const o = this.off[slot]!;
    return this.segs[this.seg[slot]! - 1]!.toString('utf8', o + from, o + len);
  }

  /** Replaces the slot's value with a copy of data. */
  set(slot: number, data: Uint8Array | null): void {
    this.free(slot);
    if (data === null) return;
    const n = data.length;
    this.len[slot] = n + 1;
    if (n === 0) return;
    this.place(slot, data, 0, n);
  }

  /** Forgets the slot's value. */
  free(slot: number): void {
    const len = this.len[slot]! - 1;
    const s = this.seg[slot]! - 1;
    this.len[slot] = 0;
    this.seg[slot] = 0;
    if (len <= 0 || s < 0) return;
    writeI32(this.segs[s]!, this.off[slot]! - HEADER, -len);
    const live = (this.live[s]! -= len + HEADER);
    if (s === this.cur) return;
    if (live === 0) this.drop(s);
    else if (live < this.segs[s]!.length >> 1) this.evacuate(s);
  }

  private place(slot: number, src: Uint8Array, start: number, n: number): void {
    let s: number;
    let at: number;
    if (n + HEADER >= OWN_SEGMENT) {
      s = this.newSegment(n + HEADER);
      at = 0;
    } else {
      if (this.pos + n + HEADER > SEGMENT) {
        const old = this.cur;
        this.cur = this.newSegment(SEGMENT);
        this.pos = 0;
        // The segment just left may already be mostly garbage.
        if (old >= 0) {
          if (this.live[old] === 0) this.drop(old);
          else if (this.live[old]! < SEGMENT >> 1) this.evacuate(old);
        }
      }
      s = this.cur;
      at = this.pos;
      this.pos += n + HEADER;
    }
    this.used[s] = at + n + HEADER;
    const buf = this.segs[s]!;
    writeI32(buf, at, slot);
    buf.set(start === 0 && n === src.length ? src : src.subarray(start, start + n), at + HEADER);
    this.live[s]! += n + HEADER;
    this.seg[slot] = s + 1;
    this.off[slot] = at + HEADER;
  }

  private newSegment(size: number): number {
    const s = this.freeSegs.length > 0 ? this.freeSegs.pop()! : this.segs.length;
    this.segs[s] = Buffer.allocUnsafeSlow(size);
    this.live[s] = 0;
    this.used[s] = 0;
    this.segmentBytes += size;
    return s;
  }

  private drop(s: number): void {
    this.segmentBytes -= this.segs[s]!.length;
    this.segs[s] = null;
    this.live[s] = 0;
    this.freeSegs.push(s);
  }

  /** Moves the segment's live values to the current segment, then drops it. */
  private evacuate(s: number): void {
    const buf = this.segs[s]!;
    const end = this.used[s]!;
    for (let at = 0; at < end; ) {
      const h = buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24);
      if (h < 0) {
        at += HEADER - h;
        continue;
      }
      const n = this.len[h]! - 1;
      this.live[s]! -= n + HEADER;
      this.place(h, buf, at + HEADER, n);
      at += n + HEADER;
    }
    this.drop(s);
  }
}

/** Little-endian, without Buffer.writeInt32LE's argument checks (this is the write path). */
function writeI32(b: Buffer, at: number, v: number): void {
  b[at] = v;
  b[at + 1] = v >>> 8;
  b[at + 2] = v >>> 16;
  b[at + 3] = v >>> 24;
}
