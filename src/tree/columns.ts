// The znodes' fields as columns: one typed array per field, indexed by the znode's slot.
// A million znodes as JS objects cost ~200 bytes each in object headers, boxed doubles
// and pointers, all of which the GC walks; as columns they cost ~90 bytes, off the V8
// heap, and nothing to walk. Children are an intrusive list (first/last child, next/prev
// sibling) so a leaf costs no set of its own and creation order is kept for getChildren.
// Slot 0 is never used: 0 means "none" in the links, so growing needs no fill and the
// pages of slots not used yet are never touched.

import { resized } from './growable.js';
import { PathIndex } from './pathindex.js';
import { ValueArena } from './values.js';

export const NONE = 0;

export class NodeColumns {
  capacity: number;
  czxid: Float64Array;
  mzxid: Float64Array;
  pzxid: Float64Array;
  ctime: Float64Array;
  mtime: Float64Array;
  version: Int32Array;
  /** Child creates (sequential names come from it); clients see creates plus deletes. */
  cversion: Int32Array;
  aversion: Int32Array;
  /** Index into the tree's table of interned ACL lists. */
  acl: Int32Array;
  /** Non-zero when ephemeralOwner is; the owners themselves are few (ephemerals, containers, TTL nodes). */
  owned: Uint8Array;
  readonly owners = new Map<number, bigint>();
  parent: Int32Array;
  firstChild: Int32Array;
  lastChild: Int32Array;
  /** Next sibling; for a free slot, the next free slot. */
  next: Int32Array;
  prev: Int32Array;
  numChildren: Int32Array;
  readonly values: ValueArena;
  readonly paths: PathIndex;
  private freeHead = NONE;
  private top = 1;

  constructor(capacity = 1024) {
    this.capacity = capacity;
    this.czxid = new Float64Array(capacity);
    this.mzxid = new Float64Array(capacity);
    this.pzxid = new Float64Array(capacity);
    this.ctime = new Float64Array(capacity);
    this.mtime = new Float64Array(capacity);
    this.version = new Int32Array(capacity);
    this.cversion = new Int32Array(capacity);
    this.aversion = new Int32Array(capacity);
    this.acl = new Int32Array(capacity);
    this.owned = new Uint8Array(capacity);
    this.parent = new Int32Array(capacity);
    this.firstChild = new Int32Array(capacity);
    this.lastChild = new Int32Array(capacity);
    this.next = new Int32Array(capacity);
    this.prev = new Int32Array(capacity);
    this.numChildren = new Int32Array(capacity);
    this.values = new ValueArena(capacity);
    this.paths = new PathIndex(capacity);
  }

  /** One past the highest slot ever used. */
  get end(): number {
    return this.top;
  }

  /** A slot for a new znode, its links cleared. */
  alloc(): number {
    let s = this.freeHead;
    if (s !== NONE) this.freeHead = this.next[s]!;
    else {
      if (this.top === this.capacity) this.grow(this.capacity * 2);
      s = this.top++;
    }
    this.parent[s] = NONE;
    this.firstChild[s] = NONE;
    this.lastChild[s] = NONE;
    this.next[s] = NONE;
    this.prev[s] = NONE;
    this.numChildren[s] = 0;
    this.owned[s] = 0;
    return s;
  }

  owner(s: number): bigint {
    return this.owned[s] === 0 ? 0n : this.owners.get(s)!;
  }

  setOwner(s: number, owner: bigint): void {
    this.owned[s] = owner === 0n ? 0 : 1;
    if (owner === 0n) this.owners.delete(s);
    else this.owners.set(s, owner);
  }

  release(s: number): void {
    this.values.free(s);
    if (this.owned[s] !== 0) this.setOwner(s, 0n);
    this.next[s] = this.freeHead;
    this.freeHead = s;
  }

  /** Appends child to parent's list (getChildren lists children in creation order). */
  link(parent: number, child: number): void {
    const last = this.lastChild[parent]!;
    this.parent[child] = parent;
    this.prev[child] = last;
    this.next[child] = NONE;
    if (last === NONE) this.firstChild[parent] = child;
    else this.next[last] = child;
    this.lastChild[parent] = child;
    this.numChildren[parent]!++;
  }

  unlink(child: number): void {
    const parent = this.parent[child]!;
    if (parent === NONE) return;
    const prev = this.prev[child]!;
    const next = this.next[child]!;
    if (prev === NONE) this.firstChild[parent] = next;
    else this.next[prev] = next;
    if (next === NONE) this.lastChild[parent] = prev;
    else this.prev[next] = prev;
    this.parent[child] = NONE;
    this.numChildren[parent]!--;
  }

  private grow(n: number): void {
    this.czxid = resized(this.czxid, n);
    this.mzxid = resized(this.mzxid, n);
    this.pzxid = resized(this.pzxid, n);
    this.ctime = resized(this.ctime, n);
    this.mtime = resized(this.mtime, n);
    this.version = resized(this.version, n);
    this.cversion = resized(this.cversion, n);
    this.aversion = resized(this.aversion, n);
    this.acl = resized(this.acl, n);
    this.owned = resized(this.owned, n);
    this.parent = resized(this.parent, n);
    this.firstChild = resized(this.firstChild, n);
    this.lastChild = resized(this.lastChild, n);
    this.next = resized(this.next, n);
    this.prev = resized(this.prev, n);
    this.numChildren = resized(this.numChildren, n);
    this.values.grow(n);
    this.paths.grow(n);
    this.capacity = n;
  }
}
