// The servers under test: a Corral the bench starts as a child process (temp dataDir,
// free port, generated zoo.cfg), or any ZooKeeper-protocol server given by address.
// For servers on this machine the process is found from its listening socket, so its
// CPU time and resident memory can be read from /proc whichever server it is.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { corralArgv } from '../src/cli/launch.js';
import type { Address } from './loadgen/types.js';

export interface Target {
  /** 'corral' or 'target' (the --target / --compare server). */
  id: string;
  label: string;
  addresses: Address[];
  /** The WebSocket endpoint (Corral's wsPort), for --transport ws. */
  wsAddresses?: Address[];
  kind: 'corral-child' | 'corral-ensemble' | 'external';
  /** pid of the (first) server process, when it is on this machine. */
  pid?: number;
  /**
   * Every server process whose CPU and memory count for this target (an ensemble's
   * members, as they are now); default: [pid].
   */
  pids?(): number[];
  /** Filled in after start: the `srvr` reply's version line, config notes. */
  info: Record<string, string | number | boolean>;
  /** Corral child: WARN/ERROR lines of its log (counted and sampled). */
  logs?: ServerLogs;
  /** Corral child: called with every line it logs. */
  logListeners?: Set<(line: string) => void>;
  /** Corral child: SIGTERM, then start it again on the same dataDir and port. */
  restart?(): Promise<RestartInfo>;
  stop(): Promise<void>;
}

export interface ServerLogs {
  warn: number;
  error: number;
  /** The first lines of each kind, for the report. */
  samples: string[];
  /** Every line, for the `--keep-logs` file. */
  tail: string[];
}

export function parseAddresses(s: string): Address[] {
  return s.split(',').map((hp) => {
    const t = hp.trim();
    const i = t.lastIndexOf(':');
    if (i <= 0) throw new Error(`bad address '${t}': expected host:port`);
    const port = Number(t.slice(i + 1));
    if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`bad port in '${t}'`);
    return { host: t.slice(0, i).replace(/^\[|\]$/g, ''), port };
  });
}

/** Sends a four-letter word and returns the whole reply ('' if the server refuses). */
export function fourLetter(a: Address, word: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = netConnect(a.port, a.host);
    const chunks: Buffer[] = [];
    const t = setTimeout(() => {
      s.destroy();
      resolve(Buffer.concat(chunks).toString());
    }, timeoutMs);
    s.on('connect', () => s.write(word));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(t);
      resolve(Buffer.concat(chunks).toString());
    });
  });
}

/** `mntr` as key -> value (numbers where they parse). */
export async function mntr(a: Address): Promise<Record<string, string | number>> {
  const text = await fourLetter(a, 'mntr');
  const out: Record<string, string | number> = {};
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+(.*)$/.exec(line.trim());
    if (m === null) continue;
    const n = Number(m[2]);
    out[m[1]] = m[2] !== '' && Number.isFinite(n) ? n : m[2];
  }
  return out;
}

// --- /proc -------------------------------------------------------------------------

const CLK_TCK = 100; // Linux USER_HZ; the kernel reports utime/stime in these units

export interface ProcSample {
  /** CPU seconds (user + system) used so far. */
  cpuS: number;
  rssMB: number;
  /**
   * Anonymous resident memory (heaps, buffers): what the process itself holds. RSS also
   * counts file pages mapped in (LMDB maps its whole data file), which the kernel can drop.
   */
  anonMB: number;
  fileMB: number;
  threads: number;
}

export function procSample(pid: number): ProcSample | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(f[11]);
    const stime = Number(f[12]);
    const threads = Number(f[17]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024;
    return { cpuS: (utime + stime) / CLK_TCK, rssMB: kb('VmRSS'), anonMB: kb('RssAnon'), fileMB: kb('RssFile'), threads };
  } catch {
    return null;
  }
}

/** The processes whose CPU and memory count for target `t`. */
export function targetPids(t: Target): number[] {
  if (t.pids !== undefined) return t.pids();
  return t.pid !== undefined ? [t.pid] : [];
}

/** procSample of each of the target's processes, by pid (those that could be read). */
export function targetProcSamples(t: Target): Map<number, ProcSample> {
  const out = new Map<number, ProcSample>();
  for (const pid of targetPids(t)) {
    const p = procSample(pid);
    if (p !== null) out.set(pid, p);
  }
  return out;
}

/** The target's processes summed (CPU, RSS, threads); null if none could be read. */
export function targetProcSample(t: Target): ProcSample | null {
  return sumSamples(targetProcSamples(t));
}

export function sumSamples(m: Map<number, ProcSample>): ProcSample | null {
  if (m.size === 0) return null;
  const s: ProcSample = { cpuS: 0, rssMB: 0, anonMB: 0, fileMB: 0, threads: 0 };
  for (const p of m.values()) {
    s.cpuS += p.cpuS;
    s.rssMB += p.rssMB;
    s.anonMB += p.anonMB;
    s.fileMB += p.fileMB;
    s.threads += p.threads;
  }
  return s;
}

/**
 * CPU seconds used between two sets of samples, over the processes present in both (a
 * member killed or restarted meanwhile contributes nothing for the window).
 */
export function cpuBetween(a: Map<number, ProcSample>, b: Map<number, ProcSample>): number | null {
  let cpu = 0;
  let n = 0;
  for (const [pid, p1] of b) {
    const p0 = a.get(pid);
    if (p0 === undefined) continue;
    cpu += p1.cpuS - p0.cpuS;
    n++;
  }
  return n > 0 ? cpu : null;
}

/** Machine-wide CPU time (all cores), from /proc/stat, in seconds: total, idle, and irq + softirq. */
export function systemCpu(): { totalS: number; idleS: number; irqS: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    return { totalS: total / CLK_TCK, idleS: (v[3] + (v[4] ?? 0)) / CLK_TCK, irqS: ((v[5] ?? 0) + (v[6] ?? 0)) / CLK_TCK };
  } catch {
    return null;
  }
}

/**
 * TcpExt ListenOverflows from /proc/net/netstat (machine-wide): connections whose final
 * handshake ACK was dropped because a listener's accept queue was full. The client then
 * waits for a SYN-ACK retransmission (1 s, then 3 s, ...).
 */
export function listenOverflows(): number | null {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'));
    const head = lines[0].trim().split(/\s+/);
    const vals = lines[1].trim().split(/\s+/);
    const i = head.indexOf('ListenOverflows');
    return i < 0 ? null : Number(vals[i]);
  } catch {
    return null;
  }
}

/** Keeps a server's log line: the tail, WARN/ERROR counts and samples, and whoever listens. */
function recordLogLine(logs: ServerLogs, listeners: Set<(line: string) => void>, line: string): void {
  logs.tail.push(line);
  if (logs.tail.length > 2000) logs.tail.splice(0, 1000);
  const level = /\[(WARN|ERROR)\]/.exec(line)?.[1] ?? (/^(\[s\d+\] )?corral: /.test(line) ? 'ERROR' : null);
  if (level === 'WARN') logs.warn++;
  if (level === 'ERROR') logs.error++;
  if (level !== null && logs.samples.length < 20) logs.samples.push(line);
  for (const l of listeners) l(line);
}

/** Every pid in /proc (none where there is no /proc). */
function procPids(): string[] {
  try {
    return readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return [];
  }
}

/** CPU seconds used so far by every process on the machine, by pid. */
export function allProcessesCpu(): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of procPids()) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(pid), (Number(f[11]) + Number(f[12])) / CLK_TCK);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

function isLocal(host: string): boolean {
  return host === '127.0.0.1' || host === 'localhost' || host === '::1' || host === '0.0.0.0' || host.startsWith('127.');
}

/** The pid owning the listening TCP socket on `port` (Linux, needs /proc access), if any. */
export function listenerPid(port: number): number | undefined {
  const inodes = new Set<string>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const c = line.trim().split(/\s+/);
      if (c.length < 10) continue;
      const localPort = parseInt(c[1].split(':')[1], 16);
      if (localPort === port && c[3] === '0A') inodes.add(c[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const pid of procPids()) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const l = readlinkSync(`/proc/${pid}/fd/${fd}`);
        const m = /^socket:\[(\d+)\]$/.exec(l);
        if (m !== null && inodes.has(m[1])) return Number(pid);
      } catch {
        // fd closed meanwhile
      }
    }
  }
  return undefined;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Polls `ruok` until the server answers `imok`; throws if `isAlive()` turns false or after timeoutMs. */
export async function waitReady(a: Address, isAlive: () => boolean, timeoutMs: number, pollMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive()) throw new Error('server process exited during start');
    if ((await fourLetter(a, 'ruok', 500)) === 'imok') return;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  throw new Error(`server on ${a.host}:${a.port} not answering ruok after ${timeoutMs} ms`);
}

function versionLine(srvr: string): string {
  const m = /Zookeeper version: ([^\n]+)/i.exec(srvr);
  return m ? m[1].trim() : srvr.split('\n')[0]?.trim() ?? '';
}

/** SIGTERM, then SIGKILL if it has not exited after graceMs; resolves once it has exited. */
export async function stopProcess(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(t);
}

/** The project root whose dist/ the bench starts Corral from (see corralMainJs). */
export function corralRoot(): string {
  return join(dirname(corralMainJs()), '..', '..', '..');
}

export function corralMainJs(): string {
  // dist/bench/target.js -> dist/src/cli/main.js; from the sources (vitest):
  // bench/target.ts -> dist/src/cli/main.js
  const here = dirname(fileURLToPath(import.meta.url));
  const built = join(here, '..', 'src', 'cli', 'main.js');
  if (existsSync(built)) return built;
  return join(here, '..', 'dist', 'src', 'cli', 'main.js');
}

export interface CorralChildOptions {
  forceSync: boolean;
  /** Extra zoo.cfg lines. */
  extraCfg?: string;
  /** Give it a WebSocket listener (wsPort) on a free port too. */
  ws?: boolean;
  /** Use this (possibly empty) dataDir instead of a fresh one; it is not removed on stop. */
  dataDir?: string;
}

/** What a restart of the Corral child on its dataDir took. */
export interface RestartInfo {
  /** SIGTERM to exit. */
  stopMs: number;
  /** spawn to `ruok` answered `imok`. */
  spawnToReadyMs: number;
  /** The server's `recovered zxid ...` log line. */
  recoveredLine: string;
  /** Parsed from it: znodes, txns replayed and the time it says recovery took. */
  znodes?: number;
  replayed?: number;
  recoveryMs?: number;
  /** The tree digest the server computes and logs after recovery, before it serves. */
  digestMs?: number;
}

/** Starts `corral start <zoo.cfg>` as `npm start` does (src/cli/launch.ts), with a temp dataDir on a free port. */
export async function startCorral(o: CorralChildOptions): Promise<Target> {
  const main = corralMainJs();
  if (!existsSync(main)) throw new Error(`${main} not found: build first (npm run build)`);
  const dir = mkdtempSync(join(tmpdir(), 'corral-bench-'));
  const dataDir = o.dataDir ?? join(dir, 'data');
  const port = await freePort();
  const wsPort = o.ws ? await freePort() : undefined;
  const cfg = [
    '# generated by npm run bench',
    'tickTime=2000',
    `dataDir=${dataDir}`,
    `clientPort=${port}`,
    'clientPortAddress=127.0.0.1',
    ...(wsPort !== undefined ? [`wsPort=${wsPort}`, 'wsPortAddress=127.0.0.1'] : []),
    // Everything comes from 127.0.0.1 (zkref allows 2000 per IP); the storm needs many.
    'maxClientCnxns=0',
    '4lw.commands.whitelist=*',
    `forceSync=${o.forceSync ? 'yes' : 'no'}`,
    o.extraCfg ?? '',
  ].join('\n');
  const cfgPath = join(dir, 'zoo.cfg');
  writeFileSync(cfgPath, cfg + '\n');
  const logs: ServerLogs = { warn: 0, error: 0, samples: [], tail: [] };
  const listeners = new Set<(line: string) => void>();
  const address = { host: '127.0.0.1', port };
  let child!: ChildProcess;
  let exited = false;
  let exitInfo = '';
  const onLine = (line: string) => {
    if (line !== '') recordLogLine(logs, listeners, line);
  };
  /** Spawns the server and waits for `ruok`; resolves to spawn-to-ready ms. */
  const spawnChild = async (): Promise<number> => {
    const t0 = performance.now();
    const c: ChildProcess = spawn(process.execPath, corralArgv(corralRoot(), ['start', cfgPath]), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    exited = false;
    exitInfo = '';
    c.on('exit', (code, sig) => {
      if (child !== c) return;
      exited = true;
      exitInfo = `exit code ${code}${sig ? ` signal ${sig}` : ''}`;
    });
    for (const stream of [c.stdout!, c.stderr!]) {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => {
        const lines = (rest + d).split('\n');
        rest = lines.pop() ?? '';
        for (const l of lines) onLine(l);
      });
    }
    try {
      await waitReady(address, () => !exited, 600_000, 20);
    } catch (e) {
      c.kill('SIGKILL');
      throw new Error(`Corral did not start (${(e as Error).message}${exitInfo ? `, ${exitInfo}` : ''}):\n${logs.tail.slice(-20).join('\n')}`);
    }
    return performance.now() - t0;
  };
  const stopChild = async (): Promise<void> => {
    if (!exited) await stopProcess(child, 60_000);
  };
  const startMs = await spawnChild();
  const srvr = await fourLetter(address, 'srvr');
  const target: Target = {
    id: 'corral',
    label: 'Corral',
    addresses: [address],
    wsAddresses: wsPort !== undefined ? [{ host: '127.0.0.1', port: wsPort, transport: 'ws' }] : undefined,
    kind: 'corral-child',
    pid: child.pid,
    logs,
    logListeners: listeners,
    info: {
      version: versionLine(srvr),
      startToReadyMs: Math.round(startMs),
      forceSync: o.forceSync,
      dataDir,
      cfg: cfg.replace(/\n+$/, ''),
    },
    async restart(): Promise<RestartInfo> {
      const t0 = performance.now();
      await stopChild();
      const stopMs = performance.now() - t0;
      let recoveredLine = '';
      const l = (line: string) => {
        if (/recovered zxid/.test(line)) recoveredLine = line;
      };
      listeners.add(l);
      try {
        const spawnToReadyMs = await spawnChild();
        target.pid = child.pid;
        const m = /: (\d+) znodes, .*?(\d+) txns replayed in (\d+) ms/.exec(recoveredLine);
        return {
          stopMs: Math.round(stopMs),
          spawnToReadyMs: Math.round(spawnToReadyMs),
          recoveredLine,
          znodes: m ? Number(m[1]) : undefined,
          replayed: m ? Number(m[2]) : undefined,
          recoveryMs: m ? Number(m[3]) : undefined,
          digestMs: Number(/digest=\S+ \((\d+) ms\)/.exec(recoveredLine)?.[1] ?? NaN) || undefined,
        };
      } finally {
        listeners.delete(l);
      }
    },
    async stop() {
      // Whether anything was written under dataDir tells if this build persists writes.
      target.info.dataDirBytesAtStop = dirBytes(dataDir);
      target.info.dataDirEntries = listDir(dataDir).join(' ');
      await stopChild();
      target.info.exit = exitInfo;
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return target;
}

function listDir(d: string): string[] {
  try {
    return readdirSync(d, { recursive: true }).map(String).sort();
  } catch {
    return [];
  }
}

function dirBytes(d: string): number {
  let n = 0;
  for (const f of listDir(d)) {
    try {
      const s = statSync(join(d, f));
      if (s.isFile()) n += s.size;
    } catch {
      // gone
    }
  }
  return n;
}

/** A server the bench does not own: it is neither started nor stopped. */
export async function externalTarget(id: string, addresses: Address[]): Promise<Target> {
  const a = addresses[0];
  const ruok = await fourLetter(a, 'ruok', 3000);
  const srvr = await fourLetter(a, 'srvr', 3000);
  const pid = isLocal(a.host) ? listenerPid(a.port) : undefined;
  let comm = '';
  if (pid !== undefined) {
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      // not readable
    }
  }
  return {
    id,
    label: addresses.map((x) => `${x.host}:${x.port}`).join(','),
    addresses,
    kind: 'external',
    pid,
    info: {
      version: versionLine(srvr) || '(srvr not answered: 4lw disabled?)',
      ruok: ruok || '(no reply)',
      mode: /Mode: (\S+)/.exec(srvr)?.[1] ?? '',
      process: pid === undefined ? 'not on this machine or not visible' : `${comm} pid ${pid}`,
    },
    async stop() {},
  };
}

// --- Corral ensembles -------------------------------------------------------------------

export type MemberMode = 'leader' | 'follower' | 'observer' | 'not serving' | 'down';

export interface EnsembleMember {
  id: number;
  /** A non-voting member (`peerType=observer`): it serves sessions but never votes. */
  observer: boolean;
  clientPort: number;
  quorumPort: number;
  electionPort: number;
  wsPort?: number;
  dir: string;
  dataDir: string;
  cfgPath: string;
  child: ChildProcess | null;
  /** Every pid this member has had (it is restarted in the failover workload). */
  pidsSeen: number[];
  exited: boolean;
  exitInfo: string;
  tail: string[];
}

/** A Corral ensemble the bench starts: N `corral start` processes on loopback. */
export interface EnsembleTarget extends Target {
  kind: 'corral-ensemble';
  members: EnsembleMember[];
  address(id: number): Address;
  isUp(id: number): boolean;
  /** The member's `srvr` Mode (`not serving` between roles, `down` if its process is gone). */
  mode(id: number, timeoutMs?: number): Promise<MemberMode>;
  modes(): Promise<Map<number, MemberMode>>;
  /** Waits until every member in `ids` (default: all that are up) serves, one of them as leader; resolves to the leader's id. */
  waitServing(ids?: number[], timeoutMs?: number): Promise<number>;
  /** Sends `signal` (default SIGKILL) and waits for the process to be gone; resolves to nowMs() just before the signal. */
  killMember(id: number, signal?: NodeJS.Signals): Promise<number>;
  /** (Re)starts a member; resolves to spawn -> `ruok` answered ms (it may not serve yet). */
  startMember(id: number): Promise<number>;
  /** The last lines of every member's log. */
  logTail(lines?: number): string;
}

export interface CorralEnsembleOptions {
  /** Voting members. */
  size: number;
  /** Observers beside them (ids size+1...), default none. */
  observers?: number;
  forceSync: boolean;
  /** Extra zoo.cfg lines for every member. */
  extraCfg?: string;
  ws?: boolean;
  /** Target id and label (default 'corral', 'Corral ensemble of N'). */
  id?: string;
  label?: string;
  /** How long to wait for a leader and N-1 followers. */
  settleTimeoutMs?: number;
}

const sleepMs = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** "Corral ensemble of 3", "Corral ensemble of 3 + 2 observers". */
export function ensembleLabel(size: number, observers = 0): string {
  return `Corral ensemble of ${size}${observers > 0 ? ` + ${observers} observer${observers > 1 ? 's' : ''}` : ''}`;
}

function srvrMode(srvr: string): MemberMode {
  const m = /^Mode: (\w+)/m.exec(srvr)?.[1];
  return m === 'leader' || m === 'follower' || m === 'observer' ? m : 'not serving';
}

/**
 * Starts an ensemble of `size` voting Corral processes and `observers` observers
 * (generated zoo.cfg per member with `server.N=127.0.0.1:quorumPort:electionPort[:observer]`
 * lines, `peerType=observer` in an observer's own, `<dataDir>/myid`, tickTime=2000,
 * initLimit=10, syncLimit=5 as in ZooKeeper's sample config and zkref), all at once, and
 * waits until one leads and every other member follows or observes.
 */
export async function startCorralEnsemble(o: CorralEnsembleOptions): Promise<EnsembleTarget> {
  const main = corralMainJs();
  if (!existsSync(main)) throw new Error(`${main} not found: build first (npm run build)`);
  if (o.size < 1) throw new Error('an ensemble needs at least one member');
  const root = mkdtempSync(join(tmpdir(), 'corral-bench-ens-'));
  const members: EnsembleMember[] = [];
  // freePort() releases each port at once, so it may hand the same one out twice: never here.
  const used = new Set<number>();
  const port = async (): Promise<number> => {
    for (;;) {
      const p = await freePort();
      if (!used.has(p)) {
        used.add(p);
        return p;
      }
    }
  };
  const observers = o.observers ?? 0;
  for (let id = 1; id <= o.size + observers; id++) {
    const dir = join(root, `s${id}`);
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'myid'), `${id}\n`);
    members.push({
      id,
      observer: id > o.size,
      clientPort: await port(),
      quorumPort: await port(),
      electionPort: await port(),
      wsPort: o.ws ? await port() : undefined,
      dir,
      dataDir,
      cfgPath: join(dir, 'zoo.cfg'),
      child: null,
      pidsSeen: [],
      exited: true,
      exitInfo: '',
      tail: [],
    });
  }
  const serverLines = members.map((m) => `server.${m.id}=127.0.0.1:${m.quorumPort}:${m.electionPort}${m.observer ? ':observer' : ''}`);
  const cfgOf = (m: EnsembleMember) =>
    [
      '# generated by npm run bench (ensemble member)',
      'tickTime=2000',
      'initLimit=10',
      'syncLimit=5',
      `dataDir=${m.dataDir}`,
      `clientPort=${m.clientPort}`,
      'clientPortAddress=127.0.0.1',
      ...(m.wsPort !== undefined ? [`wsPort=${m.wsPort}`, 'wsPortAddress=127.0.0.1'] : []),
      'maxClientCnxns=0',
      '4lw.commands.whitelist=*',
      `forceSync=${o.forceSync ? 'yes' : 'no'}`,
      ...(m.observer ? ['peerType=observer'] : []),
      ...serverLines,
      o.extraCfg ?? '',
    ].join('\n');
  for (const m of members) writeFileSync(m.cfgPath, cfgOf(m) + '\n');
  const logs: ServerLogs = { warn: 0, error: 0, samples: [], tail: [] };
  const listeners = new Set<(line: string) => void>();
  const onLine = (m: EnsembleMember, line: string) => {
    if (line === '') return;
    const tagged = `[s${m.id}] ${line}`;
    m.tail.push(line);
    if (m.tail.length > 400) m.tail.splice(0, 200);
    recordLogLine(logs, listeners, tagged);
  };
  const member = (id: number) => {
    const m = members.find((x) => x.id === id);
    if (m === undefined) throw new Error(`no member ${id}`);
    return m;
  };
  const isUp = (id: number) => {
    const m = member(id);
    return m.child !== null && !m.exited;
  };
  const address = (id: number): Address => ({ host: '127.0.0.1', port: member(id).clientPort });
  const logTail = (lines = 30) => members.map((m) => `--- member ${m.id} (${m.exitInfo || (m.exited ? 'down' : 'up')})\n${m.tail.slice(-lines).join('\n')}`).join('\n');
  const startMember = async (id: number): Promise<number> => {
    const m = member(id);
    if (isUp(id)) throw new Error(`member ${id} is running`);
    const t0 = performance.now();
    const c = spawn(process.execPath, corralArgv(corralRoot(), ['start', m.cfgPath]), { cwd: m.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    m.child = c;
    m.exited = false;
    m.exitInfo = '';
    if (c.pid !== undefined) m.pidsSeen.push(c.pid);
    c.on('exit', (code, sig) => {
      if (m.child !== c) return;
      m.exited = true;
      m.exitInfo = `exit code ${code}${sig ? ` signal ${sig}` : ''}`;
    });
    for (const stream of [c.stdout!, c.stderr!]) {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => {
        const lines = (rest + d).split('\n');
        rest = lines.pop() ?? '';
        for (const l of lines) onLine(m, l);
      });
    }
    try {
      await waitReady(address(id), () => m.child === c && !m.exited, 120_000, 20);
    } catch (e) {
      c.kill('SIGKILL');
      throw new Error(`Corral member ${id} did not start (${(e as Error).message}${m.exitInfo ? `, ${m.exitInfo}` : ''}):\n${m.tail.slice(-20).join('\n')}`);
    }
    return performance.now() - t0;
  };
  const killMember = async (id: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<number> => {
    const m = member(id);
    const c = m.child;
    if (c === null || m.exited) return nowMsLocal();
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    const t0 = nowMsLocal();
    c.kill(signal);
    const hard = signal === 'SIGKILL' ? undefined : setTimeout(() => c.kill('SIGKILL'), 60_000);
    await gone;
    if (hard !== undefined) clearTimeout(hard);
    return t0;
  };
  const mode = async (id: number, timeoutMs = 1000): Promise<MemberMode> => {
    if (!isUp(id)) return 'down';
    return srvrMode(await fourLetter(address(id), 'srvr', timeoutMs));
  };
  const modes = async () => {
    const out = new Map<number, MemberMode>();
    await Promise.all(members.map(async (m) => out.set(m.id, await mode(m.id))));
    return out;
  };
  const waitServing = async (ids?: number[], timeoutMs = o.settleTimeoutMs ?? 60_000): Promise<number> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const want = ids ?? members.filter((m) => isUp(m.id)).map((m) => m.id);
      const st = await modes();
      const leaders = want.filter((id) => st.get(id) === 'leader');
      const serving = want.every((id) => ['leader', 'follower', 'observer'].includes(st.get(id)!));
      if (serving && leaders.length === 1) return leaders[0];
      if (Date.now() > deadline)
        throw new Error(`ensemble did not settle in ${timeoutMs} ms: ${[...st].map(([k, v]) => `s${k}=${v}`).join(' ')}\n${logTail(15)}`);
      await sleepMs(25);
    }
  };
  const t0 = performance.now();
  try {
    await Promise.all(members.map((m) => startMember(m.id)));
  } catch (e) {
    for (const m of members) if (m.child !== null && !m.exited) m.child.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
    throw e;
  }
  let leader: number;
  try {
    leader = await waitServing();
  } catch (e) {
    await Promise.all(members.map((m) => killMember(m.id)));
    rmSync(root, { recursive: true, force: true });
    throw e;
  }
  const readyMs = performance.now() - t0;
  // Members that start before the others log that they cannot reach them yet: that is
  // start-up, not the run. Count it apart.
  const startWarnings = logs.warn;
  logs.warn = 0;
  logs.error = 0;
  logs.samples.length = 0;
  const srvr = await fourLetter(address(leader), 'srvr');
  const target: EnsembleTarget = {
    id: o.id ?? 'corral',
    label: o.label ?? ensembleLabel(o.size, observers),
    addresses: members.map((m) => address(m.id)),
    wsAddresses: o.ws ? members.map((m) => ({ host: '127.0.0.1', port: m.wsPort!, transport: 'ws' as const })) : undefined,
    kind: 'corral-ensemble',
    pid: members[0].child?.pid,
    pids: () => members.filter((m) => m.child !== null && !m.exited && m.child.pid !== undefined).map((m) => m.child!.pid!),
    logs,
    logListeners: listeners,
    members,
    info: {
      version: versionLine(srvr),
      members: o.size,
      observers,
      startToServingMs: Math.round(readyMs),
      startWarnings,
      leaderAtStart: leader,
      forceSync: o.forceSync,
      pids: members.map((m) => `s${m.id}=${m.child?.pid}`).join(' '),
      clientPorts: members.map((m) => m.clientPort).join(','),
      dataDir: members.map((m) => m.dataDir).join(' '),
      cfg: cfgOf(members[0]).replace(/\n+$/, ''),
    },
    address,
    isUp,
    mode,
    modes,
    waitServing,
    killMember,
    startMember,
    logTail,
    async stop() {
      target.info.dataDirBytesAtStop = members.reduce((a, m) => a + dirBytes(m.dataDir), 0);
      target.info.dataDirEntries = listDir(members[0].dataDir).join(' ');
      await Promise.all(members.map((m) => killMember(m.id, 'SIGTERM')));
      target.info.exit = members.map((m) => `s${m.id}: ${m.exitInfo}`).join('; ');
      rmSync(root, { recursive: true, force: true });
    },
  };
  return target;
}

/** Same clock as the load generator's nowMs() (wall-clock ms, sub-ms resolution). */
function nowMsLocal(): number {
  return performance.timeOrigin + performance.now();
}
