// The servers under test: a Corral the bench starts as a child process (temp dataDir,
// free port, generated zoo.cfg), or any ZooKeeper-protocol server given by address.
// For servers on this machine the process is found from its listening socket, so its
// CPU time and resident memory can be read from /proc whichever server it is.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Address } from './loadgen/types.js';

export interface Target {
  /** 'corral' or 'target' (the --target / --compare server). */
  id: string;
  label: string;
  addresses: Address[];
  /** The WebSocket endpoint (Corral's wsPort), for --transport ws. */
  wsAddresses?: Address[];
  kind: 'corral-child' | 'external';
  /** pid of the (first) server process, when it is on this machine. */
  pid?: number;
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

/** CPU seconds used so far by every process on the machine, by pid. */
export function allProcessesCpu(): Map<number, number> {
  const out = new Map<number, number>();
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const pid of pids) {
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
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
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

function freePort(): Promise<number> {
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

async function waitReady(a: Address, isAlive: () => boolean, timeoutMs: number, pollMs = 50): Promise<void> {
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

export function corralMainJs(): string {
  // dist/bench/target.js -> dist/src/cli/main.js
  return join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
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

/** Starts `node dist/src/cli/main.js start <zoo.cfg>` with a temp dataDir on a free port. */
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
    if (line === '') return;
    logs.tail.push(line);
    if (logs.tail.length > 2000) logs.tail.splice(0, 1000);
    const level = /\[(WARN|ERROR)\]/.exec(line)?.[1] ?? (/^corral: /.test(line) ? 'ERROR' : null);
    if (level === 'WARN') logs.warn++;
    if (level === 'ERROR') logs.error++;
    if (level !== null && logs.samples.length < 20) logs.samples.push(line);
    for (const l of listeners) l(line);
  };
  /** Spawns the server and waits for `ruok`; resolves to spawn-to-ready ms. */
  const spawnChild = async (): Promise<number> => {
    const t0 = performance.now();
    const c: ChildProcess = spawn(process.execPath, [main, 'start', cfgPath], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
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
    if (exited) return;
    const c = child;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 60_000);
    await gone;
    clearTimeout(t);
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

/**
 * Starts Corral `times` times, each on a fresh empty dataDir, and times spawn to `ruok`
 * answered `imok` (stopping it in between).
 */
export async function timeStartups(times: number, forceSync: boolean, extraCfg?: string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < times; i++) {
    const t = await startCorral({ forceSync, extraCfg });
    out.push(Number(t.info.startToReadyMs));
    await t.stop();
  }
  return out;
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
