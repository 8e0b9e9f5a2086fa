// Jute binary encoding (BinaryInputArchive/BinaryOutputArchive): big-endian ints and
// longs, length-prefixed buffers and strings with -1 for null, counted vectors.
// Longs are carried as bigint only where a caller needs 64 bits exactly (zxids,
// session ids); everything is decoded straight from the frame without copying.

import { getI32, getI64, getNum, putI32, putI64, putNum } from './bytes.js';

export class JuteError extends Error {}

export class JuteReader {
  constructor(
    public buf: Buffer,
    public pos = 0,
    public end = buf.length,
  ) {}

  remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number): void {
    if (n < 0 || this.pos + n > this.end) throw new JuteError(`short read: need ${n} at ${this.pos}/${this.end}`);
  }

  int(): number {
    this.need(4);
    const v = getI32(this.buf, this.pos);
    this.pos += 4;
    return v;
  }

  long(): bigint {
    this.need(8);
    const v = getI64(this.buf, this.pos);
    this.pos += 8;
    return v;
  }

  /** A long known to fit in a double (zxids, times): avoids bigint on the hot path. */
  longNum(): number {
    this.need(8);
    const v = getNum(this.buf, this.pos);
    this.pos += 8;
    return v;
  }

  bool(): boolean {
    this.need(1);
    return this.buf[this.pos++] !== 0;
  }

  /** A buffer field as a view into the frame (no copy). Null comes back as null. */
  bufferView(): Buffer | null {
    const len = this.int();
    if (len === -1) return null;
    if (len < -1) throw new JuteError(`negative buffer length ${len}`);
    this.need(len);
    const v = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return v;
  }

  /** A buffer field copied out, for data that outlives the frame (stored znode data). */
  buffer(): Buffer | null {
    const v = this.bufferView();
    return v === null ? null : Buffer.from(v);
  }

  ustring(): string | null {
    const len = this.int();
    if (len === -1) return null;
    if (len < -1) throw new JuteError(`negative string length ${len}`);
    this.need(len);
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }

  /** A string that must be present; null strings are a marshalling error. */
  string(): string {
    const s = this.ustring();
    if (s === null) throw new JuteError('null string');
    return s;
  }

  vectorLength(): number {
    const n = this.int();
    if (n < -1) throw new JuteError(`negative vector length ${n}`);
    // Each element takes at least one byte: a count larger than the rest is garbage.
    if (n > this.remaining()) throw new JuteError(`vector length ${n} exceeds frame`);
    return n;
  }

  stringVector(): string[] | null {
    const n = this.vectorLength();
    if (n === -1) return null;
    const out = new Array<string>(n);
    for (let i = 0; i < n; i++) out[i] = this.string();
    return out;
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * A growable output buffer. One writer per connection is reused for every reply in an
 * event-loop turn, so the hot path allocates only when a turn's output outgrows it.
 */
export class JuteWriter {
  buf: Buffer;
  pos = 0;

  constructor(private readonly initial = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  reset(): void {
    this.pos = 0;
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const nb = Buffer.allocUnsafe(size);
    this.buf.copy(nb, 0, 0, this.pos);
    this.buf = nb;
  }

  int(v: number): this {
    this.ensure(4);
    putI32(this.buf, this.pos, v);
    this.pos += 4;
    return this;
  }

  long(v: bigint): this {
    this.ensure(8);
    putI64(this.buf, this.pos, v);
    this.pos += 8;
    return this;
  }

  /** A long held as a double (zxids, times); exact up to 2^53. */
  longNum(v: number): this {
    this.ensure(8);
    putNum(this.buf, this.pos, v);
    this.pos += 8;
    return this;
  }

  bool(v: boolean): this {
    this.ensure(1);
    this.buf[this.pos++] = v ? 1 : 0;
    return this;
  }

  buffer(v: Buffer | Uint8Array | null): this {
    if (v === null) return this.int(-1);
    this.int(v.length);
    this.ensure(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
    return this;
  }

  ustring(v: string | null): this {
    if (v === null) return this.int(-1);
    const len = Buffer.byteLength(v);
    this.int(len);
    this.ensure(len);
    this.buf.write(v, this.pos, len, 'utf8');
    this.pos += len;
    return this;
  }

  stringVector(v: readonly string[] | null): this {
    if (v === null) return this.int(-1);
    this.int(v.length);
    for (const s of v) this.ustring(s);
    return this;
  }

  /** Reserve a 4-byte length prefix; returns its offset for endFrame. */
  beginFrame(): number {
    const at = this.pos;
    this.int(0);
    return at;
  }

  endFrame(at: number): void {
    putI32(this.buf, at, this.pos - at - 4);
  }

  /** Gives away what was written without copying; the writer continues in a new buffer. */
  detach(): Buffer {
    const b = this.buf.subarray(0, this.pos);
    this.buf = Buffer.allocUnsafe(this.initial);
    this.pos = 0;
    return b;
  }

  /** A copy of what was written, for callers that keep the bytes (the log, tests). */
  toBuffer(): Buffer {
    return this.pos === 0 ? EMPTY : Buffer.from(this.buf.subarray(0, this.pos));
  }
}
