// Memory of a DataTree alone: N znodes (1000 per parent) of a given value size, built by
// apply(), measured after full collections. Run by `npm run bench -- --micro` in a child
// process started with --expose-gc, so that the figure is what the tree keeps, not
// garbage the collector has not reached yet. Prints one JSON line.

import { readFileSync } from 'node:fs';
import { OPEN_ACL_UNSAFE } from '../src/tree/acl-list.js';
import { apply, DataTree } from '../src/tree/datatree.js';

const n = Number(process.argv[2] ?? 1_000_000);
const valueSize = Number(process.argv[3] ?? 100);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

const anonMB = (): number => Number(/RssAnon:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
const acl = OPEN_ACL_UNSAFE.map((a) => ({ ...a }));
gc();
const anon0 = anonMB();
const heap0 = process.memoryUsage().heapUsed;
const tree = new DataTree();
const nodes0 = tree.nodeCount;
let zxid = 0x100000000;
const t0 = performance.now();
for (let p = 0, made = 0; made < n; p++) {
  const parent = `/t${String(p).padStart(4, '0')}`;
  apply(tree, { zxid: ++zxid, time: Date.now(), sessionId: 1n, cxid: 1, op: { type: 'create', op: 1, path: parent, data: null, acl, ephemeralOwner: 0n, parentCVersion: p + 1 } });
  for (let k = 0; k < 1000 && made < n; k++, made++) {
    // Decoded from a Buffer, as a server's paths are: flat strings whose hash V8 has not cached.
    const path = Buffer.from(`${parent}/key-${String(k).padStart(6, '0')}`).toString('latin1');
    apply(tree, { zxid: ++zxid, time: Date.now(), sessionId: 1n, cxid: 1, op: { type: 'create', op: 1, path, data: Buffer.alloc(valueSize, 0x61), acl, ephemeralOwner: 0n, parentCVersion: k + 1 } });
  }
}
const buildMs = performance.now() - t0;
gc();
gc();
const znodes = tree.nodeCount - nodes0;
const growth = anonMB() - anon0;
console.log(
  JSON.stringify({
    znodes,
    valueSize,
    buildMs: Math.round(buildMs),
    anonMB: Math.round(growth),
    heapMB: Math.round((process.memoryUsage().heapUsed - heap0) / 1048576),
    bytesPerZnode: Math.round((growth * 1048576) / znodes),
  }),
);
