// Where a lone durable write's time goes. One client sends setData one at a time (the
// next when the last is answered) to:
//   - an in-process standalone Corral (forceSync on, LMDB in a temp dir) whose txn log
//     is timed from append() to resolved: LMDB's commit, with its two device flushes;
//   - the do-nothing floor server (dist/bench/floor-server.js, a child process): the
//     client, loopback and scheduler alone;
//   - optionally any other ZooKeeper-protocol server (--target host:port), e.g. zkref.
// The client runs in a worker thread, so it never waits for the server's event loop.
// Per round it prints the medians and p90s; the server's own part is what is left of
// Corral's round trip once the floor's and the log's are taken out.
//
//   node dist/bench/write-path.js [--writes N] [--rounds R] [--target host:port]

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { RawClient } from '../src/client/raw.js';
import { parseZooCfg } from '../src/config/zoocfg.js';
import { startStandalone } from '../src/server/boot.js';
import type { TxnLog } from '../src/server/server.js';
import { median } from './results.js';
import { freePort, parseAddresses, waitReady } from './target.js';

interface Job {
  host: string;
  port: number;
  writes: number;
  /** Delete the znode afterwards (not on the timed Corral: its log's last samples must be the writes). */
  cleanup: boolean;
}

/** The worker: sequential setData of 100 bytes, round-trip times in ms. */
async function client(job: Job): Promise<number[]> {
  const c = await RawClient.connect(job.host, job.port);
  const path = `/write-path-${process.pid}`;
  await c.create(path);
  const value = Buffer.alloc(100, 0x61);
  const out: number[] = [];
  for (let i = 0; i < 200; i++) await c.setData(path, value); // warm both sides' JIT
  for (let i = 0; i < job.writes; i++) {
    const t0 = performance.now();
    const r = await c.setData(path, value);
    out.push(performance.now() - t0);
    if (r.err !== 0) throw new Error(`setData answered error ${r.err}`);
  }
  if (job.cleanup) await c.delete(path);
  c.close();
  return out;
}

if (!isMainThread) {
  client(workerData as Job).then(
    (lat) => parentPort!.postMessage({ lat }),
    (e: Error) => parentPort!.postMessage({ error: e.message }),
  );
} else {
  await main();
}

function runClient(job: Job): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const w = new Worker(fileURLToPath(import.meta.url), { workerData: job });
    w.once('message', (m: { lat?: number[]; error?: string }) => (m.lat ? resolve(m.lat) : reject(new Error(m.error))));
    w.once('error', reject);
  });
}

/** The p-quantile of an ascending array (nearest rank). */
function quantile(sorted: number[], q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const flag = (name: string, dflt: string): string => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
  };
  const writes = Number(flag('--writes', '2000'));
  const rounds = Number(flag('--rounds', '3'));
  const target = args.includes('--target') ? parseAddresses(flag('--target', ''))[0] : undefined;

  const dir = mkdtempSync(join(tmpdir(), 'corral-write-path-'));
  const { config } = parseZooCfg(`tickTime=2000\ndataDir=${dir}\nclientPort=0\nclientPortAddress=127.0.0.1\nforceSync=yes\n`, 'write-path.cfg');
  let logMs: number[] = [];
  const timed = (log: TxnLog): TxnLog => ({
    append: (txns) => {
      const t0 = performance.now();
      return log.append(txns).then(() => {
        logMs.push(performance.now() - t0);
      });
    },
    close: () => log.close(),
    maxInFlight: log.maxInFlight,
  });
  const corral = await startStandalone(config, () => undefined, { wrapTxnLog: timed });
  const floorPort = await freePort();
  const floorJs = join(dirname(fileURLToPath(import.meta.url)), 'floor-server.js');
  const floor = spawn(process.execPath, [floorJs, String(floorPort)], { stdio: 'ignore' });

  console.log(`lone setData of 100 B, ${writes} per round, ${rounds} rounds; ms, median (p90); Corral rest = Corral - floor - log`);
  const head = ['round', 'floor', 'Corral', 'Corral log', 'Corral rest', ...(target ? [`${target.host}:${target.port}`] : [])];
  console.log(head.map((h) => h.padStart(17)).join(''));
  const fmt = (xs: number[]): string => {
    const s = [...xs].sort((a, b) => a - b);
    return `${median(s).toFixed(3)} (${quantile(s, 0.9).toFixed(2)})`.padStart(17);
  };
  const sums: Record<string, number[]> = { floor: [], corral: [], log: [], rest: [], target: [] };
  try {
    await waitReady({ host: '127.0.0.1', port: floorPort }, () => floor.exitCode === null, 10_000);
    for (let r = 1; r <= rounds; r++) {
      const fl = await runClient({ host: '127.0.0.1', port: floorPort, writes, cleanup: true });
      logMs = [];
      const co = await runClient({ host: '127.0.0.1', port: corral.port, writes, cleanup: false });
      // The log also timed the create and the warm-up writes; the last `writes` are the round's.
      const lg = logMs.slice(-writes);
      const ta = target ? await runClient({ host: target.host, port: target.port, writes, cleanup: true }) : [];
      const rest = median(co) - median(fl) - median(lg);
      sums.floor!.push(median(fl));
      sums.corral!.push(median(co));
      sums.log!.push(median(lg));
      sums.rest!.push(rest);
      if (target) sums.target!.push(median(ta));
      console.log([String(r).padStart(17), fmt(fl), fmt(co), fmt(lg), rest.toFixed(3).padStart(17), ...(target ? [fmt(ta)] : [])].join(''));
    }
    const m = (k: string) => median(sums[k]!).toFixed(3).padStart(17);
    console.log(['median'.padStart(17), m('floor'), m('corral'), m('log'), m('rest'), ...(target ? [m('target')] : [])].join(''));
  } finally {
    floor.kill();
    await corral.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
