// The coordinator's handle on the load-generator threads: N worker_threads, each with
// one Engine, or (for tests) one Engine in the calling thread.

import { Worker } from 'node:worker_threads';
import { Engine } from './engine.js';
import type { Progress } from './types.js';

type Call = { resolve: (v: unknown) => void; reject: (e: Error) => void };

interface Thread {
  call(method: string, args: unknown): Promise<unknown>;
  progress(): Progress;
  close(): Promise<void>;
}

class InlineThread implements Thread {
  private readonly engine = new Engine();
  call(method: string, args: unknown): Promise<unknown> {
    const f = (this.engine as unknown as Record<string, (a: unknown) => Promise<unknown>>)[method];
    return f.call(this.engine, args);
  }
  progress(): Progress {
    return this.engine.progress();
  }
  async close(): Promise<void> {
    await this.engine.disconnect();
  }
}

class WorkerThread implements Thread {
  private readonly w: Worker;
  private nextId = 1;
  private readonly calls = new Map<number, Call>();
  private last: Progress = { replies: 0, errors: 0 };
  private dead: Error | null = null;

  constructor(url: URL) {
    this.w = new Worker(url);
    this.w.on('message', (m: { id?: number; result?: unknown; error?: string; progress?: Progress }) => {
      if (m.progress !== undefined) {
        this.last = m.progress;
        return;
      }
      const c = this.calls.get(m.id!);
      if (c === undefined) return;
      this.calls.delete(m.id!);
      if (m.error !== undefined) c.reject(new Error(`load generator thread: ${m.error}`));
      else c.resolve(m.result);
    });
    const fail = (e: Error) => {
      this.dead = e;
      for (const c of this.calls.values()) c.reject(e);
      this.calls.clear();
    };
    this.w.on('error', fail);
    this.w.on('exit', (code) => fail(new Error(`load generator thread exited with code ${code}`)));
  }

  call(method: string, args: unknown): Promise<unknown> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.w.postMessage({ id, method, args });
    });
  }

  progress(): Progress {
    return this.last;
  }

  async close(): Promise<void> {
    if (this.dead === null) {
      try {
        await this.call('disconnect', {});
      } catch {
        // the thread is going anyway
      }
    }
    this.w.removeAllListeners('exit');
    await this.w.terminate();
  }
}

export class LoadGen {
  private constructor(private readonly threads: Thread[]) {}

  /** `inline`: run the engine in this thread (tests); otherwise `n` worker threads. */
  static start(n: number, opts: { inline?: boolean } = {}): LoadGen {
    if (opts.inline) return new LoadGen([new InlineThread()]);
    const url = new URL('./worker.js', import.meta.url);
    return new LoadGen(Array.from({ length: Math.max(1, n) }, () => new WorkerThread(url)));
  }

  get size(): number {
    return this.threads.length;
  }

  /** Calls `method` on every thread with its own arguments; resolves with every answer. */
  all<T>(method: string, argsFor: (i: number) => unknown): Promise<T[]> {
    return Promise.all(this.threads.map((t, i) => t.call(method, argsFor(i)) as Promise<T>));
  }

  /** Calls `method` on one thread. */
  one<T>(i: number, method: string, args: unknown): Promise<T> {
    return this.threads[i].call(method, args) as Promise<T>;
  }

  progress(): Progress {
    const p = { replies: 0, errors: 0 };
    for (const t of this.threads) {
      const q = t.progress();
      p.replies += q.replies;
      p.errors += q.errors;
    }
    return p;
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.close()));
  }
}

/** Splits `total` into `n` near-equal integer shares. */
export function shares(total: number, n: number): number[] {
  const base = Math.floor(total / n);
  const extra = total % n;
  return Array.from({ length: n }, (_, i) => base + (i < extra ? 1 : 0));
}
