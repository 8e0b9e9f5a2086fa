// CRC-32 (IEEE 802.3, the zlib/PNG polynomial), table-driven with slicing-by-4.
// Node 20 has no built-in (zlib.crc32 arrived in Node 22) and no package for it is
// installed, so it is written here; the check value for "123456789" is 0xcbf43926.

const TABLES: Uint32Array[] = (() => {
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t0[n] = c >>> 0;
  }
  const tables = [t0];
  for (let s = 1; s < 4; s++) {
    const prev = tables[s - 1]!;
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) t[n] = (prev[n]! >>> 8) ^ t0[prev[n]! & 0xff]!;
    tables.push(t);
  }
  return tables;
})();
const T0 = TABLES[0]!;
const T1 = TABLES[1]!;
const T2 = TABLES[2]!;
const T3 = TABLES[3]!;

/** CRC-32 of buf[start, end), continuing from `crc` (the CRC of the bytes before). */
export function crc32(buf: Uint8Array, start = 0, end = buf.length, crc = 0): number {
  let c = ~crc >>> 0;
  let i = start;
  const end4 = start + ((end - start) & ~3);
  while (i < end4) {
    c ^= buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24);
    c = T3[c & 0xff]! ^ T2[(c >>> 8) & 0xff]! ^ T1[(c >>> 16) & 0xff]! ^ T0[c >>> 24]!;
    i += 4;
  }
  while (i < end) c = T0[(c ^ buf[i++]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
