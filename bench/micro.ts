// Micro-benchmarks (tinybench) of the server's hot paths, no sockets: jute decode and
// encode of the common frames, the data tree, apply() of txn batches, watch triggering,
// and the LMDB txn log's batch commit when src/storage has it.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bench } from 'tinybench';
import { EventType, OpCode } from '../src/protocol/constants.js';
import { JuteReader, JuteWriter } from '../src/protocol/jute.js';
import { readRequestBody, readStat, writeAclList, writeStat } from '../src/protocol/records.js';
import { type Watcher, WatchManager } from '../src/server/watches.js';
import { OPEN_ACL_UNSAFE } from '../src/tree/acl-list.js';
import { apply, DataTree } from '../src/tree/datatree.js';
import type { Acl, Txn, WatchEvent } from '../src/tree/types.js';

export interface MicroResult {
  group: string;
  name: string;
  /** Operations per second (mean of tinybench's throughput samples). */
  opsPerSec: number;
  /** Mean and p99 time per call, ns. */
  meanNs: number;
  p99Ns: number;
  /** Relative margin of error, %. */
  rme: number;
  samples: number;
  /** Items per call (e.g. txns per batch): opsPerSec * perCall is items per second. */
  perCall: number;
}

export interface MicroReport {
  results: MicroResult[];
  notes: string[];
}

const PATH = '/corral-bench/kv/k0000042';
const VALUE = Buffer.alloc(100, 0x61);
const ACL: Acl[] = OPEN_ACL_UNSAFE.map((a) => ({ ...a }));

function frame(build: (w: JuteWriter) => void): Buffer {
  const w = new JuteWriter(256);
  build(w);
  return w.toBuffer();
}

function buildTree(n: number): { tree: DataTree; zxid: number; paths: string[] } {
  const tree = new DataTree();
  let zxid = 0;
  const at = (path: string, data: Buffer) => {
    zxid++;
    apply(tree, { zxid, time: 0, sessionId: 0n, cxid: 0, op: { type: 'create', op: OpCode.create, path, data, acl: ACL, ephemeralOwner: 0n, parentCVersion: 0 } });
  };
  at('/b', Buffer.alloc(0));
  const paths: string[] = [];
  for (let d = 0; d < Math.ceil(n / 1000); d++) at(`/b/d${d}`, Buffer.alloc(0));
  for (let i = 0; i < n; i++) {
    const p = `/b/d${Math.floor(i / 1000)}/n${i % 1000}`;
    at(p, VALUE);
    paths.push(p);
  }
  return { tree, zxid, paths };
}

class NullWatcher implements Watcher {
  readonly authIds = [{ scheme: 'world', id: 'anyone' }];
  delivered = 0;
  deliver(_e: WatchEvent): void {
    this.delivered++;
  }
}

/** The tree's own memory, measured in a child with --expose-gc (bench/tree-memory.ts). */
function treeMemory(znodes: number, log: (s: string) => void): string {
  log(`micro: tree memory, ${znodes} znodes of 100 B`);
  const script = fileURLToPath(new URL('./tree-memory.js', import.meta.url));
  const r = spawnSync(process.execPath, ['--expose-gc', script, String(znodes), '100'], { encoding: 'utf8' });
  if (r.status !== 0) return `tree memory: failed (${(r.stderr || r.error?.message || '').trim().split('\n')[0]})`;
  const m = JSON.parse(r.stdout.trim()) as { znodes: number; anonMB: number; heapMB: number; bytesPerZnode: number; buildMs: number };
  return `tree memory: ${m.znodes.toLocaleString('en-US')} znodes of 100 B built by apply() hold ${m.anonMB} MB anonymous RSS after full GCs (${m.bytesPerZnode} B per znode, V8 heap ${m.heapMB} MB), built in ${m.buildMs} ms`;
}

export async function runMicro(opts: { timeMs: number; log: (s: string) => void; treeZnodes?: number }): Promise<MicroReport> {
  const notes: string[] = [];
  const groups: { group: string; bench: Bench; perCall: Map<string, number> }[] = [];
  const mk = (group: string) => {
    const b = new Bench({ time: opts.timeMs, warmup: true });
    const g = { group, bench: b, perCall: new Map<string, number>() };
    groups.push(g);
    return g;
  };

  // --- jute ---------------------------------------------------------------------------
  {
    const g = mk('jute');
    const getReq = frame((w) => w.int(7).int(OpCode.getData).ustring(PATH).bool(false));
    const setReq = frame((w) => w.int(7).int(OpCode.setData).ustring(PATH).buffer(VALUE).int(-1));
    const { tree, paths } = buildTree(10);
    const node = tree.get(paths[0])!;
    const reply = frame((w) => {
      w.int(7).longNum(0x100000005).int(0).buffer(node.data);
      writeStat(w, node.stat());
    });
    const w = new JuteWriter(64 * 1024);
    let sink = 0;
    g.bench.add('decode getData request', () => {
      const r = new JuteReader(getReq);
      r.int();
      const op = r.int();
      const b = readRequestBody(op, r) as { path: string };
      sink += b.path.length;
    });
    g.bench.add('encode getData request', () => {
      w.reset();
      const at = w.beginFrame();
      w.int(7).int(OpCode.getData).ustring(PATH).bool(false);
      w.endFrame(at);
    });
    g.bench.add('encode getData reply (100 B + Stat)', () => {
      w.reset();
      const at = w.beginFrame();
      w.int(7).longNum(0x100000005).int(0).buffer(node.data);
      writeStat(w, node.stat());
      w.endFrame(at);
    });
    g.bench.add('decode getData reply (100 B + Stat)', () => {
      const r = new JuteReader(reply);
      r.int();
      r.longNum();
      r.int();
      sink += r.bufferView()!.length;
      sink += readStat(r).version;
    });
    g.bench.add('decode setData request (100 B)', () => {
      const r = new JuteReader(setReq);
      r.int();
      const op = r.int();
      const b = readRequestBody(op, r) as { data: Buffer };
      sink += b.data.length;
    });
    g.bench.add('encode setData request (100 B)', () => {
      w.reset();
      const at = w.beginFrame();
      w.int(7).int(OpCode.setData).ustring(PATH).buffer(VALUE).int(-1);
      w.endFrame(at);
    });
    g.bench.add('encode create request (100 B, open ACL)', () => {
      w.reset();
      const at = w.beginFrame();
      w.int(7).int(OpCode.create).ustring(PATH).buffer(VALUE);
      writeAclList(w, ACL);
      w.int(3);
      w.endFrame(at);
    });
    if (sink < 0) notes.push('');
  }

  // --- data tree ----------------------------------------------------------------------
  {
    const g = mk('tree');
    const N = 100_000;
    opts.log(`micro: building a ${N}-znode tree`);
    const built = buildTree(N);
    const tree = built.tree;
    let zxid = built.zxid;
    const paths = built.paths;
    let i = 0;
    let sink = 0;
    g.bench.add(`get (random of ${N / 1000}k)`, () => {
      i = (i * 1103515245 + 12345) & 0x7fffffff;
      sink += tree.get(paths[i % N])!.version;
    });
    g.bench.add('apply setData', () => {
      i = (i + 7919) % N;
      const p = paths[i];
      const n = tree.get(p)!;
      apply(tree, { zxid: ++zxid, time: 1, sessionId: 1n, cxid: 1, op: { type: 'setData', path: p, data: VALUE, version: n.version + 1 } });
    });
    let k = 0;
    g.bench.add('apply create + delete (ephemeral)', () => {
      const p = `/b/d0/e${k++}`;
      apply(tree, { zxid: ++zxid, time: 1, sessionId: 5n, cxid: 1, op: { type: 'create', op: OpCode.create, path: p, data: VALUE, acl: ACL, ephemeralOwner: 5n, parentCVersion: k } });
      apply(tree, { zxid: ++zxid, time: 1, sessionId: 5n, cxid: 2, op: { type: 'delete', op: OpCode.delete, path: p } });
    });
    g.perCall.set('apply create + delete (ephemeral)', 2);
    const BATCH = 1000;
    const batch: Txn[] = [];
    for (let j = 0; j < BATCH; j++) batch.push({ zxid: 0, time: 1, sessionId: 1n, cxid: j, op: { type: 'setData', path: paths[(j * 97) % N], data: VALUE, version: 0 } });
    g.bench.add(`apply batch of ${BATCH} setData txns`, () => {
      for (const t of batch) {
        t.zxid = ++zxid;
        apply(tree, t);
      }
    });
    g.perCall.set(`apply batch of ${BATCH} setData txns`, BATCH);
    if (sink < 0) notes.push('');
  }

  // --- watches --------------------------------------------------------------------------
  {
    const g = mk('watches');
    const wm = new WatchManager();
    const acl = OPEN_ACL_UNSAFE;
    const ev = (path: string): WatchEvent => ({ type: EventType.NodeDataChanged, path, zxid: 1, acl });
    // Unrelated watches so the tables are not empty (the common case on a busy server).
    const bystanders = Array.from({ length: 1000 }, () => new NullWatcher());
    bystanders.forEach((w, j) => wm.addData(`/other/${j}`, w));
    g.bench.add('trigger, nobody watching the path', () => {
      wm.trigger(ev('/b/d0/n1'));
    });
    for (const n of [1, 100, 1000]) {
      const ws = Array.from({ length: n }, () => new NullWatcher());
      g.bench.add(`add ${n} data watches + trigger`, () => {
        for (const w of ws) wm.addData('/hot', w);
        wm.trigger(ev('/hot'));
      });
      g.perCall.set(`add ${n} data watches + trigger`, n);
    }
  }

  // --- LMDB txn log ---------------------------------------------------------------------
  {
    type TxnLogMod = { TxnLog: { open(dir: string, o: { forceSync: boolean }): { append(t: Txn[]): Promise<void>; close(): Promise<void> } } };
    let mod: TxnLogMod | null = null;
    const spec = '../src/storage/txnlog.js';
    try {
      mod = (await import(spec)) as TxnLogMod;
      if (typeof mod.TxnLog?.open !== 'function') throw new Error('no TxnLog.open');
    } catch (e) {
      notes.push(`LMDB batch commit skipped: src/storage/txnlog has no usable append API (${(e as Error).message})`);
      mod = null;
    }
    if (mod !== null) {
      const g = mk('lmdb');
      const dirs: string[] = [];
      const logs: { close(): Promise<void> }[] = [];
      for (const forceSync of [true, false]) {
        for (const n of [1, 100, 1000]) {
          const dir = mkdtempSync(join(tmpdir(), 'corral-micro-lmdb-'));
          dirs.push(dir);
          const log = mod.TxnLog.open(join(dir, 'corral-log'), { forceSync });
          logs.push(log);
          let zxid = 0;
          const name = `append ${n} setData txn${n > 1 ? 's' : ''}, forceSync=${forceSync ? 'yes' : 'no'}`;
          g.bench.add(name, async () => {
            const txns: Txn[] = [];
            for (let j = 0; j < n; j++) txns.push({ zxid: ++zxid, time: 1, sessionId: 1n, cxid: j, op: { type: 'setData', path: PATH, data: VALUE, version: j } });
            await log.append(txns);
          });
          g.perCall.set(name, n);
        }
      }
      g.bench.addEventListener('complete', () => {
        void Promise.all(logs.map((l) => l.close())).then(() => {
          for (const d of dirs) rmSync(d, { recursive: true, force: true });
        });
      });
    }
  }

  const results: MicroResult[] = [];
  for (const g of groups) {
    opts.log(`micro: ${g.group} (${g.bench.tasks.length} tasks)`);
    await g.bench.run();
    for (const task of g.bench.tasks) {
      const r = task.result;
      if (r.state !== 'completed') {
        notes.push(`${g.group}/${task.name}: ${r.state}${'error' in r ? ` (${(r.error as Error).message})` : ''}`);
        continue;
      }
      results.push({
        group: g.group,
        name: task.name,
        opsPerSec: Math.round(r.throughput.mean),
        meanNs: Math.round(r.latency.mean * 1e6),
        p99Ns: Math.round(r.latency.p99 * 1e6),
        rme: Math.round(r.latency.rme * 100) / 100,
        samples: r.latency.samplesCount ?? task.runs,
        perCall: g.perCall.get(task.name) ?? 1,
      });
    }
  }
  // Give the LMDB environments a moment to close before the process may exit.
  await new Promise((r) => setTimeout(r, 200));
  notes.push(treeMemory(opts.treeZnodes ?? 1_000_000, opts.log));
  return { results, notes };
}
