// Linearizability of a real 3-server ensemble under faults. Nine clients, three first
// connected to each server, run blind writes, compare-and-sets and sync+reads on a few
// znodes while the test kills and restarts the leader (or cuts members off the network and
// heals them). Every operation is recorded with its invocation and completion times, and the
// history is handed to the Wing & Gong / Lowe checker in test/helpers/linearizability.ts:
// some single order of the operations, each placed inside its own interval, must explain
// every result. See native-notes/linearizability.md.
//
// What is recorded, and why:
// - setData(path, value, -1) is a `write`; setData(path, value, v) with the version this client
//   last saw is a `cas`, for which BADVERSION is a valid (checked) outcome.
// - A read is sync(path) followed by getData(path) on the same client: ZooKeeper promises
//   linearizable reads only after a sync (a plain read on a follower may be stale), so only
//   these go to the checker, invoked when the sync was issued.
// - An operation that fails with connection loss, a moved or expired session, or anything
//   else unexpected has an unknown outcome (complete = null): it may or may not have taken
//   effect. Writes with an unknown outcome stay in the history; such reads are dropped.
// - Values are unique per write (`c<client>-<n>`), so a read names the write it saw.
// - After the load, one fresh client per server does a final sync+read of every key: all
//   servers must agree with the history (no write acknowledged and then lost).

import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { CorralClient, Err, KeeperError } from '../src/client/client.js';
import { tcpTransport } from '../src/client/tcp-transport.js';
import { Rng } from '../src/zab/sim.js';
import { Ensemble, retry as retryFor, sleep } from './helpers/ensemble.js';
import { checkLinearizable, type HistoryEvent, type RegisterState } from './helpers/linearizability.js';

const SESSION_TIMEOUT = 8000;
// Six clients mix writes, compare-and-sets and reads, two first connected to each server; three
// more (one per server) only read, so some client keeps asking each server for sync+reads right
// up to the moment it stops serving (a member cut off from the quorum must not answer stale).
const MIXED = 6;
const READERS = 3;
const CLIENTS = MIXED + READERS;
const KEYS = ['/lin-a', '/lin-b', '/lin-c'];
const dec = new TextDecoder();

let ens: Ensemble | undefined;
const open: CorralClient[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => {})));
  await ens?.stop();
  ens = undefined;
});

async function connect(connectString: string): Promise<CorralClient> {
  const c = await CorralClient.connect(connectString, { transport: tcpTransport(), sessionTimeout: SESSION_TIMEOUT });
  open.push(c);
  return c;
}

/** Waits up to 20 s: the ensemble may be electing. */
const retry = <T>(f: () => Promise<T>, ms = 20000): Promise<T> => retryFor(f, ms);


interface FaultWindow {
  name: string;
  /** When the fault was injected and when every server was serving again (performance.now()). */
  start: number;
  end: number;
}

interface Stats {
  writes: number;
  cas: number;
  casFailed: number;
  reads: number;
  unknown: number;
  droppedReads: number;
  /** Error codes that are neither success, BADVERSION on a cas, nor a connection problem. */
  unexpected: Map<string, number>;
  expired: number;
}

/** Codes that leave an operation's outcome unknown. */
const UNKNOWN = new Set<number>([Err.CONNECTIONLOSS, Err.SESSIONMOVED, Err.OPERATIONTIMEOUT, Err.SESSIONEXPIRED]);

/**
 * The load: CLIENTS clients, client i first connected to server (i mod 3) + 1 (the others
 * follow in its connect string, for failover), each with one operation outstanding at a time;
 * clients MIXED.. only read.
 */
class Load {
  readonly history: HistoryEvent[] = [];
  readonly stats: Stats = { writes: 0, cas: 0, casFailed: 0, reads: 0, unknown: 0, droppedReads: 0, unexpected: new Map(), expired: 0 };
  private stopped = false;
  /** Writing clients wait while set (readers go on). */
  writersPaused = false;
  private loops: Promise<void>[] = [];
  readonly clients: CorralClient[] = [];
  readonly firstServer: string[] = [];

  constructor(
    private readonly ens: Ensemble,
    private readonly seed: number,
    /** Servers the writing clients may use (default all); readers use every server. */
    private readonly writersOn?: number[],
  ) {}

  connectStringFor(i: number): string {
    const ids = i < MIXED && this.writersOn !== undefined ? this.writersOn : this.ens.members.map((m) => m.id);
    const first = i % ids.length;
    return this.ens.connectString([...ids.slice(first), ...ids.slice(0, first)]);
  }

  async start(): Promise<void> {
    for (let i = 0; i < CLIENTS; i++) {
      const c = await retry(() => connect(this.connectStringFor(i)));
      this.clients.push(c);
      this.firstServer.push(c.server ?? '?');
    }
    this.loops = this.clients.map((_, i) => this.run(i));
  }

  /** Stops issuing operations; waits (bounded) for the outstanding ones, then closes the clients. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.race([Promise.all(this.loops), sleep(SESSION_TIMEOUT)]);
    await Promise.all(this.clients.map((c) => c.close().catch(() => {})));
    await Promise.all(this.loops);
  }

  private note(e: unknown): number | undefined {
    const code = e instanceof KeeperError ? e.code : undefined;
    if (code === undefined || !UNKNOWN.has(code)) {
      const k = code === undefined ? String(e) : `code ${code}`;
      this.stats.unexpected.set(k, (this.stats.unexpected.get(k) ?? 0) + 1);
    }
    if (code === Err.SESSIONEXPIRED) this.stats.expired++;
    return code;
  }

  /** A client whose session is gone gets a new one (same connect string). */
  private async revive(i: number): Promise<void> {
    const c = this.clients[i]!;
    if (c.state !== 'expired' && c.state !== 'closed' && c.state !== 'authFailed') return;
    if (this.stopped) return;
    this.clients[i] = await retry(() => connect(this.connectStringFor(i)));
  }

  private async run(i: number): Promise<void> {
    const prng = new Rng(this.seed * 31 + i);
    const rng = () => prng.next();
    const known = new Map<string, number>(); // key -> the last version this client saw
    for (let n = 0; !this.stopped; n++) {
      const key = KEYS[Math.floor(rng() * KEYS.length)]!;
      const r = rng();
      const value = `c${i}-${n}`;
      const c = this.clients[i]!;
      const mixed = i < MIXED;
      if (mixed && this.writersPaused) {
        await sleep(5);
        continue;
      }
      if (mixed && (r < 0.3 || (r < 0.6 && !known.has(key)))) {
        // Blind write.
        const ev: HistoryEvent = { key, client: i, op: { kind: 'write', value }, invoke: performance.now(), complete: null };
        this.history.push(ev);
        try {
          const stat = await c.setData(key, value, -1);
          ev.complete = performance.now();
          ev.result = { ok: true, version: stat.version };
          known.set(key, stat.version);
          this.stats.writes++;
        } catch (e) {
          this.note(e);
          this.stats.unknown++;
          known.delete(key);
          await sleep(10);
        }
      } else if (mixed && r < 0.6) {
        // Compare-and-set against the version this client last saw.
        const expectVersion = known.get(key)!;
        const ev: HistoryEvent = { key, client: i, op: { kind: 'cas', expectVersion, value }, invoke: performance.now(), complete: null };
        this.history.push(ev);
        try {
          const stat = await c.setData(key, value, expectVersion);
          ev.complete = performance.now();
          ev.result = { ok: true, version: stat.version };
          known.set(key, stat.version);
          this.stats.cas++;
        } catch (e) {
          if (e instanceof KeeperError && e.code === Err.BADVERSION) {
            ev.complete = performance.now();
            ev.result = { ok: false, err: 'BADVERSION' };
            this.stats.casFailed++;
          } else {
            this.note(e);
            this.stats.unknown++;
            await sleep(10);
          }
          known.delete(key);
        }
      } else {
        // sync + getData: a linearizable read, invoked when the sync was.
        const invoke = performance.now();
        try {
          await c.sync(key);
          const got = await c.getData(key);
          const complete = performance.now();
          const v = dec.decode(got.data);
          this.history.push({ key, client: i, op: { kind: 'read' }, invoke, complete, result: { ok: true, value: v, version: got.stat.version } });
          known.set(key, got.stat.version);
          this.stats.reads++;
        } catch (e) {
          this.note(e);
          this.stats.droppedReads++;
          await sleep(10);
        }
      }
      if (c.state === 'expired') await this.revive(i);
      // Readers pace themselves, or they crowd the writers out of the history.
      if (!mixed) await sleep(5);
    }
  }
}

/** One sync+read of every key through each server alone, recorded as reads of clients 100+id. */
async function finalReads(e: Ensemble, history: HistoryEvent[]): Promise<void> {
  for (const m of e.members) {
    const c = await retry(() => connect(e.connectString([m.id])));
    for (const key of KEYS) {
      await retry(async () => {
        const invoke = performance.now();
        await c.sync(key);
        const got = await c.getData(key);
        history.push({
          key, client: 100 + m.id, op: { kind: 'read' }, invoke, complete: performance.now(),
          result: { ok: true, value: dec.decode(got.data), version: got.stat.version },
        });
      });
    }
    await c.close();
  }
}

/** The current leader, waiting through an election if there is none right now. */
async function currentLeader(e: Ensemble): Promise<number> {
  return retry(async () => {
    const l = await e.leader();
    if (l === undefined) throw new Error('no leader');
    return l;
  });
}

/** Waits until `ids` serve under one leader that is not `not` (retrying through elections). */
async function waitLeaderAmong(e: Ensemble, ids: number[], not: number): Promise<number> {
  return retry(async () => {
    const l = await e.waitServing(ids, 20000);
    if (l === not) throw new Error(`server ${not} still leads`);
    return l;
  }, 30000);
}

/**
 * Runs the load around `faults` (which injects faults and returns their windows), checks the
 * history and the sanity conditions that make a pass mean something.
 */
async function runScenario(
  label: string,
  e: Ensemble,
  faults: (load: Load) => Promise<FaultWindow[]>,
  writersOn?: number[],
): Promise<void> {
  const seed = Number(process.env.LIN_SEED ?? Math.floor(Math.random() * 2 ** 31));
  await e.waitServing(undefined, 20000);
  const setup = await retry(() => connect(e.connectString()));
  for (const key of KEYS) await retry(() => setup.create(key, '').catch((err) => {
    if (err instanceof KeeperError && err.code === Err.NODEEXISTS) return key;
    throw err;
  }));
  await setup.close();
  const initial: RegisterState = { value: '', version: 0 };

  const load = new Load(e, seed, writersOn);
  await load.start();
  const t0 = performance.now();
  let windows: FaultWindow[] = [];
  try {
    await sleep(1500); // some history before the first fault
    windows = await faults(load);
    await sleep(1500); // and some after the last
  } finally {
    await load.stop();
  }
  const loadMs = performance.now() - t0;
  await e.waitServing(undefined, 20000);
  const history = load.history.map((ev) => ({ ...ev }));
  await finalReads(e, history);

  // Every server had clients of its own.
  expect(new Set(load.firstServer).size).toBe(e.members.length);

  const completed = history.filter((ev) => ev.complete !== null);
  const checkStart = performance.now();
  const res = checkLinearizable(history, initial);
  const checkMs = performance.now() - checkStart;

  const s = load.stats;
  const per = KEYS.map((k) => `${k}=${history.filter((ev) => ev.key === k).length}`).join(' ');
  const fmt = (t: number) => `+${((t - t0) / 1000).toFixed(2)}s`;
  const summary =
    `[${label}] seed=${seed} load ${(loadMs / 1000).toFixed(1)}s; ${history.length} ops (${completed.length} completed: ` +
    `${s.writes} writes, ${s.cas} cas ok, ${s.casFailed} cas BADVERSION, ${s.reads + e.members.length * KEYS.length} sync+reads; ` +
    `${s.unknown} writes/cas with unknown outcome, ${s.droppedReads} reads dropped, ${s.expired} sessions expired); ` +
    `per key: ${per}; check ${checkMs.toFixed(0)}ms, ${res.statesExplored} states; ` +
    `faults: ${windows.map((w) => `${w.name} ${fmt(w.start)}..${fmt(w.end)}`).join(', ')}` +
    (s.unexpected.size > 0 ? `; unexpected errors: ${[...s.unexpected].map(([k, v]) => `${k} x${v}`).join(', ')}` : '');
  console.log(summary);

  if (!res.ok) {
    // Keep the whole history for a closer look (the explanation shows only the stuck window).
    const file = path.join(tmpdir(), `corral-lin-${label.replace(/\W+/g, '-')}-${seed}-${Date.now()}.json`);
    writeFileSync(file, JSON.stringify({ initial, windows, history }, null, 1));
    console.log(`history written to ${file}`);
  }
  if (res.inconclusive) {
    expect.fail(`linearizability check inconclusive (${res.explanation} on key ${res.key}, ${res.statesExplored} states): shrink the history\n${summary}`);
  }
  if (!res.ok) {
    expect.fail(`history is not linearizable\n${summary}\n${res.explanation}\n\nserver logs:\n${e.logs()}`);
  }
  // A pass must mean something: enough operations, and each fault with work on both sides.
  expect(completed.length).toBeGreaterThanOrEqual(300);
  expect(s.writes + s.cas).toBeGreaterThanOrEqual(50);
  expect(s.reads).toBeGreaterThanOrEqual(50);
  expect(windows.length).toBeGreaterThanOrEqual(1);
  for (const w of windows) {
    const before = completed.filter((ev) => ev.complete! < w.start && ev.client < 100).length;
    const after = completed.filter((ev) => ev.invoke > w.end && ev.client < 100).length;
    expect(before, `ops completed before ${w.name}`).toBeGreaterThanOrEqual(20);
    expect(after, `ops invoked after ${w.name} was over`).toBeGreaterThanOrEqual(20);
  }
}

describe('linearizability of a 3-server ensemble under faults', () => {
  it('writes, compare-and-sets and sync+reads stay linearizable across leader kills and restarts', async () => {
    ens = await Ensemble.start({ participants: 3 });
    const e = ens;
    await runScenario('leader kill', e, async () => {
      const windows: FaultWindow[] = [];
      for (let round = 1; round <= 2; round++) {
        const leader = await currentLeader(e);
        const rest = e.members.map((m) => m.id).filter((id) => id !== leader);
        const start = performance.now();
        await e.kill(leader, 'SIGKILL');
        await waitLeaderAmong(e, rest, leader);
        await sleep(600); // the survivors serve alone for a while
        await e.spawn(leader);
        await e.waitServing(undefined, 20000);
        windows.push({ name: `kill ${leader} (round ${round})`, start, end: performance.now() });
        await sleep(500);
      }
      return windows;
    });
  }, 90_000);

  it('writes, compare-and-sets and sync+reads stay linearizable across partitions of the leader and of a follower', async () => {
    ens = await Ensemble.start({ participants: 3, proxied: true });
    const e = ens;
    await runScenario('partition', e, async () => {
      const windows: FaultWindow[] = [];
      // The leader, cut off: the majority elects another; healed, it rejoins as a follower.
      const leader = await currentLeader(e);
      const rest = e.members.map((m) => m.id).filter((id) => id !== leader);
      let start = performance.now();
      e.partition(leader);
      await waitLeaderAmong(e, rest, leader);
      await retry(async () => {
        if ((await e.state(leader)) !== 'not serving') throw new Error(`partitioned server ${leader} still serving`);
      });
      await sleep(1000);
      e.heal(leader);
      await e.waitServing(undefined, 20000);
      windows.push({ name: `partition leader ${leader}`, start, end: performance.now() });
      await sleep(800);
      // A follower, cut off: the other two go on; healed, it catches up.
      const now = await currentLeader(e);
      const follower = e.members.map((m) => m.id).find((id) => id !== now)!;
      start = performance.now();
      e.partition(follower);
      await retry(async () => {
        if ((await e.state(follower)) !== 'not serving') throw new Error(`partitioned server ${follower} still serving`);
      });
      await sleep(1000);
      e.heal(follower);
      await e.waitServing(undefined, 20000);
      windows.push({ name: `partition follower ${follower}`, start, end: performance.now() });
      return windows;
    });
  }, 90_000);

  it('sync+reads stay linearizable when a silently partitioned leader serves on while a new one commits', async () => {
    // Server 3 waits 25 ticks (5 s) before it gives up on a silent quorum; the others, 5
    // ticks. Cut off without a closed socket, it believes it leads for seconds after the
    // other two elected a new leader and committed writes: only a quorum check on sync
    // keeps its sync+reads from returning what they overwrote.
    ens = await Ensemble.start({ participants: 3, proxied: true, memberExtra: { 3: 'syncLimit=25' } });
    const e = ens;
    for (let leader = await currentLeader(e); leader !== 3; leader = await currentLeader(e)) {
      const rest = e.members.map((m) => m.id).filter((id) => id !== leader);
      await e.kill(leader, 'SIGKILL');
      await waitLeaderAmong(e, rest, leader);
      await e.spawn(leader);
      await e.waitServing(undefined, 20000);
    }
    await runScenario('silent partition', e, async (load) => {
      // Let every write in flight commit first: a proposal left pending on server 3 would
      // hold its syncs back (a sync waits for the leader's last proposal to commit).
      load.writersPaused = true;
      await sleep(300);
      const start = performance.now();
      e.partition(3, { silent: true });
      load.writersPaused = false;
      const next = await waitLeaderAmong(e, [1, 2], 3);
      // The overlap: 3 still says it leads while `next` serves writes.
      const overlap = (await e.state(3)) === 'leader';
      await sleep(1500);
      await retry(async () => {
        if ((await e.state(3)) === 'leader') throw new Error('3 still leads');
      });
      e.heal(3);
      await e.waitServing(undefined, 20000);
      expect(overlap, `server 3 should still lead after ${next} was elected`).toBe(true);
      return [{ name: 'silent partition of leader 3', start, end: performance.now() }];
      // Writers stay off server 3: a write pending there would hold its syncs back anyway
      // (a sync waits for the leader's last proposal to commit), hiding what is tested here.
    }, [1, 2]);
  }, 90_000);
});
