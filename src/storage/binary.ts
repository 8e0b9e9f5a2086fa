// Big-endian byte writer and reader shared by the txn and snapshot codecs. Integers
// that fit a double (zxids, times) travel as a signed 32-bit high word and an unsigned
// 32-bit low word, so no bigint is made for them; session ids and ephemeral owners are
// full signed 64-bit values and stay bigint.

import { getI32, getI64, getNum, getU32, putI32, putI64, putNum } from '../protocol/bytes.js';
import type { Acl } from '../tree/types.js';
import { FormatError } from './errors.js';

/** Length marking a null byte string (a znode created without data). */
const NULL_LEN = 0xffffffff;

export class ByteWriter {
  buf: Buffer;
  pos = 0;

  constructor(initial = 4096) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  reset(): void {
    this.pos = 0;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  u32(v: number): void {
    this.ensure(4);
    putI32(this.buf, this.pos, v);
    this.pos += 4;
  }

  i32(v: number): void {
    this.ensure(4);
    putI32(this.buf, this.pos, v);
    this.pos += 4;
  }

  /** A safe integer (|v| < 2^53), e.g. a zxid or a time in ms. */
  num(v: number): void {
    if (!Number.isSafeInteger(v)) throw new RangeError(`not a safe integer: ${v}`);
    this.ensure(8);
    putNum(this.buf, this.pos, v);
    this.pos += 8;
  }

  i64(v: bigint): void {
    this.ensure(8);
    putI64(this.buf, this.pos, v);
    this.pos += 8;
  }

  /** Like bytes(), with null (jute's -1 buffer) kept apart from empty. */
  bytesOrNull(b: Uint8Array | null): void {
    if (b === null) this.u32(NULL_LEN);
    else this.bytes(b);
  }

  bytes(b: Uint8Array): void {
    this.u32(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  str(s: string): void {
    const n = Buffer.byteLength(s);
    this.u32(n);
    this.ensure(n);
    this.buf.write(s, this.pos, n, 'utf8');
    this.pos += n;
  }

  acl(list: readonly Acl[]): void {
    this.u32(list.length);
    for (const a of list) {
      this.i32(a.perms);
      this.str(a.scheme);
      this.str(a.id);
    }
  }

  /** A right-sized copy of what was written: the log keeps it until commit. */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    return out;
  }
}

export class ByteReader {
  constructor(
    readonly buf: Buffer,
    public pos = 0,
    readonly end = buf.length,
  ) {}

  get done(): boolean {
    return this.pos >= this.end;
  }

  private need(n: number): void {
    if (this.pos + n > this.end) throw new FormatError(`record too short: need ${n} bytes at offset ${this.pos} of ${this.end}`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  u32(): number {
    this.need(4);
    const v = getU32(this.buf, this.pos);
    this.pos += 4;
    return v;
  }

  i32(): number {
    this.need(4);
    const v = getI32(this.buf, this.pos);
    this.pos += 4;
    return v;
  }

  num(): number {
    this.need(8);
    const v = getNum(this.buf, this.pos);
    this.pos += 8;
    return v;
  }

  i64(): bigint {
    this.need(8);
    const v = getI64(this.buf, this.pos);
    this.pos += 8;
    return v;
  }

  bytesOrNull(): Buffer | null {
    if (this.buf.readUInt32BE(this.pos) === NULL_LEN) {
      this.pos += 4;
      return null;
    }
    return this.bytes();
  }

  /** A copy, not a view: the source may be an LMDB-owned or reused buffer. */
  bytes(): Buffer {
    const n = this.u32();
    this.need(n);
    const out = Buffer.allocUnsafe(n);
    this.buf.copy(out, 0, this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  str(): string {
    const n = this.u32();
    this.need(n);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  acl(): Acl[] {
    const n = this.u32();
    if (n > this.end - this.pos) throw new FormatError(`ACL count ${n} exceeds record`);
    const list: Acl[] = [];
    for (let i = 0; i < n; i++) {
      const perms = this.i32();
      const scheme = this.str();
      const id = this.str();
      list.push({ perms, scheme, id });
    }
    return list;
  }
}
