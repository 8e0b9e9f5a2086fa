import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RawClient, type Reply } from '../src/client/raw.js';
import { parseZooCfg } from '../src/config/zoocfg.js';
import { Err } from '../src/protocol/constants.js';
import { startStandalone, type Running } from '../src/server/boot.js';
import { silentLogger } from '../src/server/log.js';
import type { TxnLog as ServerTxnLog } from '../src/server/server.js';
import { Storage } from '../src/storage/storage.js';
import { TxnLog } from '../src/storage/txnlog.js';

/** The parts of lmdb's Database used to pin a point-in-time view of the log. */
interface LmdbTxn {
  done(): void;
}
interface LmdbDb {
  useReadTransaction(): LmdbTxn;
  getRange(o: { transaction: LmdbTxn }): Iterable<{ key: number; value: Buffer }>;
}

// The durability boundary (issue #3), which a SIGKILL (test/crash.test.ts) cannot show
// because the page cache survives the process:
//   1. a write is answered only once its txn is durable: every write reply's zxid was
//      made durable by an append that resolved before the reply arrived, under load from
//      pipelining connections (so batches are large and replies race the log);
//   2. power loss through the server: at the moment some write replies arrive, the log
//      is cut (an LMDB read transaction pinned then: its committed, hence synced, state);
//      recovery from each cut holds every write answered before it.
// The same power-loss check at the storage layer alone (appends resolving, not replies)
// is test/storage.test.ts, "durability: every acknowledged txn survives losing
// everything after the last commit"; it is not repeated here.

const dirs: string[] = [];
const servers: Running[] = [];
const clients: RawClient[] = [];

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-durability-'));
  dirs.push(d);
  return d;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.stop().catch(() => undefined);
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Each append's resolution, in order: the highest zxid it made durable. */
interface Durable {
  resolutions: number[];
  max: number;
}

async function start(dataDir: string): Promise<{ running: Running; durable: Durable }> {
  const { config } = parseZooCfg(
    `tickTime=2000\ndataDir=${dataDir}\nclientPort=0\nclientPortAddress=127.0.0.1\nforceSync=yes\n`,
    'durability.cfg',
  );
  const durable: Durable = { resolutions: [], max: 0 };
  const running = await startStandalone(config, silentLogger, {
    wrapTxnLog: (log: ServerTxnLog): ServerTxnLog => ({
      append: (txns) =>
        log.append(txns).then(() => {
          // Runs before the server's own continuation (it chains on this promise).
          const z = txns[txns.length - 1]!.zxid;
          durable.resolutions.push(z);
          if (z > durable.max) durable.max = z;
        }),
      close: () => log.close(),
    }),
  });
  servers.push(running);
  return { running, durable };
}

/** SetDataResponse body: a Stat; its mzxid and version. */
function setStat(r: Reply): { mzxid: number; version: number } {
  const b = r.body;
  b.longNum(); // czxid
  const mzxid = b.longNum();
  b.longNum(); // ctime
  b.longNum(); // mtime
  return { mzxid, version: b.int() };
}

interface Ack {
  conn: number;
  zxid: number;
  version: number;
  /** The durable mark when the reply arrived. */
  durableAtReceipt: number;
  /** The log's own committed mark, and whether the record was readable from LMDB then. */
  logLastAtReceipt: number;
  inLmdbAtReceipt: boolean;
}

/**
 * `conns` sessions, each keeping `depth` setData on its own key in flight until it has
 * sent `perConn`; onAck runs as each reply arrives (RawClient resolves the request in
 * the socket's data callback, and this continuation runs in that callback's microtask
 * checkpoint, before any other I/O, e.g. a later append resolving).
 */
async function pipelinedLoad(
  running: Running,
  o: { conns: number; depth: number; perConn: number },
  onAck: (conn: number, r: Reply) => void,
): Promise<void> {
  const cs = await Promise.all(Array.from({ length: o.conns }, () => RawClient.connect(running.host, running.port)));
  clients.push(...cs);
  await Promise.all(cs.map((c, i) => c.create(`/k${i}`).then((r) => expect(r.err).toBe(0))));
  await Promise.all(
    cs.map(async (c, i) => {
      let sent = 0;
      const one = async (): Promise<void> => {
        while (sent < o.perConn) {
          sent++;
          const r = await c.setData(`/k${i}`, Buffer.from(`v${sent}`));
          onAck(i, r);
        }
      };
      await Promise.all(Array.from({ length: o.depth }, one));
    }),
  );
}

describe('durability boundary', () => {
  it('answers a write only after the append holding its zxid has resolved (durable), under pipelined load', async () => {
    const { running, durable } = await start(tempDir());
    const log = running.storage.txnLog;
    const acks: Ack[] = [];
    await pipelinedLoad(running, { conns: 8, depth: 64, perConn: 500 }, (conn, r) => {
      const logLastAtReceipt = log.lastZxid;
      const inLmdbAtReceipt = log.getRaw(r.zxid) !== undefined;
      expect(r.err).toBe(Err.OK);
      acks.push({ conn, zxid: r.zxid, version: setStat(r).version, durableAtReceipt: durable.max, logLastAtReceipt, inLmdbAtReceipt });
    });

    expect(acks.length).toBe(8 * 500);
    const early = acks.filter((a) => a.zxid > a.durableAtReceipt);
    expect(early, 'replies that arrived before their zxid was durable').toEqual([]);
    expect(acks.filter((a) => a.zxid > a.logLastAtReceipt || !a.inLmdbAtReceipt)).toEqual([]);
    // Appends resolve in zxid order, each past the one before.
    for (let i = 1; i < durable.resolutions.length; i++) expect(durable.resolutions[i]!).toBeGreaterThan(durable.resolutions[i - 1]!);
    // Per session, replies in order: zxids and versions rise.
    for (let c = 0; c < 8; c++) {
      const mine = acks.filter((a) => a.conn === c);
      for (let i = 1; i < mine.length; i++) {
        expect(mine[i]!.zxid).toBeGreaterThan(mine[i - 1]!.zxid);
        expect(mine[i]!.version).toBe(mine[i - 1]!.version + 1);
      }
    }
    // The load really was concurrent: group commits of many txns, replies racing them.
    const st = log.stats;
    expect(st.largestBatch).toBeGreaterThan(8);
    expect(st.commits).toBeLessThan(st.txns / 4);
    console.log(
      `durability: ${acks.length} write replies, ${durable.resolutions.length} appends resolved, ` +
        `${st.commits} log commits for ${st.txns} txns (largest ${st.largestBatch}); every reply's zxid durable at receipt`,
    );
  }, 60_000);

  it('power loss through the server: the log as committed when a reply arrives recovers every write answered by then', async () => {
    const { running } = await start(tempDir());
    const log = running.storage.txnLog;
    // The log's LMDB database. A read transaction pinned as a reply arrives is exactly
    // what a power cut then would leave (committed = fsynced, overlappingSync off).
    // env.backup() would not do: it copies on the libuv pool, from whatever is committed
    // by the time it runs, which can include commits made after the reply.
    const db = (log as unknown as { db: LmdbDb }).db;
    // Per key, the newest acknowledged version and mzxid, as a client saw them.
    const acked = new Map<string, { version: number; mzxid: number }>();
    const cuts: { txn: LmdbTxn; acked: Map<string, { version: number; mzxid: number }> }[] = [];
    let n = 0;
    try {
      await pipelinedLoad(running, { conns: 8, depth: 32, perConn: 400 }, (conn, r) => {
        expect(r.err).toBe(Err.OK);
        acked.set(`/k${conn}`, setStat(r));
        if (++n % 397 === 0) cuts.push({ txn: db.useReadTransaction(), acked: new Map(acked) });
      });
      expect(cuts.length).toBeGreaterThanOrEqual(8);
      let checked = 0;
      for (const c of cuts) {
        // Rebuild a data dir holding only that committed state, and recover from it.
        const root = tempDir();
        const copy = TxnLog.open(path.join(root, 'corral-log'), { forceSync: false });
        const puts: Promise<void>[] = [];
        for (const { key, value } of db.getRange({ transaction: c.txn })) puts.push(copy.putRaw(key, Buffer.from(value)));
        await Promise.all(puts);
        await copy.close();
        const s = await Storage.open({ dataDir: root, forceSync: true, log: () => undefined });
        try {
          const r = await s.recover();
          for (const [p, a] of c.acked) {
            const node = r.tree.nodes.get(p);
            expect(node, `${p} after a cut`).toBeDefined();
            const st = node!.stat();
            // The acknowledged write, or a later one committed before the cut.
            expect(st.version).toBeGreaterThanOrEqual(a.version);
            expect(st.mzxid).toBeGreaterThanOrEqual(a.mzxid);
            checked++;
          }
        } finally {
          await s.close();
        }
      }
      console.log(`durability: ${cuts.length} power cuts at reply arrival, ${checked} acknowledged key versions recovered from them`);
    } finally {
      for (const c of cuts) c.txn.done();
    }
  }, 60_000);
});
