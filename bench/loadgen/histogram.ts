// A log-linear latency histogram in microseconds (HdrHistogram's layout, simplified):
// exact below 256 µs, then 128 sub-buckets per power of two, so any recorded value is
// within 0.8% of the value reported for it. Fixed size (3200 buckets, 25 KiB), cheap to
// record into, and mergeable, so each worker keeps its own and the coordinator adds them.

const SUB = 128;
const LINEAR = 2 * SUB; // values below this are exact
const TOP_EXP = 23; // highest shift: values up to 2^31 µs (~35 minutes)
export const BUCKETS = LINEAR + TOP_EXP * SUB;
const MAX_US = 2 ** 31 - 1;

export function bucketOf(us: number): number {
  let v = Math.floor(us);
  if (v < LINEAR) return v < 0 ? 0 : v;
  if (v > MAX_US) v = MAX_US;
  const e = 31 - Math.clz32(v) - 7; // v >> e lies in [128, 255]
  return LINEAR + (e - 1) * SUB + ((v >>> e) - SUB);
}

/** Lowest value (µs) that lands in bucket i. */
export function bucketLow(i: number): number {
  if (i < LINEAR) return i;
  const e = Math.floor((i - LINEAR) / SUB) + 1;
  return ((i - LINEAR) % SUB + SUB) * 2 ** e;
}

/** Width of bucket i in µs. */
export function bucketWidth(i: number): number {
  if (i < LINEAR) return 1;
  return 2 ** (Math.floor((i - LINEAR) / SUB) + 1);
}

/** What crosses a worker boundary: plain data, structured-clone friendly. */
export interface HistogramData {
  counts: Float64Array;
  n: number;
  sumUs: number;
  minUs: number;
  maxUs: number;
}

export interface LatencySummary {
  count: number;
  /** Milliseconds. */
  mean: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export class Histogram implements HistogramData {
  counts = new Float64Array(BUCKETS);
  n = 0;
  sumUs = 0;
  minUs = Infinity;
  maxUs = 0;

  static from(d: HistogramData): Histogram {
    const h = new Histogram();
    h.counts.set(d.counts);
    h.n = d.n;
    h.sumUs = d.sumUs;
    h.minUs = d.minUs;
    h.maxUs = d.maxUs;
    return h;
  }

  /** Records one latency given in milliseconds. */
  recordMs(ms: number): void {
    this.recordUs(ms * 1000);
  }

  recordUs(us: number): void {
    if (!(us >= 0)) us = 0;
    this.counts[bucketOf(us)]++;
    this.n++;
    this.sumUs += us;
    if (us < this.minUs) this.minUs = us;
    if (us > this.maxUs) this.maxUs = us;
  }

  merge(o: HistogramData): this {
    if (o.n === 0) return this;
    for (let i = 0; i < BUCKETS; i++) this.counts[i] += o.counts[i];
    this.n += o.n;
    this.sumUs += o.sumUs;
    if (o.minUs < this.minUs) this.minUs = o.minUs;
    if (o.maxUs > this.maxUs) this.maxUs = o.maxUs;
    return this;
  }

  /**
   * The value (µs) at quantile q in [0, 1]: the smallest recorded value v such that at
   * least q of all values are <= v, reported as the middle of its bucket and clamped to
   * the exact min and max seen.
   */
  quantileUs(q: number): number {
    if (this.n === 0) return 0;
    if (q <= 0) return this.minUs;
    if (q >= 1) return this.maxUs;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) {
        const mid = bucketLow(i) + (bucketWidth(i) - 1) / 2;
        return Math.min(this.maxUs, Math.max(this.minUs, mid));
      }
    }
    return this.maxUs;
  }

  summary(): LatencySummary {
    const ms = (us: number) => Math.round(us) / 1000;
    if (this.n === 0) return { count: 0, mean: 0, min: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
    return {
      count: this.n,
      mean: ms(this.sumUs / this.n),
      min: ms(this.minUs),
      p50: ms(this.quantileUs(0.5)),
      p90: ms(this.quantileUs(0.9)),
      p99: ms(this.quantileUs(0.99)),
      p999: ms(this.quantileUs(0.999)),
      max: ms(this.maxUs),
    };
  }

  data(): HistogramData {
    return { counts: this.counts, n: this.n, sumUs: this.sumUs, minUs: this.minUs, maxUs: this.maxUs };
  }
}
