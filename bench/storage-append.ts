// Durable append throughput of the txn log under concurrent load: C clients each
// append one txn (a 100-byte setData), wait for it, and append the next. Reports
// txns/s, LMDB commits and mean batch size, latency, and how busy the main thread was.
// A second mode commits the same group batches with transactionSync on the main thread,
// to show what moving the fsync off it buys.
//   node dist/bench/storage-append.js [seconds] [concurrency,...]

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { Txn } from '../src/tree/types.js';
import { encodeTxn, sealRecord } from '../src/storage/txncodec.js';
import { open } from '../src/storage/env.js';
import { TxnLog } from '../src/storage/txnlog.js';

const seconds = Number(process.argv[2] ?? 3);
const levels = (process.argv[3] ?? '1,8,64,256,1024').split(',').map(Number);

const payload = Buffer.alloc(100, 0x61);
function txn(zxid: number): Txn {
  return { zxid, time: Date.now(), sessionId: 0x1234n, cxid: zxid, op: { type: 'setData', path: `/bench/node-${zxid % 1000}`, data: payload, version: zxid } };
}

interface Appender {
  append(txns: Txn[]): Promise<void>;
  commits(): number;
  close(): Promise<void>;
}

function lmdbAsync(dir: string, forceSync: boolean): Appender {
  const log = TxnLog.open(dir, { forceSync });
  return { append: (t) => log.append(t), commits: () => log.stats.commits, close: () => log.close() };
}

// The same group commit, but each batch is committed by transactionSync on this thread.
function lmdbSyncOnMain(dir: string): Appender {
  const env = open({ path: path.join(dir, 'txnlog.mdb'), maxDbs: 4, overlappingSync: false });
  const db = env.openDB<Buffer, number>('txnlog', { encoding: 'binary' });
  let queue: { recs: [number, Buffer][]; resolve: () => void }[] = [];
  let scheduled = false;
  let commits = 0;
  const flush = (): void => {
    scheduled = false;
    const batch = queue;
    queue = [];
    const all = batch.flatMap((b) => b.recs);
    db.transactionSync(() => {
      for (const [k, v] of all) db.putSync(k, sealRecord(v, all[0]![0], all.length));
    });
    commits++;
    for (const b of batch) b.resolve();
  };
  return {
    append(txns) {
      return new Promise((resolve) => {
        queue.push({ recs: txns.map((t) => [t.zxid, encodeTxn(t)]), resolve });
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
    commits: () => commits,
    close: () => env.close(),
  };
}

async function measure(label: string, make: (dir: string) => Appender, clients: number): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-append-'));
  const log = make(dir);
  let zxid = 0;
  let acked = 0;
  const lat: number[] = [];
  const delay = monitorEventLoopDelay({ resolution: 1 });
  let stop = false;
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  delay.enable();
  const t0 = performance.now();
  const timer = setTimeout(() => (stop = true), seconds * 1000);
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (!stop) {
        const s = performance.now();
        await log.append([txn(++zxid)]);
        lat.push(performance.now() - s);
        acked++;
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  clearTimeout(timer);
  delay.disable();
  const elu = performance.eventLoopUtilization(elu0);
  const cpu = process.cpuUsage(cpu0);
  const commits = log.commits();
  await log.close();
  fs.rmSync(dir, { recursive: true, force: true });
  lat.sort((a, b) => a - b);
  const q = (p: number): string => lat[Math.floor(p * (lat.length - 1))]!.toFixed(2);
  console.log(
    `${label.padEnd(26)} C=${String(clients).padEnd(5)} ${Math.round(acked / elapsed).toString().padStart(7)} txn/s  ` +
      `${Math.round(commits / elapsed).toString().padStart(5)} commits/s  batch ${(acked / commits).toFixed(1).padStart(6)}  ` +
      `lat p50 ${q(0.5)} p99 ${q(0.99)} ms  loop util ${(elu.utilization * 100).toFixed(0)}%  ` +
      `loop delay max ${(delay.max / 1e6).toFixed(1)} ms  cpu/txn ${((cpu.user + cpu.system) / acked).toFixed(1)} µs`,
  );
}

for (const c of levels) await measure('durable, lmdb write thread', (d) => lmdbAsync(d, true), c);
for (const c of levels) await measure('durable, commit on main', lmdbSyncOnMain, c);
for (const c of [1, 64, 1024].filter((c) => levels.includes(c) || levels.length === 1)) await measure('forceSync=false', (d) => lmdbAsync(d, false), c);
