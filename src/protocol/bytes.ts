// Big-endian integers straight into and out of byte arrays. Buffer's own
// writeInt32BE/readInt32BE and their bigint forms validate each call in JS and cost
// 9-80 ns here against 2-10 ns for plain byte stores (measured on Node 20, this machine);
// every reply, request and log record goes through these. Callers check bounds.

const TWO32 = 4294967296;

// One 8-byte scratch viewed both ways: a bigint goes in or out whole, its bytes one by one.
const scratch64 = new BigInt64Array(1);
const scratch8 = new Uint8Array(scratch64.buffer);
// The scratch's byte order is the host's; the wire's is big-endian.
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function putI32(b: Uint8Array, p: number, v: number): void {
  b[p] = v >>> 24;
  b[p + 1] = v >>> 16;
  b[p + 2] = v >>> 8;
  b[p + 3] = v;
}

export function getI32(b: Uint8Array, p: number): number {
  return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
}

export function getU32(b: Uint8Array, p: number): number {
  return getI32(b, p) >>> 0;
}

/** A signed 64-bit value (session ids, ephemeral owners); wraps like BigInt.asIntN(64). */
export function putI64(b: Uint8Array, p: number, v: bigint): void {
  scratch64[0] = v;
  if (LE) {
    const s = scratch8;
    b[p] = s[7]!;
    b[p + 1] = s[6]!;
    b[p + 2] = s[5]!;
    b[p + 3] = s[4]!;
    b[p + 4] = s[3]!;
    b[p + 5] = s[2]!;
    b[p + 6] = s[1]!;
    b[p + 7] = s[0]!;
  } else b.set(scratch8, p);
}

export function getI64(b: Uint8Array, p: number): bigint {
  if (LE) {
    for (let i = 0; i < 8; i++) scratch8[7 - i] = b[p + i]!;
  } else scratch8.set(b.subarray(p, p + 8));
  return scratch64[0]!;
}

/** A 64-bit value held as a double (zxids, times): exact up to 2^53. */
export function putNum(b: Uint8Array, p: number, v: number): void {
  const hi = Math.floor(v / TWO32);
  putI32(b, p, hi);
  putI32(b, p + 4, v - hi * TWO32);
}

export function getNum(b: Uint8Array, p: number): number {
  return getI32(b, p) * TWO32 + getU32(b, p + 4);
}
