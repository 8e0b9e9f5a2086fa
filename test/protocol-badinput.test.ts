// Input no well-behaved client sends: the server answers MARSHALLINGERROR or closes that
// one connection with one log line, and keeps serving everyone else.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../src/client/raw.js';
import { Err, OpCode, Xid } from '../src/protocol/constants.js';
import type { JuteWriter } from '../src/protocol/jute.js';
import {
  ByteSocket,
  connectFrame,
  frame,
  logsFor,
  mustCreate,
  ops,
  OrderedSession,
  requestFrame,
} from './helpers/proto.js';
import { startServer, type TestServer } from './helpers/server.js';

let ts: TestServer;
let watcher: RawClient;
const open: { close(): void }[] = [];

beforeAll(async () => {
  ts = await startServer();
  watcher = await RawClient.connect('127.0.0.1', ts.port);
  await mustCreate(watcher, '/bi', 'keep');
});
afterAll(async () => {
  watcher.close();
  for (const s of open) s.close();
  await ts.stop();
});
afterEach(async () => {
  // After every case: the server still answers, and nothing was logged as an error.
  expect((await watcher.getData('/bi')).body.buffer()!.toString()).toBe('keep');
  const fresh = await RawClient.connect('127.0.0.1', ts.port);
  expect((await fresh.exists('/bi')).err).toBe(0);
  fresh.close();
  expect(ts.logs.filter((l) => l.startsWith('[ERROR]') || /error: |\n\s+at /.test(l))).toEqual([]);
});

async function raw(): Promise<ByteSocket> {
  const s = await ByteSocket.open(ts.port);
  open.push(s);
  return s;
}

async function session(): Promise<OrderedSession> {
  const s = await OrderedSession.connect(ts.port);
  open.push(s);
  return s;
}

/** The connection was closed by the server, which said why in exactly one line. */
async function expectDropped(s: ByteSocket, why?: RegExp): Promise<void> {
  const port = s.localPort;
  expect(await s.waitClosed()).toBe(true);
  const lines = logsFor(ts.logs, port);
  expect(lines, lines.join('\n')).toHaveLength(1);
  expect(lines[0]).toMatch(/^\[WARN\] closing connection from/);
  if (why) expect(lines[0]).toMatch(why);
}

const int = (...vs: number[]) => {
  const b = Buffer.alloc(4 * vs.length);
  vs.forEach((v, i) => b.writeInt32BE(v | 0, 4 * i));
  return b;
};

describe('before the handshake', () => {
  it('an HTTP request (a huge first length) is dropped', async () => {
    const s = await raw();
    s.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await expectDropped(s, /out of range/);
    expect(s.received.length).toBe(0);
  });

  it('negative lengths are dropped', async () => {
    for (const len of [-1, -2, -(2 ** 31)]) {
      const s = await raw();
      s.write(Buffer.concat([int(len), Buffer.alloc(40)]));
      await expectDropped(s, /out of range/);
    }
  });

  it('a zero-length or truncated ConnectRequest is dropped', async () => {
    for (const body of [Buffer.alloc(0), Buffer.alloc(3), Buffer.alloc(20), connectFrame().subarray(4, 4 + 39)]) {
      const s = await raw();
      s.write(frame(body));
      await expectDropped(s, /malformed/);
      expect(s.received.length).toBe(0);
    }
  });

  it('a ConnectRequest with a bad password length is dropped', async () => {
    for (const pwLen of [-5, 1000, 2 ** 31 - 1]) {
      const f = connectFrame({ readOnly: false });
      f.writeInt32BE(pwLen, 4 + 24);
      const s = await raw();
      s.write(f);
      await expectDropped(s, /malformed/);
    }
  });

  it('random garbage frames are dropped (or refused) without a crash', async () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 0xff;
    for (let k = 0; k < 20; k++) {
      const body = Buffer.alloc(44 + (k % 3));
      for (let i = 0; i < body.length; i++) body[i] = rnd();
      const s = await raw();
      s.write(frame(body));
      // Random lastZxidSeen is almost always ahead (closed); a random session id is unknown
      // (refused with a zero ConnectResponse, then closed).
      expect(await s.waitClosed()).toBe(true);
    }
  });

  it('a partial frame followed by the client going away is forgotten quietly', async () => {
    const s = await raw();
    const f = connectFrame();
    s.write(f.subarray(0, 20));
    s.socket.end();
    expect(await s.waitClosed()).toBe(true);
    expect(logsFor(ts.logs, s.localPort).length).toBeLessThanOrEqual(1);
  });

  it('a handshake dribbled one byte at a time still works', async () => {
    const s = await raw();
    const bytes = Buffer.concat([connectFrame({ readOnly: false }), requestFrame(1, OpCode.exists, (w) => w.ustring('/bi').bool(false))]);
    for (const b of bytes) {
      s.write(Buffer.from([b]));
      await new Promise((r) => setImmediate(r));
    }
    await s.waitBytes(41 + 88);
    const { connect, replies } = s.parse();
    expect(connect!.length).toBe(37);
    expect(replies.map((r) => [r.xid, r.err])).toEqual([[1, 0]]);
  });
});

describe('after the handshake', () => {
  it('frames too short for a RequestHeader close the connection', async () => {
    for (const body of [Buffer.alloc(0), int(1), Buffer.alloc(7)]) {
      const o = await session();
      o.s.write(frame(body));
      await expectDropped(o.s, /malformed/);
    }
  });

  it('negative and oversized lengths close the connection', async () => {
    for (const len of [-1, -(2 ** 31), 2 ** 31 - 1, 1048576]) {
      const o = await session();
      o.s.write(Buffer.concat([int(len), int(1, OpCode.exists)]));
      await expectDropped(o.s, /out of range/);
    }
  });

  it('malformed bodies of known opcodes get MARSHALLINGERROR and the connection stays', async () => {
    const o = await session();
    const cases: [string, number, (w: JuteWriter) => void][] = [
      ['getData: string longer than the frame', OpCode.getData, (w) => w.int(1000).int(0)],
      ['getData: negative string length', OpCode.getData, (w) => w.int(-7).bool(false)],
      ['getData: null path', OpCode.getData, (w) => w.int(-1).bool(false)],
      ['getData: no watch byte', OpCode.getData, (w) => w.ustring('/bi')],
      ['exists: empty body', OpCode.exists, () => {}],
      ['getChildren2: null path', OpCode.getChildren2, (w) => w.int(-1).bool(false)],
      ['create: huge ACL count', OpCode.create, (w) => w.ustring('/bi/x').buffer(null).int(2 ** 31 - 1).int(0)],
      ['create: negative ACL count', OpCode.create, (w) => w.ustring('/bi/x').buffer(null).int(-5).int(0)],
      ['create: no flags', OpCode.create, (w) => w.ustring('/bi/x').buffer(null).int(1).int(31).ustring('world').ustring('anyone')],
      ['create: null ACL scheme', OpCode.create, (w) => w.ustring('/bi/x').buffer(null).int(1).int(31).int(-1).ustring('anyone').int(0)],
      ['create: data longer than the frame', OpCode.create, (w) => w.ustring('/bi/x').int(50000)],
      ['createTTL: no ttl', OpCode.createTTL, (w) => w.ustring('/bi/x').buffer(null).int(0).int(5)],
      ['setData: no version', OpCode.setData, (w) => w.ustring('/bi').buffer(Buffer.from('zz'))],
      ['delete: no version', OpCode.delete, (w) => w.ustring('/bi')],
      ['setACL: huge count', OpCode.setACL, (w) => w.ustring('/bi').int(2 ** 30).int(0)],
      ['setWatches: huge vector', OpCode.setWatches, (w) => w.longNum(0).int(2 ** 31 - 1).ustring('/bi')],
      ['setWatches2: missing vectors', OpCode.setWatches2, (w) => w.longNum(0).int(0).int(0).int(0)],
      ['multi: no terminator', OpCode.multi, (w) => ops.setData('/bi', 'zz').body(w.int(OpCode.setData).bool(false).int(-1))],
      ['multi: unknown op type', OpCode.multi, (w) => w.int(99).bool(false).int(-1).ustring('/bi').int(-1).bool(true).int(-1)],
      ['multi: nested multi', OpCode.multi, (w) => w.int(OpCode.multi).bool(false).int(-1).int(-1).bool(true).int(-1).int(-1).bool(true).int(-1)],
      ['multi: closeSession inside', OpCode.multi, (w) => w.int(OpCode.closeSession).bool(false).int(-1).int(-1).bool(true).int(-1)],
      ['multi: truncated sub-op', OpCode.multi, (w) => w.int(OpCode.setData).bool(false).int(-1).ustring('/bi')],
      ['multiRead: unknown op type', OpCode.multiRead, (w) => w.int(77).bool(false).int(-1).int(-1).bool(true).int(-1)],
      ['checkWatches: no type', OpCode.checkWatches, (w) => w.ustring('/bi')],
      ['removeWatches: empty', OpCode.removeWatches, () => {}],
      ['addWatch: no mode', OpCode.addWatch, (w) => w.ustring('/bi')],
      ['getACL: string too long', OpCode.getACL, (w) => w.int(2 ** 31 - 1)],
      ['getAllChildrenNumber: empty', OpCode.getAllChildrenNumber, () => {}],
      ['sync: null path', OpCode.sync, (w) => w.int(-1)],
    ];
    let xid = 100;
    for (const [what, op, body] of cases) {
      o.send(++xid, op, body);
      const fs = await o.waitXid(xid);
      const r = fs[fs.length - 1];
      expect([r.xid, r.err], what).toEqual([xid, Err.MARSHALLINGERROR]);
      expect(r.body.length, what).toBe(0);
    }
    // Still the same connection, and nothing was written.
    o.send(++xid, OpCode.getData, (w) => w.ustring('/bi').bool(false));
    const fs = await o.waitXid(xid);
    expect(fs[fs.length - 1].err).toBe(0);
    expect(o.s.isClosed).toBe(false);
    expect((await watcher.exists('/bi/x')).err).toBe(Err.NONODE);
    expect(logsFor(ts.logs, o.s.localPort)).toEqual([]);
  });

  it('a deeply nested multi is refused without exhausting the stack', async () => {
    const o = await session();
    // 100,000 MultiHeaders of type multi: 900 KB, within jute.maxbuffer.
    o.send(1, OpCode.multi, (w) => {
      for (let i = 0; i < 100000; i++) w.int(OpCode.multi).bool(false).int(-1);
    });
    const fs = await o.waitXid(1);
    expect(fs[0].err).toBe(Err.MARSHALLINGERROR);
  });

  it('a malformed write keeps its place in the session order', async () => {
    const o = await session();
    o.s.socket.cork();
    o.send(1, OpCode.create, (w) => ops.create('/bi/order', 'a').body(w));
    o.send(2, OpCode.create, (w) => w.ustring('/bi/order2').int(-9));
    o.send(3, OpCode.setData, (w) => w.ustring('/bi/order').buffer(Buffer.from('b')).int(0));
    o.send(4, OpCode.delete, (w) => w.ustring('/bi/order'));
    o.send(5, OpCode.getData, (w) => w.ustring('/bi/order').bool(false));
    o.s.socket.uncork();
    const fs = await o.waitXid(5);
    expect(fs.map((f) => [f.xid, f.err])).toEqual([
      [1, 0],
      [2, Err.MARSHALLINGERROR],
      [3, 0],
      [4, Err.MARSHALLINGERROR],
      [5, 0],
    ]);
    expect(fs[4].body.subarray(4, 5).toString()).toBe('b');
    expect((await watcher.delete('/bi/order')).err).toBe(0);
  });

  it('trailing bytes after a complete body are ignored', async () => {
    const o = await session();
    o.send(1, OpCode.getData, (w) => w.ustring('/bi').bool(false).int(12345).int(67890));
    const fs = await o.waitXid(1);
    expect(fs[0].err).toBe(0);
  });

  it('a malformed auth packet fails authentication and closes', async () => {
    const o = await session();
    o.send(Xid.auth, OpCode.auth, (w) => w.int(0).int(500));
    const fs = await o.waitXid(Xid.auth);
    expect(fs[0].err).toBe(Err.AUTHFAILED);
    expect(await o.s.waitClosed()).toBe(true);
  });

  it('random bytes after a handshake: a reply or a close, never a crash', async () => {
    let seed = 99;
    const rnd = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) >>> 24) & 0xff;
    for (let k = 0; k < 30; k++) {
      const o = await session();
      const body = Buffer.alloc(8 + (k * 7) % 60);
      for (let i = 0; i < body.length; i++) body[i] = rnd();
      // A plausible header: our xid, then an opcode chosen among real ones half the time.
      body.writeInt32BE(k + 1, 0);
      if (k % 2 === 0) body.writeInt32BE([1, 2, 3, 4, 5, 6, 7, 8, 12, 14, 15, 17, 18, 21, 22, 101, 103, 104, 105, 106][k % 20], 4);
      o.s.write(frame(body));
      o.send(1000, OpCode.ping);
      await o.s.waitBytes(1, 200);
      // Either the connection is closed, or replies are well-formed frames.
      const { trailing } = o.s.parse();
      expect(trailing).toBe(0);
      o.close();
    }
  });
});
