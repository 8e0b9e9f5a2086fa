// Rendering of a results file: the stdout tables and a self-contained HTML report
// (inline SVG latency-vs-throughput curves, no scripts or fonts from the network).

import type { FailoverSize, Stats } from './failover.js';
import type { MicroReport } from './micro.js';
import type { StepResult, SummaryRow, WorkloadRun } from './results.js';

export interface BenchFile {
  schema: 1;
  kind: 'load' | 'micro';
  startedAt: string;
  finishedAt: string;
  machine: Record<string, unknown>;
  config: Record<string, unknown>;
  targets: { id: string; label: string; kind: string; addresses: string; pid?: number; info: Record<string, unknown>; logs?: { warn: number; error: number; samples: string[] } }[];
  runs: WorkloadRun[];
  /** Unmeasured whole-target warmups (JIT), kept for reference. */
  warmups?: { target: string; step: StepResult }[];
  summary: SummaryRow[];
  micro?: MicroReport;
  notes: string[];
}

// --- text -------------------------------------------------------------------------------

function table(head: string[], rows: string[][], right: boolean[] = []): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (right[i] ? (c ?? '').padStart(w[i]) : (c ?? '').padEnd(w[i]))).join('  ').trimEnd();
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

export function num(x: number | null | undefined, unit = ''): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-';
  let s: string;
  const a = Math.abs(x);
  if (unit === 'ops/s' || unit === 'count' || a >= 1000) s = Math.round(x).toLocaleString('en-US');
  else if (a >= 100) s = x.toFixed(0);
  else if (a >= 10) s = x.toFixed(1);
  else s = x.toFixed(2);
  return s;
}

function ratioCell(r: SummaryRow['ratio']): string {
  if (!r) return '-';
  return r.n > 1 ? `${r.median.toFixed(2)} (${r.min.toFixed(2)}–${r.max.toFixed(2)})` : r.median.toFixed(2);
}

function cell(s: { median: number; min: number; max: number; n: number } | null, unit: string): string {
  if (!s) return '-';
  return s.n > 1 ? `${num(s.median, unit)} [${num(s.min, unit)}–${num(s.max, unit)}]` : num(s.median, unit);
}

function medianStep(steps: StepResult[]): StepResult {
  const s = [...steps].sort((a, b) => a.throughput - b.throughput);
  return s[Math.floor((s.length - 1) / 2)];
}

export function renderText(f: BenchFile): string {
  const out: string[] = [];
  const targets = f.targets.map((t) => t.id);
  if (f.kind === 'micro' && f.micro) {
    out.push(microTable(f.micro));
    return out.join('\n');
  }
  const m = f.machine;
  out.push(`machine: ${m.cpuModel} x${m.cores}, ${m.memGB} GB, Node ${m.node}, Corral ${m.corralVersion}, load avg at start ${m.loadAvgStart}`);
  for (const t of f.targets) out.push(`${t.id}: ${t.label} (${t.kind}${t.pid ? `, pid ${t.pid}` : ''}) ${t.info.version ?? ''}`);
  out.push('');

  // Saturation (closed loop) per run, medians when there are rounds.
  const rw = f.runs.filter((r) => r.closed !== undefined);
  if (rw.length > 0) {
    const rows: string[][] = [];
    for (const w of [...new Set(rw.map((r) => r.workload))]) {
      for (const t of targets) {
        const runs = rw.filter((r) => r.workload === w && r.target === t);
        if (runs.length === 0) continue;
        const s = medianStep(runs.map((r) => r.closed!));
        const knees = runs.map((r) => r.knee?.rate).filter((x): x is number => typeof x === 'number').sort((a, b) => a - b);
        const errs = runs.reduce((a, r) => a + (r.metrics.errors?.value ?? 0), 0);
        rows.push([
          w,
          t,
          num(s.throughput, 'ops/s'),
          num(s.latency.p50),
          num(s.latency.p90),
          num(s.latency.p99),
          num(s.latency.p999),
          num(s.latency.max),
          String(errs),
          knees.length > 0 ? num(knees[Math.floor((knees.length - 1) / 2)], 'ops/s') : '-',
          s.server?.cpuUsPerOp != null ? num(s.server.cpuUsPerOp) : '-',
          s.server ? num(s.server.cpuCores) : '-',
        ]);
      }
    }
    out.push(`Saturation: closed loop, ${rw[0].closed!.sessions} sessions x ${rw[0].closed!.depth} outstanding (latency ms; median run of ${Math.max(...rw.map((r) => r.round))})`);
    out.push(
      table(
        ['workload', 'target', 'ops/s', 'p50', 'p90', 'p99', 'p99.9', 'max', 'errors*', `knee p99<=${f.config.sloMs}ms`, 'srv µs/op', 'srv cores'],
        rows,
        [false, false, true, true, true, true, true, true, true, true, true, true],
      ),
    );
    out.push('* errors: all phases of the workload, all rounds (server errors, unfinished, lost connections)');
    out.push('');

    // Open-loop steps.
    const srows: string[][] = [];
    for (const w of [...new Set(rw.map((r) => r.workload))]) {
      for (const t of targets) {
        const runs = rw.filter((r) => r.workload === w && r.target === t && r.open);
        if (runs.length === 0) continue;
        const rates = [...new Set(runs.flatMap((r) => r.open!.map((s) => s.offeredRate!)))].sort((a, b) => a - b);
        for (const rate of rates) {
          const steps = runs.map((r) => r.open!.find((s) => s.offeredRate === rate)).filter((s): s is StepResult => s !== undefined);
          const ran = steps.filter((s) => s.skipped === undefined);
          if (ran.length === 0) {
            srows.push([w, t, num(rate, 'ops/s'), 'skipped', '', '', '', '', '', '']);
            continue;
          }
          const s = medianStep(ran);
          srows.push([
            w,
            t,
            num(rate, 'ops/s'),
            num(s.throughput, 'ops/s'),
            num(s.latency.p50),
            num(s.latency.p90),
            num(s.latency.p99),
            num(s.latency.p999),
            num(s.latency.max),
            String(ran.reduce((a, x) => a + x.errors, 0)) + (ran.length < steps.length ? ` (${steps.length - ran.length} skipped)` : ''),
          ]);
        }
      }
    }
    out.push('Open loop: fixed-rate steps, latency from each request\'s scheduled send time (ms; median run)');
    out.push(table(['workload', 'target', 'rate', 'achieved', 'p50', 'p90', 'p99', 'p99.9', 'max', 'errors'], srows, [false, false, true, true, true, true, true, true, true, false]));
    out.push('');
  }

  const fo = failoverText(f);
  if (fo !== '') out.push(fo, '');

  // Everything else: the summary rows.
  const rows = f.summary.map((r) => {
    const cells = [r.workload, r.metric + (r.unit ? ` (${r.unit})` : '')];
    for (const t of targets) cells.push(cell(r.perTarget[t] ?? null, r.unit));
    if (targets.length === 2) cells.push(ratioCell(r.ratio) + (r.ratio ? (r.better === 'higher' ? ' ↑' : ' ↓') : ''));
    return cells;
  });
  const head = ['workload', 'metric', ...targets.map((t) => `${t} median [min–max]`)];
  if (targets.length === 2) head.push(`${targets[0]}/${targets[1]} median (min–max)`);
  out.push(`Summary (${Math.max(1, ...f.runs.map((r) => r.round))} round(s)${targets.length === 2 ? '; ratio per round, paired A/B; ↑ higher is better for Corral, ↓ lower is better' : ''})`);
  out.push(table(head, rows, [false, false, ...targets.map(() => true), true]));
  if (f.micro) {
    out.push('');
    out.push(microTable(f.micro));
  }
  const logs = f.targets.filter((t) => t.logs && (t.logs.warn > 0 || t.logs.error > 0));
  for (const t of logs) {
    out.push('');
    out.push(`${t.id} server log: ${t.logs!.warn} WARN, ${t.logs!.error} ERROR lines; first ones:`);
    for (const l of t.logs!.samples.slice(0, 8)) out.push(`  ${l}`);
  }
  if (f.notes.length > 0) {
    out.push('');
    out.push('Notes:');
    for (const n of f.notes) out.push(`  - ${n}`);
  }
  return out.join('\n');
}

function statCell(s: Stats | null | undefined): string {
  if (!s) return '-';
  return s.n > 1 ? `${num(s.median)} [${num(s.min)}–${num(s.max)}]` : num(s.median);
}

/** The failover runs' per-size figures (from run.extra.sizes). */
export function failoverSizes(f: BenchFile): { target: string; rate: number; sizes: FailoverSize[] }[] {
  return f.runs
    .filter((r) => r.workload === 'failover' && r.extra !== undefined && Array.isArray((r.extra as { sizes?: unknown }).sizes))
    .map((r) => ({ target: r.target, rate: Number((r.extra as { rate?: number }).rate ?? 0), sizes: (r.extra as { sizes: FailoverSize[] }).sizes }));
}

const FAILOVER_HEAD = ['members', 'rounds', 'kill → first write acked', 'kill → new leader (srvr)', 'restart → rejoined', 'writes failed during failover', 'errors outside'];

function failoverRows(sizes: FailoverSize[]): string[][] {
  return sizes.map((s) => [
    String(s.members),
    String(s.rounds.length) + (s.failed ? ' (failed)' : ''),
    statCell(s.firstWrite),
    statCell(s.newLeader),
    statCell(s.rejoin),
    num(s.errorsDuringFailover, 'count'),
    num(s.errorsOutsideFailover, 'count'),
  ]);
}

function failoverText(f: BenchFile): string {
  const all = failoverSizes(f);
  if (all.length === 0) return '';
  const out: string[] = [];
  for (const x of all) {
    out.push(`Failover (${x.target}): SIGKILL of the leader under ${num(x.rate, 'ops/s')} setData/s on every member (ms, median [min–max] over the rounds)`);
    out.push(table(FAILOVER_HEAD, failoverRows(x.sizes), [true, true, true, true, true, true, true]));
    for (const s of x.sizes) if (s.failed) out.push(`  ${s.members} members: ${s.failed.split('\n')[0]}`);
  }
  return out.join('\n');
}

export function microTable(m: MicroReport): string {
  const rows = m.results.map((r) => [
    r.group,
    r.name,
    num(r.opsPerSec, 'ops/s'),
    r.perCall > 1 ? num(r.opsPerSec * r.perCall, 'ops/s') : '',
    num(r.meanNs / 1000),
    num(r.p99Ns / 1000),
    `±${r.rme.toFixed(1)}%`,
  ]);
  const t = table(['group', 'micro-benchmark', 'calls/s', 'items/s', 'mean µs', 'p99 µs', 'rme'], rows, [false, false, true, true, true, true, true]);
  return ['Micro-benchmarks (tinybench, one thread, no I/O except lmdb)', t, ...m.notes.map((n) => `  note: ${n}`)].join('\n');
}

// --- HTML --------------------------------------------------------------------------------

const esc = (s: unknown) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const COLORS = ['#1f6fb4', '#d2462f', '#2a9d55', '#8e5bb5'];

function niceTicks(max: number): number[] {
  if (max <= 0) return [0];
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = 0; v <= max + 1e-9; v += step) out.push(v);
  return out;
}

function compact(x: number): string {
  if (x >= 1e6) return `${+(x / 1e6).toFixed(1)}M`;
  if (x >= 1e3) return `${+(x / 1e3).toFixed(1)}k`;
  return String(+x.toFixed(2));
}

/** Latency (log y) vs achieved throughput (x) of the open-loop steps, p50 dashed, p99 solid. */
export function curveSvg(runs: WorkloadRun[], targets: string[], sloMs: number): string {
  const W = 720;
  const H = 380;
  const m = { l: 64, r: 170, t: 16, b: 46 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  type Pt = { x: number; p50: number; p99: number };
  const series: { target: string; round: number; pts: Pt[]; closed?: Pt }[] = [];
  for (const r of runs) {
    const pts = (r.open ?? []).filter((s) => s.skipped === undefined && s.replies > 0).map((s) => ({ x: s.throughput, p50: s.latency.p50, p99: s.latency.p99 }));
    const c = r.closed;
    series.push({ target: r.target, round: r.round, pts, closed: c ? { x: c.throughput, p50: c.latency.p50, p99: c.latency.p99 } : undefined });
  }
  const all = series.flatMap((s) => [...s.pts, ...(s.closed ? [s.closed] : [])]);
  if (all.length === 0) return '<p>(no data)</p>';
  const xMax = Math.max(...all.map((p) => p.x)) * 1.05 || 1;
  const ys = all.flatMap((p) => [p.p50, p.p99]).filter((y) => y > 0).concat([sloMs]);
  const yLo = 10 ** Math.floor(Math.log10(Math.max(0.01, Math.min(...ys))));
  const yHi = 10 ** Math.ceil(Math.log10(Math.max(...ys) * 1.01));
  const X = (x: number) => m.l + (x / xMax) * pw;
  const Y = (y: number) => m.t + ph - ((Math.log10(Math.max(y, yLo)) - Math.log10(yLo)) / (Math.log10(yHi) - Math.log10(yLo))) * ph;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="#fff" stroke="#999"/>`);
  for (let d = yLo; d <= yHi * 1.0001; d *= 10) {
    for (const k of [1, 2, 5]) {
      const v = d * k;
      if (v > yHi * 1.0001) break;
      const y = Y(v);
      parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y}" y2="${y}" stroke="${k === 1 ? '#ddd' : '#f0f0f0'}"/>`);
      parts.push(`<text x="${m.l - 6}" y="${y + 4}" text-anchor="end" fill="#444">${compact(v)}</text>`);
    }
  }
  for (const v of niceTicks(xMax)) {
    const x = X(v);
    parts.push(`<line x1="${x}" x2="${x}" y1="${m.t}" y2="${m.t + ph}" stroke="#eee"/>`);
    parts.push(`<text x="${x}" y="${m.t + ph + 16}" text-anchor="middle" fill="#444">${compact(v)}</text>`);
  }
  parts.push(`<text x="${m.l + pw / 2}" y="${H - 8}" text-anchor="middle">achieved throughput (ops/s)</text>`);
  parts.push(`<text x="14" y="${m.t + ph / 2}" text-anchor="middle" transform="rotate(-90 14 ${m.t + ph / 2})">latency (ms, log)</text>`);
  const ySlo = Y(sloMs);
  parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${ySlo}" y2="${ySlo}" stroke="#e0a000" stroke-dasharray="6 3"/>`);
  parts.push(`<text x="${m.l + pw - 4}" y="${ySlo - 4}" text-anchor="end" fill="#b07d00">SLO p99 ${sloMs} ms</text>`);
  for (const s of series) {
    const color = COLORS[Math.max(0, targets.indexOf(s.target)) % COLORS.length];
    const op = 0.45 + 0.55 / Math.max(1, s.round);
    const pts = [...s.pts].sort((a, b) => a.x - b.x);
    const path = (k: 'p50' | 'p99') => pts.map((p, i) => `${i === 0 ? 'M' : 'L'}${X(p.x).toFixed(1)},${Y(p[k]).toFixed(1)}`).join(' ');
    if (pts.length > 0) {
      parts.push(`<path d="${path('p99')}" fill="none" stroke="${color}" stroke-width="2" opacity="${op}"><title>${esc(s.target)} round ${s.round} p99</title></path>`);
      parts.push(`<path d="${path('p50')}" fill="none" stroke="${color}" stroke-width="1.5" stroke-dasharray="5 3" opacity="${op}"><title>${esc(s.target)} round ${s.round} p50</title></path>`);
      for (const p of pts)
        parts.push(`<circle cx="${X(p.x).toFixed(1)}" cy="${Y(p.p99).toFixed(1)}" r="2.5" fill="${color}" opacity="${op}"><title>${esc(s.target)} r${s.round}: ${Math.round(p.x)} ops/s, p50 ${p.p50} ms, p99 ${p.p99} ms</title></circle>`);
    }
    if (s.closed) {
      const c = s.closed;
      parts.push(`<rect x="${(X(c.x) - 4).toFixed(1)}" y="${(Y(c.p99) - 4).toFixed(1)}" width="8" height="8" fill="none" stroke="${color}" stroke-width="1.5" opacity="${op}"><title>${esc(s.target)} r${s.round} closed loop: ${Math.round(c.x)} ops/s, p50 ${c.p50} ms, p99 ${c.p99} ms</title></rect>`);
    }
  }
  let ly = m.t + 8;
  targets.forEach((t, i) => {
    const color = COLORS[i % COLORS.length];
    const lx = m.l + pw + 14;
    parts.push(`<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/><text x="${lx + 30}" y="${ly + 4}">${esc(t)} p99</text>`);
    ly += 16;
    parts.push(`<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="1.5" stroke-dasharray="5 3"/><text x="${lx + 30}" y="${ly + 4}">${esc(t)} p50</text>`);
    ly += 16;
    parts.push(`<rect x="${lx + 8}" y="${ly - 4}" width="8" height="8" fill="none" stroke="${color}"/><text x="${lx + 30}" y="${ly + 4}">${esc(t)} closed loop p99</text>`);
    ly += 22;
  });
  parts.push(`<text x="${m.l + pw + 14}" y="${ly + 4}" fill="#666">fainter = later rounds</text>`);
  parts.push('</svg>');
  return parts.join('');
}

function htmlTable(head: string[], rows: (string | number)[][], numeric: boolean[] = []): string {
  return (
    '<table><thead><tr>' +
    head.map((h) => `<th>${esc(h)}</th>`).join('') +
    '</tr></thead><tbody>' +
    rows.map((r) => '<tr>' + r.map((c, i) => `<td${numeric[i] ? ' class="n"' : ''}>${esc(c)}</td>`).join('') + '</tr>').join('') +
    '</tbody></table>'
  );
}

function stepRows(steps: StepResult[], target: string, round: number): (string | number)[][] {
  return steps.map((s) => [
    target,
    round,
    s.mode === 'open' ? `open ${num(s.offeredRate, 'ops/s')}/s` : s.label,
    s.skipped ? 'skipped' : num(s.throughput, 'ops/s'),
    num(s.latency.p50),
    num(s.latency.p90),
    num(s.latency.p99),
    num(s.latency.p999),
    num(s.latency.max),
    s.errors + (Object.keys(s.errorsByType).length ? ` ${JSON.stringify(s.errorsByType)}` : ''),
    s.server ? `${num(s.server.cpuCores)} / ${num(s.server.cpuUsPerOp)}` : '-',
    s.loadgen.elu.map((e) => num(e)).join(' '),
    s.machine?.otherCores != null ? num(s.machine.otherCores) : '-',
  ]);
}

const STEP_HEAD = ['target', 'round', 'phase', 'ops/s', 'p50', 'p90', 'p99', 'p99.9', 'max', 'errors', 'server cores / µs per op', 'loadgen ELU', 'other procs (cores)'];
const STEP_NUM = [false, true, false, true, true, true, true, true, true, false, true, true, true];

export function renderHtml(f: BenchFile): string {
  const targets = f.targets.map((t) => t.id);
  const h: string[] = [];
  h.push('<!doctype html><html><head><meta charset="utf-8"><title>Corral bench ' + esc(f.startedAt) + '</title><style>');
  h.push(
    'body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}table{border-collapse:collapse;margin:8px 0 18px;font-size:13px}' +
      'th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}' +
      'th{background:#f3f3f3}h2{margin-top:34px;border-bottom:1px solid #ddd}code,pre{background:#f6f6f6}pre{padding:8px;overflow:auto;font-size:12px}.note{color:#8a5a00}',
  );
  h.push('</style></head><body>');
  h.push(`<h1>Corral benchmark — ${esc(f.kind === 'micro' ? 'micro-benchmarks' : targets.join(' vs '))}</h1>`);
  h.push(`<p>${esc(f.startedAt)} → ${esc(f.finishedAt)}</p>`);
  h.push('<h2>Machine and configuration</h2>');
  h.push(htmlTable(['key', 'value'], Object.entries(f.machine).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)])));
  h.push(`<details><summary>configuration</summary><pre>${esc(JSON.stringify(f.config, null, 2))}</pre></details>`);
  if (f.targets.length > 0) {
    h.push(
      htmlTable(
        ['target', 'address', 'kind', 'pid', 'info'],
        f.targets.map((t) => [t.id, t.addresses, t.kind, t.pid ?? '-', Object.entries(t.info).filter(([k]) => k !== 'cfg').map(([k, v]) => `${k}: ${v}`).join('; ')]),
      ),
    );
  }
  if (f.notes.length > 0) h.push('<h2>Notes</h2><ul>' + f.notes.map((n) => `<li class="note">${esc(n)}</li>`).join('') + '</ul>');
  if (f.summary.length > 0) {
    h.push('<h2>Summary</h2>');
    h.push(
      '<p>Medians across rounds with [min–max].' +
        (targets.length === 2 ? ` The ratio is ${esc(targets[0])}/${esc(targets[1])} per round (A and B run back to back), median (min–max); ↑ means higher is better, ↓ lower is better.` : '') +
        '</p>',
    );
    const head = ['workload', 'metric', ...targets];
    if (targets.length === 2) head.push('ratio');
    h.push(
      htmlTable(
        head,
        f.summary.map((r) => {
          const c: string[] = [r.workload, `${r.metric} (${r.unit}) ${r.better === 'higher' ? '↑' : '↓'}`];
          for (const t of targets) c.push(cell(r.perTarget[t] ?? null, r.unit));
          if (targets.length === 2) c.push(ratioCell(r.ratio));
          return c;
        }),
        [false, false, ...targets.map(() => true), true],
      ),
    );
  }
  const workloads = [...new Set(f.runs.map((r) => r.workload))];
  for (const w of workloads) {
    const runs = f.runs.filter((r) => r.workload === w);
    h.push(`<h2>${esc(w)}</h2>`);
    if (runs.some((r) => r.closed)) {
      h.push(curveSvg(runs, targets, Number(f.config.sloMs ?? 10)));
      const rows: (string | number)[][] = [];
      for (const r of runs) rows.push(...stepRows([r.closed!, ...(r.open ?? [])], r.target, r.round));
      h.push(htmlTable(STEP_HEAD, rows, STEP_NUM));
      h.push(htmlTable(['target', 'round', 'knee', 'note'], runs.map((r) => [r.target, r.round, r.knee?.rate != null ? num(r.knee.rate, 'ops/s') : '-', r.knee?.note ?? ''])));
    }
    if (w === 'failover')
      for (const x of failoverSizes(f)) {
        h.push(`<p>${esc(x.target)}: SIGKILL of the leader under ${esc(num(x.rate, 'ops/s'))} setData/s spread over every member; ms, median [min–max] over the rounds.</p>`);
        h.push(htmlTable(FAILOVER_HEAD, failoverRows(x.sizes), [true, true, true, true, true, true, true]));
        const rows: (string | number)[][] = [];
        for (const s of x.sizes)
          for (const r of s.rounds)
            rows.push([
              s.members,
              r.round,
              `s${r.killed}`,
              r.newLeader !== null ? `s${r.newLeader}` : '-',
              num(r.firstWriteMs),
              r.firstWriteVia !== null ? `s${r.firstWriteVia}` : '-',
              num(r.newLeaderMs),
              num(r.allServingMs),
              num(r.rejoinMs),
              `${Object.values(r.duringErrors).reduce((a, b) => a + b, 0)} ${Object.keys(r.duringErrors).length ? JSON.stringify(r.duringErrors) : ''}`,
              r.notes.join('; '),
            ]);
        h.push(
          htmlTable(
            ['members', 'round', 'killed', 'new leader', 'kill → first write acked', 'via', 'kill → leader in srvr', 'kill → all serving', 'restart → rejoined', 'load writes failed during failover', 'notes'],
            rows,
            [true, true, false, false, true, false, true, true, true, false, false],
          ),
        );
      }
    if (runs.some((r) => r.phases)) {
      const rows: (string | number)[][] = [];
      for (const r of runs) if (r.phases) rows.push(...stepRows(Object.entries(r.phases).map(([k, s]) => ({ ...s, label: k })), r.target, r.round));
      h.push(htmlTable(STEP_HEAD, rows, STEP_NUM));
    }
    for (const r of runs) {
      if (r.extra) h.push(`<details><summary>${esc(r.target)} round ${r.round}: details</summary><pre>${esc(JSON.stringify(r.extra, null, 1))}</pre></details>`);
      for (const n of r.notes) h.push(`<p class="note">${esc(r.target)} r${r.round}: ${esc(n)}</p>`);
      if (Object.keys(r.connectErrors).length > 0) h.push(`<p class="note">${esc(r.target)} r${r.round} connect errors: ${esc(JSON.stringify(r.connectErrors))}</p>`);
    }
  }
  if (f.micro) {
    h.push('<h2>Micro-benchmarks</h2>');
    h.push(
      htmlTable(
        ['group', 'benchmark', 'calls/s', 'items/s', 'mean µs', 'p99 µs', 'rme %', 'samples'],
        f.micro.results.map((r) => [r.group, r.name, num(r.opsPerSec, 'ops/s'), r.perCall > 1 ? num(r.opsPerSec * r.perCall, 'ops/s') : '', num(r.meanNs / 1000), num(r.p99Ns / 1000), r.rme, r.samples]),
        [false, false, true, true, true, true, true, true],
      ),
    );
    for (const n of f.micro.notes) h.push(`<p class="note">${esc(n)}</p>`);
  }
  for (const t of f.targets)
    if (t.logs && (t.logs.warn > 0 || t.logs.error > 0))
      h.push(`<h2>${esc(t.id)} server log</h2><p>${t.logs.warn} WARN, ${t.logs.error} ERROR lines. First ones:</p><pre>${esc(t.logs.samples.join('\n'))}</pre>`);
  h.push(`<script type="application/json" id="bench-data">${JSON.stringify(f).replace(/</g, '\\u003c')}</script>`);
  h.push('</body></html>');
  return h.join('\n');
}
