// Protocol fuzzing: thousands of random, mutated and valid frames over many connections.
// The server must never crash or log an internal error, must answer only with well-formed
// frames, must let go of every connection and outstanding request, and must leave a
// subtree the fuzzers cannot write (its ACL grants them READ only) exactly as it was.
//
// The seed is printed; FUZZ_SEED=<n> replays the same bytes (timing may differ),
// FUZZ_CONNECTIONS=<n> changes how many connections are opened (default 1500).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { digestOf } from '../src/acl/auth.js';
import { type BodyWriter, OPEN_ACL, RawClient } from '../src/client/raw.js';
import { Err, OpCode, Perms, Xid } from '../src/protocol/constants.js';
import type { JuteWriter } from '../src/protocol/jute.js';
import { writeAclList } from '../src/protocol/records.js';
import type { Acl } from '../src/tree/types.js';
import { ByteSocket, connectFrame, mustCreate, ops, requestFrame, sleep, until } from './helpers/proto.js';
import { startServer, type TestServer } from './helpers/server.js';

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) >>> 0 : (Date.now() ^ (Math.random() * 2 ** 32)) >>> 0;
const CONNECTIONS = Number(process.env.FUZZ_CONNECTIONS ?? 1500);
const PARALLEL = 24;

/** mulberry32: small, fast, good enough to drive a fuzzer, and replayable. */
class Rng {
  constructor(private s: number) {}
  u32(): number {
    this.s = (this.s + 0x6d2b79f5) | 0;
    let t = Math.imul(this.s ^ (this.s >>> 15), 1 | this.s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  }
  int(n: number): number {
    return this.u32() % n;
  }
  chance(p: number): boolean {
    return this.u32() / 4294967296 < p;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)];
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
  /** An int32 that is interesting more often than chance would have it. */
  edgeInt(): number {
    return this.pick([0, 1, -1, 2, 7, 16, 255, 256, 65535, 65536, 2 ** 31 - 1, -(2 ** 31), 1048575, 1048576, this.u32() | 0, this.int(100)]);
  }
}

const ADMIN = 'admin:s3cret-not-guessable';
const ADMIN_ACL: Acl[] = [
  { perms: Perms.ALL, scheme: 'digest', id: digestOf(ADMIN) },
  { perms: Perms.READ, scheme: 'world', id: 'anyone' },
];
const PATHS = [
  '/', '/open', '/open/a', '/open/a/b', '/open/s-', '/open/c', '/protected', '/protected/a', '/protected/a/x',
  '/protected/b', '/protected/ctr', '/protected/ctr/k', '/protected/eph', '/protected/b/e2', '/protected/ctr/k/e4',
  '/protected/seq-0000000003', '/zookeeper', '/zookeeper/config',
  '/zookeeper/quota', '/nope', 'bad', '/open/', '', '/open//a',
];
const ACLS: Acl[][] = [
  OPEN_ACL,
  OPEN_ACL,
  [{ perms: Perms.ALL, scheme: 'auth', id: '' }],
  [],
  [{ perms: Perms.ALL, scheme: 'ip', id: '127.0.0.1' }],
  [{ perms: Perms.ALL, scheme: 'ip', id: '10.0.0.0/8' }],
  [{ perms: 63, scheme: 'world', id: 'anyone' }],
  [{ perms: Perms.READ, scheme: 'digest', id: digestOf('u:p') }],
  [{ perms: Perms.ALL, scheme: 'sasl', id: 'x' }],
];
const OPS = [
  OpCode.create, OpCode.create, OpCode.delete, OpCode.exists, OpCode.getData, OpCode.getData, OpCode.setData,
  OpCode.getACL, OpCode.setACL, OpCode.getChildren, OpCode.sync, OpCode.ping, OpCode.getChildren2, OpCode.multi,
  OpCode.multi, OpCode.create2, OpCode.reconfig, OpCode.checkWatches, OpCode.removeWatches, OpCode.createContainer,
  OpCode.createTTL, OpCode.multiRead, OpCode.auth, OpCode.setWatches, OpCode.sasl, OpCode.getEphemerals,
  OpCode.getAllChildrenNumber, OpCode.setWatches2, OpCode.addWatch, OpCode.whoAmI,
];
const KNOWN_ERRS = new Set<number>(Object.values(Err));

function path(r: Rng): string {
  if (r.chance(0.85)) return r.pick(PATHS);
  const chars = ['/', 'a', 'b', '.', '\u0000', '\u0001', 'é', '\ud800', '\uffff', 'z', '/'];
  let s = r.chance(0.8) ? '/' : '';
  for (let i = r.int(12); i > 0; i--) s += r.pick(chars);
  return s;
}

function data(r: Rng): Buffer | null {
  return r.chance(0.1) ? null : r.bytes(r.int(48));
}

function createBody(r: Rng, w: JuteWriter, ttl: boolean): void {
  w.ustring(path(r)).buffer(data(r));
  writeAclList(w, r.pick(ACLS));
  w.int(r.chance(0.9) ? r.int(8) : r.edgeInt());
  if (ttl) w.longNum(r.pick([-1, 0, 1, 50, 1000, 2 ** 40]));
}

function subOp(r: Rng, read: boolean): { type: number; body: BodyWriter } {
  if (read || r.chance(0.1)) return r.chance(0.5) ? ops.getData(path(r), r.chance(0.5)) : ops.getChildren(path(r), r.chance(0.5));
  switch (r.int(5)) {
    case 0:
      return { type: r.pick([OpCode.create, OpCode.create2, OpCode.createContainer]), body: (w) => createBody(r, w, false) };
    case 1:
      return ops.delete(path(r), r.pick([-1, 0, 1]));
    case 2:
      return ops.setData(path(r), r.bytes(r.int(8)).toString('latin1'), r.pick([-1, 0, 1]));
    case 3:
      return ops.check(path(r), r.pick([-1, 0, 1]));
    default:
      return { type: OpCode.createTTL, body: (w) => createBody(r, w, true) };
  }
}

/**
 * A well-formed request (the server may still refuse it). A gentle one avoids what ends
 * the connection (unknown opcodes, failed auth), so that long request streams get through.
 */
function validRequest(r: Rng, xid: number, gentle = false): Buffer {
  const op = !gentle && r.chance(0.02) ? r.pick([OpCode.check, OpCode.closeSession, 99, -10, OpCode.deleteContainer]) : r.pick(OPS);
  let body: BodyWriter | undefined;
  let x = xid;
  switch (op) {
    case OpCode.create:
    case OpCode.create2:
    case OpCode.createContainer:
      body = (w) => createBody(r, w, false);
      break;
    case OpCode.createTTL:
      body = (w) => createBody(r, w, true);
      break;
    case OpCode.delete:
    case OpCode.check:
      body = (w) => w.ustring(path(r)).int(r.pick([-1, 0, 1, 2]));
      break;
    case OpCode.exists:
    case OpCode.getData:
    case OpCode.getChildren:
    case OpCode.getChildren2:
      body = (w) => w.ustring(path(r)).bool(r.chance(0.5));
      break;
    case OpCode.setData:
      body = (w) => w.ustring(path(r)).buffer(data(r)).int(r.pick([-1, 0, 1]));
      break;
    case OpCode.getACL:
    case OpCode.sync:
    case OpCode.getAllChildrenNumber:
    case OpCode.deleteContainer:
      body = (w) => w.ustring(path(r));
      break;
    case OpCode.setACL:
      body = (w) => {
        w.ustring(path(r));
        writeAclList(w, r.pick(ACLS));
        w.int(r.pick([-1, 0, 1]));
      };
      break;
    case OpCode.ping:
      x = Xid.ping;
      break;
    case OpCode.multi:
    case OpCode.multiRead: {
      const n = r.int(5);
      const subs = Array.from({ length: n }, () => subOp(r, op === OpCode.multiRead));
      body = (w) => {
        for (const s of subs) {
          w.int(s.type).bool(false).int(-1);
          s.body(w);
        }
        w.int(-1).bool(true).int(-1);
      };
      break;
    }
    case OpCode.reconfig:
      body = (w) => w.ustring('server.9=h:1:2').ustring(null).ustring(null).longNum(-1);
      break;
    case OpCode.checkWatches:
    case OpCode.removeWatches:
      body = (w) => w.ustring(path(r)).int(r.int(7));
      break;
    case OpCode.auth:
      x = r.chance(0.8) ? Xid.auth : xid;
      body = (w) =>
        w.int(0)
          .ustring(gentle ? r.pick(['digest', 'ip']) : r.pick(['digest', 'digest', 'ip', 'world', 'super', 'x509']))
          .buffer(Buffer.from(r.pick(['u:p', 'admin:wrong', 'super:x', '', ':', 'v:w'])));
      break;
    case OpCode.setWatches:
    case OpCode.setWatches2:
      x = r.chance(0.8) ? Xid.setWatches : xid;
      body = (w) => {
        w.longNum(r.pick([0, 1, 2 ** 40, -1]));
        const lists = op === OpCode.setWatches ? 3 : 5;
        for (let i = 0; i < lists; i++) w.stringVector(Array.from({ length: r.int(3) }, () => path(r)));
      };
      break;
    case OpCode.sasl:
      body = (w) => w.buffer(r.bytes(r.int(16)));
      break;
    case OpCode.getEphemerals:
      body = (w) => w.ustring(r.chance(0.2) ? null : path(r));
      break;
    case OpCode.addWatch:
      body = (w) => w.ustring(path(r)).int(r.int(3));
      break;
    default:
      body = r.chance(0.5) ? (w) => w.ustring(path(r)) : undefined;
  }
  return requestFrame(x, op, body);
}

/** A damaged copy of a frame; a gentle one keeps the length, xid and opcode intact. */
function mutate(r: Rng, f: Buffer, gentle = false): Buffer {
  const b = Buffer.from(f);
  // Weighted so that most damage stays inside the frame (the connection survives and
  // the next frames are parsed too); length and opcode damage mostly ends it.
  switch (gentle ? r.pick([0, 1, 5]) : r.pick([0, 0, 0, 1, 1, 2, 3, 4, 5, 5, 6])) {
    case 0: {
      // Flip a few bytes, now and then in the length prefix too.
      for (let n = 1 + r.int(4); n > 0; n--) {
        const at = gentle ? 12 + r.int(Math.max(1, b.length - 12)) : r.chance(0.15) ? r.int(4) : 4 + r.int(Math.max(1, b.length - 4));
        if (at < b.length) b[at] ^= 1 << r.int(8);
      }
      return b;
    }
    case 1: {
      // Truncate the body, with a length that says so.
      const keep = Math.min(b.length, (gentle ? 12 : 4) + r.int(Math.max(1, b.length - 4)));
      const t = Buffer.from(b.subarray(0, keep));
      t.writeInt32BE(keep - 4, 0);
      return t;
    }
    case 2:
      // Truncate the bytes but not the length: the next frame is swallowed (desync).
      return b.subarray(0, 4 + r.int(Math.max(1, b.length - 4)));
    case 3:
      b.writeInt32BE(r.edgeInt() | 0, 0);
      return b;
    case 4:
      if (b.length >= 12) b.writeInt32BE(r.chance(0.85) ? r.pick(OPS) : r.edgeInt() | 0, 8);
      return b;
    case 5: {
      const extra = r.bytes(1 + r.int(32));
      const t = Buffer.concat([b, extra]);
      t.writeInt32BE(t.length - 4, 0);
      return t;
    }
    default:
      if (b.length >= 8) b.writeInt32BE(r.pick([-1, -2, -4, -8, 0, 2 ** 31 - 1, -(2 ** 31)]), 4);
      return b;
  }
}

function garbageFrame(r: Rng): Buffer {
  if (r.chance(0.3)) return r.bytes(1 + r.int(64));
  const body = r.bytes(r.int(64));
  const f = Buffer.alloc(4 + body.length);
  f.writeInt32BE(body.length, 0);
  body.copy(f, 4);
  return f;
}

interface Outcome {
  handshaken: boolean;
  frames: number;
  replies: number;
  closedByServer: boolean;
}

/** Reply counts by error code, and notifications, over the whole run. */
const replyErrs = new Map<number, number>();
let notifications = 0;

/** One fuzz connection, driven by its own seed so concurrency does not change its bytes. */
async function fuzzConnection(port: number, seed: number): Promise<Outcome> {
  const r = new Rng(seed);
  const s = await ByteSocket.open(port);
  const out: Buffer[] = [];
  const kind = r.int(100);
  let handshaken = false;
  if (kind < 12) {
    out.push(r.bytes(1 + r.int(200)));
  } else if (kind < 25) {
    out.push(mutate(r, connectFrame({ timeout: r.edgeInt(), readOnly: r.chance(0.5) ? undefined : r.chance(0.5) })));
    for (let n = r.int(5); n > 0; n--) out.push(validRequest(r, n));
  } else {
    handshaken = true;
    const gentle = r.chance(0.5);
    const readOnly = r.chance(0.5) ? undefined : false;
    s.write(connectFrame({ timeout: r.pick([1, 4000, 30000, 2 ** 31 - 1]), readOnly }));
    await s.waitBytes(readOnly === undefined ? 40 : 41, 2000);
    const n = 10 + r.int(40);
    for (let i = 1; i <= n; i++) {
      const p = r.int(100);
      if (p < 70) out.push(validRequest(r, i, gentle));
      else if (p < 95 || gentle) out.push(mutate(r, validRequest(r, i, gentle), gentle));
      else out.push(garbageFrame(r));
    }
  }
  // Send in random slices, often yielding between them so that frames arrive split and
  // the server answers (and flushes) between bursts.
  const all = Buffer.concat(out);
  let pos = 0;
  while (pos < all.length && !s.isClosed) {
    const len = r.chance(0.3) ? 1 + r.int(16) : 1 + r.int(256);
    s.write(all.subarray(pos, pos + len));
    pos += len;
    if (r.chance(0.6)) await new Promise((res) => setImmediate(res));
  }
  // Let the server answer, then go away.
  let last = -1;
  for (let waited = 0; waited < 400 && !s.isClosed; waited += 15) {
    const n = s.received.length;
    if (n === last) break;
    last = n;
    await sleep(15);
  }
  const replies = checkOutput(s, handshaken);
  const closedByServer = s.isClosed;
  s.close();
  return { handshaken, frames: out.length, replies, closedByServer };
}

/** Whatever the server sent must be well-formed: a ConnectResponse, then ReplyHeaders. */
function checkOutput(s: ByteSocket, handshaken: boolean): number {
  const b = s.received;
  let pos = 0;
  let first = true;
  let replies = 0;
  while (pos + 4 <= b.length) {
    const len = b.readInt32BE(pos);
    if (pos + 4 + len > b.length) break; // still arriving: we stop listening here
    const f = b.subarray(pos + 4, pos + 4 + len);
    pos += 4 + len;
    if (first) {
      first = false;
      expect([36, 37]).toContain(len);
      if (handshaken) expect(f.readInt32BE(4)).toBeGreaterThan(0); // a session was granted
      continue;
    }
    expect(len).toBeGreaterThanOrEqual(16);
    const xid = f.readInt32BE(0);
    const err = f.readInt32BE(12);
    replies++;
    replyErrs.set(err, (replyErrs.get(err) ?? 0) + 1);
    expect(KNOWN_ERRS.has(err), `error code ${err}`).toBe(true);
    // Error replies have no body, except multiRead's empty MultiResponse (FinalRequestProcessor
    // builds it before the op that fails, and sends it with the error).
    if (err !== 0 && len !== 16) expect(f.subarray(16).toString('hex')).toBe('ffffffff01ffffffff');
    // xid -1 is a notification, or the reply to a request the fuzzer sent with xid -1.
    if (xid === Xid.notification && len >= 28 && f.readInt32BE(20) === 3 && f.readInt32BE(24) === len - 28) {
      expect(err).toBe(0);
      expect([1, 2, 3, 4]).toContain(f.readInt32BE(16));
      notifications++;
    }
  }
  return replies;
}

type Snapshot = [string, string, string, string][];

function snapshot(ts: TestServer, prefix: string): Snapshot {
  const out: Snapshot = [];
  for (const [p, n] of ts.server.tree.nodes) {
    if (p !== prefix && !p.startsWith(prefix + '/')) continue;
    const stat = JSON.stringify(n.stat(), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    out.push([p, n.data?.toString('hex') ?? 'null', stat, JSON.stringify(n.acl)]);
  }
  return out.sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

let ts: TestServer;
let admin: RawClient;

beforeAll(async () => {
  ts = await startServer('maxClientCnxns=0\njute.maxbuffer=65536\nznode.container.checkIntervalMs=200');
  admin = await RawClient.connect('127.0.0.1', ts.port);
  expect((await admin.auth('digest', ADMIN)).err).toBe(0);
  // ZooKeeper lets any client send deleteContainer (opcode 20), which removes any
  // childless znode that is not a session's ephemeral, with no ACL check
  // (PrepRequestProcessor). So every persistent znode here has a child, and every leaf
  // is an ephemeral of the admin's session: the ACL then really does protect the subtree.
  await mustCreate(admin, '/protected', 'root of the protected subtree', 0, ADMIN_ACL);
  await mustCreate(admin, '/protected/a', 'A', 0, ADMIN_ACL);
  await mustCreate(admin, '/protected/a/x', '', 0, ADMIN_ACL);
  await mustCreate(admin, '/protected/a/x/e1', '', 1, ADMIN_ACL);
  await mustCreate(admin, '/protected/b', Buffer.alloc(100, 7).toString('latin1'), 0, ADMIN_ACL);
  await mustCreate(admin, '/protected/b/e2', '', 1, ADMIN_ACL);
  await mustCreate(admin, '/protected/eph', 'mine', 1, ADMIN_ACL);
  await mustCreate(admin, '/protected/seq-', '', 2, ADMIN_ACL);
  await mustCreate(admin, '/protected/seq-0000000003/e3', '', 1, ADMIN_ACL);
  const ctr = await admin.create('/protected/ctr', Buffer.alloc(0), 4, ADMIN_ACL, OpCode.createContainer);
  expect(ctr.err).toBe(0);
  await mustCreate(admin, '/protected/ctr/k', '', 0, ADMIN_ACL);
  await mustCreate(admin, '/protected/ctr/k/e4', '', 1, ADMIN_ACL);
  await admin.setData('/protected/a', Buffer.from('A2'));
  await mustCreate(admin, '/open', 'scratch space');
  // Fuzzers may change the root's ACL (it grants ADMIN to anyone); this one they cannot.
  await mustCreate(admin, '/checks', '', 0, [
    { perms: Perms.ALL & ~Perms.ADMIN, scheme: 'world', id: 'anyone' },
    { perms: Perms.ALL, scheme: 'digest', id: digestOf(ADMIN) },
  ]);
});

afterAll(async () => {
  admin?.close();
  await ts?.stop();
});

it(`survives protocol fuzzing (seed ${SEED})`, { timeout: Math.max(60_000, CONNECTIONS * 40) }, async () => {
  console.log(`fuzz seed ${SEED} (replay with FUZZ_SEED=${SEED}), ${CONNECTIONS} connections`);
  const before = snapshot(ts, '/protected');
  expect(before.length).toBe(12);
  const rng = new Rng(SEED);
  const seeds = Array.from({ length: CONNECTIONS }, () => rng.u32());
  let frames = 0;
  let handshaken = 0;
  let replies = 0;
  let closedByServer = 0;
  let next = 0;
  const started = Date.now();
  // Long runs outlast the admin's session timeout: keep it alive (its ephemerals are in
  // the snapshot).
  const keepalive = setInterval(() => void admin.ping().catch(() => {}), 2000);
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < seeds.length) {
        const o = await fuzzConnection(ts.port, seeds[next++]);
        frames += o.frames;
        replies += o.replies;
        if (o.handshaken) handshaken++;
        if (o.closedByServer) closedByServer++;
      }
    }),
  ).finally(() => clearInterval(keepalive));
  console.log(
    `fuzz: ${frames} frames over ${CONNECTIONS} connections (${handshaken} with a valid handshake, ` +
      `${closedByServer} closed by the server) in ${Date.now() - started} ms; ${replies} replies ` +
      `(${notifications} notifications), by error: ` +
      JSON.stringify(Object.fromEntries([...replyErrs].sort((a, b) => b[1] - a[1]))),
  );
  expect(frames).toBeGreaterThan(CONNECTIONS * 5);
  expect(replies).toBeGreaterThan(CONNECTIONS); // the fuzzers got past the framing, often

  // Every fuzz connection is gone from the server, and nothing is left outstanding.
  await until(() => ts.server.connections.size === 1, 5000, 'fuzz connections to close');
  await until(() => ts.server.outstandingRequests === 0, 5000, 'outstanding requests to drain');

  // No internal errors: only "closing connection" warnings and ordinary info lines.
  const bad = ts.logs.filter((l) => l.startsWith('[ERROR]') || /error: |\n\s+at /.test(l));
  expect(bad, bad.slice(0, 3).join('\n')).toEqual([]);

  // The protected subtree is exactly as it was.
  expect(snapshot(ts, '/protected')).toEqual(before);

  // The admin's connection survived, and a fresh client is served correctly.
  expect((await admin.getData('/protected/a')).body.buffer()!.toString()).toBe('A2');
  const c = await RawClient.connect('127.0.0.1', ts.port);
  try {
    const cr = await c.create('/checks/after-fuzz', Buffer.from('ok'), 1);
    expect(cr.err).toBe(0);
    expect(cr.body.string()).toBe('/checks/after-fuzz');
    const g = await c.getData('/checks/after-fuzz', true);
    expect(g.body.buffer()!.toString()).toBe('ok');
    const s = await admin.setData('/checks/after-fuzz', Buffer.from('ok2'));
    expect(s.err).toBe(0);
    await c.waitNotifications(1);
    expect(c.notifications[0]).toMatchObject({ type: 3, path: '/checks/after-fuzz', zxid: s.zxid });
    const ch = await c.getChildren('/protected');
    expect((ch.body.stringVector() ?? []).sort()).toEqual(['a', 'b', 'ctr', 'eph', 'seq-0000000003']);
    expect((await c.setData('/protected/a', Buffer.from('no'))).err).toBe(Err.NOAUTH);
    expect((await c.closeSession()).err).toBe(0);
  } finally {
    c.close();
  }
  expect(snapshot(ts, '/protected')).toEqual(before);
});
