// A handle on one znode of a DataTree: its slot, read through the tree's columns. It is
// made on demand and is meant to be used at once: after the znode is deleted its slot
// may hold another znode.

import type { DataTree } from './datatree.js';
import { type Acl, clientEphemeralOwner, type Stat } from './types.js';

export class ZNode {
  constructor(
    readonly tree: DataTree,
    readonly slot: number,
  ) {}

  /** null when created without data: ZooKeeper keeps that apart from empty. A shared view: do not write to it. */
  get data(): Buffer | null {
    return this.tree.cols.values.get(this.slot);
  }

  get dataLength(): number {
    const n = this.tree.cols.values.length(this.slot);
    return n < 0 ? 0 : n;
  }

  get acl(): readonly Acl[] {
    return this.tree.aclAt(this.slot);
  }

  get czxid(): number {
    return this.tree.cols.czxid[this.slot]!;
  }

  get mzxid(): number {
    return this.tree.cols.mzxid[this.slot]!;
  }

  get ctime(): number {
    return this.tree.cols.ctime[this.slot]!;
  }

  get mtime(): number {
    return this.tree.cols.mtime[this.slot]!;
  }

  get version(): number {
    return this.tree.cols.version[this.slot]!;
  }

  set version(v: number) {
    this.tree.cols.version[this.slot] = v;
  }

  /** The stored count of child creates; clientCversion is what clients see. */
  get cversion(): number {
    return this.tree.cols.cversion[this.slot]!;
  }

  set cversion(v: number) {
    this.tree.cols.cversion[this.slot] = v;
  }

  get aversion(): number {
    return this.tree.cols.aversion[this.slot]!;
  }

  get pzxid(): number {
    return this.tree.cols.pzxid[this.slot]!;
  }

  set pzxid(v: number) {
    this.tree.cols.pzxid[this.slot] = v;
  }

  get ephemeralOwner(): bigint {
    return this.tree.cols.owner(this.slot);
  }

  get numChildren(): number {
    return this.tree.cols.numChildren[this.slot]!;
  }

  /** Child names in creation order, or null for a leaf. */
  get children(): string[] | null {
    return this.numChildren === 0 ? null : this.tree.childNames(this.slot);
  }

  /** The cversion clients see: creates plus deletes (see stat()). */
  get clientCversion(): number {
    return (this.cversion * 2 - this.numChildren) | 0;
  }

  /**
   * The Stat a client sees (DataNode.copyStat). The tree's cversion counts child creates
   * only (sequential names come from it); clients see creates plus deletes, which is
   * 2 * creates - children. A container's or TTL node's ephemeralOwner reads 0.
   */
  stat(): Stat {
    return {
      czxid: this.czxid,
      mzxid: this.mzxid,
      ctime: this.ctime,
      mtime: this.mtime,
      version: this.version,
      cversion: this.clientCversion,
      aversion: this.aversion,
      ephemeralOwner: clientEphemeralOwner(this.ephemeralOwner),
      dataLength: this.dataLength,
      numChildren: this.numChildren,
      pzxid: this.pzxid,
    };
  }
}
