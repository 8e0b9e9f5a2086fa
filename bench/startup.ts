// Start to serving on an empty data directory, timed the same way for Corral and for
// Apache ZooKeeper (zkref): the bench spawns the server process itself and, from the
// spawn on, retries every `pollMs` a TCP connect + session handshake + exists("/"); the
// first reply to that request is "serving". Right after it, one create is sent and the
// time to its acknowledgement is kept too (a write acknowledged only once durable). The
// process's CPU time up to serving (all threads, from /proc/<pid>/task/*/schedstat) and
// the time it waited for a CPU are recorded: on a busy machine they tell a slow start
// from a starved one.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpCode } from '../src/protocol/constants.js';
import { OPEN_ACL, RawClient } from '../src/client/raw.js';
import { writeAclList } from '../src/protocol/records.js';
import { corralArgv } from '../src/cli/launch.js';
import { corralMainJs, corralRoot, freePort, stopProcess } from './target.js';

export interface StartTiming {
  /** spawn -> exists("/") answered in a fresh session. */
  servingMs: number;
  /** spawn -> the create sent right after acknowledged. */
  firstWriteMs: number;
  /** CPU time of the server process up to serving (all its threads), ms. */
  cpuMs: number;
  /** Time its threads spent runnable but waiting for a CPU up to serving, ms. */
  runqueueMs: number;
  /** Connection attempts until the first that was served. */
  attempts: number;
}

/** CPU time and run-queue wait of every thread of `pid` so far, ms. */
export function schedTimes(pid: number): { cpuMs: number; runqueueMs: number } {
  let run = 0;
  let wait = 0;
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      try {
        const [a, b] = readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ').map(Number);
        run += a;
        wait += b;
      } catch {
        // the thread ended meanwhile
      }
    }
  } catch {
    // no /proc, or the process is gone
  }
  return { cpuMs: run / 1e6, runqueueMs: wait / 1e6 };
}

/**
 * One attempt: connect, handshake, exists("/"). Resolves with the RawClient once the
 * request is answered, or null when the server is not (yet) there or not serving
 * (ZooKeeper accepts connections before it serves and closes them until it does), or
 * has not answered within giveUpMs.
 */
async function tryServed(port: number, giveUpMs: number): Promise<RawClient | null> {
  let c: RawClient | undefined;
  // A server that accepts but neither answers nor closes must not stall the probe.
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('no answer')), giveUpMs)));
  try {
    const attempt = (async () => {
      c = await RawClient.open('127.0.0.1', port);
      const s = await c.handshake({ timeout: 30000 });
      if (s.sessionId === 0n || s.timeout <= 0) throw new Error('no session');
      const r = await c.request(OpCode.exists, (w) => w.ustring('/').bool(false));
      if (r.err !== 0) throw new Error(`exists / -> ${r.err}`);
      return c;
    })();
    attempt.catch(() => undefined);
    return await Promise.race([attempt, gaveUp]);
  } catch {
    c?.socket.destroy();
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Spawns `cmd args` and waits until it serves on 127.0.0.1:`port` (see the top of the
 * file). The child is left running; the caller stops it.
 */
export async function timeSpawnToServing(
  cmd: string,
  args: string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv },
  port: number,
  pollMs: number,
  timeoutMs = 120_000,
): Promise<{ child: ChildProcess; timing: StartTiming; output: () => string }> {
  const t0 = performance.now();
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let exit = '';
  child.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.once('exit', (code, sig) => (exit = `exit code ${code}${sig ? ` signal ${sig}` : ''}`));
  child.once('error', (e) => (exit = e.message));
  let attempts = 0;
  for (;;) {
    if (exit !== '') throw new Error(`${cmd} ended before serving (${exit}):\n${out.split('\n').slice(-20).join('\n')}`);
    if (performance.now() - t0 > timeoutMs) {
      child.kill('SIGKILL');
      throw new Error(`not serving on port ${port} after ${timeoutMs} ms:\n${out.split('\n').slice(-20).join('\n')}`);
    }
    attempts++;
    const c = await tryServed(port, 250);
    if (c !== null) {
      const servingMs = performance.now() - t0;
      const { cpuMs, runqueueMs } = schedTimes(child.pid!);
      const path = `/startup-probe-${process.pid}-${attempts}`;
      const w = await c.request(OpCode.create, (x) => {
        x.ustring(path).buffer(Buffer.from('x'));
        writeAclList(x, OPEN_ACL);
        x.int(1); // ephemeral: gone with the session
      });
      const firstWriteMs = performance.now() - t0;
      if (w.err !== 0) throw new Error(`create ${path} right after serving -> error ${w.err}`);
      await c.request(OpCode.closeSession).catch(() => undefined);
      c.socket.destroy();
      return { child, timing: { servingMs, firstWriteMs, cpuMs, runqueueMs, attempts }, output: () => out };
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** One start of Corral on a fresh empty dataDir, as `npm start` runs it (src/cli/launch.ts). */
export async function timeCorralStart(o: { forceSync: boolean; extraCfg?: string; pollMs: number }): Promise<StartTiming> {
  const main = corralMainJs();
  if (!existsSync(main)) throw new Error(`${main} not found: build first (npm run build)`);
  const dir = mkdtempSync(join(tmpdir(), 'corral-startup-'));
  try {
    const port = await freePort();
    const cfg = [
      'tickTime=2000',
      `dataDir=${join(dir, 'data')}`,
      `clientPort=${port}`,
      'clientPortAddress=127.0.0.1',
      '4lw.commands.whitelist=*',
      `forceSync=${o.forceSync ? 'yes' : 'no'}`,
      o.extraCfg ?? '',
    ].join('\n');
    writeFileSync(join(dir, 'zoo.cfg'), cfg + '\n');
    const { child, timing } = await timeSpawnToServing(process.execPath, corralArgv(corralRoot(), ['start', join(dir, 'zoo.cfg')]), { cwd: dir }, port, o.pollMs);
    await stopProcess(child, 30_000);
    return timing;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Where zkref's start.sh / stop.sh live (ZKREF_HOME, else the shared tools directory). */
export function zkrefHome(): string {
  return process.env.ZKREF_HOME ?? '/work/shared/tools/zkref';
}

/**
 * Apache ZooKeeper started the way zkref's start.sh starts it, but spawned by the bench
 * so the clock and the probe are the ones Corral gets. start.sh runs once (it writes
 * the node's zoo.cfg and log4j.properties under `dir`/zk1 and checks the port is free),
 * its JVM's exact command line is read from /proc and it is stopped with stop.sh. Each
 * timed start then empties zk1/data and spawns that command line again.
 */
export class ZkrefStarter {
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly argv: string[],
  ) {}

  static async prepare(dir: string, port: number): Promise<ZkrefStarter> {
    const home = zkrefHome();
    if (!existsSync(join(home, 'start.sh'))) throw new Error(`zkref not found under ${home} (set ZKREF_HOME)`);
    mkdirSync(dir, { recursive: true });
    const env = { ...process.env, ZK_CLIENT_PORT: String(port) };
    const r = await run(join(home, 'start.sh'), ['standalone', dir], env);
    const pidLine = readFileSync(join(dir, 'pids'), 'utf8').trim().split('\n')[0] ?? '';
    const pid = Number(pidLine.split(' ')[0]);
    let argv: string[] = [];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((x) => x !== '');
    } finally {
      await run(join(home, 'stop.sh'), [dir], process.env);
    }
    if (r.code !== 0 || argv.length < 2) throw new Error(`zkref start.sh failed (exit ${r.code}):\n${r.out}`);
    return new ZkrefStarter(dir, port, argv);
  }

  /** The JVM command line, as start.sh launches it. */
  get commandLine(): string {
    return this.argv.join(' ');
  }

  async timeStart(pollMs: number): Promise<StartTiming> {
    const data = join(this.dir, 'zk1', 'data');
    rmSync(data, { recursive: true, force: true });
    mkdirSync(data, { recursive: true });
    const { child, timing } = await timeSpawnToServing(this.argv[0]!, this.argv.slice(1), { cwd: this.dir }, this.port, pollMs);
    // stop.sh finds it here if the bench dies before stopping it.
    writeFileSync(join(this.dir, 'pids'), `${child.pid} zk1 ${this.port}\n`);
    await stopProcess(child, 30_000);
    writeFileSync(join(this.dir, 'pids'), '');
    return timing;
  }
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.once('exit', (code) => resolve({ code, out }));
    c.once('error', (e) => resolve({ code: -1, out: e.message }));
  });
}
