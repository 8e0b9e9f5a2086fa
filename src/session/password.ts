// Session passwords are derived, not stored: ZooKeeper seeds java.util.Random with
// sessionId ^ 0xB3415C00 and takes 16 bytes, so any server of an ensemble (and Corral
// replacing ZooKeeper) can check a reconnecting client's password. This is
// java.util.Random's 48-bit LCG, bit for bit.

const MULT = 0x5deece66dn;
const ADD = 0xbn;
const MASK = (1n << 48n) - 1n;
const SUPER_SECRET = 0xb3415c00n;

export function sessionPassword(sessionId: bigint): Buffer {
  let seed = (BigInt.asIntN(64, sessionId ^ SUPER_SECRET) ^ MULT) & MASK;
  const out = Buffer.alloc(16);
  let i = 0;
  while (i < 16) {
    seed = (seed * MULT + ADD) & MASK;
    let rnd = Number(BigInt.asIntN(32, seed >> 16n));
    for (let n = Math.min(16 - i, 4); n-- > 0; rnd >>= 8) out[i++] = rnd & 0xff;
  }
  return out;
}

export function checkPassword(sessionId: bigint, passwd: Buffer): boolean {
  return passwd.length === 16 && sessionPassword(sessionId).equals(passwd);
}

/**
 * The first session id of a server (SessionTrackerImpl.initializeNextSessionId): the
 * server id in the top byte, the start time in milliseconds below it. Later ids count up.
 */
export function initialSessionId(serverId: number, nowMs: number): bigint {
  let sid = BigInt.asUintN(64, BigInt(Math.floor(nowMs)) << 24n) >> 8n;
  sid |= BigInt(serverId & 0xff) << 56n;
  sid = BigInt.asIntN(64, sid);
  if (sid === -0x8000000000000000n) sid += 1n; // never the container owner marker
  return sid;
}
