// One load-generator thread: a set of sessions and the drivers that run phases over
// them. A worker_threads worker hosts one Engine (worker.ts); tests host one inline.
//
// Accounting rules (the figures never drop a failed request):
//  - a request is counted if it was sent (closed loop) or scheduled (open loop, sequence)
//    inside the measured window; every counted request ends up either as a reply (its
//    latency recorded, its err counted if non-zero) or as an error: `unfinished` if no
//    reply came within drainMs after the window, `connection` if its session was lost;
//  - unfinished requests are also recorded in the latency histogram with the time they
//    had waited when given up on (a lower bound), so an overload cannot look fast;
//  - errors in the warmup are reported separately, never silently dropped.

import { performance } from 'node:perf_hooks';
import { Histogram, type HistogramData } from './histogram.js';
import { errName, flushPendingWrites, Kind, KIND_NAME, nowMs, Session } from './session.js';
import type {
  Address,
  ConnectResult,
  KeySpace,
  PhaseResult,
  PhaseSpec,
  Progress,
  StormResult,
  WatchArmResult,
  WatchCollectResult,
  WatchFireResult,
} from './types.js';

/** xorshift32: fast, deterministic per seed, good enough to pick keys and ops. */
function rng(seed: number): () => number {
  let x = seed | 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

export function keyPath(ks: KeySpace, i: number): string {
  switch (ks.kind) {
    case 'flat':
      return ks.prefix + String(i).padStart(ks.pad, '0');
    case 'tree':
      return `${ks.root}/d${Math.floor(i / ks.fanout)}/n${i % ks.fanout}`;
    case 'treeDirs':
      return `${ks.root}/d${i}`;
  }
}

/** Encoded paths by index, cached when the keyspace is small enough to keep. */
function pathFn(ks: KeySpace): (i: number) => Buffer {
  if (ks.count > 200_000) return (i) => Buffer.from(keyPath(ks, i));
  const cache = new Array<Buffer | undefined>(ks.count);
  return (i) => (cache[i] ??= Buffer.from(keyPath(ks, i)));
}

const napCell = new Int32Array(new SharedArrayBuffer(4));

/**
 * Resolves at wall-clock time t (nowMs). Timers run on a millisecond clock and may fire
 * up to a millisecond early, so the last stretch is napped away (Atomics.wait).
 */
async function sleepUntil(t: number): Promise<void> {
  const d = t - nowMs();
  if (d > 2) await new Promise((r) => setTimeout(r, d - 1));
  for (let left = t - nowMs(); left > 0; left = t - nowMs()) Atomics.wait(napCell, 0, 0, Math.min(left, 1));
}

function bump(m: Record<string, number>, k: string, n = 1): void {
  m[k] = (m[k] ?? 0) + n;
}

const ABANDONED = -Infinity;

export interface ConnectArgs {
  targets: Address[];
  count: number;
  /** Global index of this thread's first session: session i goes to targets[(base + i) % n]. */
  baseIndex: number;
  sessionTimeoutMs: number;
  connectTimeoutMs: number;
}

export interface StormArgs extends ConnectArgs {
  startAt: number;
}

export class Engine {
  sessions: Session[] = [];
  private writer: Session | null = null;
  private progReplies = 0;
  private progErrors = 0;
  private keepalive: NodeJS.Timeout;

  constructor() {
    // A session idle for a third of its timeout gets a ping, so sessions survive the
    // gaps between phases (and the other target's turn in --compare runs).
    this.keepalive = setInterval(() => {
      const now = nowMs();
      for (const s of this.sessions) if (s.open && s.outstanding === 0 && now - s.lastSend > s.timeoutMs / 3) s.ping();
      if (this.writer?.open && now - this.writer.lastSend > this.writer.timeoutMs / 3) this.writer.ping();
    }, 1000);
    this.keepalive.unref();
  }

  progress(): Progress {
    return { replies: this.progReplies, errors: this.progErrors };
  }

  // --- sessions --------------------------------------------------------------------

  private async open(a: ConnectArgs, keep: Session[]): Promise<ConnectResult> {
    const hist = new Histogram();
    const errors: Record<string, number> = {};
    const t0 = nowMs();
    let last = t0;
    await Promise.all(
      Array.from({ length: a.count }, (_, i) => {
        const addr = a.targets[(a.baseIndex + i) % a.targets.length];
        return Session.connectTo(addr, a.baseIndex + i, { sessionTimeoutMs: a.sessionTimeoutMs, connectTimeoutMs: a.connectTimeoutMs }).then(
          (s) => {
            const t = nowMs();
            hist.recordMs(t - t0);
            if (t > last) last = t;
            keep.push(s);
          },
          (e: { code?: string; message: string }) => {
            bump(errors, `connect:${e.code ?? 'error'}`);
          },
        );
      }),
    );
    return { connected: keep.length, errors, hist: hist.data(), firstStart: t0, lastConnected: last };
  }

  async connect(a: ConnectArgs): Promise<ConnectResult> {
    const fresh: Session[] = [];
    const r = await this.open(a, fresh);
    this.sessions.push(...fresh);
    return r;
  }

  async connectWriter(a: { target: Address; sessionTimeoutMs: number; connectTimeoutMs: number }): Promise<void> {
    this.writer = await Session.connectTo(a.target, -1, a);
  }

  async disconnect(): Promise<{ closed: number }> {
    const all = [...this.sessions, ...(this.writer ? [this.writer] : [])];
    this.sessions = [];
    this.writer = null;
    await Promise.all(all.map((s) => s.close(3000)));
    return { closed: all.length };
  }

  async storm(a: StormArgs): Promise<StormResult> {
    await sleepUntil(a.startAt);
    const ok: Session[] = [];
    const r = await this.open(a, ok);
    const c0 = nowMs();
    await Promise.all(ok.map((s) => s.close(10_000)));
    return { ...r, closeMs: nowMs() - c0 };
  }

  // --- watches ---------------------------------------------------------------------

  private firstNotification: number[] = [];

  async watchArm(a: { path: string }): Promise<WatchArmResult> {
    const path = Buffer.from(a.path);
    const errors: Record<string, number> = {};
    const live = this.sessions.filter((s) => s.open);
    this.firstNotification = new Array<number>(this.sessions.length).fill(0);
    let waiting = live.length;
    let armed = 0;
    await new Promise<void>((resolve) => {
      if (waiting === 0) return resolve();
      for (const s of live) {
        const idx = this.sessions.indexOf(s);
        s.onNotification = (_s, _type, _p, at) => {
          if (this.firstNotification[idx] === 0) this.firstNotification[idx] = at;
        };
        s.onClosed = () => {
          bump(errors, `exists:connection(${s.closeReason})`);
          if (--waiting === 0) resolve();
        };
        s.onReply = (_s, _kind, err) => {
          // exists sets the watch whether or not the node is there; only real failures count.
          if (err === 0 || err === -101) armed++;
          else bump(errors, `exists:${errName(err)}`);
          if (--waiting === 0) resolve();
        };
        s.send(Kind.existsWatch, path, null, nowMs());
      }
    });
    return { armed, errors };
  }

  watchFire(a: { path: string; valueSize: number }): Promise<WatchFireResult> {
    const w = this.writer;
    if (w === null || !w.open) return Promise.reject(new Error('no writer session'));
    return new Promise((resolve) => {
      const sentAt = nowMs();
      w.onReply = (_s, _k, err) => resolve({ sentAt, repliedAt: nowMs(), err });
      w.onClosed = () => resolve({ sentAt, repliedAt: nowMs(), err: -4 });
      w.send(Kind.set, Buffer.from(a.path), Buffer.alloc(a.valueSize, 0x62), sentAt);
    });
  }

  async watchCollect(a: { timeoutMs: number }): Promise<WatchCollectResult> {
    const deadline = nowMs() + a.timeoutMs;
    const pending = () => this.sessions.some((s, i) => s.open && this.firstNotification[i] === 0);
    while (pending() && nowMs() < deadline) await new Promise((r) => setTimeout(r, 2));
    const arrivals: number[] = [];
    let missing = 0;
    this.sessions.forEach((_s, i) => {
      const t = this.firstNotification[i];
      if (t > 0) arrivals.push(t);
      else missing++;
    });
    return { arrivals, missing };
  }

  // --- phases ----------------------------------------------------------------------

  phase(spec: PhaseSpec): Promise<PhaseResult> {
    return new Promise((resolve) => this.runPhase(spec, resolve));
  }

  private runPhase(spec: PhaseSpec, resolve: (r: PhaseResult) => void): void {
    const sessions = this.sessions.filter((s) => s.open);
    const pathOf = pathFn(spec.keys);
    const keyCount = spec.keys.count;
    const value = Buffer.alloc(spec.valueSize, 0x61);
    const churnPath = Buffer.from(spec.churnPrefix);
    const rand = rng(spec.seed);
    const depth = Math.max(1, spec.depth);
    const mode = spec.mode;
    const seq = spec.sequence;
    const tolerate = new Set(seq?.tolerate ?? []);

    const wGet = spec.mix.get ?? 0;
    const wSet = spec.mix.set ?? 0;
    const wChurn = spec.mix.churn ?? 0;
    const wSum = wGet + wSet + wChurn || 1;
    const cGet = wGet / wSum;
    const cSet = (wGet + wSet) / wSum;

    const hists: (Histogram | undefined)[] = [];
    const histOf = (kind: number): Histogram => (hists[kind] ??= new Histogram());
    const errors: Record<string, number> = {};
    const warmupErrors: Record<string, number> = {};
    const tolerated: Record<string, number> = {};
    let requests = 0;
    let replies = 0;
    let ok = 0;
    let okInWindow = 0;
    let lastReply = 0;
    let notifications = 0;
    let sessionsLost = 0;
    let maxBacklog = 0;
    let maxSendLag = 0;
    let stopping = false;
    let finished = false;
    let seqNext = seq?.from ?? 0;
    const seqTo = seq?.to ?? 0;
    const seqKind = seq === undefined ? 0 : seq.op === 'create' ? Kind.create : seq.op === 'delete' ? Kind.delete : Kind.set;

    const windowStart = mode === 'closed' ? spec.startAt + spec.warmupMs : spec.startAt;
    const windowEnd = mode === 'sequence' ? Infinity : windowStart + spec.durationMs;
    let eluStart: ReturnType<typeof performance.eventLoopUtilization> | null = null;
    let eluEnd: ReturnType<typeof performance.eventLoopUtilization> | null = null;
    const timers: NodeJS.Timeout[] = [];
    let tickTimer: NodeJS.Timeout | null = null;
    let napMs = 0;
    const lagHist = new Histogram();
    // Open loop: reply time minus the time the request was actually sent (server, kernel
    // and the reader's own delay), and the gaps between the scheduler's turns (its stalls).
    const wireHist = new Histogram();
    const tickGapHist = new Histogram();
    let lastTick = 0;

    const countError = (kind: number, name: string, t: number) => {
      if (t >= windowStart) {
        bump(errors, `${KIND_NAME[kind]}:${name}`);
        this.progErrors++;
      } else bump(warmupErrors, `${KIND_NAME[kind]}:${name}`);
    };

    /** Picks the next operation by the mix and sends it (closed loop) at time t. */
    const sendRandom = (s: Session, t: number) => {
      const r = rand();
      if (r < cGet) s.send(Kind.get, pathOf(Math.floor(rand() * keyCount)), null, t);
      else if (r < cSet) s.send(Kind.set, pathOf(Math.floor(rand() * keyCount)), value, t);
      else s.send(Kind.createEphSeq, churnPath, value, t);
      if (t >= windowStart) requests++;
    };

    const dataFor = (kind: number) => (kind === Kind.set || kind === Kind.create || kind === Kind.createEphSeq ? value : null);

    const sendSeq = (s: Session) => {
      if (seqNext >= seqTo) return false;
      const i = seqNext++;
      requests++;
      s.send(seqKind, pathOf(i), dataFor(seqKind), nowMs());
      return true;
    };

    /** Open loop: sends what the window allows from the session's backlog. */
    const pump = (s: Session) => {
      const b = s.backlog;
      if (b.size === 0) return;
      const now = nowMs();
      while (s.outstanding < depth && b.size > 0) {
        const h = b.head;
        const kind = b.kind[h];
        const t = b.t[h];
        const p = b.aux[h]!;
        b.shift();
        if (now - t > maxSendLag) maxSendLag = now - t;
        lagHist.recordMs(now - t);
        s.send(kind, p, dataFor(kind), t);
      }
    };

    const enqueue = (s: Session, kind: number, path: Buffer, t: number) => {
      if (!s.open) {
        countError(kind, 'connection', t);
        return;
      }
      if (s.outstanding < depth && s.backlog.size === 0) {
        const lag = nowMs() - t;
        if (lag > maxSendLag) maxSendLag = lag;
        lagHist.recordMs(lag);
        s.send(kind, path, dataFor(kind), t);
      } else {
        s.backlog.push(0, kind, t, path);
        if (s.backlog.size > maxBacklog) maxBacklog = s.backlog.size;
      }
    };

    const idle = () => {
      for (const s of sessions) if (s.open && (s.outstanding > 0 || s.backlog.size > 0)) return false;
      return true;
    };

    const finish = () => {
      if (finished) return;
      finished = true;
      for (const t of timers) clearTimeout(t);
      if (tickTimer !== null) clearTimeout(tickTimer);
      flushPendingWrites();
      const now = nowMs();
      // Whatever is still outstanding or held back now is given up on: counted, with
      // the time it had waited as its (lower-bound) latency.
      for (const s of sessions) {
        const f = s.fifo;
        for (let k = 0; k < f.size; k++) {
          const i = (f.head + k) & (f.kind.length - 1);
          const t = f.t[i];
          if (t >= windowStart && t !== ABANDONED) {
            histOf(f.kind[i]).recordMs(now - t);
            countError(f.kind[i], 'unfinished', t);
          }
          f.t[i] = ABANDONED;
        }
        const b = s.backlog;
        while (b.size > 0) {
          const h = b.head;
          histOf(b.kind[h]).recordMs(now - b.t[h]);
          countError(b.kind[h], 'unfinished', b.t[h]);
          b.shift();
        }
        s.onReply = () => {};
        s.onClosed = () => {};
      }
      eluEnd ??= performance.eventLoopUtilization();
      // Naps (open loop) block the thread without work: they are not load-generator load.
      let elu = 0;
      if (eluStart !== null) {
        const d = performance.eventLoopUtilization(eluEnd, eluStart);
        elu = d.idle + d.active > 0 ? Math.max(0, d.active - napMs) / (d.idle + d.active) : 0;
      }
      const hist: Record<string, HistogramData> = {};
      hists.forEach((h, kind) => {
        if (h === undefined) return;
        const name = KIND_NAME[kind];
        if (hist[name] === undefined) hist[name] = h.data();
        else hist[name] = Histogram.from(hist[name]).merge(h).data();
      });
      resolve({
        requests,
        replies,
        ok,
        okInWindow,
        errors,
        warmupErrors,
        tolerated,
        hist,
        windowStart,
        windowEnd: mode === 'sequence' ? lastReply : windowEnd,
        lastReply,
        elu,
        maxBacklog,
        maxSendLagMs: maxSendLag,
        sendLag: lagHist.data(),
        wire: wireHist.data(),
        tickGap: tickGapHist.data(),
        notifications,
        sessionsLost,
        openSessions: sessions.length,
      } as PhaseResult);
    };

    const checkDone = () => {
      if (stopping && !finished && idle()) finish();
    };

    const onReply = (s: Session, kind: number, err: number, t: number, buf: Buffer, bs: number) => {
      if (t === ABANDONED) return;
      const now = nowMs();
      lastReply = now;
      this.progReplies++;
      const counted = t >= windowStart;
      if (counted) {
        replies++;
        histOf(kind).recordMs(now - t);
        if (mode === 'open') wireHist.recordMs(now - s.replySent);
        if (err === 0) {
          ok++;
          if (now <= windowEnd) okInWindow++;
        } else if (tolerate.has(err)) {
          bump(tolerated, `${KIND_NAME[kind]}:${errName(err)}`);
          ok++;
          if (now <= windowEnd) okInWindow++;
        } else countError(kind, errName(err), t);
      } else if (err !== 0) countError(kind, errName(err), t);

      if (mode === 'closed') {
        if (now >= windowEnd) {
          stopping = true;
          checkDone();
          return;
        }
        if (kind === Kind.createEphSeq && err === 0) {
          const len = buf.readInt32BE(bs);
          s.send(Kind.delete, Buffer.from(buf.subarray(bs + 4, bs + 4 + len)), null, now);
          if (now >= windowStart) requests++;
        } else sendRandom(s, now);
      } else if (mode === 'open') {
        if (kind === Kind.createEphSeq && err === 0) {
          const len = buf.readInt32BE(bs);
          // The delete is due as soon as the create is answered.
          s.backlog.push(0, Kind.delete, now, Buffer.from(buf.subarray(bs + 4, bs + 4 + len)));
          requests++;
        }
        pump(s);
        if (stopping) checkDone();
      } else {
        if (!sendSeq(s)) {
          if (seqNext >= seqTo) stopping = true;
          checkDone();
        }
      }
    };

    const onClosed = (s: Session) => {
      sessionsLost++;
      const reason = `connection(${s.closeReason ?? 'closed'})`;
      const f = s.fifo;
      for (let k = 0; k < f.size; k++) {
        const i = (f.head + k) & (f.kind.length - 1);
        if (f.t[i] !== ABANDONED) countError(f.kind[i], reason, f.t[i]);
        f.t[i] = ABANDONED;
      }
      const b = s.backlog;
      while (b.size > 0) {
        countError(b.kind[b.head], reason, b.t[b.head]);
        b.shift();
      }
      if (sessions.every((x) => !x.open)) stopping = true;
      checkDone();
    };

    for (const s of sessions) {
      s.onReply = onReply;
      s.onClosed = onClosed;
      s.onNotification = () => {
        notifications++;
      };
      s.backlog.clear();
    }

    if (sessions.length === 0) {
      stopping = true;
      finish();
      return;
    }

    const begin = () => {
      const now = nowMs();
      eluStart = performance.eventLoopUtilization();
      if (mode === 'closed') {
        for (const s of sessions) for (let d = 0; d < depth; d++) sendRandom(s, now);
        if (spec.warmupMs > 0) {
          eluStart = null;
          timers.push(setTimeout(() => (eluStart = performance.eventLoopUtilization()), Math.max(0, windowStart - nowMs())));
        }
        timers.push(
          setTimeout(() => {
            stopping = true;
            eluEnd = performance.eventLoopUtilization();
            checkDone();
          }, Math.max(0, windowEnd - nowMs())),
        );
      } else if (mode === 'sequence') {
        for (const s of sessions) for (let d = 0; d < depth; d++) if (!sendSeq(s)) break;
        if (seqNext >= seqTo) stopping = true;
        checkDone();
      } else {
        // `rate` counts operations; a churn item is two (the create, then its delete).
        const opsPerItem = 1 + wChurn / wSum;
        const interval = (1000 * opsPerItem) / Math.max(spec.rate, 1e-9);
        let k = 0;
        let rr = 0;
        // Consecutive requests go to the same session in small blocks, so one turn's
        // due requests touch a few sockets (one write each) rather than all of them.
        const block = Math.max(1, Math.min(Math.floor(depth / 2), Math.ceil((spec.rate * 0.15e-3) / 4)));
        let inBlock = 0;
        // Timers have 1 ms granularity, too coarse to send on schedule: when the next
        // request is due within a few ms the thread naps (Atomics.wait, ~0.1-0.2 ms, no
        // CPU) and goes round the event loop (replies are read there) until it is due.
        const nap = new Int32Array(new SharedArrayBuffer(4));
        const tick = () => {
          tickTimer = null;
          if (finished) return;
          const n = nowMs();
          if (lastTick > 0) tickGapHist.recordMs(n - lastTick);
          lastTick = n;
          for (;;) {
            const t = spec.startAt + k * interval;
            if (t >= windowEnd) {
              flushPendingWrites();
              stopping = true;
              eluEnd = performance.eventLoopUtilization();
              checkDone();
              return;
            }
            if (t > n) break;
            k++;
            requests++;
            const s = sessions[rr];
            if (++inBlock >= block) {
              inBlock = 0;
              rr = rr + 1 === sessions.length ? 0 : rr + 1;
            }
            const r = rand();
            if (r < cGet) enqueue(s, Kind.get, pathOf(Math.floor(rand() * keyCount)), t);
            else if (r < cSet) enqueue(s, Kind.set, pathOf(Math.floor(rand() * keyCount)), t);
            else enqueue(s, Kind.createEphSeq, churnPath, t);
          }
          flushPendingWrites();
          const wait = spec.startAt + k * interval - nowMs();
          if (wait > 3) {
            tickTimer = setTimeout(tick, wait - 2);
            lastTick = 0;
            return;
          }
          if (wait > 0) {
            const a = nowMs();
            Atomics.wait(nap, 0, 0, Math.min(Math.max(wait, 0.05), 0.1));
            napMs += nowMs() - a;
          }
          setImmediate(tick);
        };
        tickTimer = setTimeout(tick, 0);
      }
      if (mode === 'sequence') {
        // No deadline for a sequence, but a stall (no reply for drainMs) ends it.
        const watchdog = setInterval(() => {
          if (!finished && nowMs() - Math.max(lastReply, spec.startAt) > spec.drainMs) {
            stopping = true;
            const left = seqTo - seqNext;
            if (left > 0) {
              requests += left;
              bump(errors, `${KIND_NAME[seqKind]}:unfinished`, left);
              this.progErrors += left;
            }
            seqNext = seqTo;
            finish();
          }
        }, 250);
        timers.push(watchdog);
      } else {
        timers.push(
          setTimeout(
            () => {
              stopping = true;
              finish();
            },
            Math.max(0, windowEnd - nowMs()) + spec.drainMs,
          ),
        );
      }
    };
    void sleepUntil(spec.startAt).then(begin);
  }
}
