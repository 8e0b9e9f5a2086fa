#!/usr/bin/env node
// `npm run bench`: the capacity-planning suite (issue #5). Drives Corral (started here
// as a child process) or any ZooKeeper-protocol server, or both alternately, with a
// load generator that speaks the wire protocol from worker threads. Writes a table to
// stdout, progress to stderr, and bench-results/<timestamp>.{json,html}.

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoadGen } from './loadgen/pool.js';
import { runMicro } from './micro.js';
import { DEFAULT_WORKLOADS, type Options, parseArgs, USAGE } from './options.js';
import { ProgressDisplay } from './progress.js';
import { type BenchFile, renderHtml, renderText } from './report.js';
import { type StepResult, summarise, type WorkloadRun } from './results.js';
import { ensembleLabel, externalTarget, parseAddresses, startCorral, startCorralEnsemble, type Target } from './target.js';
import { cleanup, type Ctx, type Plan, runWorkload, WORKLOAD_DESCRIPTIONS, warmTarget } from './workloads.js';

const here = dirname(fileURLToPath(import.meta.url));

function corralVersion(): string {
  for (const p of [join(here, '..', '..', 'package.json'), join(here, '..', 'package.json')]) {
    try {
      return (JSON.parse(readFileSync(p, 'utf8')) as { version: string }).version;
    } catch {
      // next layout
    }
  }
  return 'unknown';
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: join(here, '..', '..'), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

function machine(): Record<string, unknown> {
  const c = cpus();
  return {
    cpuModel: c[0]?.model ?? 'unknown',
    cores: c.length,
    memGB: Math.round(totalmem() / 1024 ** 3),
    os: `${process.platform} ${release()}`,
    node: process.version,
    corralVersion: corralVersion(),
    gitCommit: git(['rev-parse', '--short', 'HEAD']),
    gitDirty: git(['status', '--porcelain', '--untracked-files=no']) !== '',
    loadAvgStart: loadavg().map((x) => x.toFixed(2)).join(' '),
  };
}

function stamp(d: Date): string {
  return d.toISOString().replace(/[:]/g, '-').replace(/\..+$/, '');
}

function writeResults(o: Options, f: BenchFile): { json: string; html: string } {
  const dir = resolve(o.out);
  mkdirSync(dir, { recursive: true });
  const base = join(dir, `${stamp(new Date(f.startedAt))}${f.kind === 'micro' ? '-micro' : ''}`);
  writeFileSync(`${base}.json`, JSON.stringify(f, null, 1) + '\n');
  writeFileSync(`${base}.html`, renderHtml(f));
  return { json: `${base}.json`, html: `${base}.html` };
}

function configOf(o: Options): Record<string, unknown> {
  const { help: _h, report: _r, ...rest } = o;
  return { ...rest, workloadDescriptions: Object.fromEntries(o.workloads.map((w) => [w, WORKLOAD_DESCRIPTIONS[w]])) };
}

async function micro(o: Options): Promise<void> {
  const startedAt = new Date().toISOString();
  const progress = new ProgressDisplay(() => ({ replies: 0, errors: 0 }));
  const m = await runMicro({ timeMs: o.quick ? 200 : 1000, log: (s) => progress.log(s), treeZnodes: o.quick ? 100_000 : 1_000_000 });
  const f: BenchFile = {
    schema: 1,
    kind: 'micro',
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: machine(),
    config: configOf(o),
    targets: [],
    runs: [],
    summary: [],
    micro: m,
    notes: m.notes,
  };
  process.stdout.write(renderText(f) + '\n');
  const p = writeResults(o, f);
  progress.log(`results: ${p.json}\n           ${p.html}`);
}

async function load(o: Options): Promise<void> {
  const startedAt = new Date().toISOString();
  const mach = machine();
  const notes: string[] = [];
  let lg: LoadGen | null = null;
  const progress = new ProgressDisplay(() => lg?.progress() ?? { replies: 0, errors: 0 });
  const targets: Target[] = [];
  const runs: WorkloadRun[] = [];
  const warmups: { target: string; step: StepResult }[] = [];
  let interrupted = false;
  const onSig = () => {
    interrupted = true;
    progress.log('interrupted: finishing the current phase, then stopping');
  };
  process.once('SIGINT', onSig);
  try {
    if (o.target === undefined) {
      const cfg = [...o.corralCfg];
      // large-tree: a snapshot during its create phase (ZooKeeper snapshots after a random
      // [snapCount/2 + 1, snapCount] txns), so the snapshot and the recovery are measured.
      if (o.workloads.includes('large-tree') && !cfg.some((l) => /^snapCount\s*=/.test(l)))
        {
        // At most ZooKeeper's default (100000), which every other workload then also runs with.
        const n = o.snapCount > 0 ? o.snapCount : Math.max(2, Math.min(100_000, Math.floor(o.keys / 2)));
        if (n !== 100_000) cfg.push(`snapCount=${n}`);
      }
      const what = `forceSync=${o.forceSync ? 'yes' : 'no'}${o.transport === 'ws' ? ', wsPort' : ''}${cfg.map((l) => `, ${l}`).join('')}`;
      if (o.topology === 'ensemble3') {
        progress.log(`starting a ${ensembleLabel(3, o.observers)} (${what})`);
        const c = await startCorralEnsemble({ size: 3, observers: o.observers, forceSync: o.forceSync, extraCfg: cfg.join('\n'), ws: o.transport === 'ws' });
        targets.push(c);
        const modes = await c.modes();
        progress.log(
          `Corral ${c.info.version} ensemble serving in ${c.info.startToServingMs} ms: ${c.members.map((m) => `s${m.id} ${modes.get(m.id)} on 127.0.0.1:${m.clientPort} (pid ${m.child?.pid})`).join(', ')}; sessions spread round-robin`,
        );
      } else {
        progress.log(`starting Corral (${what})`);
        const c = await startCorral({ forceSync: o.forceSync, extraCfg: cfg.join('\n'), ws: o.transport === 'ws' });
        targets.push(c);
        progress.log(
          `Corral ${c.info.version} ready on 127.0.0.1:${c.addresses[0].port}${c.wsAddresses ? ` (WebSocket ${c.wsAddresses[0].port})` : ''} (pid ${c.pid}) in ${c.info.startToReadyMs} ms`,
        );
      }
    }
    const ext = o.target ?? o.compare;
    if (ext !== undefined) {
      const t = await externalTarget('target', parseAddresses(ext));
      targets.push(t);
      progress.log(`target ${t.label}: ${t.info.version} (${t.info.process})${t.addresses.length > 1 ? `; sessions spread round-robin over ${t.addresses.length} addresses` : ''}`);
      if (t.info.ruok !== 'imok') notes.push(`${t.label} did not answer ruok with imok (${t.info.ruok}); continuing`);
      if (t.addresses.length > 1 && t.pid !== undefined)
        notes.push(
          `${t.label}: server CPU and memory are those of the process listening on the first address only (pid ${t.pid})` +
            (targets.some((x) => x.kind === 'corral-ensemble') ? `; Corral's are summed over its ${3 + o.observers} members, so the CPU-per-op and RSS figures of the two are not comparable` : ''),
        );
    }
    if (o.transport === 'ws') progress.log('load generator transport: WebSocket (protobuf corral.v1)');
    lg = LoadGen.start(o.threads);
    const ctx: Ctx = {
      opts: o,
      lg,
      progress,
      root: `/corral-bench-${process.pid}-${Date.now().toString(36)}`,
      prepared: new Map(),
    };
    // failover and startup start servers of their own: no warmup of the targets for them.
    if (o.workloads.some((w) => w !== 'failover' && w !== 'startup'))
      for (const t of targets) {
        const s = await warmTarget(ctx, t);
        if (s !== null) warmups.push({ target: t.id, step: s });
      }
    for (const w of o.workloads) {
      const plan: Plan = {};
      // failover repeats its kills itself (--failover-rounds), once per run.
      const rounds = w === 'failover' ? 1 : o.rounds;
      for (let round = 1; round <= rounds && !interrupted; round++) {
        try {
          runs.push(...(await runWorkload(ctx, w, targets, round, plan)));
        } catch (e) {
          const msg = `${w} round ${round} failed: ${(e as Error).message}`;
          notes.push(msg);
          progress.log(msg);
        }
      }
      if (interrupted) break;
    }
    for (const t of targets) {
      if (t.kind !== 'external') continue;
      try {
        const problems = await cleanup(ctx, t);
        for (const p of problems) notes.push(`cleanup on ${t.label}: ${p}`);
      } catch (e) {
        notes.push(`cleanup on ${t.label} failed: ${(e as Error).message}`);
      }
    }
  } finally {
    process.off('SIGINT', onSig);
    progress.stop();
    await lg?.close();
    for (const t of targets) await t.stop().catch((e: Error) => notes.push(`stopping ${t.label}: ${e.message}`));
  }

  // What the run says about itself.
  for (const r of runs) for (const n of r.notes) notes.push(`${r.workload} ${r.target} r${r.round}: ${n}`);
  for (const t of targets) {
    const failed = runs.filter((r) => r.target === t.id && r.failed !== undefined).length;
    if (failed > 0) notes.push(`${failed} workload run(s) on ${t.id} failed; their figures are partial or missing`);
  }
  const corral = targets.find((t) => t.id === 'corral');
  if (corral !== undefined) {
    const bytes = Number(corral.info.dataDirBytesAtStop ?? 0);
    const wrote = runs.some((r) => r.target === 'corral' && ['write', 'mix50', 'mix90', 'churn', 'large-tree', 'large-values'].includes(r.workload));
    if (wrote && bytes === 0)
      notes.push(
        `Corral's dataDir was empty after the run (forceSync=${o.forceSync ? 'yes' : 'no'} configured): this build does not persist writes (the CLI runs without a txn log), so its write figures are not durable writes and are not comparable with a server that fsyncs.`,
      );
    if (corral.logs && corral.logs.error > 0) notes.push(`Corral logged ${corral.logs.error} ERROR line(s); see the server log section`);
  }
  // How much the rest of the machine was doing during the measured windows.
  for (const t of targets) {
    const other = runs
      .filter((r) => r.target === t.id)
      .flatMap((r) => [r.closed, ...(r.open ?? []), ...Object.values(r.phases ?? {})])
      .map((s) => s?.machine?.otherCores)
      .filter((x): x is number => typeof x === 'number');
    if (other.length > 0) {
      const mean = other.reduce((a, b) => a + b, 0) / other.length;
      mach[`otherLoadCores_${t.id}`] = Math.round(mean * 100) / 100;
      if (mean > 0.25)
        notes.push(`other processes used ${mean.toFixed(2)} of ${cpus().length} cores on average (max ${Math.max(...other).toFixed(2)}) during ${t.id}'s measured windows: absolute figures are depressed, trust the paired ratios more`);
    }
  }
  const totalErrors = runs.reduce((a, r) => a + (r.metrics.errors?.value ?? 0), 0);
  if (totalErrors > 0) notes.push(`${totalErrors} failed or unanswered request(s) in total; see errorsByType in the JSON`);
  mach.loadAvgEnd = loadavg().map((x) => x.toFixed(2)).join(' ');
  const f: BenchFile = {
    schema: 1,
    kind: 'load',
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: mach,
    config: configOf(o),
    targets: targets.map((t) => ({
      id: t.id,
      label: t.label,
      kind: t.kind,
      addresses: t.addresses.map((a) => `${a.host}:${a.port}`).join(','),
      pid: t.pid,
      info: t.info,
      logs: t.logs ? { warn: t.logs.warn, error: t.logs.error, samples: t.logs.samples } : undefined,
    })),
    runs,
    warmups,
    summary: summarise(
      runs,
      targets.map((t) => t.id),
    ),
    notes,
  };
  process.stdout.write(renderText(f) + '\n');
  const p = writeResults(o, f);
  process.stderr.write(`results: ${p.json}\n         ${p.html}\n`);
}

async function main(): Promise<void> {
  let o: Options;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (o.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  if (o.report !== undefined) {
    const f = JSON.parse(readFileSync(o.report, 'utf8')) as BenchFile;
    process.stdout.write(renderText(f) + '\n');
    const html = o.report.replace(/\.json$/, '') + '.html';
    writeFileSync(html, renderHtml(f));
    process.stderr.write(`report: ${html}\n`);
    return;
  }
  if (o.micro) return micro(o);
  if (o.workloads.length === 0) o.workloads = [...DEFAULT_WORKLOADS];
  return load(o);
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (e: Error) => {
    process.stderr.write(`bench: ${e.stack ?? e.message}\n`);
    process.exit(1);
  },
);
