// The shape of bench-results/<timestamp>.json, and the arithmetic over it: merging the
// threads' answers into one step, the knee, and medians / ratios across rounds.

import { Histogram, type HistogramData, type LatencySummary } from './loadgen/histogram.js';
import type { PhaseResult } from './loadgen/types.js';

export interface StepResult {
  mode: 'closed' | 'open' | 'sequence';
  label: string;
  /** Open loop: the rate requests were scheduled at, ops/s. */
  offeredRate?: number;
  sessions: number;
  depth: number;
  /** Seconds of the measured window (sequence: from start to the last reply). */
  durationS: number;
  /** Requests counted: sent (closed) or scheduled (open, sequence) in the window. */
  requests: number;
  replies: number;
  ok: number;
  /** Successful replies per second (closed: completed in the window / window length). */
  throughput: number;
  /** Failed or unanswered counted requests: server errors, unfinished, lost connections. */
  errors: number;
  errorsByType: Record<string, number>;
  warmupErrors: Record<string, number>;
  tolerated: Record<string, number>;
  /** Every counted request, all kinds together; unfinished ones at the time waited. */
  latency: LatencySummary;
  perOp: Record<string, LatencySummary>;
  /** The server process (when local): CPU over the window, memory at its end (anonMB: RssAnon, without mapped files). */
  server?: { cpuCores: number; cpuUsPerOp: number | null; rssMB: number; anonMB: number; threads: number; processes?: number };
  /** Busy fraction of the whole machine (all cores) during the window, and the bench process's own CPU. */
  /**
   * busy: fraction of all cores busy; benchCpuCores: this bench process (coordinator +
   * load-generator threads); otherCores: every other process except the server (noise);
   * irqCores: interrupt and softirq time (loopback networking is largely here).
   */
  machine?: { busy: number; benchCpuCores: number; otherCores: number | null; irqCores?: number };
  /**
   * elu: per thread, fraction of the window its event loop was busy (1 = client-bound).
   * sendLag: open loop, scheduled time -> write (lateness of the load generator, or a full window).
   * wire: open loop, write -> reply read (the server, the kernel, and the reading side's delay).
   * tickGap: open loop, time between the scheduler's turns, naps included (its resolution and stalls).
   */
  loadgen: { elu: number[]; maxBacklog: number; maxSendLagMs: number; sessionsLost: number; sendLag?: LatencySummary; wire?: LatencySummary; tickGap?: LatencySummary };
  /** Present when the step was not run (e.g. a lower rate already saturated the server). */
  skipped?: string;
}

export interface Metric {
  value: number | null;
  unit: string;
  better: 'higher' | 'lower';
}

export interface WorkloadRun {
  workload: string;
  target: string;
  round: number;
  startedAt: string;
  closed?: StepResult;
  open?: StepResult[];
  knee?: { rate: number | null; sloMs: number; note: string };
  /** Named phases (large values per size, large-tree stages, setup). */
  phases?: Record<string, StepResult>;
  /** Workload-specific figures (watch rounds, storm, tree memory...). */
  extra?: Record<string, unknown>;
  /** The headline figures: what the summary takes medians and ratios of. */
  metrics: Record<string, Metric>;
  connectErrors: Record<string, number>;
  notes: string[];
  /** Set when the run could not finish (server gone, ...): its figures are partial. */
  failed?: string;
}

export interface SummaryRow {
  workload: string;
  metric: string;
  unit: string;
  better: 'higher' | 'lower';
  perTarget: Record<string, { median: number; min: number; max: number; n: number } | null>;
  /** --compare: Corral / target per round (paired A/B), median and spread. */
  ratio?: { median: number; min: number; max: number; n: number } | null;
}

function emptyLatency(): LatencySummary {
  return { count: 0, mean: 0, min: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
}

export function mergeCounts(into: Record<string, number>, from: Record<string, number>): Record<string, number> {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
  return into;
}

export function sumCounts(m: Record<string, number>): number {
  let n = 0;
  for (const v of Object.values(m)) n += v;
  return n;
}

/** Merges the threads' answers for one phase into a step. */
export function mergePhase(
  label: string,
  mode: StepResult['mode'],
  parts: PhaseResult[],
  o: { sessions: number; depth: number; durationS: number; offeredRate?: number },
): StepResult {
  const hist: Record<string, Histogram> = {};
  const all = new Histogram();
  const errorsByType: Record<string, number> = {};
  const warmupErrors: Record<string, number> = {};
  const tolerated: Record<string, number> = {};
  let requests = 0;
  let replies = 0;
  let ok = 0;
  let okInWindow = 0;
  let windowStart = Infinity;
  let lastReply = 0;
  let maxBacklog = 0;
  let maxSendLag = 0;
  let lost = 0;
  const lag = new Histogram();
  const wire = new Histogram();
  const tickGap = new Histogram();
  for (const p of parts) {
    if (p.sendLag) lag.merge(p.sendLag);
    if (p.wire) wire.merge(p.wire);
    if (p.tickGap) tickGap.merge(p.tickGap);
    requests += p.requests;
    replies += p.replies;
    ok += p.ok;
    okInWindow += p.okInWindow;
    windowStart = Math.min(windowStart, p.windowStart);
    lastReply = Math.max(lastReply, p.lastReply);
    maxBacklog = Math.max(maxBacklog, p.maxBacklog);
    maxSendLag = Math.max(maxSendLag, p.maxSendLagMs);
    lost += p.sessionsLost;
    mergeCounts(errorsByType, p.errors);
    mergeCounts(warmupErrors, p.warmupErrors);
    mergeCounts(tolerated, p.tolerated ?? {});
    for (const [k, h] of Object.entries(p.hist) as [string, HistogramData][]) {
      (hist[k] ??= new Histogram()).merge(h);
      all.merge(h);
    }
  }
  let durationS = o.durationS;
  let throughput: number;
  if (mode === 'closed') throughput = okInWindow / o.durationS;
  else if (mode === 'open') {
    durationS = Math.max(o.durationS, (lastReply - windowStart) / 1000);
    throughput = ok / durationS;
  } else {
    durationS = lastReply > windowStart ? (lastReply - windowStart) / 1000 : 0;
    throughput = durationS > 0 ? ok / durationS : 0;
  }
  const perOp: Record<string, LatencySummary> = {};
  for (const [k, h] of Object.entries(hist)) perOp[k] = h.summary();
  return {
    mode,
    label,
    offeredRate: o.offeredRate,
    sessions: o.sessions,
    depth: o.depth,
    durationS: round3(durationS),
    requests,
    replies,
    ok,
    throughput: Math.round(throughput),
    errors: sumCounts(errorsByType),
    errorsByType,
    warmupErrors,
    tolerated,
    latency: all.n > 0 ? all.summary() : emptyLatency(),
    perOp,
    loadgen: {
      elu: parts.map((p) => round3(p.elu)),
      maxBacklog,
      maxSendLagMs: round3(maxSendLag),
      sessionsLost: lost,
      sendLag: mode === 'open' ? lag.summary() : undefined,
      wire: mode === 'open' && wire.n > 0 ? wire.summary() : undefined,
      tickGap: mode === 'open' && tickGap.n > 0 ? tickGap.summary() : undefined,
    },
  };
}

export function skippedStep(label: string, offeredRate: number, reason: string, o: { sessions: number; depth: number }): StepResult {
  return {
    mode: 'open',
    label,
    offeredRate,
    sessions: o.sessions,
    depth: o.depth,
    durationS: 0,
    requests: 0,
    replies: 0,
    ok: 0,
    throughput: 0,
    errors: 0,
    errorsByType: {},
    warmupErrors: {},
    tolerated: {},
    latency: emptyLatency(),
    perOp: {},
    loadgen: { elu: [], maxBacklog: 0, maxSendLagMs: 0, sessionsLost: 0 },
    skipped: reason,
  };
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** A step passes the SLO if p99 <= slo, nothing failed, and >= 90% of the rate was served. */
export function stepMeetsSlo(s: StepResult, sloMs: number): boolean {
  if (s.skipped !== undefined || s.offeredRate === undefined) return false;
  return s.latency.p99 <= sloMs && s.errors === 0 && s.throughput >= 0.9 * s.offeredRate;
}

export function knee(steps: StepResult[], sloMs: number): { rate: number | null; sloMs: number; note: string } {
  const run = steps.filter((s) => s.skipped === undefined).sort((a, b) => a.offeredRate! - b.offeredRate!);
  let best: number | null = null;
  const failedBelow: number[] = [];
  for (const s of run) {
    if (stepMeetsSlo(s, sloMs)) best = s.offeredRate!;
    else failedBelow.push(s.offeredRate!);
  }
  if (run.length === 0) return { rate: null, sloMs, note: 'no open-loop steps ran' };
  if (best === null) return { rate: null, sloMs, note: `even the lowest step (${Math.round(run[0].offeredRate!)}/s) missed p99 <= ${sloMs} ms` };
  const dips = failedBelow.filter((r) => r < best!);
  return {
    rate: Math.round(best),
    sloMs,
    note: dips.length > 0 ? `lower step(s) ${dips.map(Math.round).join(', ')}/s missed the SLO (noise?)` : 'highest step meeting the SLO',
  };
}

/** Median, min, max and count of xs; null when empty. */
export function stats(xs: number[]): { median: number; min: number; max: number; n: number } | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { median: m, min: s[0], max: s[s.length - 1], n: s.length };
}

export function median(xs: number[]): number {
  return stats(xs)?.median ?? NaN;
}

/** Medians per workload, metric and target; with two targets, paired ratios per round. */
export function summarise(runs: WorkloadRun[], targets: string[]): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const workloads = [...new Set(runs.map((r) => r.workload))];
  for (const w of workloads) {
    const wr = runs.filter((r) => r.workload === w);
    const metricNames = [...new Set(wr.flatMap((r) => Object.keys(r.metrics)))];
    for (const m of metricNames) {
      const sample = wr.find((r) => r.metrics[m] !== undefined)!.metrics[m];
      const perTarget: SummaryRow['perTarget'] = {};
      for (const t of targets) {
        const xs = wr.filter((r) => r.target === t).map((r) => r.metrics[m]?.value).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
        perTarget[t] = stats(xs);
      }
      const row: SummaryRow = { workload: w, metric: m, unit: sample.unit, better: sample.better, perTarget };
      if (targets.length === 2) {
        const [a, b] = targets;
        const rounds = [...new Set(wr.map((r) => r.round))];
        const ratios: number[] = [];
        for (const rd of rounds) {
          const va = wr.find((r) => r.target === a && r.round === rd)?.metrics[m]?.value;
          const vb = wr.find((r) => r.target === b && r.round === rd)?.metrics[m]?.value;
          if (typeof va === 'number' && typeof vb === 'number' && vb !== 0 && Number.isFinite(va) && Number.isFinite(vb)) ratios.push(va / vb);
        }
        row.ratio = stats(ratios);
      }
      rows.push(row);
    }
  }
  return rows;
}
