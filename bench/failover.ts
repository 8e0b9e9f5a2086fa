// The failover workload: Corral ensembles of N members (N in --failover-sizes) under a
// steady setData load on every member; the leader (found with `srvr`) is SIGKILLed and
// two times are taken from the kill:
//   (a) kill -> the first write acknowledged after it: write probes (one raw session per
//       surviving member, a setData every 5 ms, pipelined, reconnecting when the member
//       drops it) count only writes *sent after the kill*, so the first one acknowledged
//       is the first write committed under the new leader;
//   (b) kill -> a surviving member reports `Mode: leader` in `srvr` (polled every 10 ms
//       on each of them).
// The killed member is restarted and waits to rejoin between rounds, and each round kills
// whoever leads then. Write errors of the load while the leader is gone are expected:
// they are counted apart ("during failover") and do not fail the run.

import { RawClient } from '../src/client/raw.js';
import { errName, nowMs } from './loadgen/session.js';
import type { Address, KeySpace } from './loadgen/types.js';
import { fmtRate } from './progress.js';
import { sumCounts, type StepResult, type WorkloadRun } from './results.js';
import { type EnsembleTarget, fourLetter, startCorralEnsemble, type Target } from './target.js';
import { type Ctx, ensureNode, fmtMs, guard, metric, newRun, step, withSessions } from './workloads.js';

const PROBE_INTERVAL_MS = 5;
const LEADER_POLL_MS = 10;
/** How long after the kill a round gives up waiting for a new leader / a write. */
const FAILOVER_TIMEOUT_MS = 30_000;
const NODEEXISTS = -110;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface FailoverRound {
  round: number;
  /** Member killed (the leader at that moment) and the one that leads next. */
  killed: number;
  newLeader: number | null;
  /** (a) kill -> first write sent after the kill and acknowledged (ms), and by which member. */
  firstWriteMs: number | null;
  firstWriteVia: number | null;
  /** Per surviving member: kill -> its first acknowledged write sent after the kill. */
  firstWriteByMember: Record<string, number | null>;
  /** (b) kill -> a surviving member answers srvr with Mode: leader (ms). */
  newLeaderMs: number | null;
  /** kill -> every surviving member serves (leader + followers). */
  allServingMs: number | null;
  /** Restart of the killed member -> it serves again (follower). */
  rejoinMs: number | null;
  /** The steady load while the leader was killed: its failed writes by kind, and lost sessions. */
  duringErrors: Record<string, number>;
  duringSessionsLost: number;
  /** Probe writes sent after the kill that failed (error reply or connection lost), by kind. */
  probeErrors: Record<string, number>;
  probeReconnects: number;
  before: { throughput: number; p99: number; errors: number } | null;
  after: { throughput: number; p99: number; errors: number } | null;
  notes: string[];
}

export interface FailoverSize {
  members: number;
  startToServingMs: number | null;
  rounds: FailoverRound[];
  /** Median, min, max over the rounds that got a figure. */
  firstWrite: Stats | null;
  newLeader: Stats | null;
  rejoin: Stats | null;
  errorsDuringFailover: number;
  errorsOutsideFailover: number;
  /** WARN / ERROR lines the members logged (failover makes some). */
  logWarn: number;
  logError: number;
  failed?: string;
}

export interface Stats {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function stats(xs: (number | null)[]): Stats | null {
  const s = xs.filter((x): x is number => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return null;
  const m = s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  const r = (x: number) => Math.round(x * 10) / 10;
  return { median: r(m), min: r(s[0]), max: r(s[s.length - 1]), n: s.length };
}

/**
 * One raw session on one member doing a setData every PROBE_INTERVAL_MS (pipelined: it
 * does not wait for the previous reply), reconnecting to the same member whenever the
 * connection is lost or refused. Every write is recorded with its send and reply time.
 */
class WriteProbe {
  /** Triples: sentAt, repliedAt, err (err 1 = connection lost before the reply). */
  private readonly log: number[] = [];
  private client: RawClient | null = null;
  private stopping = false;
  private readonly loop: Promise<void>;
  reconnects = 0;
  connectedOnce: Promise<void>;
  private onConnected!: () => void;
  private outstanding = 0;

  constructor(
    readonly member: number,
    private readonly addr: Address,
    private readonly path: string,
  ) {
    this.connectedOnce = new Promise((r) => (this.onConnected = r));
    this.loop = this.run();
  }

  private async connect(): Promise<RawClient | null> {
    let c: RawClient | null = null;
    let timer: NodeJS.Timeout | undefined;
    try {
      c = await RawClient.open(this.addr.host, this.addr.port);
      const timeout = new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error('handshake timeout')), 2000)));
      await Promise.race([c.handshake({ timeout: 10_000 }), timeout]);
      return c;
    } catch {
      c?.close();
      return null;
    } finally {
      clearTimeout(timer);
    }
  }

  private async run(): Promise<void> {
    const value = Buffer.from('failover-probe');
    while (!this.stopping) {
      if (this.client === null || this.client.isClosed) {
        if (this.client !== null) this.reconnects++;
        this.client = null;
        const c = await this.connect();
        if (c === null) {
          await sleep(20);
          continue;
        }
        if (this.stopping) {
          c.close();
          break;
        }
        this.client = c;
        this.onConnected();
      }
      if (this.outstanding < 2000) {
        const sentAt = nowMs();
        const i = this.log.length;
        this.log.push(sentAt, NaN, NaN);
        this.outstanding++;
        this.client.setData(this.path, value).then(
          (r) => {
            this.outstanding--;
            this.log[i + 1] = nowMs();
            this.log[i + 2] = r.err;
          },
          () => {
            this.outstanding--;
            this.log[i + 1] = nowMs();
            this.log[i + 2] = 1;
          },
        );
      }
      await sleep(PROBE_INTERVAL_MS);
    }
  }

  /** The first write sent after `t` that was acknowledged (err 0): its reply time, or null. */
  firstOkSentAfter(t: number): number | null {
    let best: number | null = null;
    for (let i = 0; i < this.log.length; i += 3) {
      if (this.log[i] > t && this.log[i + 2] === 0 && (best === null || this.log[i + 1] < best)) best = this.log[i + 1];
    }
    return best;
  }

  /** Writes sent after `t` that failed, by kind. */
  failuresSentAfter(t: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = 0; i < this.log.length; i += 3) {
      const err = this.log[i + 2];
      if (this.log[i] <= t || Number.isNaN(err) || err === 0) continue;
      const k = err === 1 ? 'setData:connection' : `setData:${errName(err)}`;
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
    this.client?.close();
  }
}

/** Polls srvr on `ids` every LEADER_POLL_MS until one of them says it leads: reply time and id. */
async function pollNewLeader(ens: EnsembleTarget, ids: number[], deadline: number): Promise<{ at: number; id: number } | null> {
  let found: { at: number; id: number } | null = null;
  await Promise.all(
    ids.map(async (id) => {
      while (found === null && nowMs() < deadline) {
        const srvr = await fourLetter(ens.address(id), 'srvr', 500);
        if (/^Mode: leader/m.test(srvr)) {
          found ??= { at: nowMs(), id };
          return;
        }
        await sleep(LEADER_POLL_MS);
      }
    }),
  );
  return found;
}

function brief(s: StepResult | null): { throughput: number; p99: number; errors: number } | null {
  return s === null ? null : { throughput: s.throughput, p99: s.latency.p99, errors: s.errors };
}

export async function failoverWorkload(ctx: Ctx, targets: Target[], round: number): Promise<WorkloadRun[]> {
  const runs: WorkloadRun[] = [];
  for (const t of targets) {
    const run = newRun('failover', t, round);
    runs.push(run);
    if (t.kind === 'external') {
      const msg = `failover not measured on ${t.label}: the bench only kills members of Corral ensembles it starts itself (it never kills a server it did not start)`;
      run.notes.push(msg);
      ctx.progress.log(msg);
      continue;
    }
    await guard(ctx, run, () => failoverCorral(ctx, run));
  }
  return runs;
}

async function failoverCorral(ctx: Ctx, run: WorkloadRun): Promise<void> {
  const o = ctx.opts;
  // The load generator speaks TCP here whatever --transport says (the probes do too).
  const fctx: Ctx = { ...ctx, opts: { ...o, transport: 'tcp' }, prepared: new Map() };
  const sizes: FailoverSize[] = [];
  run.extra = { rate: o.failoverRate, valueSize: o.valueSize, roundsPerSize: o.failoverRounds, sizes };
  run.phases = {};
  let outside = 0;
  for (const n of o.failoverSizes) {
    const size: FailoverSize = {
      members: n,
      startToServingMs: null,
      rounds: [],
      firstWrite: null,
      newLeader: null,
      rejoin: null,
      errorsDuringFailover: 0,
      errorsOutsideFailover: 0,
      logWarn: 0,
      logError: 0,
    };
    sizes.push(size);
    ctx.progress.log(`failover: starting a Corral ensemble of ${n} (forceSync=${o.forceSync ? 'yes' : 'no'})`);
    let ens: EnsembleTarget;
    try {
      ens = await startCorralEnsemble({ size: n, forceSync: o.forceSync, extraCfg: o.corralCfg.join('\n'), id: `corral-${n}`, label: `Corral ensemble of ${n}` });
    } catch (e) {
      size.failed = `ensemble of ${n} did not start: ${(e as Error).message}`;
      run.notes.push(size.failed);
      ctx.progress.log(size.failed);
      continue;
    }
    size.startToServingMs = Number(ens.info.startToServingMs);
    try {
      await failoverSize(fctx, run, ens, size);
    } catch (e) {
      size.failed = (e as Error).message;
      run.notes.push(`${n} members: ${size.failed}`);
      ctx.progress.log(`failover ${n} members failed: ${size.failed}`);
    } finally {
      size.logWarn = ens.logs?.warn ?? 0;
      size.logError = ens.logs?.error ?? 0;
      await ens.stop().catch((e: Error) => run.notes.push(`stopping the ensemble of ${n}: ${e.message}`));
    }
    size.firstWrite = stats(size.rounds.map((r) => r.firstWriteMs));
    size.newLeader = stats(size.rounds.map((r) => r.newLeaderMs));
    size.rejoin = stats(size.rounds.map((r) => r.rejoinMs));
    outside += size.errorsOutsideFailover;
    const p = `${n} members: `;
    run.metrics[`${p}kill → first write acked (median)`] = metric(size.firstWrite?.median, 'ms', 'lower');
    run.metrics[`${p}kill → first write acked (min)`] = metric(size.firstWrite?.min, 'ms', 'lower');
    run.metrics[`${p}kill → first write acked (max)`] = metric(size.firstWrite?.max, 'ms', 'lower');
    run.metrics[`${p}kill → new leader in srvr (median)`] = metric(size.newLeader?.median, 'ms', 'lower');
    run.metrics[`${p}kill → new leader in srvr (min)`] = metric(size.newLeader?.min, 'ms', 'lower');
    run.metrics[`${p}kill → new leader in srvr (max)`] = metric(size.newLeader?.max, 'ms', 'lower');
    run.metrics[`${p}restart → rejoined (median)`] = metric(size.rejoin?.median, 'ms', 'lower');
    run.metrics[`${p}writes failed during failover`] = metric(size.errorsDuringFailover, 'count', 'lower');
    const fw = size.firstWrite;
    const nl = size.newLeader;
    ctx.progress.log(
      `failover ${n} members, ${size.rounds.length} round(s): kill → first write ${fw ? `${fmtMs(fw.median)} ms [${fmtMs(fw.min)}–${fmtMs(fw.max)}]` : '-'}, kill → new leader ${nl ? `${fmtMs(nl.median)} ms [${fmtMs(nl.min)}–${fmtMs(nl.max)}]` : '-'}, writes failed during failover ${size.errorsDuringFailover}, outside ${size.errorsOutsideFailover}`,
    );
  }
  // Only errors outside the failover windows count as the run's errors.
  run.metrics['errors'] = metric(outside, 'count', 'lower');
  if (sizes.every((s) => s.failed !== undefined)) throw new Error('no ensemble could be measured');
}

async function failoverSize(ctx: Ctx, run: WorkloadRun, ens: EnsembleTarget, size: FailoverSize): Promise<void> {
  const o = ctx.opts;
  const n = size.members;
  const all = ens.members.map((m) => m.id);
  const base = `${ctx.root}/failover`;
  const keys: KeySpace = { kind: 'flat', prefix: `${base}/k`, count: 100, pad: 3 };
  const sessions = 2 * n;
  const depth = 16;
  const loadMs = o.quick ? 500 : 1000;
  const windowMs = o.quick ? 2500 : 4000;
  const killAfterMs = 300;
  await ensureNode(ens, ctx.root);
  await ensureNode(ens, base);
  for (const id of all) await ensureNode(ens, `${base}/probe-${id}`);
  const setup = await withSessions(ctx, ens, Math.min(sessions, 8), run, () =>
    step(ctx, ens, { label: `failover ${n} setup`, mode: 'sequence', keys, valueSize: o.valueSize, depth: 16, sessions: Math.min(sessions, 8), sequence: { op: 'create', tolerate: [NODEEXISTS] } }),
  );
  if (setup.errors > 0) throw new Error(`setup on the ensemble of ${n} failed: ${JSON.stringify(setup.errorsByType)}`);
  const load = (label: string, durationMs: number) => ({ label, mode: 'open' as const, mix: { set: 1 }, keys, valueSize: o.valueSize, depth, sessions, rate: o.failoverRate, durationMs });
  for (let r = 1; r <= o.failoverRounds; r++) {
    const rec: FailoverRound = {
      round: r,
      killed: 0,
      newLeader: null,
      firstWriteMs: null,
      firstWriteVia: null,
      firstWriteByMember: {},
      newLeaderMs: null,
      allServingMs: null,
      rejoinMs: null,
      duringErrors: {},
      duringSessionsLost: 0,
      probeErrors: {},
      probeReconnects: 0,
      before: null,
      after: null,
      notes: [],
    };
    size.rounds.push(rec);
    const leader = await ens.waitServing(all, 60_000);
    rec.killed = leader;
    const survivors = all.filter((id) => id !== leader);
    const tag = `failover ${n} r${r}`;
    // Steady load on every member, before the kill.
    const before = await withSessions(ctx, ens, sessions, run, () => step(ctx, ens, load(`${tag} before (${fmtRate(o.failoverRate)} setData/s)`, loadMs)));
    run.phases![`${n} members r${r} before`] = before;
    rec.before = brief(before);
    size.errorsOutsideFailover += before.errors + sumCounts(before.warmupErrors);
    // Probes on the members that will survive, then the same load with the kill in it.
    const probes = survivors.map((id) => new WriteProbe(id, ens.address(id), `${base}/probe-${id}`));
    let killAt = 0;
    try {
      await Promise.race([Promise.all(probes.map((p) => p.connectedOnce)), sleep(5000)]);
      const during = await withSessions(ctx, ens, sessions, run, async () => {
        const phase = step(ctx, ens, load(`${tag} SIGKILL of leader s${leader} (${fmtRate(o.failoverRate)} setData/s)`, windowMs));
        await sleep(100 + killAfterMs);
        const killing = ens.killMember(leader, 'SIGKILL');
        killAt = nowMs();
        const deadline = killAt + FAILOVER_TIMEOUT_MS;
        const leaderP = pollNewLeader(ens, survivors, deadline);
        const writeP = (async () => {
          for (;;) {
            const firsts = probes.map((p) => p.firstOkSentAfter(killAt));
            if (firsts.some((x) => x !== null) || nowMs() > deadline) return;
            await sleep(2);
          }
        })();
        killAt = await killing; // the time just before the signal
        const [nl] = await Promise.all([leaderP, writeP]);
        if (nl !== null) {
          rec.newLeader = nl.id;
          rec.newLeaderMs = Math.round((nl.at - killAt) * 10) / 10;
        } else rec.notes.push(`no surviving member reported Mode: leader within ${FAILOVER_TIMEOUT_MS} ms`);
        try {
          await ens.waitServing(survivors, FAILOVER_TIMEOUT_MS);
          rec.allServingMs = Math.round((nowMs() - killAt) * 10) / 10;
        } catch (e) {
          rec.notes.push(`survivors did not all serve: ${(e as Error).message.split('\n')[0]}`);
        }
        return phase;
      });
      run.phases![`${n} members r${r} failover`] = during;
      rec.duringErrors = { ...during.errorsByType };
      rec.duringSessionsLost = during.loadgen.sessionsLost;
      size.errorsDuringFailover += during.errors;
      // Give replies to writes sent just before the probes stop a moment to arrive.
      await sleep(50);
    } finally {
      await Promise.all(probes.map((p) => p.stop()));
    }
    let firstAt: number | null = null;
    for (const p of probes) {
      const f = p.firstOkSentAfter(killAt);
      rec.firstWriteByMember[`s${p.member}`] = f === null ? null : Math.round((f - killAt) * 10) / 10;
      if (f !== null && (firstAt === null || f < firstAt)) {
        firstAt = f;
        rec.firstWriteVia = p.member;
      }
      for (const [k, v] of Object.entries(p.failuresSentAfter(killAt))) rec.probeErrors[k] = (rec.probeErrors[k] ?? 0) + v;
      rec.probeReconnects += p.reconnects;
    }
    if (firstAt !== null) rec.firstWriteMs = Math.round((firstAt - killAt) * 10) / 10;
    else rec.notes.push(`no write sent after the kill was acknowledged within ${FAILOVER_TIMEOUT_MS} ms`);
    // The same load on the survivors, after the failover.
    const view: Target = { ...ens, addresses: survivors.map((id) => ens.address(id)) };
    const after = await withSessions(ctx, view, sessions, run, () => step(ctx, view, load(`${tag} after, ${survivors.length} members`, loadMs)));
    run.phases![`${n} members r${r} after`] = after;
    rec.after = brief(after);
    size.errorsOutsideFailover += after.errors + sumCounts(after.warmupErrors);
    // The killed member comes back and rejoins before the next round.
    const t0 = nowMs();
    await ens.startMember(leader);
    await ens.waitServing(all, 60_000);
    rec.rejoinMs = Math.round(nowMs() - t0);
    ctx.progress.log(
      `${tag}: killed leader s${leader}; first write acked after ${rec.firstWriteMs ?? '-'} ms (via s${rec.firstWriteVia ?? '-'}), new leader s${rec.newLeader ?? '-'} in srvr after ${rec.newLeaderMs ?? '-'} ms, all serving after ${rec.allServingMs ?? '-'} ms; load errors during failover ${sumCounts(rec.duringErrors)} ${JSON.stringify(rec.duringErrors)}; s${leader} rejoined in ${rec.rejoinMs} ms`,
    );
  }
}
