// What is running, on stderr: one live line on a terminal (phase, elapsed, replies/s,
// errors), and one line per finished phase otherwise (CI logs).

import type { Progress } from './loadgen/types.js';

export class ProgressDisplay {
  private readonly tty: boolean;
  private label = '';
  private started = 0;
  private expectedMs = 0;
  private last: Progress = { replies: 0, errors: 0 };
  private lastAt = 0;
  private rate = 0;
  private base: Progress = { replies: 0, errors: 0 };
  private timer: NodeJS.Timeout | null = null;
  private readonly t0 = Date.now();

  constructor(
    private readonly source: () => Progress,
    private readonly out: NodeJS.WriteStream = process.stderr,
    enabled = true,
  ) {
    this.tty = enabled && out.isTTY === true;
    this.enabled = enabled;
  }

  private readonly enabled: boolean;

  private clock(): string {
    const s = Math.floor((Date.now() - this.t0) / 1000);
    return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  }

  begin(label: string, expectedMs = 0): void {
    this.label = label;
    this.started = Date.now();
    this.expectedMs = expectedMs;
    this.base = this.source();
    this.last = this.base;
    this.lastAt = this.started;
    this.rate = 0;
    if (!this.enabled) return;
    if (this.tty) {
      this.draw();
      this.timer ??= setInterval(() => this.draw(), 250);
      this.timer.unref();
    }
  }

  private draw(): void {
    const now = Date.now();
    const p = this.source();
    if (now - this.lastAt >= 200) {
      this.rate = ((p.replies - this.last.replies) * 1000) / (now - this.lastAt);
      this.last = p;
      this.lastAt = now;
    }
    const el = ((now - this.started) / 1000).toFixed(1);
    const tot = this.expectedMs > 0 ? `/${(this.expectedMs / 1000).toFixed(1)}s` : 's';
    const errs = p.errors - this.base.errors;
    const line = `[${this.clock()}] ${this.label}  ${el}${tot}  ${fmtRate(this.rate)} replies/s  errors ${errs}`;
    this.out.write(`\r\x1b[K${line.slice(0, (this.out.columns ?? 120) - 1)}`);
  }

  /** Ends the current phase with a one-line result. */
  end(summary: string): void {
    if (!this.enabled) return;
    if (this.tty) this.out.write('\r\x1b[K');
    this.out.write(`[${this.clock()}] ${this.label}: ${summary}\n`);
  }

  log(msg: string): void {
    if (!this.enabled) return;
    if (this.tty) this.out.write('\r\x1b[K');
    this.out.write(`[${this.clock()}] ${msg}\n`);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.tty && this.enabled) this.out.write('\r\x1b[K');
  }
}

export function fmtRate(x: number): string {
  if (!Number.isFinite(x)) return '-';
  return Math.round(x).toLocaleString('en-US');
}
