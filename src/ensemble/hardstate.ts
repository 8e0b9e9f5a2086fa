// The epochs a member promised (ZooKeeper's currentEpoch and acceptedEpoch files):
// written whole to a temp file, fsynced, renamed over the old one, directory fsynced,
// before any message that relies on the promise is sent.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StorageError } from '../storage/errors.js';
import type { HardState } from '../zab/types.js';

export const HARDSTATE_FILE = 'corral-epoch';

export function readHardState(dataDir: string): HardState | null {
  const file = join(dataDir, HARDSTATE_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new StorageError(`${file}: cannot read: ${(e as Error).message}`);
  }
  const m = /^currentEpoch=(\d+)\nacceptedEpoch=(\d+)\nacceptedLeader=(-?\d+)\n$/.exec(text);
  if (m === null) throw new StorageError(`${file} is damaged; remove this server's data directory so it resyncs from the ensemble`);
  return { currentEpoch: Number(m[1]), acceptedEpoch: Number(m[2]), acceptedLeader: Number(m[3]) };
}

export function writeHardState(dataDir: string, hs: HardState): void {
  const file = join(dataDir, HARDSTATE_FILE);
  const tmp = file + '.tmp';
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, `currentEpoch=${hs.currentEpoch}\nacceptedEpoch=${hs.acceptedEpoch}\nacceptedLeader=${hs.acceptedLeader}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  const dir = openSync(dataDir, 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
