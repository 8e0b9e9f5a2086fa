// Rebuilds a DataTree from a complete snapshot, verifying every chunk against the
// marker. Children sets, the ephemerals/containers/TTL indexes and dataSize are derived
// here rather than stored, so a snapshot cannot disagree with itself about them.

import { DataTree, SYSTEM_PATHS } from '../tree/datatree.js';
import { FormatError, StorageError } from './errors.js';
import { checkBlock, Entry, readChunkHeader, type SnapshotInfo } from './snapformat.js';
import type { SnapshotStore } from './snapshot.js';
import { crc32 } from './crc32.js';
import { zxidHex } from './zxid.js';

export function snapshotDamage(store: SnapshotStore, id: number, zxid: number | undefined, what: string): StorageError {
  const which = zxid === undefined ? `snapshot ${id}` : `snapshot ${id} (zxid ${zxidHex(zxid)})`;
  return new StorageError(
    `${which} in ${store.dir} is damaged: ${what}. Corral will not start from a damaged snapshot: ` +
      `restore ${store.dir} from a backup, or remove this server's data and log directories so it resyncs from the ensemble; ` +
      '`corral check-data <dataDir>` lists every problem found.',
  );
}

/**
 * `chunks` defaults to the store's own; a learner installing a snapshot its leader sent
 * (Zab SNAP) passes the received chunks, verified the same way, before storing them.
 */
export function loadSnapshot(
  store: SnapshotStore,
  info: SnapshotInfo,
  chunks: Iterable<{ chunkNo: number; value: Buffer }> = store.chunks(info.id),
): DataTree {
  const bad = (what: string): StorageError => snapshotDamage(store, info.id, info.zxid, what);
  const builtin = new Set(SYSTEM_PATHS);
  const tree = DataTree.empty();
  const acls = new Map<number, number>();
  const crcBuf = Buffer.alloc(4);
  let expect = 0;
  let chunksCrc = 0;
  let bytes = 0;
  let nodeEntries = 0;
  let sessions = 0;
  for (const { chunkNo, value } of chunks) {
    if (chunkNo !== expect) throw bad(expect < info.chunks ? `chunk ${expect} is missing` : `unexpected chunk ${chunkNo}`);
    const c = checkBlock(value);
    if (!c.ok) throw bad(`chunk ${chunkNo}: ${c.message}`);
    crcBuf.writeUInt32BE(value.readUInt32BE(1));
    chunksCrc = crc32(crcBuf, 0, 4, chunksCrc);
    bytes += value.length;
    try {
      const { header, reader: r } = readChunkHeader(value);
      if (header.snapId !== info.id || header.chunkNo !== chunkNo) throw new FormatError(`chunk ${chunkNo} claims to be ${header.snapId}/${header.chunkNo}`);
      for (let i = 0; i < header.entries; i++) {
        const kind = r.u8();
        if (kind === Entry.NODE) {
          const path = r.str();
          const data = r.bytesOrNull();
          const aclId = r.u32();
          const acl = acls.get(aclId);
          if (acl === undefined) throw new FormatError(`node ${path} uses undefined ACL ${aclId}`);
          const czxid = r.num();
          const mzxid = r.num();
          const ctime = r.num();
          const mtime = r.num();
          const version = r.i32();
          const cversion = r.i32();
          const aversion = r.i32();
          const owner = r.i64();
          const pzxid = r.num();
          // A fuzzy snapshot may hold a path twice (deleted and created again while it was
          // written): the later entry is the newer znode.
          const old = tree.slotOf(path);
          if (old >= 0) tree.remove(path, old);
          tree.insert(path, -1, data, acl, czxid, mzxid, ctime, mtime, version, cversion, aversion, owner, pzxid);
          nodeEntries++;
        } else if (kind === Entry.SESSION) {
          const sid = r.i64();
          tree.sessions.set(sid, r.i32());
          sessions++;
        } else if (kind === Entry.ACL_DEF) {
          const aclId = r.u32();
          acls.set(aclId, tree.internAclId(r.acl()));
        } else {
          throw new FormatError(`unknown entry kind ${kind}`);
        }
      }
      if (!r.done) throw new FormatError(`${r.end - r.pos} trailing bytes`);
    } catch (e) {
      if (e instanceof FormatError || e instanceof RangeError) throw bad(`chunk ${chunkNo}: ${e.message}`);
      throw e;
    }
    expect++;
  }
  if (expect !== info.chunks) throw bad(`${info.chunks - expect} of ${info.chunks} chunks are missing`);
  if (chunksCrc !== info.chunksCrc || bytes !== info.bytes) throw bad('chunks do not match the checksum in the marker');
  if (nodeEntries !== info.nodeEntries || sessions !== info.sessions) throw bad('entry counts do not match the marker');
  if (!tree.has('/')) throw bad('no root node');
  tree.linkLoaded();

  let dataSize = 0;
  for (const [path, node] of tree.nodes) dataSize += node.dataLength + (builtin.has(path) ? 0 : path.length);
  tree.dataSize = dataSize;
  tree.lastZxid = info.zxid;
  return tree;
}
