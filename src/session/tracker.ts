// Session expiry in tick-sized buckets (ZooKeeper's ExpiryQueue): touching a session
// moves it to the bucket of its next deadline, and each tick expires one bucket, so
// the cost per tick is the number of sessions that actually expire.

export interface TrackedSession {
  id: bigint;
  timeout: number;
  /** Deadline bucket (ms, a multiple of the tick). */
  expiresAt: number;
  closing: boolean;
}

export class SessionTracker {
  private readonly sessions = new Map<bigint, TrackedSession>();
  private readonly buckets = new Map<number, Set<bigint>>();
  private nextExpiration: number;

  constructor(private readonly tickTime: number, now: number) {
    this.nextExpiration = this.roundUp(now);
  }

  private roundUp(t: number): number {
    return (Math.floor(t / this.tickTime) + 1) * this.tickTime;
  }

  get size(): number {
    return this.sessions.size;
  }

  get(id: bigint): TrackedSession | undefined {
    return this.sessions.get(id);
  }

  ids(): IterableIterator<bigint> {
    return this.sessions.keys();
  }

  all(): IterableIterator<TrackedSession> {
    return this.sessions.values();
  }

  add(id: bigint, timeout: number, now: number): TrackedSession {
    let s = this.sessions.get(id);
    if (s === undefined) {
      s = { id, timeout, expiresAt: 0, closing: false };
      this.sessions.set(id, s);
    }
    s.timeout = timeout;
    this.touch(id, now);
    return s;
  }

  /** Returns false if the session is unknown or closing (the caller answers SESSIONEXPIRED). */
  touch(id: bigint, now: number): boolean {
    const s = this.sessions.get(id);
    if (s === undefined || s.closing) return false;
    const at = this.roundUp(now + s.timeout);
    if (at === s.expiresAt) return true;
    this.buckets.get(s.expiresAt)?.delete(id);
    let b = this.buckets.get(at);
    if (b === undefined) this.buckets.set(at, (b = new Set()));
    b.add(id);
    s.expiresAt = at;
    return true;
  }

  setClosing(id: bigint): void {
    const s = this.sessions.get(id);
    if (s !== undefined) s.closing = true;
  }

  remove(id: bigint): void {
    const s = this.sessions.get(id);
    if (s === undefined) return;
    this.buckets.get(s.expiresAt)?.delete(id);
    this.sessions.delete(id);
  }

  /** Sessions whose deadline has passed by `now`; they are marked closing. */
  expire(now: number): TrackedSession[] {
    const out: TrackedSession[] = [];
    while (this.nextExpiration <= now) {
      const b = this.buckets.get(this.nextExpiration);
      if (b !== undefined) {
        this.buckets.delete(this.nextExpiration);
        for (const id of b) {
          const s = this.sessions.get(id);
          if (s !== undefined && !s.closing) {
            s.closing = true;
            out.push(s);
          }
        }
      }
      this.nextExpiration += this.tickTime;
    }
    return out;
  }

  /** Milliseconds until the next bucket is due. */
  msUntilNext(now: number): number {
    return Math.max(0, this.nextExpiration - now);
  }
}
