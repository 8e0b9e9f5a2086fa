// Fuzzy snapshots of the DataTree in their own LMDB environment.
//
// The tree keeps changing while a snapshot is written: it is serialised in slices of a
// few milliseconds, yielding to the event loop between them (setImmediate), each slice
// becoming one chunk handed to lmdb's write thread. A node is copied whole within a
// slice, but different nodes reflect different moments; replaying the log from the
// zxid the snapshot started at brings them all to the same state (as in ZooKeeper).
// The snapshot exists only once its marker is written, after every chunk is on disk.

import { performance } from 'node:perf_hooks';
import type { Database, Key, RootDatabase } from 'lmdb';
import type { DataTree } from '../tree/datatree.js';
import type { Acl } from '../tree/types.js';
import { crc32 } from './crc32.js';
import { closeEnv, openEnv, SNAP_FILE } from './env.js';
import { checkBlock, ChunkBuilder, decodeMarker, encodeMarker, Entry, type SnapshotInfo } from './snapformat.js';

export interface SnapshotOptions {
  /** Target length of one serialising slice, ms. */
  sliceMs?: number;
  /** A chunk is cut at this size even if its slice has time left. */
  chunkBytes?: number;
}

/** A complete snapshot (marker present), or one whose marker does not verify. */
export type SnapshotEntry = { id: number; info: SnapshotInfo } | { id: number; damage: string; info?: undefined };

const DEFAULT_SLICE_MS = 5;
const DEFAULT_CHUNK_BYTES = 1 << 20;

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class SnapshotStore {
  private readonly env: RootDatabase;
  private readonly chunkDb: Database<Buffer, Key>;
  private readonly markDb: Database<Buffer, number>;
  private nextId: number;
  private writing: number | null = null;
  private current: Promise<SnapshotInfo> | null = null;
  /** Stats of the last snapshot this process wrote. */
  last: SnapshotInfo | null = null;

  private constructor(
    readonly dir: string,
    readOnly: boolean,
  ) {
    // Snapshots are always written durably: they are rare, and the log is purged
    // behind them on the strength of their marker.
    this.env = openEnv(dir, SNAP_FILE, { durable: true, readOnly });
    this.chunkDb = this.env.openDB<Buffer, Key>('snapchunk', { encoding: 'binary' });
    this.markDb = this.env.openDB<Buffer, number>('snapmark', { encoding: 'binary' });
    let max = 0;
    for (const k of this.markDb.getKeys({ reverse: true, limit: 1 })) max = Math.max(max, k);
    for (const k of this.chunkDb.getKeys({ reverse: true, limit: 1 })) max = Math.max(max, (k as number[])[0]!);
    this.nextId = max + 1;
  }

  /** Opens (creating if needed) the snapshot environment in `dir`, e.g. `<dataDir>/corral-snap`. */
  static open(dir: string, opts: { readOnly?: boolean } = {}): SnapshotStore {
    return new SnapshotStore(dir, opts.readOnly ?? false);
  }

  get inProgress(): boolean {
    return this.writing !== null;
  }

  /** Every snapshot with a marker, oldest first. */
  list(): SnapshotEntry[] {
    const out: SnapshotEntry[] = [];
    for (const { key, value } of this.markDb.getRange()) {
      const c = checkBlock(value);
      if (!c.ok) {
        out.push({ id: key, damage: `marker: ${c.message}` });
        continue;
      }
      try {
        const info = decodeMarker(value);
        if (info.id !== key) out.push({ id: key, damage: `marker names snapshot ${info.id}` });
        else out.push({ id: key, info });
      } catch (e) {
        out.push({ id: key, damage: `marker: ${(e as Error).message}` });
      }
    }
    return out;
  }

  /** Ids of snapshots with chunks but no marker: interrupted before completing. */
  incomplete(): number[] {
    const marked = new Set<number>(this.markDb.getKeys());
    const ids = new Set<number>();
    for (const k of this.chunkDb.getKeys()) {
      const id = (k as number[])[0]!;
      if (!marked.has(id) && id !== this.writing) ids.add(id);
    }
    return [...ids];
  }

  /** The chunks of snapshot id, in key order, unverified. */
  *chunks(id: number): Generator<{ chunkNo: number; value: Buffer }> {
    for (const { key, value } of this.chunkDb.getRange({ start: [id, 0], end: [id + 1] })) {
      yield { chunkNo: (key as number[])[1]!, value };
    }
  }

  /**
   * Writes a fuzzy snapshot of tree. Resolves once it is complete and durable, or
   * with null if another snapshot is still being written (as ZooKeeper skips one).
   */
  async take(tree: DataTree, opts: SnapshotOptions = {}): Promise<SnapshotInfo | null> {
    if (this.writing !== null) return null;
    const id = this.nextId++;
    this.writing = id;
    this.current = this.write(id, tree, opts.sliceMs ?? DEFAULT_SLICE_MS, opts.chunkBytes ?? DEFAULT_CHUNK_BYTES);
    try {
      const info = await this.current;
      this.last = info;
      return info;
    } finally {
      this.writing = null;
      this.current = null;
    }
  }

  private async write(id: number, tree: DataTree, sliceMs: number, chunkBytes: number): Promise<SnapshotInfo> {
    const startedAt = Date.now();
    const t00 = performance.now();
    const zxid = tree.lastZxid;
    const aclIds = new Map<readonly Acl[], number>();
    const sessions = tree.sessions.entries();
    const nodes = tree.nodes.entries();
    const crcBuf = Buffer.alloc(4);
    const puts: Promise<boolean>[] = [];
    let sessionsDone = false;
    let nodeEntries = 0;
    let sessionCount = 0;
    let chunkNo = 0;
    let chunksCrc = 0;
    let bytes = 0;
    let worst = 0;
    let slices = 0;
    for (;;) {
      const t0 = performance.now();
      const chunk = new ChunkBuilder(id, chunkNo, chunkBytes + (64 << 10));
      const w = chunk.w;
      let more = true;
      for (;;) {
        if (!sessionsDone) {
          const s = sessions.next();
          if (s.done === true) {
            sessionsDone = true;
            continue;
          }
          w.u8(Entry.SESSION);
          w.i64(s.value[0]);
          w.i32(s.value[1]);
          sessionCount++;
        } else {
          const n = nodes.next();
          if (n.done === true) {
            more = false;
            break;
          }
          const [path, node] = n.value;
          let aclId = aclIds.get(node.acl);
          if (aclId === undefined) {
            aclId = aclIds.size;
            aclIds.set(node.acl, aclId);
            w.u8(Entry.ACL_DEF);
            w.u32(aclId);
            w.acl(node.acl);
            chunk.entries++;
          }
          w.u8(Entry.NODE);
          w.str(path);
          w.bytesOrNull(node.data);
          w.u32(aclId);
          w.num(node.czxid);
          w.num(node.mzxid);
          w.num(node.ctime);
          w.num(node.mtime);
          w.i32(node.version);
          w.i32(node.cversion);
          w.i32(node.aversion);
          w.i64(node.ephemeralOwner);
          w.num(node.pzxid);
          nodeEntries++;
        }
        if ((++chunk.entries & 63) === 0) {
          chunk.fold();
          if (w.pos >= chunkBytes || performance.now() - t0 >= sliceMs) break;
        }
      }
      const buf = chunk.finish();
      crcBuf.writeUInt32BE(buf.readUInt32BE(1));
      chunksCrc = crc32(crcBuf, 0, 4, chunksCrc);
      bytes += buf.length;
      puts.push(this.chunkDb.put([id, chunkNo], buf));
      chunkNo++;
      slices++;
      const dt = performance.now() - t0;
      if (dt > worst) worst = dt;
      if (!more) break;
      await yieldToLoop();
    }
    const endZxid = tree.lastZxid;
    // Durable env: each resolved put is on disk, so the marker can only follow them.
    await Promise.all(puts);
    const info: SnapshotInfo = {
      id,
      zxid,
      endZxid,
      chunks: chunkNo,
      nodeEntries,
      sessions: sessionCount,
      bytes,
      chunksCrc,
      startedAt,
      durationMs: performance.now() - t00,
      worstSliceMs: worst,
      slices,
    };
    await this.markDb.put(id, encodeMarker(info));
    return info;
  }

  /** Deletes a snapshot, marker and chunks in one LMDB transaction. */
  async remove(id: number): Promise<void> {
    const keys: Key[] = [...this.chunkDb.getKeys({ start: [id, 0], end: [id + 1] })];
    await this.chunkDb.batch(() => {
      this.markDb.remove(id);
      for (const k of keys) this.chunkDb.remove(k);
    });
  }

  /** Deletes what interrupted snapshots left behind. Returns how many. */
  async removeIncomplete(): Promise<number> {
    const ids = this.incomplete();
    for (const id of ids) await this.remove(id);
    return ids.length;
  }

  /** A stored snapshot's bytes as they are, for shipping to a learner (Zab SNAP). */
  readRaw(id: number): { marker: Buffer; chunks: Buffer[] } | undefined {
    const marker = this.markDb.get(id);
    if (marker === undefined) return undefined;
    return { marker: Buffer.from(marker), chunks: [...this.chunks(id)].map((c) => Buffer.from(c.value)) };
  }

  /**
   * Replaces every snapshot with one received from the leader (Zab SNAP), stored under
   * the leader's id since its chunks name it. Chunks and marker go in one transaction.
   */
  async adopt(id: number, raw: { marker: Buffer; chunks: Buffer[] }): Promise<void> {
    // Our own snapshots get ids above the leader's from now on; one of the old tree still
    // being written could share its id: let it end, then drop it with the rest.
    if (this.nextId <= id) this.nextId = id + 1;
    await this.current?.catch(() => undefined);
    for (const e of this.list()) await this.remove(e.id);
    await this.removeIncomplete();
    await this.chunkDb.batch(() => {
      raw.chunks.forEach((c, i) => this.chunkDb.put([id, i], c));
      this.markDb.put(id, raw.marker);
    });
    if (this.nextId <= id) this.nextId = id + 1;
  }

  /** Overwrites a stored chunk or marker as is: tests and repair tools only. */
  async putRaw(kind: 'chunk' | 'marker', id: number, chunkNo: number, value: Buffer): Promise<void> {
    if (kind === 'chunk') await this.chunkDb.put([id, chunkNo], value);
    else await this.markDb.put(id, value);
  }

  getRaw(kind: 'chunk' | 'marker', id: number, chunkNo = 0): Buffer | undefined {
    return kind === 'chunk' ? this.chunkDb.get([id, chunkNo]) : this.markDb.get(id);
  }

  async close(): Promise<void> {
    await this.current?.catch(() => undefined);
    await closeEnv(this.env);
  }
}
