// `corral check-data DIR`: an offline verifier. Opens the environments read-only,
// verifies every snapshot and every log record (checksums, versions, zxid continuity),
// then runs recovery without repairing anything and reports what a start would do.

import fs from 'node:fs';
import { envExists, LOG_FILE, SNAP_FILE } from './env.js';
import { StorageError } from './errors.js';
import { scanLog } from './logscan.js';
import { recover } from './recovery.js';
import { loadSnapshot } from './snapload.js';
import { SnapshotStore } from './snapshot.js';
import { logEnvDir, snapEnvDir } from './storage.js';
import { treeDigest } from './digest.js';
import { TxnLog } from './txnlog.js';
import { follows, zxidHex } from './zxid.js';

export interface CheckReport {
  /** false if a start would refuse this data (or there is nothing to check). */
  ok: boolean;
  lines: string[];
  /** What recovery would reach, when it can. */
  lastZxid?: number;
  digest?: string;
}

export async function checkData(dataDir: string, dataLogDir?: string): Promise<CheckReport> {
  const lines: string[] = [];
  let ok = true;
  const error = (s: string): void => {
    ok = false;
    lines.push(`ERROR ${s}`);
  };
  if (!fs.existsSync(dataDir)) return { ok: false, lines: [`ERROR ${dataDir} does not exist`] };
  const snapDir = snapEnvDir(dataDir);
  const logDir = logEnvDir(dataDir, dataLogDir);
  const haveSnaps = envExists(snapDir, SNAP_FILE);
  const haveLog = envExists(logDir, LOG_FILE);
  if (!haveSnaps && !haveLog) {
    return { ok: true, lines: [`${dataDir}: no Corral data (a new server starts from an empty tree)`] };
  }
  if (!haveLog) lines.push(`WARN no txn log in ${logDir} (if zoo.cfg sets dataLogDir, pass it as well)`);
  const snaps = haveSnaps ? SnapshotStore.open(snapDir, { readOnly: true }) : null;
  const log = haveLog ? TxnLog.open(logDir, { forceSync: false, readOnly: true }) : null;
  let result: CheckReport;
  try {
    const covers: number[] = [];
    if (snaps !== null) {
      const list = snaps.list();
      lines.push(`snapshots in ${snapDir}: ${list.length} complete`);
      for (const e of list) {
        if (e.info === undefined) {
          error(`snapshot ${e.id}: ${e.damage}`);
          continue;
        }
        const i = e.info;
        try {
          const tree = loadSnapshot(snaps, i);
          covers.push(i.zxid);
          lines.push(
            `  snapshot ${i.id} zxid ${zxidHex(i.zxid)}: ${tree.nodeCount} znodes, ${i.sessions} sessions, ${i.chunks} chunks, ` +
              `${i.bytes} bytes, written ${new Date(i.startedAt).toISOString()} in ${i.durationMs.toFixed(0)} ms ` +
              `(longest slice ${i.worstSliceMs.toFixed(1)} ms): ok`,
          );
        } catch (err) {
          if (!(err instanceof StorageError)) throw err;
          error(err.message);
        }
      }
      for (const id of snaps.incomplete()) lines.push(`  snapshot ${id}: interrupted before completing, removed at the next start`);
    }
    if (log !== null) {
      const first = log.firstZxid;
      if (first === undefined) {
        lines.push(`txn log ${logDir}: empty`);
      } else {
        lines.push(`txn log ${logDir}: ${log.count()} txns, zxid ${zxidHex(first)} to ${zxidHex(log.lastZxid)}`);
        // Without a snapshot the log must start at the beginning; with one, a gap is
        // fine if a snapshot covers it (the log was purged, or written after a SNAP).
        const prev = covers.length === 0 ? 0 : first - 1;
        try {
          const scan = scanLog(log, {
            after: first - 1,
            prev,
            onTxn: () => undefined,
            gapAllowed: (p, n) => covers.some((z) => z >= p && follows(z, n)),
          });
          if (scan.tornTail !== null) {
            const t = scan.tornTail;
            lines.push(`WARN torn tail: ${t.count} record(s) from zxid ${zxidHex(t.firstZxid)} fail their check; a start drops them`);
          } else {
            lines.push('  every record verifies');
          }
        } catch (err) {
          if (!(err instanceof StorageError)) throw err;
          error(err.message);
        }
      }
    }
    if (ok) {
      if (log !== null && snaps !== null) {
        const r = await recover(snaps, log, { log: () => undefined, repair: false });
        lines.push(
          `recovery: ${r.snapshot === null ? 'no snapshot' : `snapshot ${r.snapshot.id}`}, then ${r.replayed} txns, ` +
            `to zxid ${zxidHex(r.lastZxid)}: ${r.tree.nodeCount} znodes, ${r.tree.sessions.size} sessions`,
        );
        const digest = treeDigest(r.tree);
        lines.push(`tree digest ${digest}`);
        result = { ok, lines, lastZxid: r.lastZxid, digest };
      } else {
        result = { ok, lines };
      }
    } else {
      lines.push('a start would refuse this data');
      result = { ok, lines };
    }
  } catch (err) {
    if (!(err instanceof StorageError)) throw err;
    error(err.message);
    result = { ok, lines };
  } finally {
    await log?.close();
    await snaps?.close();
  }
  return result;
}
