// Real Corral ensembles for tests: N `corral start` processes on loopback, each with its
// own zoo.cfg and myid, killed and restarted with real signals. With `proxied`, every
// member reaches every other member's quorum and election ports through a TcpProxy of
// its own, so a test can cut one member off from the rest (a network partition).

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { corralCommand, fourLetter, freePort } from './process.js';
import { TcpProxy } from './proxy.js';

export interface EnsembleOptions {
  participants: number;
  observers?: number;
  proxied?: boolean;
  tickTime?: number;
  initLimit?: number;
  syncLimit?: number;
  /** More zoo.cfg lines for every member. */
  extra?: string;
  /** More zoo.cfg lines for one member (after `extra`, so they win). */
  memberExtra?: Record<number, string>;
  /** Members configured but not started by start() (spawn them later). */
  startLater?: number[];
}

export interface Member {
  id: number;
  observer: boolean;
  clientPort: number;
  quorumPort: number;
  electionPort: number;
  dir: string;
  cfgFile: string;
  child: ChildProcess | null;
  out: string;
}

export type MemberState = 'leader' | 'follower' | 'observer' | 'not serving' | 'down';

export class Ensemble {
  readonly members: Member[] = [];
  /** proxies.get(`${from}->${to}`): how `from` reaches `to`'s quorum and election ports. */
  private readonly proxies = new Map<string, TcpProxy[]>();
  private readonly root: string;

  private constructor(readonly opts: EnsembleOptions) {
    this.root = mkdtempSync(path.join(tmpdir(), 'corral-ens-'));
  }

  static async start(opts: EnsembleOptions): Promise<Ensemble> {
    const e = new Ensemble(opts);
    await e.init();
    try {
      await Promise.all(e.members.filter((m) => !opts.startLater?.includes(m.id)).map((m) => e.spawn(m.id)));
    } catch (err) {
      await e.stop(); // members that did start must not outlive the test
      throw err;
    }
    return e;
  }

  /** freePort() may hand out a port it handed out before (each is released at once): never twice here. */
  private readonly used = new Set<number>();
  private async port(): Promise<number> {
    for (;;) {
      const p = await freePort();
      if (!this.used.has(p)) {
        this.used.add(p);
        return p;
      }
    }
  }

  private async init(): Promise<void> {
    const n = this.opts.participants + (this.opts.observers ?? 0);
    for (let id = 1; id <= n; id++) {
      const dir = path.join(this.root, `s${id}`);
      mkdirSync(path.join(dir, 'data'), { recursive: true });
      writeFileSync(path.join(dir, 'data', 'myid'), `${id}\n`);
      this.members.push({
        id,
        observer: id > this.opts.participants,
        clientPort: await this.port(),
        quorumPort: await this.port(),
        electionPort: await this.port(),
        dir,
        cfgFile: path.join(dir, 'zoo.cfg'),
        child: null,
        out: '',
      });
    }
    for (const a of this.members) {
      const lines: string[] = [];
      for (const b of this.members) {
        let q = b.quorumPort;
        let el = b.electionPort;
        if (this.opts.proxied && a.id !== b.id) {
          const pq = await TcpProxy.start(b.quorumPort, '127.0.0.1', await this.port());
          const pe = await TcpProxy.start(b.electionPort, '127.0.0.1', await this.port());
          this.proxies.set(`${a.id}->${b.id}`, [pq, pe]);
          q = pq.port;
          el = pe.port;
        }
        lines.push(`server.${b.id}=127.0.0.1:${q}:${el}${b.observer ? ':observer' : ''}`);
      }
      writeFileSync(
        a.cfgFile,
        [
          `tickTime=${this.opts.tickTime ?? 200}`,
          `initLimit=${this.opts.initLimit ?? 10}`,
          `syncLimit=${this.opts.syncLimit ?? 5}`,
          `dataDir=${path.join(a.dir, 'data')}`,
          `clientPort=${a.clientPort}`,
          'clientPortAddress=127.0.0.1',
          '4lw.commands.whitelist=*',
          ...(a.observer ? ['peerType=observer'] : []),
          ...lines,
          this.opts.extra ?? '',
          this.opts.memberExtra?.[a.id] ?? '',
        ].join('\n') + '\n',
      );
    }
  }

  member(id: number): Member {
    return this.members.find((m) => m.id === id)!;
  }

  /** Starts (or restarts) member `id`'s process. */
  async spawn(id: number): Promise<void> {
    const m = this.member(id);
    if (m.child !== null && m.child.exitCode === null && m.child.signalCode === null) throw new Error(`server ${id} is running`);
    const child = spawn(process.execPath, corralCommand('start', m.cfgFile), { stdio: ['ignore', 'pipe', 'pipe'] });
    m.child = child;
    child.stdout!.on('data', (d) => (m.out += d.toString()));
    child.stderr!.on('data', (d) => (m.out += d.toString()));
    // Wait until it answers four-letter words (it may not serve clients yet).
    const deadline = Date.now() + 15000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server ${id} exited ${child.exitCode}:\n${m.out}`);
      if ((await fourLetter(m.clientPort, 'ruok').catch(() => '')) === 'imok') return;
      if (Date.now() > deadline) throw new Error(`server ${id} did not answer ruok:\n${m.out}`);
      await sleep(20);
    }
  }

  /** SIGKILL (or another signal) and wait for the process to be gone. */
  async kill(id: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const c = this.member(id).child;
    if (c === null || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(signal);
    await gone;
  }

  isUp(id: number): boolean {
    const c = this.member(id).child;
    return c !== null && c.exitCode === null && c.signalCode === null;
  }

  async state(id: number): Promise<MemberState> {
    if (!this.isUp(id)) return 'down';
    const srvr = await fourLetter(this.member(id).clientPort, 'srvr').catch(() => '');
    const mode = /^Mode: (\w+)/m.exec(srvr)?.[1];
    if (mode === 'leader' || mode === 'follower' || mode === 'observer') return mode;
    return 'not serving';
  }

  async states(): Promise<Map<number, MemberState>> {
    const out = new Map<number, MemberState>();
    await Promise.all(this.members.map(async (m) => out.set(m.id, await this.state(m.id))));
    return out;
  }

  /**
   * Waits until the members in `ids` (default: all that are up) serve, one of them as
   * leader, and returns the leader's id.
   */
  async waitServing(ids?: number[], timeoutMs = 15000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const want = ids ?? this.members.filter((m) => this.isUp(m.id)).map((m) => m.id);
      const st = await this.states();
      const leaders = want.filter((id) => st.get(id) === 'leader');
      const serving = want.every((id) => {
        const s = st.get(id);
        return s === 'leader' || s === 'follower' || s === 'observer';
      });
      if (serving && leaders.length === 1) return leaders[0]!;
      if (Date.now() > deadline) {
        throw new Error(`ensemble did not settle: ${[...st].map(([k, v]) => `${k}=${v}`).join(' ')}\n${this.logs()}`);
      }
      await sleep(25);
    }
  }

  async leader(): Promise<number | undefined> {
    const st = await this.states();
    return [...st].find(([, s]) => s === 'leader')?.[0];
  }

  /** Client connect string (all members by default). */
  connectString(ids?: number[]): string {
    return (ids ?? this.members.map((m) => m.id)).map((id) => `127.0.0.1:${this.member(id).clientPort}`).join(',');
  }

  /**
   * Cuts member `id` off from every other member (both directions, both ports). By default
   * the connections are closed, as when a host dies; `silent` keeps them open and holds
   * the bytes back, so nobody notices but by the silence (a cable pulled between switches).
   */
  partition(id: number, opts: { silent?: boolean } = {}): void {
    if (!this.opts.proxied) throw new Error('partition needs a proxied ensemble');
    for (const [k, ps] of this.proxies) {
      const [a, b] = k.split('->').map(Number);
      if (a === id || b === id) for (const p of ps) (opts.silent ? p.silence() : p.partition());
    }
  }

  heal(id: number): void {
    for (const [k, ps] of this.proxies) {
      const [a, b] = k.split('->').map(Number);
      if (a === id || b === id) for (const p of ps) p.heal();
    }
  }

  logs(): string {
    return this.members.map((m) => `--- server ${m.id}\n${m.out.split('\n').slice(-40).join('\n')}`).join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => this.kill(m.id, 'SIGKILL')));
    for (const ps of this.proxies.values()) for (const p of ps) await p.close();
    rmSync(this.root, { recursive: true, force: true });
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Retries `f` until it succeeds (the ensemble may be electing, a client reconnecting) or `ms` pass. */
export async function retry<T>(f: () => Promise<T>, ms = 15000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await f();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(50);
    }
  }
}
