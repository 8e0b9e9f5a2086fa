// The workloads. Each one runs a round against every target in turn (A then B), so in
// --compare runs the two servers alternate A B A B ... and share whatever noise the
// machine has at that moment. Everything a workload creates lives under one root znode
// per run (/corral-bench-<id>), and is removed again on servers the bench does not own.

import { RawClient } from '../src/client/raw.js';
import { Histogram } from './loadgen/histogram.js';
import type { LoadGen } from './loadgen/pool.js';
import { shares } from './loadgen/pool.js';
import { errName, nowMs } from './loadgen/session.js';
import type { Address, ConnectResult, KeySpace, OpMix, PhaseResult, PhaseSpec, StormResult, WatchArmResult, WatchCollectResult, WatchFireResult } from './loadgen/types.js';
import type { Options, WorkloadName } from './options.js';
import { fmtRate, type ProgressDisplay } from './progress.js';
import { knee, median, mergeCounts, mergePhase, type Metric, round3, skippedStep, stats, type StepResult, sumCounts, type WorkloadRun } from './results.js';
import { failoverWorkload } from './failover.js';
import { allProcessesCpu, cpuBetween, listenOverflows, mntr, type RestartInfo, sumSamples, systemCpu, type Target, targetPids, targetProcSample, targetProcSamples } from './target.js';
import { type StartTiming, timeCorralStart, ZkrefStarter } from './startup.js';

export interface Ctx {
  opts: Options;
  lg: LoadGen;
  progress: ProgressDisplay;
  /** Root znode of this run. */
  root: string;
  /** What has been set up on each target (by target id). */
  prepared: Map<string, Set<string>>;
}

/** Shared between the rounds of one workload (e.g. the open-loop rates, fixed by round 1). */
export type Plan = { rates?: number[] };

const NODEEXISTS = -110;
const NONODE = -101;
const SESSION_TIMEOUT_MS = 30_000;
const FANOUT = 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function newRun(workload: string, target: Target, round: number): WorkloadRun {
  return { workload, target: target.id, round, startedAt: new Date().toISOString(), metrics: {}, connectErrors: {}, notes: [] };
}

export function metric(value: number | null | undefined, unit: string, better: 'higher' | 'lower'): Metric {
  return { value: value === undefined || value === null || !Number.isFinite(value) ? null : round3(value), unit, better };
}

export function fmtMs(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function stepLine(s: StepResult): string {
  const l = s.latency;
  const g = s.loadgen;
  // Open loop: how late the generator sent (p99), and write to reply read (p99): the generator's share vs the rest.
  const split = g.sendLag !== undefined && g.wire !== undefined ? `  (send lag p99 ${fmtMs(g.sendLag.p99)}, wire p99 ${fmtMs(g.wire.p99)})` : '';
  return `${fmtRate(s.throughput)} ops/s  p50 ${fmtMs(l.p50)}  p99 ${fmtMs(l.p99)}  p99.9 ${fmtMs(l.p999)}  max ${fmtMs(l.max)} ms${split}  errors ${s.errors}`;
}

// --- plumbing ------------------------------------------------------------------------

/**
 * Runs one target's part of a workload; a failure (server gone, setup refused) is
 * recorded on that run and does not take the other target's figures down with it.
 */
export async function guard(ctx: Ctx, run: WorkloadRun, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    const msg = (e as Error).message;
    run.failed = run.failed === undefined ? msg : `${run.failed}; ${msg}`;
    run.notes.push(`failed: ${msg}`);
    ctx.progress.log(`${run.target} ${run.workload} r${run.round} failed: ${msg}`);
  }
}

/** Creates a znode (and nothing else) with a short-lived raw session; NODEEXISTS is fine. */
export async function ensureNode(t: Target, path: string, data: Buffer<ArrayBuffer> = Buffer.alloc(0)): Promise<void> {
  const a = t.addresses[0];
  const c = await RawClient.connect(a.host, a.port);
  try {
    const r = await c.create(path, data);
    if (r.err !== 0 && r.err !== NODEEXISTS) throw new Error(`create ${path} on ${t.label}: ${errName(r.err)}`);
  } finally {
    c.close();
  }
}

async function deleteNodes(t: Target, paths: string[]): Promise<string[]> {
  const a = t.addresses[0];
  const problems: string[] = [];
  const c = await RawClient.connect(a.host, a.port);
  try {
    for (const p of paths) {
      const r = await c.delete(p);
      if (r.err !== 0 && r.err !== NONODE) problems.push(`delete ${p}: ${errName(r.err)}`);
    }
  } finally {
    c.close();
  }
  return problems;
}

/** Where the load generator's sessions go: the TCP addresses, or the WebSocket endpoint (--transport ws). */
function loadAddrs(ctx: Ctx, t: Target): Address[] {
  if (ctx.opts.transport !== 'ws') return t.addresses;
  if (t.wsAddresses !== undefined) return t.wsAddresses;
  if (ctx.opts.wsPort !== undefined) return t.addresses.map((a) => ({ host: a.host, port: ctx.opts.wsPort!, transport: 'ws' as const }));
  throw new Error(`${t.label} has no WebSocket endpoint (--transport ws needs --ws-port for a server the bench did not start)`);
}

export async function withSessions<T>(ctx: Ctx, t: Target, count: number, run: WorkloadRun | null, fn: () => Promise<T>): Promise<T> {
  const n = ctx.lg.size;
  const per = shares(count, n);
  let base = 0;
  const bases = per.map((c) => {
    const b = base;
    base += c;
    return b;
  });
  const res = await ctx.lg.all<ConnectResult>('connect', (i) => ({
    targets: loadAddrs(ctx, t),
    count: per[i],
    baseIndex: bases[i],
    sessionTimeoutMs: SESSION_TIMEOUT_MS,
    connectTimeoutMs: 15_000,
  }));
  const connected = res.reduce((a, r) => a + r.connected, 0);
  const errors: Record<string, number> = {};
  for (const r of res) mergeCounts(errors, r.errors);
  if (run !== null) {
    mergeCounts(run.connectErrors, errors);
    if (connected < count) run.notes.push(`${t.label}: only ${connected} of ${count} sessions connected (${JSON.stringify(errors)})`);
  }
  if (connected === 0) {
    await ctx.lg.all('disconnect', () => ({}));
    throw new Error(`no session could connect to ${t.label}: ${JSON.stringify(errors)}`);
  }
  try {
    return await fn();
  } finally {
    await ctx.lg.all('disconnect', () => ({}));
  }
}

export interface StepArgs {
  label: string;
  mode: PhaseSpec['mode'];
  mix?: OpMix;
  keys: KeySpace;
  valueSize: number;
  depth: number;
  sessions: number;
  warmupMs?: number;
  durationMs?: number;
  rate?: number;
  sequence?: { op: 'create' | 'delete' | 'set'; tolerate?: number[] };
}

/**
 * Runs one phase on every load-generator thread (aligned start), samples the server's
 * /proc CPU and memory at the edges of the measured window, and merges the answers.
 */
export async function step(ctx: Ctx, t: Target, a: StepArgs): Promise<StepResult> {
  const n = ctx.lg.size;
  const startAt = nowMs() + 100;
  const warmupMs = a.mode === 'closed' ? (a.warmupMs ?? 0) : 0;
  const durationMs = a.durationMs ?? 0;
  const windowStart = startAt + warmupMs;
  const windowEnd = windowStart + durationMs;
  const seqShares = shares(a.keys.count, n);
  let from = 0;
  const specs: PhaseSpec[] = seqShares.map((c, i) => {
    const spec: PhaseSpec = {
      mode: a.mode,
      mix: a.mix ?? {},
      keys: a.keys,
      valueSize: a.valueSize,
      depth: a.depth,
      warmupMs,
      durationMs,
      rate: (a.rate ?? 0) / n,
      startAt,
      drainMs: a.mode === 'sequence' ? 15_000 : Math.max(2000, durationMs),
      churnPrefix: `${ctx.root}/churn/e-`,
      seed: (ctx.opts.seed * 7919 + i * 104729 + Math.floor(Math.random() * 1e6)) | 0,
    };
    if (a.sequence !== undefined) spec.sequence = { op: a.sequence.op, from, to: from + c, tolerate: a.sequence.tolerate };
    from += c;
    return spec;
  });
  // /proc samples at the window's edges (the coordinator thread is idle meanwhile).
  // For an ensemble: every member's process, summed (CPU over those alive at both edges).
  type Edge = { proc: ReturnType<typeof targetProcSamples>; sys: ReturnType<typeof systemCpu>; bench: NodeJS.CpuUsage; all: Map<number, number>; at: number };
  const sample = (): Edge => ({ proc: targetProcSamples(t), sys: systemCpu(), bench: process.cpuUsage(), all: allProcessesCpu(), at: nowMs() });
  let e0: Edge | null = null;
  let e1: Edge | null = null;
  const timers: NodeJS.Timeout[] = [];
  if (a.mode === 'sequence') e0 = sample();
  else {
    timers.push(setTimeout(() => (e0 = sample()), Math.max(0, windowStart - nowMs())));
    timers.push(setTimeout(() => (e1 = sample()), Math.max(0, windowEnd - nowMs())));
  }
  ctx.progress.begin(`${t.id} ${a.label}`, a.mode === 'sequence' ? 0 : warmupMs + durationMs + 100);
  let parts: PhaseResult[];
  try {
    parts = await ctx.lg.all<PhaseResult>('phase', (i) => specs[i]);
  } finally {
    for (const x of timers) clearTimeout(x);
  }
  if (a.mode === 'sequence' || e1 === null) e1 = sample();
  if (parts.every((p) => p.openSessions === 0)) {
    ctx.progress.end('no open session');
    throw new Error(`no open session to ${t.label} for '${a.label}': the server closed every connection (is it still up?)`);
  }
  const s = mergePhase(a.label, a.mode, parts, {
    sessions: a.sessions,
    depth: a.depth,
    durationS: durationMs / 1000,
    offeredRate: a.mode === 'open' ? a.rate : undefined,
  });
  const edge0 = e0 as Edge | null;
  const edge1 = e1 as Edge;
  if (edge0 !== null) {
    const wall = (edge1.at - edge0.at) / 1000;
    const cpu = cpuBetween(edge0.proc, edge1.proc);
    const mem = sumSamples(edge1.proc);
    if (cpu !== null && mem !== null && wall > 0) {
      const ops = a.mode === 'sequence' ? s.ok : s.throughput * wall;
      s.server = {
        cpuCores: round3(cpu / wall),
        cpuUsPerOp: ops > 0 ? round3((cpu * 1e6) / ops) : null,
        rssMB: Math.round(mem.rssMB * 10) / 10,
        anonMB: Math.round(mem.anonMB * 10) / 10,
        threads: mem.threads,
        processes: edge1.proc.size,
      };
    }
    if (edge0.sys !== null && edge1.sys !== null && wall > 0) {
      const total = edge1.sys.totalS - edge0.sys.totalS;
      const idle = edge1.sys.idleS - edge0.sys.idleS;
      const bench = (edge1.bench.user + edge1.bench.system - edge0.bench.user - edge0.bench.system) / 1e6;
      const busy = total > 0 ? 1 - idle / total : 0;
      // CPU of every other process meanwhile (not the server, not the bench): the noise
      // of a shared machine. Interrupt time (loopback networking) is reported apart.
      let other = 0;
      const own = new Set([process.pid, ...edge0.proc.keys(), ...edge1.proc.keys(), ...targetPids(t)]);
      for (const [pid, c1] of edge1.all) {
        if (own.has(pid)) continue;
        other += c1 - (edge0.all.get(pid) ?? c1);
      }
      s.machine = {
        busy: round3(busy),
        benchCpuCores: round3(bench / wall),
        otherCores: round3(other / wall),
        irqCores: round3((edge1.sys.irqS - edge0.sys.irqS) / wall),
      };
    }
  }
  const cpu = s.server ? `  server ${s.server.cpuCores.toFixed(2)} cores` : '';
  const noise = s.machine?.otherCores != null && s.machine.otherCores > 0.25 ? `  (other processes ${s.machine.otherCores.toFixed(2)} cores)` : '';
  ctx.progress.end(`${stepLine(s)}${cpu}${noise}`);
  return s;
}

// --- read / write workloads -----------------------------------------------------------

function kvKeys(ctx: Ctx): KeySpace {
  return { kind: 'flat', prefix: `${ctx.root}/kv/k`, count: ctx.opts.rwKeys, pad: 7 };
}

async function prepareBase(ctx: Ctx, t: Target): Promise<void> {
  const done = ctx.prepared.get(t.id) ?? new Set<string>();
  ctx.prepared.set(t.id, done);
  if (done.has('base')) return;
  await ensureNode(t, ctx.root);
  for (const p of ['kv', 'churn', 'watch', 'lv', 'tree']) await ensureNode(t, `${ctx.root}/${p}`);
  done.add('base');
}

async function prepareKv(ctx: Ctx, t: Target): Promise<StepResult> {
  await prepareBase(ctx, t);
  const done = ctx.prepared.get(t.id)!;
  const o = ctx.opts;
  const st = await withSessions(ctx, t, Math.min(o.sessions, 8), null, () =>
    step(ctx, t, { label: `setup ${o.rwKeys} keys`, mode: 'sequence', keys: kvKeys(ctx), valueSize: o.valueSize, depth: 16, sessions: 8, sequence: { op: 'create', tolerate: [NODEEXISTS] } }),
  );
  if (st.errors > 0) throw new Error(`setup of ${o.rwKeys} keys on ${t.label} failed: ${JSON.stringify(st.errorsByType)}`);
  done.add('kv');
  return st;
}

function resolveRates(o: Options, saturation: number): number[] {
  if ('abs' in o.rates) return [...o.rates.abs].sort((a, b) => a - b);
  const out = o.rates.rel.map((f) => Math.max(10, Math.round((f * saturation) / 10) * 10));
  return [...new Set(out)].sort((a, b) => a - b);
}

async function rwWorkload(ctx: Ctx, name: string, mix: OpMix, targets: Target[], round: number, plan: Plan): Promise<WorkloadRun[]> {
  const o = ctx.opts;
  const runs = targets.map((t) => newRun(name, t, round));
  for (const t of targets) if (!ctx.prepared.get(t.id)?.has('kv')) await prepareKv(ctx, t);
  const base = { keys: kvKeys(ctx), valueSize: o.valueSize, depth: o.depth, sessions: o.sessions, mix };
  // Saturation: every target, closed loop.
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i];
    await guard(ctx, runs[i], async () => {
      runs[i].closed = await withSessions(ctx, t, o.sessions, runs[i], () =>
        step(ctx, t, { ...base, label: `${name} r${round} closed ${o.sessions}x${o.depth}`, mode: 'closed', warmupMs: o.warmup * 1000, durationMs: o.duration * 1000 }),
      );
    });
  }
  const ok = runs.filter((r) => r.closed !== undefined && r.failed === undefined);
  if (ok.length === 0) return runs;
  // The same rates for every target and round (fixed by the first round's fastest).
  plan.rates ??= resolveRates(o, Math.max(...ok.map((r) => r.closed!.throughput)));
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i];
    const run = runs[i];
    if (run.closed === undefined || run.failed !== undefined) continue;
    run.open = [];
    await guard(ctx, run, () => withSessions(ctx, t, o.sessions, run, async () => {
      let saturatedAt: number | null = null;
      for (const rate of plan.rates!) {
        const label = `${name} r${round} open ${fmtRate(rate)}/s`;
        if (saturatedAt !== null) {
          run.open!.push(skippedStep(label, rate, `not run: ${fmtRate(saturatedAt)}/s already saturated the server`, base));
          continue;
        }
        const s = await step(ctx, t, { ...base, label, mode: 'open', rate, durationMs: o.stepDuration * 1000 });
        run.open!.push(s);
        if (s.throughput < 0.8 * rate || (s.errorsByType && Object.keys(s.errorsByType).some((k) => k.endsWith(':unfinished')))) saturatedAt = rate;
      }
    }));
    run.knee = knee(run.open, o.sloMs);
    const c = run.closed!;
    run.metrics = {
      'throughput (closed)': metric(c.throughput, 'ops/s', 'higher'),
      'p50 (closed)': metric(c.latency.p50, 'ms', 'lower'),
      'p99 (closed)': metric(c.latency.p99, 'ms', 'lower'),
      [`knee (p99<=${o.sloMs}ms)`]: metric(run.knee.rate, 'ops/s', 'higher'),
      'p99 @ lowest rate': metric(run.open.find((s) => s.skipped === undefined)?.latency.p99, 'ms', 'lower'),
      'server CPU per op (closed)': metric(c.server?.cpuUsPerOp, 'µs', 'lower'),
      'errors': metric(c.errors + sumCounts(c.warmupErrors) + run.open.reduce((a, s) => a + s.errors, 0), 'count', 'lower'),
    };
    if (c.loadgen.elu.some((e) => e > 0.9))
      run.notes.push(`load generator thread was ${Math.round(Math.max(...c.loadgen.elu) * 100)}% busy in the closed-loop phase: throughput may be client-bound (try --threads)`);
  }
  return runs;
}

// --- watch fan-out --------------------------------------------------------------------

async function watchWorkload(ctx: Ctx, targets: Target[], round: number): Promise<WorkloadRun[]> {
  const runs: WorkloadRun[] = [];
  for (const t of targets) {
    const run = newRun('watch', t, round);
    runs.push(run);
    await guard(ctx, run, () => watchOne(ctx, t, run, round));
  }
  return runs;
}

async function watchOne(ctx: Ctx, t: Target, run: WorkloadRun, round: number): Promise<void> {
  const o = ctx.opts;
  {
    await prepareBase(ctx, t);
    const path = `${ctx.root}/watch`;
    const rounds: { lastMs: number; p50Ms: number; setReplyMs: number; missing: number; armErrors: number }[] = [];
    const notify = new Histogram();
    const setReply = new Histogram();
    const lastH = new Histogram();
    const armErrors: Record<string, number> = {};
    await withSessions(ctx, t, o.watchers, run, async () => {
      await ctx.lg.one(0, 'connectWriter', { target: loadAddrs(ctx, t)[0], sessionTimeoutMs: SESSION_TIMEOUT_MS, connectTimeoutMs: 15_000 });
      ctx.progress.begin(`${t.id} watch r${round}: ${o.watchers} watchers x ${o.watchRounds} setData`);
      for (let r = 0; r < o.watchRounds; r++) {
        const armed = await ctx.lg.all<WatchArmResult>('watchArm', () => ({ path }));
        let errs = 0;
        for (const x of armed) {
          mergeCounts(armErrors, x.errors);
          errs += Object.keys(x.errors).length > 0 ? Object.values(x.errors).reduce((p, q) => p + q, 0) : 0;
        }
        const fire = await ctx.lg.one<WatchFireResult>(0, 'watchFire', { path, valueSize: o.valueSize });
        const col = await ctx.lg.all<WatchCollectResult>('watchCollect', () => ({ timeoutMs: 5000 }));
        const lat = col.flatMap((c) => c.arrivals.map((x) => x - fire.sentAt)).sort((p, q) => p - q);
        const missing = col.reduce((p, c) => p + c.missing, 0);
        for (const l of lat) notify.recordMs(l);
        setReply.recordMs(fire.repliedAt - fire.sentAt);
        const lastMs = lat.length > 0 ? lat[lat.length - 1] : NaN;
        if (Number.isFinite(lastMs)) lastH.recordMs(lastMs);
        if (fire.err !== 0) run.notes.push(`round ${r}: setData failed with ${errName(fire.err)}`);
        rounds.push({ lastMs: round3(lastMs), p50Ms: round3(lat[Math.floor(lat.length / 2)] ?? NaN), setReplyMs: round3(fire.repliedAt - fire.sentAt), missing, armErrors: errs });
        await sleep(20);
      }
    });
    const lastSorted = rounds.map((r) => r.lastMs).filter(Number.isFinite).sort((a, b) => a - b);
    const missing = rounds.reduce((a, r) => a + r.missing, 0);
    run.extra = {
      watchers: o.watchers,
      rounds,
      timeToLastNotification: lastH.summary(),
      notificationLatency: notify.summary(),
      setDataReply: setReply.summary(),
      missingNotifications: missing,
      armErrors,
    };
    run.metrics = {
      'time to last notification (median)': metric(lastSorted[Math.floor(lastSorted.length / 2)], 'ms', 'lower'),
      'time to last notification (max)': metric(lastSorted[lastSorted.length - 1], 'ms', 'lower'),
      'notification p99': metric(notify.summary().p99, 'ms', 'lower'),
      'errors': metric(missing + sumCounts(armErrors), 'count', 'lower'),
    };
    ctx.progress.end(
      `last notification median ${fmtMs(run.metrics['time to last notification (median)'].value ?? NaN)} ms, max ${fmtMs(run.metrics['time to last notification (max)'].value ?? NaN)} ms, missing ${missing}`,
    );
  }
}

// --- connection storm -------------------------------------------------------------------

async function stormWorkload(ctx: Ctx, targets: Target[], round: number): Promise<WorkloadRun[]> {
  const runs: WorkloadRun[] = [];
  for (const t of targets) {
    const run = newRun('storm', t, round);
    runs.push(run);
    await guard(ctx, run, () => stormOne(ctx, t, run, round));
  }
  return runs;
}

async function stormOne(ctx: Ctx, t: Target, run: WorkloadRun, round: number): Promise<void> {
  const o = ctx.opts;
  {
    const reps: {
      allConnectedMs: number;
      connected: number;
      errors: Record<string, number>;
      connect: ReturnType<Histogram['summary']>;
      closeMs: number;
      rssMBAfter?: number;
      listenOverflows: number | null;
    }[] = [];
    const per = shares(o.storm, ctx.lg.size);
    for (let r = 0; r < o.stormReps; r++) {
      ctx.progress.begin(`${t.id} storm r${round}.${r + 1}: ${o.storm} sessions at once`);
      const ov0 = listenOverflows();
      const startAt = nowMs() + 200;
      let base = 0;
      const res = await ctx.lg.all<StormResult>('storm', (i) => {
        const b = base;
        base += per[i];
        return { targets: loadAddrs(ctx, t), count: per[i], baseIndex: b, sessionTimeoutMs: SESSION_TIMEOUT_MS, connectTimeoutMs: 15_000, startAt };
      });
      const h = new Histogram();
      const errors: Record<string, number> = {};
      for (const x of res) {
        h.merge(x.hist);
        mergeCounts(errors, x.errors);
      }
      const first = Math.min(...res.map((x) => x.firstStart));
      const last = Math.max(...res.map((x) => x.lastConnected));
      const rep = {
        allConnectedMs: round3(last - first),
        connected: res.reduce((a, x) => a + x.connected, 0),
        errors,
        connect: h.summary(),
        closeMs: round3(Math.max(...res.map((x) => x.closeMs))),
        rssMBAfter: targetProcSample(t)?.rssMB,
        // Accept-queue overflows meanwhile (machine-wide): each costs a ~1 s SYN-ACK retransmission.
        listenOverflows: ov0 === null ? null : (listenOverflows() ?? ov0) - ov0,
      };
      reps.push(rep);
      ctx.progress.end(
        `${rep.connected}/${o.storm} connected in ${fmtMs(rep.allConnectedMs)} ms (p50 ${fmtMs(rep.connect.p50)}, p99 ${fmtMs(rep.connect.p99)} ms), closed in ${fmtMs(rep.closeMs)} ms, errors ${sumCounts(errors)}, accept-queue overflows ${rep.listenOverflows ?? '?'}`,
      );
      await sleep(300);
    }
    const all = reps.map((r) => r.allConnectedMs).sort((a, b) => a - b);
    const p99s = reps.map((r) => r.connect.p99).sort((a, b) => a - b);
    // Every session that did not connect is an error, whatever the reason.
    const errors = reps.reduce((a, r) => a + (o.storm - r.connected), 0);
    run.extra = { sessions: o.storm, reps };
    run.metrics = {
      'time to all connected (median)': metric(all[Math.floor(all.length / 2)], 'ms', 'lower'),
      'connect p99 (median)': metric(p99s[Math.floor(p99s.length / 2)], 'ms', 'lower'),
      'connect p50 (median)': metric(reps.map((r) => r.connect.p50).sort((a, b) => a - b)[Math.floor(reps.length / 2)], 'ms', 'lower'),
      'close all (median)': metric(reps.map((r) => r.closeMs).sort((a, b) => a - b)[Math.floor(reps.length / 2)], 'ms', 'lower'),
      'accept-queue overflows (total)': metric(reps.reduce((a, r) => a + (r.listenOverflows ?? 0), 0), 'count', 'lower'),
      'errors': metric(errors, 'count', 'lower'),
    };
  }
}

// --- large values -------------------------------------------------------------------------

function sizeName(b: number): string {
  if (b % (1024 * 1024) === 0) return `${b / 1024 / 1024}MiB`;
  if (b >= 1024 && b % 1024 === 0) return `${b / 1024}KiB`;
  return `${b}B`;
}

async function largeValuesWorkload(ctx: Ctx, targets: Target[], round: number): Promise<WorkloadRun[]> {
  const o = ctx.opts;
  const runs = targets.map((t) => newRun('large-values', t, round));
  for (const t of targets) await prepareBase(ctx, t);
  for (const size of o.largeSizes) {
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i];
      const run = runs[i];
      run.phases ??= {};
      const keys: KeySpace = { kind: 'flat', prefix: `${ctx.root}/lv/s${size}-`, count: 8, pad: 1 };
      const sz = sizeName(size);
      if (run.failed !== undefined) {
        run.notes.push(`${sz}: not run (an earlier size failed)`);
        continue;
      }
      await guard(ctx, run, () => withSessions(ctx, t, o.largeSessions, run, async () => {
        const setup = await step(ctx, t, { label: `large-values setup ${sz}`, mode: 'sequence', keys, valueSize: size, depth: 1, sessions: o.largeSessions, sequence: { op: 'create', tolerate: [NODEEXISTS] } });
        if (setup.errors > 0) run.notes.push(`setup of ${sz} values: ${JSON.stringify(setup.errorsByType)}`);
        const common = { keys, valueSize: size, depth: o.largeDepth, sessions: o.largeSessions, mode: 'closed' as const, warmupMs: Math.min(500, o.warmup * 1000), durationMs: Math.max(500, (o.duration * 1000) / 2) };
        const mb = (x: StepResult) => (x.throughput * size) / (1024 * 1024);
        const record = (op: 'setData' | 'getData', x: StepResult) => {
          run.phases![`${op} ${sz}`] = x;
          run.metrics[`${op} ${sz} MB/s`] = metric(mb(x), 'MiB/s', 'higher');
          run.metrics[`${op} ${sz} p99`] = metric(x.latency.p99, 'ms', 'lower');
          run.metrics['errors'] = metric((run.metrics['errors']?.value ?? 0) + x.errors + sumCounts(x.warmupErrors), 'count', 'lower');
        };
        record('setData', await step(ctx, t, { ...common, label: `large-values r${round} setData ${sz}`, mix: { set: 1 } }));
        record('getData', await step(ctx, t, { ...common, label: `large-values r${round} getData ${sz}`, mix: { get: 1 } }));
        await step(ctx, t, { label: `large-values cleanup ${sz}`, mode: 'sequence', keys, valueSize: 0, depth: 1, sessions: o.largeSessions, sequence: { op: 'delete', tolerate: [NONODE] } });
      }));
    }
  }
  return runs;
}

// --- large tree ---------------------------------------------------------------------------

async function largeTreeWorkload(ctx: Ctx, targets: Target[], round: number): Promise<WorkloadRun[]> {
  const runs: WorkloadRun[] = [];
  for (const t of targets) {
    const run = newRun('large-tree', t, round);
    runs.push(run);
    await guard(ctx, run, () => largeTreeOne(ctx, t, run, round));
  }
  return runs;
}

async function largeTreeOne(ctx: Ctx, t: Target, run: WorkloadRun, round: number): Promise<void> {
  const o = ctx.opts;
  {
    await prepareBase(ctx, t);
    const root = `${ctx.root}/tree/r${round}`;
    await ensureNode(t, root);
    const dirs: KeySpace = { kind: 'treeDirs', root, count: Math.ceil(o.keys / FANOUT) };
    const leaves: KeySpace = { kind: 'tree', root, count: o.keys, fanout: FANOUT };
    const mem = async () => {
      const m = await mntr(t.addresses[0]);
      const p = targetProcSample(t);
      return {
        rssMB: p ? Math.round(p.rssMB) : null,
        anonMB: p ? Math.round(p.anonMB) : null,
        znodes: typeof m.zk_znode_count === 'number' ? m.zk_znode_count : null,
        approxDataSize: typeof m.zk_approximate_data_size === 'number' ? m.zk_approximate_data_size : null,
      };
    };
    const before = await mem();
    const phases: Record<string, StepResult> = {};
    run.phases = phases;
    let afterCreate: Awaited<ReturnType<typeof mem>> | null = null;
    const seq = { valueSize: o.valueSize, depth: o.depth, sessions: o.sessions, mode: 'sequence' as const };
    // Snapshots the server logs meanwhile (Corral child), and a getData probe session on
    // this thread: one request outstanding, its latency recorded with its send time.
    const snaps: SnapshotLine[] = [];
    const onLog = (line: string) => {
      const sn = parseSnapshotLine(line);
      if (sn !== null) snaps.push(sn);
    };
    t.logListeners?.add(onLog);
    let probe: Probe | null = null;
    await withSessions(ctx, t, o.sessions, run, async () => {
      phases['create dirs'] = await step(ctx, t, { ...seq, label: `large-tree r${round} create ${dirs.count} dirs`, keys: dirs, valueSize: 0, sequence: { op: 'create' } });
      probe = await Probe.start(t, root);
      try {
        phases['create'] = await step(ctx, t, { ...seq, label: `large-tree r${round} create ${o.keys} znodes`, keys: leaves, sequence: { op: 'create' } });
        // A snapshot started near the end of the creates (of the whole tree, on an otherwise
        // idle server) may still be running: keep probing a little.
        await sleep(Math.min(5000, 1000 + o.keys / 250));
      } finally {
        await probe.stop();
      }
      await sleep(500); // let the server settle before reading its memory
      afterCreate = await mem();
      phases['getData'] = await step(ctx, t, {
        label: `large-tree r${round} getData over ${o.keys}`,
        mode: 'closed',
        mix: { get: 1 },
        keys: leaves,
        valueSize: o.valueSize,
        depth: o.depth,
        sessions: o.sessions,
        warmupMs: o.warmup * 1000,
        durationMs: o.duration * 1000,
      });
    });
    t.logListeners?.delete(onLog);
    // Restart on the same dataDir (Corral child only): SIGTERM, spawn, time to `ruok`.
    let restart: RestartInfo | null = null;
    let afterRestart: Awaited<ReturnType<typeof mem>> | null = null;
    if (t.restart !== undefined) {
      ctx.progress.log(`${t.id} large-tree: SIGTERM and restart on the same dataDir (${o.keys} znodes)`);
      restart = await t.restart();
      await sleep(500);
      afterRestart = await mem();
      ctx.progress.log(
        `${t.id} large-tree: stopped in ${restart.stopMs} ms; spawn to ruok ${restart.spawnToReadyMs} ms; recovery ${restart.recoveryMs ?? '?'} ms + digest ${restart.digestMs ?? '?'} ms (${restart.znodes ?? '?'} znodes, ${restart.replayed ?? '?'} txns replayed); anon RSS ${afterRestart.anonMB ?? '?'} MB`,
      );
    } else run.notes.push(t.kind === 'corral-ensemble' ? 'restart / recovery not measured for an ensemble (standalone topology only)' : 'restart / recovery not measured: the bench did not start this server');
    await withSessions(ctx, t, o.sessions, run, async () => {
      phases['delete'] = await step(ctx, t, { ...seq, label: `large-tree r${round} delete ${o.keys} znodes`, keys: leaves, valueSize: 0, sequence: { op: 'delete' } });
      phases['delete dirs'] = await step(ctx, t, { ...seq, label: `large-tree r${round} delete dirs`, keys: dirs, valueSize: 0, sequence: { op: 'delete' } });
    });
    run.notes.push(...(await deleteNodes(t, [root])));
    await sleep(500);
    const afterDelete = await mem();
    run.phases = phases;
    const ac = afterCreate as Awaited<ReturnType<typeof mem>> | null;
    const pr = (probe as Probe | null)?.summary(snaps) ?? null;
    const biggest = snaps.reduce<SnapshotLine | null>((a, b) => (a === null || b.znodes > a.znodes ? b : a), null);
    run.extra = {
      znodes: o.keys,
      fanout: FANOUT,
      valueSize: o.valueSize,
      memory: { before, afterCreate: ac, afterRestart, afterDelete },
      snapshots: snaps,
      probe: pr,
      restart,
    };
    if (t.logListeners !== undefined && snaps.length === 0) run.notes.push('no snapshot was logged during the create phase (snapCount larger than the keys?)');
    const c = phases['create'];
    run.metrics = {
      'create rate': metric(c.throughput, 'ops/s', 'higher'),
      'time to create': metric(c.durationS, 's', 'lower'),
      'server RSS after create': metric(ac?.rssMB, 'MB', 'lower'),
      'server anon RSS after create': metric(ac?.anonMB, 'MB', 'lower'),
      'anon RSS growth': metric(ac?.anonMB != null && before.anonMB != null ? ac.anonMB - before.anonMB : null, 'MB', 'lower'),
      'getData throughput': metric(phases['getData'].throughput, 'ops/s', 'higher'),
      'getData p99': metric(phases['getData'].latency.p99, 'ms', 'lower'),
      'delete rate': metric(phases['delete'].throughput, 'ops/s', 'higher'),
      'snapshot duration (largest)': metric(biggest?.durationMs, 'ms', 'lower'),
      'snapshot znodes (largest)': metric(biggest?.znodes, 'count', 'higher'),
      'snapshot longest slice (worst)': metric(snaps.length > 0 ? Math.max(...snaps.map((x) => x.sliceMs)) : null, 'ms', 'lower'),
      'probe max during snapshots': metric(pr?.maxDuringSnapshotsMs, 'ms', 'lower'),
      'probe max outside snapshots': metric(pr?.maxOutsideMs, 'ms', 'lower'),
      'probe p99 outside snapshots': metric(pr?.p99OutsideMs, 'ms', 'lower'),
      'restart: recovery (server log)': metric(restart?.recoveryMs, 'ms', 'lower'),
      'restart: digest after recovery (server log)': metric(restart?.digestMs, 'ms', 'lower'),
      'restart: spawn to ruok': metric(restart?.spawnToReadyMs, 'ms', 'lower'),
      'restart: SIGTERM to exit': metric(restart?.stopMs, 'ms', 'lower'),
      'anon RSS after restart': metric(afterRestart?.anonMB, 'MB', 'lower'),
      'errors': metric(Object.values(phases).reduce((a, s) => a + s.errors + sumCounts(s.warmupErrors), 0), 'count', 'lower'),
    };
    if (snaps.length > 0)
      ctx.progress.log(
        `${t.id} large-tree: ${snaps.length} snapshot(s): ${snaps.map((x, k) => `${x.znodes} znodes in ${x.durationMs} ms (slice ${x.sliceMs} ms, probe max ${pr?.perSnapshot[k]?.maxMs ?? '-'} ms of ${pr?.perSnapshot[k]?.probes ?? 0})`).join(', ')}; probe max ${pr?.maxDuringSnapshotsMs ?? '?'} ms during, ${pr?.maxOutsideMs ?? '?'} ms outside (p99 ${pr?.p99OutsideMs ?? '?'})`,
      );
    ctx.progress.log(
      `${t.id} large-tree: RSS ${before.rssMB ?? '?'} -> ${ac?.rssMB ?? '?'} -> ${afterDelete.rssMB ?? '?'} MB (anon ${before.anonMB ?? '?'} -> ${ac?.anonMB ?? '?'} -> ${afterDelete.anonMB ?? '?'}); znodes (mntr) ${before.znodes ?? '?'} -> ${ac?.znodes ?? '?'}`,
    );
  }
}

/** `snapshot <id> at zxid 0x..: N znodes, S sessions, B bytes in D ms (longest slice X ms)`, with the time it was logged. */
export interface SnapshotLine {
  znodes: number;
  bytes: number;
  durationMs: number;
  sliceMs: number;
  /** nowMs() when the line arrived: the snapshot ran over [loggedAt - durationMs, loggedAt]. */
  loggedAt: number;
}

export function parseSnapshotLine(line: string, at = nowMs()): SnapshotLine | null {
  const m = /snapshot \S+ at zxid \S+: (\d+) znodes, \d+ sessions, (\d+) bytes in (\d+) ms \(longest slice ([\d.]+) ms\)/.exec(line);
  if (m === null) return null;
  return { znodes: Number(m[1]), bytes: Number(m[2]), durationMs: Number(m[3]), sliceMs: Number(m[4]), loggedAt: at };
}

/** A getData loop on one raw session (one request outstanding), on the coordinator thread. */
class Probe {
  private samples: number[] = []; // pairs: send time, latency (ms)
  private stopping = false;
  private loop: Promise<void>;
  private error: Error | null = null;

  private constructor(
    private c: RawClient,
    path: string,
  ) {
    this.loop = (async () => {
      while (!this.stopping) {
        const t0 = nowMs();
        const r = await this.c.getData(path);
        const t1 = nowMs();
        this.samples.push(t0, t1 - t0);
        if (r.err !== 0) throw new Error(`probe getData ${path}: ${errName(r.err)}`);
        await sleep(1);
      }
    })().catch((e: Error) => {
      this.error = e;
    });
  }

  static async start(t: Target, path: string): Promise<Probe> {
    const a = t.addresses[0];
    return new Probe(await RawClient.connect(a.host, a.port), path);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    try {
      await this.loop;
    } finally {
      this.c.close();
    }
    if (this.error !== null) throw this.error;
  }

  /** Worst probe latency overlapping a snapshot's run, and the figures outside them. */
  summary(snaps: SnapshotLine[]): {
    probes: number;
    maxDuringSnapshotsMs: number | null;
    probesDuringSnapshots: number;
    maxOutsideMs: number | null;
    p99OutsideMs: number | null;
    /** Per snapshot (same order as the snapshots): probes overlapping it and their worst latency. */
    perSnapshot: { znodes: number; probes: number; maxMs: number | null }[];
  } {
    const perSnapshot = snaps.map((s) => ({ znodes: s.znodes, probes: 0, maxMs: null as number | null }));
    let during = 0;
    let maxDuring: number | null = null;
    const outside = new Histogram();
    let maxOutside: number | null = null;
    for (let i = 0; i < this.samples.length; i += 2) {
      const t0 = this.samples[i];
      const lat = this.samples[i + 1];
      let overlaps = false;
      snaps.forEach((s, k) => {
        if (t0 <= s.loggedAt && t0 + lat >= s.loggedAt - s.durationMs) {
          overlaps = true;
          perSnapshot[k].probes++;
          perSnapshot[k].maxMs = round3(Math.max(perSnapshot[k].maxMs ?? 0, lat));
        }
      });
      if (overlaps) {
        during++;
        maxDuring = Math.max(maxDuring ?? 0, lat);
      } else {
        outside.recordMs(lat);
        maxOutside = Math.max(maxOutside ?? 0, lat);
      }
    }
    const r = (x: number | null) => (x === null ? null : round3(x));
    return {
      probes: this.samples.length / 2,
      maxDuringSnapshotsMs: r(maxDuring),
      probesDuringSnapshots: during,
      maxOutsideMs: r(maxOutside),
      p99OutsideMs: outside.n > 0 ? r(outside.quantileUs(0.99) / 1000) : null,
      perSnapshot,
    };
  }
}

// --- start to serving ---------------------------------------------------------------------

async function startupWorkload(ctx: Ctx, targets: Target[], round: number): Promise<WorkloadRun[]> {
  const o = ctx.opts;
  const runs: WorkloadRun[] = [];
  for (const t of targets) {
    const run = newRun('startup', t, round);
    runs.push(run);
    if (t.kind === 'corral-ensemble') {
      run.notes.push('start to serving is measured for a standalone Corral only (run startup without --topology ensemble3); the ensemble\'s own start to serving is in its target info');
      continue;
    }
    if (t.kind !== 'corral-child') {
      run.notes.push('start to serving not measured: the bench did not start this server (use --startup-zkref DIR to time Apache ZooKeeper the way Corral is timed)');
      continue;
    }
    await guard(ctx, run, async () => {
      const zk = o.startupZkref !== undefined ? await ZkrefStarter.prepare(o.startupZkref, o.startupZkPort) : undefined;
      ctx.progress.log(
        `${t.id} startup: ${o.startups} starts on an empty dataDir, probe every ${o.startupPollMs} ms` +
          (zk ? `, alternating with Apache ZooKeeper (${zk.commandLine})` : ''),
      );
      const corral: StartTiming[] = [];
      const zookeeper: StartTiming[] = [];
      for (let i = 0; i < o.startups; i++) {
        // A B B A: neither server always goes first after the other's stop.
        const order = i % 2 === 0 ? ['corral', 'zk'] : ['zk', 'corral'];
        for (const which of order) {
          if (which === 'corral') corral.push(await timeCorralStart({ forceSync: o.forceSync, extraCfg: o.corralCfg.join('\n'), pollMs: o.startupPollMs }));
          else if (zk) zookeeper.push(await zk.timeStart(o.startupPollMs));
        }
        ctx.progress.log(
          `${t.id} startup ${i + 1}/${o.startups}: Corral ${startLine(corral[corral.length - 1]!)}` +
            (zk ? `; ZooKeeper ${startLine(zookeeper[zookeeper.length - 1]!)}` : ''),
        );
      }
      const serving = corral.map((x) => x.servingMs);
      run.extra = { corral, zookeeper: zk ? zookeeper : undefined, pollMs: o.startupPollMs, zookeeperCommand: zk?.commandLine };
      run.metrics = {
        'spawn to serving, median': metric(median(serving), 'ms', 'lower'),
        'spawn to serving, min': metric(Math.min(...serving), 'ms', 'lower'),
        'spawn to serving, max': metric(Math.max(...serving), 'ms', 'lower'),
        'spawn to first write acked, median': metric(median(corral.map((x) => x.firstWriteMs)), 'ms', 'lower'),
        'CPU to serving, median': metric(median(corral.map((x) => x.cpuMs)), 'ms', 'lower'),
      };
      // Per pair, like --compare: each ratio is two starts made back to back.
      const ratios = zk ? serving.map((c, i) => c / zookeeper[i]!.servingMs) : [];
      if (zk) {
        const zs = zookeeper.map((x) => x.servingMs);
        run.metrics['ZooKeeper spawn to serving, median'] = metric(median(zs), 'ms', 'lower');
        run.metrics['ZooKeeper spawn to serving, min'] = metric(Math.min(...zs), 'ms', 'lower');
        run.metrics['ZooKeeper spawn to serving, max'] = metric(Math.max(...zs), 'ms', 'lower');
        run.metrics['ZooKeeper CPU to serving, median'] = metric(median(zookeeper.map((x) => x.cpuMs)), 'ms', 'lower');
        run.metrics['Corral / ZooKeeper, paired median'] = metric(median(ratios), 'x', 'lower');
        run.metrics['Corral / ZooKeeper, paired min'] = metric(Math.min(...ratios), 'x', 'lower');
        run.metrics['Corral / ZooKeeper, paired max'] = metric(Math.max(...ratios), 'x', 'lower');
      }
      ctx.progress.log(`${t.id} startup: ${summary('Corral', corral)}`);
      if (zk) {
        ctx.progress.log(`${t.id} startup: ${summary('ZooKeeper', zookeeper)}`);
        ctx.progress.log(
          `${t.id} startup: Corral / ZooKeeper per pair, median ${median(ratios).toFixed(2)}x (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`,
        );
      }
    });
  }
  return runs;
}

function startLine(x: StartTiming): string {
  return `${x.servingMs.toFixed(1)} ms (write acked ${x.firstWriteMs.toFixed(1)}, CPU ${x.cpuMs.toFixed(0)}, waited for CPU ${x.runqueueMs.toFixed(0)})`;
}

function summary(name: string, xs: StartTiming[]): string {
  const f = (v: number) => v.toFixed(1);
  const s = stats(xs.map((x) => x.servingMs))!;
  return (
    `${name} spawn to serving median ${f(s.median)} ms [${f(s.min)}-${f(s.max)}], n=${s.n}; ` +
    `first write acked median ${f(median(xs.map((x) => x.firstWriteMs)))} ms; ` +
    `CPU to serving median ${f(median(xs.map((x) => x.cpuMs)))} ms; waited for a CPU median ${f(median(xs.map((x) => x.runqueueMs)))} ms`
  );
}

// --- whole-target warmup -----------------------------------------------------------------

/**
 * Unmeasured mixed load before a target's first workload, so neither V8's nor the JVM's
 * JIT is cold when the first figures are taken (a JVM needs seconds, not milliseconds).
 */
export async function warmTarget(ctx: Ctx, t: Target): Promise<StepResult | null> {
  const o = ctx.opts;
  if (o.targetWarmup <= 0) return null;
  if (!ctx.prepared.get(t.id)?.has('kv')) await prepareKv(ctx, t);
  return withSessions(ctx, t, o.sessions, null, () =>
    step(ctx, t, {
      label: `warmup ${o.targetWarmup}s (mix50, not measured)`,
      mode: 'closed',
      mix: { get: 0.5, set: 0.5 },
      keys: kvKeys(ctx),
      valueSize: o.valueSize,
      depth: o.depth,
      sessions: o.sessions,
      warmupMs: 0,
      durationMs: o.targetWarmup * 1000,
    }),
  );
}

// --- registry -----------------------------------------------------------------------------

export async function runWorkload(ctx: Ctx, name: WorkloadName, targets: Target[], round: number, plan: Plan): Promise<WorkloadRun[]> {
  switch (name) {
    case 'read':
      return rwWorkload(ctx, name, { get: 1 }, targets, round, plan);
    case 'mix90':
      return rwWorkload(ctx, name, { get: 0.9, set: 0.1 }, targets, round, plan);
    case 'mix50':
      return rwWorkload(ctx, name, { get: 0.5, set: 0.5 }, targets, round, plan);
    case 'write':
      return rwWorkload(ctx, name, { set: 1 }, targets, round, plan);
    case 'churn':
      return rwWorkload(ctx, name, { churn: 1 }, targets, round, plan);
    case 'watch':
      return watchWorkload(ctx, targets, round);
    case 'storm':
      return stormWorkload(ctx, targets, round);
    case 'large-values':
      return largeValuesWorkload(ctx, targets, round);
    case 'large-tree':
      return largeTreeWorkload(ctx, targets, round);
    case 'startup':
      return startupWorkload(ctx, targets, round);
    case 'failover':
      return failoverWorkload(ctx, targets, round);
  }
}

export const WORKLOAD_DESCRIPTIONS: Record<WorkloadName, string> = {
  read: 'getData of random keys',
  mix90: '90% getData / 10% setData',
  mix50: '50% getData / 50% setData',
  write: 'setData of random keys',
  churn: 'ephemeral-sequential create, then delete of the created node',
  watch: 'N sessions watch one znode (exists + watch); time from setData to each notification',
  storm: 'N sessions connect at once; time until all are connected, then closeSession for all',
  'large-values': 'setData / getData of large values (closed loop, few sessions)',
  'large-tree': 'create N znodes (2 levels, 1000 per parent), server memory, snapshot during the create (probed), getData over them, restart on the dataDir (recovery), delete',
  startup: 'start Corral N times on an empty dataDir: spawn to a served request (session + exists), and Apache ZooKeeper the same way with --startup-zkref',
  failover: 'Corral ensembles of N members under a steady setData load on every member: SIGKILL the leader, time kill -> first write acknowledged and kill -> new leader in srvr; restart it, repeat',
};

/** Removes this run's znodes from a server the bench does not own. */
export async function cleanup(ctx: Ctx, t: Target): Promise<string[]> {
  const done = ctx.prepared.get(t.id);
  if (done === undefined) return [];
  const problems: string[] = [];
  if (done.has('kv')) {
    const st = await withSessions(ctx, t, Math.min(ctx.opts.sessions, 8), null, () =>
      step(ctx, t, { label: 'cleanup keys', mode: 'sequence', keys: kvKeys(ctx), valueSize: 0, depth: 16, sessions: 8, sequence: { op: 'delete', tolerate: [NONODE] } }),
    );
    if (st.errors > 0) problems.push(`cleanup of keys: ${JSON.stringify(st.errorsByType)}`);
  }
  problems.push(...(await deleteNodes(t, ['kv', 'churn', 'watch', 'lv', 'tree'].map((p) => `${ctx.root}/${p}`).concat([ctx.root]))));
  return problems;
}
