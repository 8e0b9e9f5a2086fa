// A deterministic digest of a DataTree's content, for comparing a recovered tree with
// the original (and replicas with each other): every znode in path order with its data,
// full stat and ACL, then the session table in id order. lastZxid is not included.

import type { DataTree } from '../tree/datatree.js';
import { crypto } from '../crypto.js';

export function treeDigest(tree: DataTree): string {
  const h = crypto().createHash('sha256');
  const num = Buffer.alloc(8);
  const int = (v: number): void => {
    num.writeDoubleBE(v);
    h.update(num);
  };
  const big = (v: bigint): void => {
    num.writeBigInt64BE(v);
    h.update(num);
  };
  const str = (s: string): void => {
    int(Buffer.byteLength(s));
    h.update(s);
  };
  for (const path of [...tree.nodes.keys()].sort()) {
    const n = tree.nodes.get(path)!;
    str(path);
    int(n.data === null ? -1 : n.data.length);
    if (n.data !== null) h.update(n.data);
    const s = n.stat();
    // The stored cversion and owner, not the client's view of them (stat()).
    for (const v of [s.czxid, s.mzxid, s.ctime, s.mtime, s.version, n.cversion, s.aversion, s.dataLength, s.numChildren, s.pzxid]) int(v);
    big(n.ephemeralOwner);
    int(n.acl.length);
    for (const a of n.acl) {
      int(a.perms);
      str(a.scheme);
      str(a.id);
    }
  }
  str('#sessions');
  for (const id of [...tree.sessions.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    big(id);
    int(tree.sessions.get(id)!);
  }
  return h.digest('hex');
}
