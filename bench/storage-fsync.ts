// Raw fdatasync rate of the disk under dataDir: the ceiling for one-commit-per-txn
// durability, to compare the txn log's group commit against.
//   node dist/bench/storage-fsync.js [dir] [seconds]

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function run(label: string, dir: string, seconds: number, preallocate: boolean): void {
  const file = path.join(dir, `fsync-${label}.bin`);
  const fd = fs.openSync(file, 'w+');
  const block = Buffer.alloc(4096, 0x5a);
  const slots = 4096;
  if (preallocate) {
    const big = Buffer.alloc(4096 * slots);
    fs.writeSync(fd, big, 0, big.length, 0);
    fs.fdatasyncSync(fd);
  }
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  let n = 0;
  while (performance.now() < end) {
    const t0 = performance.now();
    fs.writeSync(fd, block, 0, block.length, preallocate ? (n % slots) * 4096 : n * 4096);
    fs.fdatasyncSync(fd);
    lat.push(performance.now() - t0);
    n++;
  }
  fs.closeSync(fd);
  fs.rmSync(file);
  lat.sort((a, b) => a - b);
  const q = (p: number): string => lat[Math.floor(p * (lat.length - 1))]!.toFixed(3);
  console.log(`${label.padEnd(28)} ${Math.round(n / seconds).toString().padStart(7)} fdatasync/s   p50 ${q(0.5)} ms   p99 ${q(0.99)} ms`);
}

const dir = process.argv[2] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'corral-fsync-'));
const seconds = Number(process.argv[3] ?? 3);
run('4KiB append + fdatasync', dir, seconds, false);
run('4KiB overwrite + fdatasync', dir, seconds, true);
