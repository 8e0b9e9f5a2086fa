// path -> slot, off the V8 heap. A Map<string, number> over a million paths holds a
// million strings and entries on the heap (~80 bytes a znode), and V8 lets the heap grow
// to a multiple of what is live before it collects, so the tree's own heap sets how much
// garbage the server carries. Here each path is stored once as UTF-8 in a ValueArena,
// and an open-addressing table of slots (linear probing, deletion by backward shift)
// finds it by hash.

import { ValueArena } from './values.js';

const EMPTY = 0; // slot 0 is never used (columns.ts)

export class PathIndex {
  private table = new Int32Array(1 << 12);
  private mask = (1 << 12) - 1;
  private count = 0;
  /** Per slot: the path's UTF-8 bytes. */
  readonly bytes: ValueArena;
  private scratch = Buffer.allocUnsafeSlow(1024);

  constructor(capacity: number) {
    this.bytes = new ValueArena(capacity);
  }

  get size(): number {
    return this.count;
  }

  grow(capacity: number): void {
    this.bytes.grow(capacity);
  }

  /** True when slot holds a znode (every path is at least "/"). */
  used(slot: number): boolean {
    return this.bytes.length(slot) > 0;
  }

  pathOf(slot: number): string {
    return this.bytes.utf8(slot);
  }

  /** The last component of a child's path, given its parent's slot. */
  nameOf(slot: number, parent: number): string {
    const p = this.bytes.length(parent);
    return this.bytes.utf8(slot, p === 1 ? 1 : p + 1);
  }

  /** The path's slot, or -1. */
  find(path: string): number {
    // Most paths are ASCII, where the UTF-8 bytes are the char codes: hash and compare
    // the string itself rather than encode it first.
    let h = FNV_BASIS;
    const len = path.length;
    for (let k = 0; k < len; k++) {
      const c = path.charCodeAt(k);
      if (c >= 0x80) return this.findEncoded(path);
      h = Math.imul(h ^ c, FNV_PRIME);
    }
    const t = this.table;
    const b = this.bytes;
    for (let i = mix(h) & this.mask; ; i = (i + 1) & this.mask) {
      const s = t[i]!;
      if (s === EMPTY) return -1;
      if (b.length(s) === len && b.equalsAscii(s, path)) return s;
    }
  }

  private findEncoded(path: string): number {
    const n = this.encode(path);
    const h = hash(this.scratch, 0, n);
    const t = this.table;
    for (let i = h & this.mask; ; i = (i + 1) & this.mask) {
      const s = t[i]!;
      if (s === EMPTY) return -1;
      if (this.bytes.equals(s, this.scratch, n)) return s;
    }
  }

  /** Adds a path that is not there yet. */
  add(path: string, slot: number): void {
    const n = this.encode(path);
    const h = hash(this.scratch, 0, n);
    this.bytes.set(slot, this.scratch.subarray(0, n));
    if (++this.count * 2 > this.table.length) this.rehash(this.table.length * 2);
    this.place(slot, h & this.mask);
  }

  remove(slot: number): void {
    const t = this.table;
    const mask = this.mask;
    let i = this.home(slot);
    while (t[i] !== slot) i = (i + 1) & mask;
    // Backward shift: pull later entries of the probe run into the hole, so lookups
    // never need tombstones.
    for (let j = (i + 1) & mask; t[j] !== EMPTY; j = (j + 1) & mask) {
      const home = this.home(t[j]!);
      const between = i <= j ? home > i && home <= j : home > i || home <= j;
      if (!between) {
        t[i] = t[j]!;
        i = j;
      }
    }
    t[i] = EMPTY;
    this.count--;
    this.bytes.free(slot);
  }

  /** Where a stored path's probe run starts. */
  private home(slot: number): number {
    const b = this.bytes;
    const start = b.off[slot]!;
    return hash(b.segmentOf(slot)!, start, start + b.length(slot)) & this.mask;
  }

  private place(slot: number, home: number): void {
    const t = this.table;
    let i = home;
    while (t[i] !== EMPTY) i = (i + 1) & this.mask;
    t[i] = slot;
  }

  private rehash(size: number): void {
    const old = this.table;
    this.table = new Int32Array(size);
    this.mask = size - 1;
    for (let i = 0; i < old.length; i++) {
      const s = old[i]!;
      if (s !== EMPTY) this.place(s, this.home(s));
    }
  }

  private encode(path: string): number {
    if (path.length * 3 > this.scratch.length) this.scratch = Buffer.allocUnsafeSlow(path.length * 3);
    return this.scratch.write(path, 0, 'utf8');
  }
}

const FNV_BASIS = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

/** FNV-1a over the bytes, then a final mix so that linear probing sees spread-out homes. */
function hash(b: Buffer, start: number, end: number): number {
  let h = FNV_BASIS;
  for (let k = start; k < end; k++) h = Math.imul(h ^ b[k]!, FNV_PRIME);
  return mix(h);
}

function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  return h | 0;
}
