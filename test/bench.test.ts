// Smoke test of the benchmark suite's machinery (npm run bench): the load generator
// against an in-process Corral for about a second, and the result arithmetic. Speed is
// measured by the bench, never asserted here: only the structure of the figures.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../src/client/raw.js';
import { Histogram } from '../bench/loadgen/histogram.js';
import { LoadGen } from '../bench/loadgen/pool.js';
import { nowMs } from '../bench/loadgen/session.js';
import type { ConnectResult, KeySpace, PhaseResult, PhaseSpec } from '../bench/loadgen/types.js';
import { type BenchFile, renderHtml, renderText } from '../bench/report.js';
import { knee, mergePhase, type StepResult, summarise } from '../bench/results.js';
import { type Ctx, parseSnapshotLine, runWorkload } from '../bench/workloads.js';
import { DEFAULT_WORKLOADS, parseArgs } from '../bench/options.js';
import { ProgressDisplay } from '../bench/progress.js';
import { fourLetter, freePort, startCorralEnsemble, type Target } from '../bench/target.js';
import { connect } from '../src/client/index.js';
import { type StartTiming, zkrefHome } from '../bench/startup.js';
import { startServer, type TestServer } from './helpers/server.js';

let ts: TestServer;
let lg: LoadGen;
const KEYS: KeySpace = { kind: 'flat', prefix: '/bench/k', count: 50, pad: 3 };

beforeAll(async () => {
  ts = await startServer();
  const c = await RawClient.connect('127.0.0.1', ts.port);
  expect((await c.create('/bench')).err).toBe(0);
  expect((await c.create('/bench/churn')).err).toBe(0);
  c.close();
  // Inline: the engine runs in this thread (the worker build lives in dist/).
  lg = LoadGen.start(1, { inline: true });
  const [r] = await lg.all<ConnectResult>('connect', () => ({
    targets: [{ host: '127.0.0.1', port: ts.port }],
    count: 4,
    baseIndex: 0,
    sessionTimeoutMs: 30_000,
    connectTimeoutMs: 5000,
  }));
  expect(r.connected).toBe(4);
  expect(r.errors).toEqual({});
});

afterAll(async () => {
  await lg?.close();
  await ts?.stop();
});

function spec(p: Partial<PhaseSpec>): PhaseSpec {
  return {
    mode: 'closed',
    mix: { get: 1 },
    keys: KEYS,
    valueSize: 100,
    depth: 8,
    warmupMs: 0,
    durationMs: 0,
    rate: 0,
    startAt: nowMs() + 20,
    drainMs: 2000,
    churnPrefix: '/bench/churn/e-',
    seed: 42,
    ...p,
  };
}

async function phase(p: Partial<PhaseSpec>, label: string): Promise<StepResult> {
  const parts = await lg.all<PhaseResult>('phase', () => spec(p));
  const s = spec(p);
  return mergePhase(label, s.mode, parts, { sessions: 4, depth: s.depth, durationS: s.durationMs / 1000, offeredRate: s.mode === 'open' ? s.rate : undefined });
}

function expectOrdered(s: StepResult): void {
  const l = s.latency;
  expect(l.count).toBeGreaterThan(0);
  expect(l.min).toBeLessThanOrEqual(l.p50);
  expect(l.p50).toBeLessThanOrEqual(l.p90);
  expect(l.p90).toBeLessThanOrEqual(l.p99);
  expect(l.p99).toBeLessThanOrEqual(l.p999);
  expect(l.p999).toBeLessThanOrEqual(l.max);
}

describe('bench load generator', () => {
  it('creates a keyspace with a sequence phase', async () => {
    const s = await phase({ mode: 'sequence', sequence: { op: 'create', from: 0, to: KEYS.count, tolerate: [-110] } }, 'setup');
    expect(s.requests).toBe(KEYS.count);
    expect(s.replies).toBe(KEYS.count);
    expect(s.errors).toBe(0);
    expect(s.perOp.create.count).toBe(KEYS.count);
  });

  it('runs a closed-loop read phase and reports sane figures', async () => {
    const s = await phase({ mode: 'closed', warmupMs: 200, durationMs: 1000 }, 'read');
    expect(s.throughput).toBeGreaterThan(0);
    expect(s.errors).toBe(0);
    expect(s.errorsByType).toEqual({});
    expect(s.warmupErrors).toEqual({});
    // Every counted request was answered (none dropped), all of them getData.
    expect(s.replies).toBe(s.requests);
    expect(s.perOp.getData.count).toBe(s.replies);
    expect(s.latency.count).toBe(s.replies);
    expectOrdered(s);
    expect(s.loadgen.elu[0]).toBeGreaterThan(0);
  });

  it('runs an open-loop step at a fixed rate', async () => {
    const s = await phase({ mode: 'open', rate: 2000, durationMs: 500, mix: { get: 0.5, set: 0.5 } }, 'open');
    // 2000/s for 0.5 s: about 1000 requests scheduled, every one answered or counted failed.
    expect(s.requests).toBeGreaterThan(900);
    expect(s.requests).toBeLessThanOrEqual(1001);
    expect(s.replies + s.errors).toBeGreaterThanOrEqual(s.requests);
    expect(s.errors).toBe(0);
    expect(s.throughput).toBeGreaterThan(0);
    expect(s.loadgen.sendLag?.count).toBe(s.requests);
    expectOrdered(s);
  });

  it('counts churn as create + delete and failed requests as errors', async () => {
    const churn = await phase({ mode: 'closed', durationMs: 300, mix: { churn: 1 }, depth: 2 }, 'churn');
    expect(churn.errors).toBe(0);
    expect(churn.perOp.create.count).toBeGreaterThan(0);
    expect(churn.perOp.delete.count).toBeGreaterThan(0);
    // Keys that do not exist: every reply is an error, and every one is counted.
    const missing = await phase({ mode: 'closed', durationMs: 300, keys: { kind: 'flat', prefix: '/bench/none', count: 5, pad: 1 } }, 'missing');
    expect(missing.replies).toBeGreaterThan(0);
    expect(missing.errors).toBe(missing.replies);
    expect(missing.errorsByType).toEqual({ 'getData:NONODE': missing.replies });
    expect(missing.throughput).toBe(0);
  });
});

describe('bench load generator over WebSocket (--transport ws)', () => {
  let wts: TestServer;
  let wlg: LoadGen;
  const WKEYS: KeySpace = { kind: 'flat', prefix: '/wsbench/k', count: 20, pad: 2 };

  beforeAll(async () => {
    wts = await startServer('wsPort=0');
    const c = await RawClient.connect('127.0.0.1', wts.port);
    expect((await c.create('/wsbench')).err).toBe(0);
    expect((await c.create('/wsbench/churn')).err).toBe(0);
    c.close();
    wlg = LoadGen.start(1, { inline: true });
    const [r] = await wlg.all<ConnectResult>('connect', () => ({
      targets: [{ host: '127.0.0.1', port: wts.wsPort!, transport: 'ws' as const }],
      count: 3,
      baseIndex: 0,
      sessionTimeoutMs: 30_000,
      connectTimeoutMs: 5000,
    }));
    expect(r.errors).toEqual({});
    expect(r.connected).toBe(3);
  });

  afterAll(async () => {
    await wlg?.close();
    await wts?.stop();
  });

  async function wphase(p: Partial<PhaseSpec>, label: string): Promise<StepResult> {
    const s = spec({ keys: WKEYS, churnPrefix: '/wsbench/churn/e-', ...p });
    const parts = await wlg.all<PhaseResult>('phase', () => s);
    return mergePhase(label, s.mode, parts, { sessions: 3, depth: s.depth, durationS: s.durationMs / 1000, offeredRate: s.mode === 'open' ? s.rate : undefined });
  }

  it('creates, reads, writes and churns with pipelined protobuf frames, every reply matched', async () => {
    const setup = await wphase({ mode: 'sequence', sequence: { op: 'create', from: 0, to: WKEYS.count } }, 'setup');
    expect(setup.errors).toBe(0);
    expect(setup.perOp.create.count).toBe(WKEYS.count);
    const mix = await wphase({ mode: 'closed', durationMs: 500, mix: { get: 0.5, set: 0.5 } }, 'mix');
    expect(mix.errors).toBe(0);
    expect(mix.errorsByType).toEqual({});
    expect(mix.replies).toBe(mix.requests);
    expect(mix.perOp.getData.count).toBeGreaterThan(0);
    expect(mix.perOp.setData.count).toBeGreaterThan(0);
    expectOrdered(mix);
    const churn = await wphase({ mode: 'closed', durationMs: 300, mix: { churn: 1 }, depth: 2 }, 'churn');
    expect(churn.errors).toBe(0);
    expect(churn.perOp.delete.count).toBeGreaterThan(0);
    const open = await wphase({ mode: 'open', rate: 1000, durationMs: 300, mix: { get: 1 } }, 'open');
    expect(open.errors).toBe(0);
    expect(open.replies).toBe(open.requests);
    // Errors come back as errors: NONODE for keys that do not exist.
    const missing = await wphase({ mode: 'closed', durationMs: 200, keys: { kind: 'flat', prefix: '/wsbench/none', count: 3, pad: 1 } }, 'missing');
    expect(missing.replies).toBeGreaterThan(0);
    expect(missing.errorsByType).toEqual({ 'getData:NONODE': missing.replies });
  });
});

describe('bench arithmetic and reports', () => {
  it('parses the flags of the new workloads and the snapshot log line', () => {
    expect(parseArgs(['--transport', 'ws']).transport).toBe('ws');
    expect(() => parseArgs(['--transport', 'udp'])).toThrow();
    expect(() => parseArgs(['--transport', 'ws', '--target', '127.0.0.1:2181'])).toThrow(/--ws-port/);
    expect(parseArgs(['--workloads', 'startup', '--startups', '3']).startups).toBe(3);
    const sn = parseSnapshotLine('2026-11-22 [INFO] snapshot 5 at zxid 0x1e8a3: 500123 znodes, 2 sessions, 61234567 bytes in 1234 ms (longest slice 12.5 ms)', 1000);
    expect(sn).toEqual({ znodes: 500123, bytes: 61234567, durationMs: 1234, sliceMs: 12.5, loggedAt: 1000 });
    expect(parseSnapshotLine('recovered zxid 0x10: 3 znodes')).toBeNull();
  });

  it('parses the topology and failover flags', () => {
    const d = parseArgs([]);
    expect(d.topology).toBe('standalone');
    expect(d.failoverSizes).toEqual([3, 5]);
    expect(d.failoverRounds).toBe(5);
    expect(d.workloads).not.toContain('failover');
    expect(DEFAULT_WORKLOADS).not.toContain('failover');
    const o = parseArgs(['--topology', 'ensemble3', '--workloads', 'mix90,failover', '--failover-sizes', '3,5,7', '--failover-rounds=2', '--failover-rate', '400']);
    expect(o.topology).toBe('ensemble3');
    expect(o.workloads).toEqual(['mix90', 'failover']);
    expect(o.failoverSizes).toEqual([3, 5, 7]);
    expect(o.failoverRounds).toBe(2);
    expect(o.failoverRate).toBe(400);
    expect(parseArgs(['--topology', 'ensemble3', '--compare', '127.0.0.1:1,127.0.0.1:2']).compare).toBe('127.0.0.1:1,127.0.0.1:2');
    expect(() => parseArgs(['--topology', 'ensemble5'])).toThrow(/--topology/);
    expect(d.observers).toBe(0);
    expect(parseArgs(['--topology', 'ensemble3', '--observers', '2']).observers).toBe(2);
    expect(parseArgs(['--topology=ensemble3', '--observers=0']).observers).toBe(0);
    expect(() => parseArgs(['--observers', '1'])).toThrow(/--topology ensemble3/);
    expect(() => parseArgs(['--topology', 'ensemble3', '--observers', '-1'])).toThrow(/--observers/);
    expect(() => parseArgs(['--topology', 'ensemble3', '--target', '127.0.0.1:2181'])).toThrow(/--topology/);
    expect(() => parseArgs(['--failover-sizes', '2'])).toThrow(/--failover-sizes/);
    expect(() => parseArgs(['--failover-sizes', ''])).toThrow(/--failover-sizes/);
    expect(() => parseArgs(['--failover-rounds', '0'])).toThrow();
  });

  it('histogram quantiles are within a percent and ordered', () => {
    const h = new Histogram();
    for (let us = 1; us <= 100_000; us++) h.recordUs(us);
    expect(Math.abs(h.quantileUs(0.5) - 50_000) / 50_000).toBeLessThan(0.01);
    expect(Math.abs(h.quantileUs(0.99) - 99_000) / 99_000).toBeLessThan(0.01);
    expect(h.quantileUs(1)).toBe(100_000);
    const m = Histogram.from(h.data()).merge(h.data());
    expect(m.n).toBe(200_000);
    expect(m.quantileUs(0.5)).toBe(h.quantileUs(0.5));
  });

  it('finds the knee and renders the table and the HTML report', () => {
    const step = (rate: number, achieved: number, p99: number): StepResult => ({
      mode: 'open',
      label: `open ${rate}`,
      offeredRate: rate,
      sessions: 1,
      depth: 1,
      durationS: 1,
      requests: rate,
      replies: rate,
      ok: achieved,
      throughput: achieved,
      errors: 0,
      errorsByType: {},
      warmupErrors: {},
      tolerated: {},
      latency: { count: rate, mean: p99 / 3, min: 0.1, p50: p99 / 3, p90: p99 / 2, p99, p999: p99 * 1.2, max: p99 * 2 },
      perOp: {},
      loadgen: { elu: [0.5], maxBacklog: 0, maxSendLagMs: 0, sessionsLost: 0 },
    });
    const steps = [step(1000, 1000, 1), step(2000, 2000, 4), step(4000, 3000, 50)];
    expect(knee(steps, 10).rate).toBe(2000);
    expect(knee(steps, 0.5).rate).toBeNull();
    const closed = { ...step(0, 3500, 20), mode: 'closed' as const, offeredRate: undefined };
    const runs = ['a', 'b'].flatMap((target, i) =>
      [1, 2].map((round) => ({
        workload: 'read',
        target,
        round,
        startedAt: '',
        closed,
        open: steps,
        knee: knee(steps, 10),
        metrics: { 'throughput (closed)': { value: 1000 * (i + round), unit: 'ops/s', better: 'higher' as const } },
        connectErrors: {},
        notes: [],
      })),
    );
    const summary = summarise(runs, ['a', 'b']);
    expect(summary[0].perTarget.a?.median).toBe(1500);
    expect(summary[0].ratio?.median).toBeCloseTo((1 / 2 + 2 / 3) / 2, 5);
    const f: BenchFile = {
      schema: 1,
      kind: 'load',
      startedAt: new Date(0).toISOString(),
      finishedAt: new Date(0).toISOString(),
      machine: { cpuModel: 'test', cores: 1 },
      config: { sloMs: 10 },
      targets: [
        { id: 'a', label: 'A', kind: 'external', addresses: 'x:1', info: {} },
        { id: 'b', label: 'B', kind: 'external', addresses: 'x:2', info: {} },
      ],
      runs,
      summary,
      notes: ['a note'],
    };
    const text = renderText(f);
    expect(text).toContain('read');
    expect(text).toContain('a/b');
    const html = renderHtml(f);
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/<script src|<link /);
  });
});

describe('bench ensemble topology with observers (--topology ensemble3 --observers 1)', () => {
  it('starts 3 voters and an observer, spreads sessions over all four, and answers every request', async () => {
    const ens = await startCorralEnsemble({ size: 3, observers: 1, forceSync: false });
    const elg = LoadGen.start(1, { inline: true });
    try {
      expect(ens.label).toBe('Corral ensemble of 3 + 1 observer');
      expect(ens.addresses).toHaveLength(4);
      const modes = await ens.modes();
      expect(modes.get(4)).toBe('observer');
      expect([1, 2, 3].map((id) => modes.get(id)).sort()).toEqual(['follower', 'follower', 'leader']);
      const leader = [1, 2, 3].find((id) => modes.get(id) === 'leader')!;
      // The observer serves once synced; the leader counts it when its ack of the sync arrives.
      let mntr = '';
      for (let i = 0; i < 100 && !/^zk_synced_observers\t1$/m.test(mntr); i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, 50));
        mntr = await fourLetter(ens.address(leader), 'mntr');
      }
      expect(mntr).toMatch(/^zk_synced_observers\t1$/m);

      const admin = await connect(`127.0.0.1:${ens.address(leader).port}`);
      await admin.create('/bench');
      const [r] = await elg.all<ConnectResult>('connect', () => ({ targets: ens.addresses, count: 8, baseIndex: 0, sessionTimeoutMs: 30_000, connectTimeoutMs: 5000 }));
      expect(r.connected).toBe(8);
      expect(r.errors).toEqual({});
      // Round-robin: two of the eight sessions are the observer's (plus mntr's own connection).
      expect(await fourLetter(ens.address(4), 'mntr')).toMatch(/^zk_num_alive_connections\t3$/m);
      const run = async (p: Partial<PhaseSpec>, label: string) => {
        const s = spec(p);
        return mergePhase(label, s.mode, await elg.all<PhaseResult>('phase', () => s), { sessions: 8, depth: s.depth, durationS: s.durationMs / 1000 });
      };
      const setup = await run({ mode: 'sequence', sequence: { op: 'create', from: 0, to: KEYS.count, tolerate: [] } }, 'setup');
      expect(setup.errors).toBe(0);
      const mix = await run({ mode: 'closed', durationMs: 500, mix: { get: 0.5, set: 0.5 }, depth: 4 }, 'mix');
      expect(mix.errors).toBe(0);
      expect(mix.replies).toBe(mix.requests);
      expect(mix.perOp.setData.count).toBeGreaterThan(0);
      expect(mix.perOp.getData.count).toBeGreaterThan(0);

      // A write through the observer is the ensemble's: the leader's sessions read it.
      const viaObserver = await connect(`127.0.0.1:${ens.address(4).port}`);
      await viaObserver.create('/bench/through-observer', 'o');
      await admin.sync('/bench/through-observer');
      expect(Buffer.from((await admin.getData('/bench/through-observer')).data).toString()).toBe('o');
      await viaObserver.close();
      await admin.close();
    } finally {
      await elg.close();
      await ens.stop();
    }
  }, 60_000);
});

describe('bench failover workload', () => {
  it('kills the leader of a 3-member Corral ensemble once and reports the failover times', async () => {
    const opts = parseArgs(['--quick', '--workloads', 'failover', '--failover-sizes', '3', '--failover-rounds', '1', '--failover-rate', '300']);
    const flg = LoadGen.start(1, { inline: true });
    const ctx: Ctx = {
      opts,
      lg: flg,
      progress: new ProgressDisplay(() => flg.progress(), process.stderr, false),
      root: `/bench-failover-${process.pid}`,
      prepared: new Map(),
    };
    // The failover ensembles are the bench's own; a server it did not start is never killed.
    const corral: Target = { id: 'corral', label: 'Corral', addresses: [], kind: 'corral-child', info: {}, stop: async () => {} };
    const ext: Target = { id: 'target', label: '127.0.0.1:1', addresses: [{ host: '127.0.0.1', port: 1 }], kind: 'external', info: {}, stop: async () => {} };
    try {
      const runs = await runWorkload(ctx, 'failover', [corral, ext], 1, {});
      expect(runs.map((r) => r.target)).toEqual(['corral', 'target']);
      const [c, t] = runs;
      expect(c.failed, c.notes.join('\n')).toBeUndefined();
      for (const m of ['3 members: kill → first write acked (median)', '3 members: kill → new leader in srvr (median)', '3 members: restart → rejoined (median)']) {
        const v = c.metrics[m]?.value;
        expect(typeof v === 'number' && Number.isFinite(v) && v > 0, `${m} = ${v}`).toBe(true);
      }
      expect(c.metrics['errors'].value).toBeTypeOf('number');
      const size = (c.extra as { sizes: { members: number; rounds: { killed: number; newLeader: number | null }[] }[] }).sizes[0];
      expect(size.members).toBe(3);
      expect(size.rounds).toHaveLength(1);
      expect(size.rounds[0].newLeader).not.toBe(size.rounds[0].killed);
      expect(Object.keys(t.metrics)).toEqual([]);
      expect(t.notes.join(' ')).toMatch(/failover not measured on 127\.0\.0\.1:1/);
      const f: BenchFile = {
        schema: 1,
        kind: 'load',
        startedAt: new Date(0).toISOString(),
        finishedAt: new Date(0).toISOString(),
        machine: { cpuModel: 'test', cores: 1 },
        config: { sloMs: 10 },
        targets: [{ id: 'corral', label: 'Corral', kind: 'corral-child', addresses: '', info: {} }],
        runs,
        summary: summarise(runs, ['corral', 'target']),
        notes: [],
      };
      expect(renderText(f)).toMatch(/Failover \(corral\)[\s\S]*kill → first write acked/);
      expect(renderHtml(f)).toContain('kill → new leader (srvr)');
    } finally {
      await flg.close();
    }
  }, 30_000);
});

describe('bench write-path script (node dist/bench/write-path.js)', () => {
  it('times lone setData against the floor server and Corral, with the log\'s share', () => {
    const js = join(__dirname, '..', 'dist', 'bench', 'write-path.js');
    const r = spawnSync(process.execPath, [js, '--writes', '50', '--rounds', '1'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    // floor, Corral, Corral's log, and the rest: four positive medians.
    const row = r.stdout.split('\n').find((l) => l.trim().startsWith('median'));
    const nums = (row ?? '').trim().split(/\s+/).slice(1).map(Number);
    expect(nums).toHaveLength(4);
    for (const n of nums.slice(0, 3)) expect(n).toBeGreaterThan(0);
    // Corral's round trip holds its log's commit.
    expect(nums[1]).toBeGreaterThan(nums[2]!);
  }, 90_000);
});

describe('bench startup workload', () => {
  // Apache ZooKeeper is timed only where zkref and Debian's zookeeper package are here.
  const zkref = existsSync(join(zkrefHome(), 'start.sh')) && existsSync('/usr/share/zookeeper');

  it('times Corral, and Apache ZooKeeper the same way when zkref is here, from spawn to a served request', async () => {
    const args = ['--workloads', 'startup', '--startups', '2'];
    const scratch = mkdtempSync(join(tmpdir(), 'corral-bench-startup-'));
    if (zkref) args.push('--startup-zkref', scratch, '--startup-zk-port', String(await freePort()));
    else console.log('bench startup: zkref or the zookeeper package is missing, timing Corral only');
    const opts = parseArgs(args);
    const lg = LoadGen.start(1, { inline: true });
    const ctx: Ctx = { opts, lg, progress: new ProgressDisplay(() => lg.progress(), process.stderr, false), root: `/bench-startup-${process.pid}`, prepared: new Map() };
    const corral: Target = { id: 'corral', label: 'Corral', addresses: [], kind: 'corral-child', info: {}, stop: async () => {} };
    try {
      const [run] = await runWorkload(ctx, 'startup', [corral], 1, {});
      expect(run!.failed, run!.notes.join('\n')).toBeUndefined();
      const m = (k: string) => run!.metrics[k]?.value as number;
      expect(m('spawn to serving, min')).toBeGreaterThan(0);
      expect(m('spawn to serving, max')).toBeGreaterThanOrEqual(m('spawn to serving, min'));
      expect(m('spawn to first write acked, median')).toBeGreaterThanOrEqual(m('spawn to serving, min'));
      expect(m('CPU to serving, median')).toBeGreaterThan(0);
      const extra = run!.extra as { corral: unknown[]; zookeeper?: unknown[] };
      expect(extra.corral).toHaveLength(2);
      if (zkref) {
        expect(extra.zookeeper).toHaveLength(2);
        expect(m('ZooKeeper spawn to serving, median')).toBeGreaterThan(0);
        const c = extra.corral as StartTiming[];
        const z = extra.zookeeper as StartTiming[];
        const ratios = [0, 1].map((i) => c[i]!.servingMs / z[i]!.servingMs);
        expect(m('Corral / ZooKeeper, paired median')).toBeCloseTo((ratios[0]! + ratios[1]!) / 2);
        // Every ZooKeeper it started is stopped.
        expect(readFileSync(join(scratch, 'pids'), 'utf8').trim()).toBe('');
      }
    } finally {
      await lg.close();
      rmSync(scratch, { recursive: true, force: true });
    }
  }, 60_000);
});
