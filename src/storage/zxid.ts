// zxid = epoch << 32 | counter, carried as a double (exact up to epoch 2^21).

const TWO32 = 4294967296;

export function epochOf(zxid: number): number {
  return Math.floor(zxid / TWO32);
}

export function counterOf(zxid: number): number {
  return zxid % TWO32;
}

export function zxidHex(zxid: number): string {
  return '0x' + zxid.toString(16);
}

/**
 * Whether `next` may directly follow `prev` in the log: within an epoch the counter
 * goes up by exactly one; a new epoch may start anywhere (its leader decides).
 * Anything else (a decrease, a repeat, a skipped counter) is a gap.
 */
export function follows(prev: number, next: number): boolean {
  if (next <= prev) return false;
  const e = epochOf(next);
  if (e === epochOf(prev)) return next === prev + 1;
  return e > epochOf(prev);
}
