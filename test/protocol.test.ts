// Protocol-level tests against ZooKeeper 3.9 semantics: the handshake and every opcode,
// byte for byte where high-level clients would hide the difference.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../src/client/raw.js';
import { digestOf } from '../src/acl/auth.js';
import { getI32, getI64, getNum, getU32, putI32, putI64, putNum } from '../src/protocol/bytes.js';
import { CONTAINER_OWNER, Err, OpCode, Perms, Xid } from '../src/protocol/constants.js';
import { readAclList, readStat } from '../src/protocol/records.js';
import { sessionPassword } from '../src/session/password.js';
import type { Acl } from '../src/tree/types.js';
import {
  ByteSocket,
  childrenOf,
  closedWithin,
  connectFrame,
  logsFor,
  multiBody,
  mustCreate,
  OPEN_ACL,
  ops,
  readCreate2,
  readGetData,
  readMulti,
  requestFrame,
  sleep,
  statOf,
  until,
} from './helpers/proto.js';
import { startServer, type TestServer } from './helpers/server.js';

let ts: TestServer;
const clients: RawClient[] = [];

async function client(o: Parameters<typeof RawClient.connect>[2] = {}, server: TestServer = ts): Promise<RawClient> {
  const c = await RawClient.connect('127.0.0.1', server.port, o);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  ts = await startServer();
});
afterAll(async () => {
  for (const c of clients) c.close();
  await ts.stop();
});

const USER_ACL = (user: string, perms: number = Perms.ALL): Acl[] => [{ perms, scheme: 'digest', id: digestOf(user) }];

describe('big-endian integers (the codecs write bytes directly, not through Buffer methods)', () => {
  it('agree with Buffer\'s own readers and writers, edge values and random ones', () => {
    const b = Buffer.alloc(24);
    let seed = 7;
    const next = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0), seed);
    const ints = [0, 1, -1, 0x7fffffff, -0x80000000, 0x12345678, -0x12345678];
    const longs = [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 0x0123456789abcdefn, -0x0123456789abcdefn];
    const nums = [0, 1, -1, 2 ** 32, 2 ** 32 - 1, -(2 ** 32), 2 ** 53 - 1, -(2 ** 53 - 1), 0x100000002, 1_763_000_000_000];
    for (let i = 0; i < 2000; i++) {
      ints.push(next() | 0);
      longs.push(BigInt.asIntN(64, (BigInt(next()) << 32n) | BigInt(next())));
      nums.push((next() % 2 ? 1 : -1) * (next() * 2 ** 21 + (next() >>> 11)));
    }
    for (const v of ints) {
      putI32(b, 3, v);
      expect(b.readInt32BE(3)).toBe(v);
      expect(getI32(b, 3)).toBe(v);
      expect(getU32(b, 3)).toBe(v >>> 0);
    }
    for (const v of longs) {
      putI64(b, 5, v);
      expect(b.readBigInt64BE(5)).toBe(v);
      expect(getI64(b, 5)).toBe(v);
    }
    putI64(b, 0, 2n ** 63n); // wraps, like BigInt.asIntN(64)
    expect(b.readBigInt64BE(0)).toBe(-(2n ** 63n));
    for (const v of nums) {
      putNum(b, 9, v);
      expect(b.readBigInt64BE(9)).toBe(BigInt(v));
      expect(getNum(b, 9)).toBe(v);
    }
  });
});

describe('handshake', () => {
  it('answers a 44-byte ConnectRequest with 36 bytes and a 45-byte one with 37', async () => {
    for (const [readOnly, reqLen, respLen] of [
      [undefined, 44, 36],
      [false, 45, 37],
    ] as const) {
      const s = await ByteSocket.open(ts.port);
      const f = connectFrame({ timeout: 10000, readOnly });
      expect(f.length - 4).toBe(reqLen);
      s.write(f);
      await s.waitBytes(4 + respLen);
      const { connect, trailing } = s.parse();
      expect(trailing).toBe(0);
      expect(connect!.length).toBe(respLen);
      expect(connect!.readInt32BE(0)).toBe(0); // protocolVersion
      expect(connect!.readInt32BE(4)).toBe(10000); // negotiated timeout
      const sessionId = connect!.readBigInt64BE(8);
      expect(sessionId).not.toBe(0n);
      // serverId 1 in the top byte, as a standalone ZooKeeper does.
      expect(sessionId >> 56n).toBe(1n);
      expect(connect!.readInt32BE(16)).toBe(16);
      expect(connect!.subarray(20, 36).equals(sessionPassword(sessionId))).toBe(true);
      if (respLen === 37) expect(connect![36]).toBe(0); // not a read-only server
      // The session works.
      s.write(requestFrame(1, OpCode.exists, (w) => w.ustring('/').bool(false)));
      await s.waitBytes(4 + respLen + 4 + 16 + 68);
      const { replies } = s.parse();
      expect(replies).toHaveLength(1);
      expect(replies[0].xid).toBe(1);
      expect(replies[0].err).toBe(0);
      s.close();
    }
  });

  it('clamps the session timeout to [minSessionTimeout, maxSessionTimeout] (2 and 20 ticks)', async () => {
    // tickTime=2000 in the test server: [4000, 40000].
    const cases: [number, number][] = [
      [1, 4000],
      [-5, 4000],
      [3999, 4000],
      [4000, 4000],
      [12345, 12345],
      [40000, 40000],
      [40001, 40000],
      [2 ** 31 - 1, 40000],
    ];
    for (const [asked, got] of cases) {
      const c = await client({ timeout: asked });
      expect(c.session.timeout, `asked ${asked}`).toBe(got);
      c.close();
    }
  });

  it('honours explicit minSessionTimeout/maxSessionTimeout', async () => {
    const s2 = await startServer('minSessionTimeout=5000\nmaxSessionTimeout=6000');
    try {
      const lo = await client({ timeout: 100 }, s2);
      const hi = await client({ timeout: 100000 }, s2);
      expect(lo.session.timeout).toBe(5000);
      expect(hi.session.timeout).toBe(6000);
      lo.close();
      hi.close();
    } finally {
      await s2.stop();
    }
  });

  it('resumes a session with its id and password; ephemerals survive', async () => {
    const a = await client({ timeout: 20000 });
    const { sessionId, passwd } = a.session;
    await mustCreate(a, '/resume-eph', 'x', 1);
    a.close();
    await a.closed;
    const b = await client({ sessionId, passwd, timeout: 20000 });
    expect(b.session.sessionId).toBe(sessionId);
    expect(b.session.passwd.equals(passwd)).toBe(true);
    expect(b.session.timeout).toBe(20000);
    const st = await statOf(b, '/resume-eph');
    expect(st.ephemeralOwner).toBe(sessionId);
    const e = await b.request(OpCode.getEphemerals, (w) => w.ustring('/'));
    expect(e.body.stringVector()).toEqual(['/resume-eph']);
    // The resumed session still owns it: closing the session deletes it.
    expect((await b.closeSession()).err).toBe(0);
    const c = await client();
    expect((await c.exists('/resume-eph')).err).toBe(Err.NONODE);
  });

  it('closes the old connection when the session reconnects elsewhere', async () => {
    const a = await client();
    const b = await client({ sessionId: a.session.sessionId, passwd: a.session.passwd });
    expect(b.session.sessionId).toBe(a.session.sessionId);
    expect(await closedWithin(a)).toBe(true);
    expect((await b.exists('/')).err).toBe(0);
  });

  it('refuses a wrong password with timeout 0, session 0 and a zero password, then closes', async () => {
    const a = await client();
    await mustCreate(a, '/badpw-eph', '', 1);
    const bad = Buffer.from(a.session.passwd);
    bad[0] ^= 0xff;
    const b = await RawClient.open('127.0.0.1', ts.port);
    const port = b.socket.localPort!;
    const s = await b.handshake({ sessionId: a.session.sessionId, passwd: bad });
    expect(s.timeout).toBe(0);
    expect(s.sessionId).toBe(0n);
    expect(s.passwd.equals(Buffer.alloc(16))).toBe(true);
    expect(s.responseLength).toBe(37);
    expect(await closedWithin(b)).toBe(true);
    // processConnectRequest drops the session's current connection before reopenSession
    // checks the password, but the session itself lives on.
    expect(await closedWithin(a)).toBe(true);
    const again = await client({ sessionId: a.session.sessionId, passwd: a.session.passwd });
    expect(again.session.sessionId).toBe(a.session.sessionId);
    expect((await statOf(again, '/badpw-eph')).ephemeralOwner).toBe(a.session.sessionId);
    expect(logsFor(ts.logs, port)).toHaveLength(1);
    expect(logsFor(ts.logs, port)[0]).toMatch(/incorrect password/);
  });

  it('refuses a closed session the same way (44-byte form answered with 36 bytes)', async () => {
    const a = await client();
    const { sessionId, passwd } = a.session;
    expect((await a.closeSession()).err).toBe(0);
    const b = await RawClient.open('127.0.0.1', ts.port);
    const s = await b.handshake({ sessionId, passwd, readOnlyByte: false });
    expect([s.timeout, s.sessionId, s.responseLength]).toEqual([0, 0n, 36]);
    expect(s.passwd.equals(Buffer.alloc(16))).toBe(true);
    expect(await closedWithin(b)).toBe(true);
  });

  it('refuses an expired session', async () => {
    const fast = await startServer('tickTime=100');
    try {
      const a = await client({ timeout: 200 }, fast);
      expect(a.session.timeout).toBe(200); // 2 ticks
      const { sessionId, passwd } = a.session;
      await mustCreate(a, '/exp-eph', '', 1);
      a.close();
      const w = await client({ timeout: 2000 }, fast);
      await until(async () => (await w.exists('/exp-eph')).err === Err.NONODE, 5000, 'expiry');
      const b = await RawClient.open('127.0.0.1', fast.port);
      const s = await b.handshake({ sessionId, passwd });
      expect([s.timeout, s.sessionId]).toEqual([0, 0n]);
      expect(await closedWithin(b)).toBe(true);
      expect(fast.logs.some((l) => l.includes('expired'))).toBe(true);
      // And the clamp with a 100 ms tick: [200, 2000].
      const hi = await client({ timeout: 60000 }, fast);
      expect(hi.session.timeout).toBe(2000);
    } finally {
      await fast.stop();
    }
  });

  it('closes the connection when the client has seen a later zxid than the server', async () => {
    const a = await client();
    await mustCreate(a, '/zxid-ahead');
    const last = a.lastZxid;
    // Equal is fine.
    const ok = await client({ lastZxidSeen: last });
    expect(ok.session.sessionId).not.toBe(0n);
    const b = await RawClient.open('127.0.0.1', ts.port);
    const port = b.socket.localPort!;
    await expect(b.handshake({ lastZxidSeen: last + 100 })).rejects.toThrow(/closed/);
    const lines = logsFor(ts.logs, port);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/client must try another server/);
  });

  it('answers requests pipelined behind the ConnectRequest, in order', async () => {
    const c = await RawClient.open('127.0.0.1', ts.port);
    clients.push(c);
    const order: number[] = [];
    c.socket.cork();
    const hs = c.handshake();
    const reqs = [
      c.create('/pipelined', Buffer.from('one')),
      c.getData('/pipelined'),
      c.setData('/pipelined', Buffer.from('two')),
      c.getData('/pipelined'),
      c.exists('/pipelined'),
      c.delete('/pipelined'),
      c.exists('/pipelined'),
    ].map((p, i) => p.then((r) => (order.push(i), r)));
    c.socket.uncork();
    await hs;
    const rs = await Promise.all(reqs);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(rs.map((r) => r.xid)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(rs.map((r) => r.err)).toEqual([0, 0, 0, 0, 0, 0, Err.NONODE]);
    expect(rs[1].body.buffer()!.toString()).toBe('one');
    expect(rs[3].body.buffer()!.toString()).toBe('two');
  });
});

describe('opcodes', () => {
  it('create(1): path reply, errors, stat of the node and its parent', async () => {
    const c = await client();
    expect((await c.create('/c1', Buffer.from('d'))).body.string()).toBe('/c1');
    const r = await c.create('/c1/kid', Buffer.from('abc'));
    expect(r.err).toBe(0);
    expect(r.body.string()).toBe('/c1/kid');
    expect(r.body.remaining()).toBe(0);
    const z = r.zxid;
    const kid = await statOf(c, '/c1/kid');
    expect(kid).toMatchObject({ czxid: z, mzxid: z, pzxid: z, version: 0, cversion: 0, aversion: 0, ephemeralOwner: 0n, dataLength: 3, numChildren: 0 });
    expect(kid.ctime).toBe(kid.mtime);
    expect(Math.abs(kid.ctime - Date.now())).toBeLessThan(5000);
    const parent = await statOf(c, '/c1');
    expect(parent).toMatchObject({ cversion: 1, numChildren: 1, pzxid: z, version: 0 });
    expect(parent.mzxid).toBeLessThan(z);

    expect((await c.create('/c1')).err).toBe(Err.NODEEXISTS);
    expect((await c.create('/no-parent/x')).err).toBe(Err.NONODE);
    for (const bad of ['c1', '/c1/', '/c1/.', '/c1/..', '/c1/\u0001', ''])
      expect((await c.create(bad)).err, JSON.stringify(bad)).toBe(Err.BADARGUMENTS);
    // The parent is looked up before the path is validated: "/c1/" does not exist.
    expect((await c.create('/c1//x')).err).toBe(Err.NONODE);
    expect((await c.create('/c1/f7', Buffer.alloc(0), 7)).err).toBe(Err.BADARGUMENTS);
    expect((await c.create('/c1/f-1', Buffer.alloc(0), -1)).err).toBe(Err.BADARGUMENTS);
    expect((await c.create('/c1/noacl', Buffer.alloc(0), 0, [])).err).toBe(Err.INVALIDACL);
    expect((await c.create('/c1/badacl', Buffer.alloc(0), 0, [{ perms: 31, scheme: 'nosuch', id: 'x' }])).err).toBe(Err.INVALIDACL);
    // `auth` without any authenticated id is invalid.
    expect((await c.create('/c1/authacl', Buffer.alloc(0), 0, [{ perms: 31, scheme: 'auth', id: '' }])).err).toBe(Err.INVALIDACL);
    // A null data buffer is an empty znode.
    const n = await c.request(OpCode.create, (w) => {
      w.ustring('/c1/nulldata').buffer(null).int(1).int(31).ustring('world').ustring('anyone').int(0);
    });
    expect(n.err).toBe(0);
    expect((await statOf(c, '/c1/nulldata')).dataLength).toBe(0);
    // Failed creates did not touch the parent.
    expect((await statOf(c, '/c1')).cversion).toBe(2);
  });

  it('create(1) ephemeral: owner is the session, no children allowed', async () => {
    const c = await client();
    await mustCreate(c, '/eph1', '', 1);
    expect((await statOf(c, '/eph1')).ephemeralOwner).toBe(c.session.sessionId);
    expect((await c.create('/eph1/kid')).err).toBe(Err.NOCHILDRENFOREPHEMERALS);
  });

  // DataTree keeps cversion as a count of child creates (sequence numbers come from it);
  // DataNode.copyStat shows clients creates + deletes: 2 * cversion - numChildren.
  it('sequential names carry the parent cversion as %010d; deletes move pzxid, not the sequence', async () => {
    const c = await client();
    await mustCreate(c, '/seq');
    await mustCreate(c, '/seq/a'); // cversion 1
    expect(await mustCreate(c, '/seq/s-', '', 2)).toBe('/seq/s-0000000001');
    const before = await statOf(c, '/seq');
    expect(before.cversion).toBe(2);
    const del = await c.delete('/seq/a');
    expect(del.err).toBe(0);
    const after = await statOf(c, '/seq');
    expect(after.cversion).toBe(3); // the client sees the delete as a child change
    expect(ts.server.tree.get('/seq')!.cversion).toBe(2); // the stored create count does not move
    expect(after.pzxid).toBe(del.zxid);
    expect(after.numChildren).toBe(1);
    expect(after.mzxid).toBe(before.mzxid);
    expect(await mustCreate(c, '/seq/e-', '', 3)).toBe('/seq/e-0000000002');
    expect((await statOf(c, '/seq/e-0000000002')).ephemeralOwner).toBe(c.session.sessionId);
    expect(await mustCreate(c, '/seq/', '', 2)).toBe('/seq/0000000003');
    // A failed create does not consume a number.
    expect((await c.create('/seq/a/x', Buffer.alloc(0), 2)).err).toBe(Err.NONODE);
    expect(await mustCreate(c, '/seq/s-', '', 2)).toBe('/seq/s-0000000004');
  });

  it('sequential numbers follow int overflow of the parent cversion as ZooKeeper does', async () => {
    const c = await client();
    await mustCreate(c, '/seqwrap');
    ts.server.tree.get('/seqwrap')!.cversion = 2 ** 31 - 1;
    expect(await mustCreate(c, '/seqwrap/n', '', 2)).toBe('/seqwrap/n2147483647');
    // newCversion overflows to -2^31, which is not > 2^31-1: DataTree.createNode leaves
    // the parent's cversion (and pzxid) alone, so the wire shows 2147483647 still.
    const st = await statOf(c, '/seqwrap');
    expect(ts.server.tree.get('/seqwrap')!.cversion).toBe(2 ** 31 - 1);
    expect(st.cversion).toBe(((2 ** 31 - 1) * 2 - 1) | 0); // copyStat's int arithmetic: -3
    expect(st.numChildren).toBe(1);
    // ...and the next sequential create computes the same name again.
    expect((await c.create('/seqwrap/n', Buffer.alloc(0), 2)).err).toBe(Err.NODEEXISTS);
  });

  it('delete(2): versions, NOTEMPTY, NONODE, special paths', async () => {
    const c = await client();
    await mustCreate(c, '/d1');
    await mustCreate(c, '/d1/k');
    expect((await c.delete('/d1')).err).toBe(Err.NOTEMPTY);
    expect((await c.delete('/d1/k', 3)).err).toBe(Err.BADVERSION);
    const ok = await c.delete('/d1/k', 0);
    expect(ok.err).toBe(0);
    expect(ok.body.remaining()).toBe(0);
    expect((await c.delete('/d1/k')).err).toBe(Err.NONODE);
    for (const p of ['/', '/zookeeper', '/zookeeper/quota', '/zookeeper/config', 'd1'])
      expect((await c.delete(p)).err, p).toBe(Err.BADARGUMENTS);
    expect((await c.delete('/d1')).err).toBe(0);
  });

  it('exists(3), getData(4), setData(5) with stats; version wraps per ZOOKEEPER-4743', async () => {
    const c = await client();
    const cr = await c.create('/gd', Buffer.from('hello'));
    const e = await c.exists('/gd');
    expect(e.err).toBe(0);
    const st = readStat(e.body);
    expect(e.body.remaining()).toBe(0);
    expect(st.czxid).toBe(cr.zxid);
    expect((await c.exists('/gd-missing')).err).toBe(Err.NONODE);
    expect((await c.exists('/gd\u0000x')).err).toBe(Err.BADARGUMENTS);
    const g = readGetData(await c.getData('/gd'));
    expect(g.data!.toString()).toBe('hello');
    expect(g.stat).toEqual(st);
    const s = await c.setData('/gd', Buffer.from('world!'), 0);
    expect(s.err).toBe(0);
    const st2 = readStat(s.body);
    expect(st2).toMatchObject({ czxid: cr.zxid, mzxid: s.zxid, version: 1, dataLength: 6, cversion: 0, aversion: 0 });
    expect(st2.mtime).toBeGreaterThanOrEqual(st2.ctime);
    expect((await c.setData('/gd', Buffer.alloc(0), 0)).err).toBe(Err.BADVERSION);
    expect((await c.setData('/gd-missing', Buffer.alloc(0))).err).toBe(Err.NONODE);
    expect((await c.setData('gd', Buffer.alloc(0))).err).toBe(Err.BADARGUMENTS);
    // ZOOKEEPER-4743: the version goes MAX -> MIN and skips -1.
    ts.server.tree.get('/gd')!.version = 2 ** 31 - 1;
    expect(readStat((await c.setData('/gd', Buffer.from('a'), 2 ** 31 - 1)).body).version).toBe(-(2 ** 31));
    expect(readStat((await c.setData('/gd', Buffer.from('b'), -(2 ** 31))).body).version).toBe(-(2 ** 31) + 1);
    ts.server.tree.get('/gd')!.version = -2;
    expect(readStat((await c.setData('/gd', Buffer.from('c'), -2)).body).version).toBe(0);
  });

  it('getACL(6) and setACL(7): aversion, BADVERSION, NOAUTH, digest masking', async () => {
    const c = await client();
    await mustCreate(c, '/acl1');
    const g = await c.request(OpCode.getACL, (w) => w.ustring('/acl1'));
    expect(g.err).toBe(0);
    expect(readAclList(g.body)).toEqual(OPEN_ACL);
    expect(readStat(g.body).aversion).toBe(0);
    const acl: Acl[] = [...USER_ACL('alice:pw', Perms.ALL), { perms: Perms.READ, scheme: 'world', id: 'anyone' }];
    const setAcl = (path: string, a: Acl[], version: number) =>
      c.request(OpCode.setACL, (w) => {
        w.ustring(path).int(a.length);
        for (const x of a) w.int(x.perms).ustring(x.scheme).ustring(x.id);
        w.int(version);
      });
    expect((await setAcl('/acl1', acl, 5)).err).toBe(Err.BADVERSION);
    const s = await setAcl('/acl1', acl, 0);
    expect(s.err).toBe(0);
    const st = readStat(s.body);
    expect(st.aversion).toBe(1);
    expect(st.version).toBe(0);
    expect(st.mzxid).toBeLessThan(s.zxid); // setACL does not move mzxid
    // Without ADMIN the digest hash is masked; READ alone is enough to see the list.
    const g2 = await c.request(OpCode.getACL, (w) => w.ustring('/acl1'));
    expect(readAclList(g2.body)).toEqual([
      { perms: Perms.ALL, scheme: 'digest', id: 'alice:x' },
      { perms: Perms.READ, scheme: 'world', id: 'anyone' },
    ]);
    expect((await setAcl('/acl1', OPEN_ACL, -1)).err).toBe(Err.NOAUTH);
    expect((await c.setData('/acl1', Buffer.from('x'))).err).toBe(Err.NOAUTH);
    expect((await setAcl('/acl1', [], -1)).err).toBe(Err.INVALIDACL);
    expect((await setAcl('/acl-missing', OPEN_ACL, -1)).err).toBe(Err.NONODE);
    expect((await c.request(OpCode.getACL, (w) => w.ustring('/acl-missing'))).err).toBe(Err.NONODE);
    // With the digest: full hash, and writes allowed.
    expect((await c.auth('digest', 'alice:pw')).err).toBe(0);
    const g3 = await c.request(OpCode.getACL, (w) => w.ustring('/acl1'));
    expect(readAclList(g3.body)![0]).toEqual(USER_ACL('alice:pw')[0]);
    expect((await setAcl('/acl1', OPEN_ACL, 1)).err).toBe(0);
  });

  it('getChildren(8) and getChildren2(12)', async () => {
    const c = await client();
    await mustCreate(c, '/gc');
    for (const k of ['a', 'b', 'c']) await mustCreate(c, `/gc/${k}`);
    const r = await c.getChildren('/gc');
    expect((r.body.stringVector() ?? []).sort()).toEqual(['a', 'b', 'c']);
    expect(r.body.remaining()).toBe(0);
    const r2 = await c.getChildren('/gc', false, OpCode.getChildren2);
    expect((r2.body.stringVector() ?? []).sort()).toEqual(['a', 'b', 'c']);
    const st = readStat(r2.body);
    expect(st).toMatchObject({ numChildren: 3, cversion: 3 });
    expect(r2.body.remaining()).toBe(0);
    expect((await c.getChildren('/gc-missing')).err).toBe(Err.NONODE);
    expect((await c.getChildren('/gc-missing', false, OpCode.getChildren2)).err).toBe(Err.NONODE);
    const leaf = await c.getChildren('/gc/a');
    expect(leaf.body.stringVector()).toEqual([]);
  });

  it('sync(9) echoes the path; ping(11) answers xid -2 with the last zxid', async () => {
    const c = await client();
    const cr = await c.create('/sync1');
    const s = await c.request(OpCode.sync, (w) => w.ustring('/sync1'));
    expect(s.err).toBe(0);
    expect(s.body.string()).toBe('/sync1');
    const p = await c.ping();
    expect(p.xid).toBe(Xid.ping);
    expect(p.err).toBe(0);
    expect(p.zxid).toBeGreaterThanOrEqual(cr.zxid);
    expect(p.body.remaining()).toBe(0);
  });

  it('multi(14): every op type succeeds under one zxid', async () => {
    const c = await client();
    const r = await c.request(
      OpCode.multi,
      multiBody([
        ops.create('/m1', 'root'),
        ops.create('/m1/a', 'A', 0, OPEN_ACL, OpCode.create2),
        ops.setData('/m1', 'root2', 0),
        ops.check('/m1', 1),
        ops.create('/m1/s-', '', 2),
        ops.delete('/m1/a', 0),
      ]),
    );
    expect(r.err).toBe(0);
    const res = readMulti(r.body);
    expect(res.map((x) => [x.type, x.err])).toEqual([
      [OpCode.create, 0],
      [OpCode.create2, 0],
      [OpCode.setData, 0],
      [OpCode.check, 0],
      [OpCode.create, 0],
      [OpCode.delete, 0],
    ]);
    expect(res[0].path).toBe('/m1');
    expect(res[1].path).toBe('/m1/a');
    expect(res[1].stat!.czxid).toBe(r.zxid);
    expect(res[2].stat).toMatchObject({ version: 1, mzxid: r.zxid, czxid: r.zxid });
    expect(res[4].path).toBe('/m1/s-0000000001');
    const st = await statOf(c, '/m1');
    // Two creates and a delete of children: a client-visible cversion of 3.
    expect(st).toMatchObject({ czxid: r.zxid, mzxid: r.zxid, pzxid: r.zxid, version: 1, cversion: 3, numChildren: 1 });
    expect(await childrenOf(c, '/m1')).toEqual(['s-0000000001']);
    // The next write gets the next zxid: the multi consumed exactly one.
    expect((await c.create('/m1/after')).zxid).toBe(r.zxid + 1);
  });

  it('multi(14) failure: 0 before, the code at the failing op, -2 after; all type -1; nothing applied', async () => {
    const c = await client();
    await mustCreate(c, '/mf');
    const before = await statOf(c, '/mf');
    const r = await c.request(
      OpCode.multi,
      multiBody([
        ops.create('/mf/a'),
        ops.setData('/mf', 'changed'),
        ops.check('/mf', 7),
        ops.create('/mf/b'),
        ops.delete('/mf'),
      ]),
    );
    expect(r.err).toBe(0);
    const res = readMulti(r.body);
    expect(res.map((x) => [x.type, x.err])).toEqual([
      [-1, 0],
      [-1, 0],
      [-1, Err.BADVERSION],
      [-1, Err.RUNTIMEINCONSISTENCY],
      [-1, Err.RUNTIMEINCONSISTENCY],
    ]);
    expect((await c.exists('/mf/a')).err).toBe(Err.NONODE);
    const after = await statOf(c, '/mf');
    expect(after).toEqual(before);
    // The failure rolled back the pending changes: the same creates now succeed.
    const ok = await c.request(OpCode.multi, multiBody([ops.create('/mf/a'), ops.check('/mf', 0)]));
    expect(readMulti(ok.body).map((x) => x.err)).toEqual([0, 0]);
    // The first op failing.
    const f0 = await c.request(OpCode.multi, multiBody([ops.create('/mf/a'), ops.create('/mf/c')]));
    expect(readMulti(f0.body).map((x) => [x.type, x.err])).toEqual([
      [-1, Err.NODEEXISTS],
      [-1, Err.RUNTIMEINCONSISTENCY],
    ]);
    expect((await c.exists('/mf/c')).err).toBe(Err.NONODE);
  });

  it('multi(14): an empty multi, read ops inside, and bad create flags', async () => {
    const c = await client();
    const empty = await c.request(OpCode.multi, multiBody([]));
    expect(empty.err).toBe(0);
    expect(readMulti(empty.body)).toEqual([]);
    // Read ops may not appear in a multi (MultiOperationRecord / PrepRequestProcessor).
    const mixed = await c.request(OpCode.multi, multiBody([ops.create('/mr-x'), ops.getData('/')]));
    expect(mixed.err).toBe(Err.MARSHALLINGERROR);
    expect((await c.exists('/mr-x')).err).toBe(Err.NONODE);
    // An invalid create flag fails deserialising the whole MultiOperationRecord.
    const badFlag = await c.request(OpCode.multi, multiBody([ops.create('/mr-y'), ops.create('/mr-z', '', 9)]));
    expect(badFlag.err).toBe(Err.MARSHALLINGERROR);
    expect((await c.exists('/mr-y')).err).toBe(Err.NONODE);
    // The connection is still fine.
    expect((await c.exists('/')).err).toBe(0);
  });

  it('check(13) outside a multi is an unknown request: UNIMPLEMENTED, then the connection closes', async () => {
    const c = await client();
    await mustCreate(c, '/chk-top');
    const r = await c.request(OpCode.check, (w) => w.ustring('/chk-top').int(0));
    expect(r.err).toBe(Err.UNIMPLEMENTED);
    expect(await closedWithin(c)).toBe(true);
  });

  it('create2(15): path and stat', async () => {
    const c = await client();
    const r = await c.create('/c2', Buffer.from('xy'), 0, OPEN_ACL, OpCode.create2);
    expect(r.err).toBe(0);
    const { path, stat } = readCreate2(r);
    expect(r.body.remaining()).toBe(0);
    expect(path).toBe('/c2');
    expect(stat).toMatchObject({ czxid: r.zxid, mzxid: r.zxid, pzxid: r.zxid, version: 0, dataLength: 2, numChildren: 0, ephemeralOwner: 0n });
    expect(stat).toEqual(await statOf(c, '/c2'));
    const seq = readCreate2(await c.create('/c2/q', Buffer.alloc(0), 3, OPEN_ACL, OpCode.create2));
    expect(seq.path).toBe('/c2/q0000000000');
    expect(seq.stat.ephemeralOwner).toBe(c.session.sessionId);
    expect((await c.create('/c2', Buffer.alloc(0), 0, OPEN_ACL, OpCode.create2)).err).toBe(Err.NODEEXISTS);
  });

  it('reconfig(16) is RECONFIGDISABLED', async () => {
    const c = await client();
    const r = await c.request(OpCode.reconfig, (w) => w.ustring('server.2=x:1:2').ustring(null).ustring(null).longNum(-1));
    expect(r.err).toBe(Err.RECONFIGDISABLED);
    expect((await c.exists('/')).err).toBe(0);
  });

  it('createContainer(19): owner Long.MIN_VALUE (shown to clients as 0), create2 reply', async () => {
    const c = await client();
    const r = await c.create('/ctr', Buffer.from('c'), 4, OPEN_ACL, OpCode.createContainer);
    expect(r.err).toBe(0);
    const { path, stat } = readCreate2(r);
    expect(path).toBe('/ctr');
    expect(ts.server.tree.get('/ctr')!.ephemeralOwner).toBe(CONTAINER_OWNER);
    expect(stat.ephemeralOwner).toBe(0n); // DataNode.getClientEphemeralOwner
    expect(stat.czxid).toBe(r.zxid);
    // Containers may have children (they are not session ephemerals).
    expect((await c.create('/ctr/kid')).err).toBe(0);
  });

  it('createTTL(21) is UNIMPLEMENTED unless extendedTypesEnabled', async () => {
    const c = await client();
    const r = await c.request(OpCode.createTTL, ops.createTTL('/ttl-off', '', 5, 1000).body);
    expect(r.err).toBe(Err.UNIMPLEMENTED);
    expect((await c.exists('/ttl-off')).err).toBe(Err.NONODE);
    // A TTL flag through plain create is refused the same way.
    expect((await c.create('/ttl-off', Buffer.alloc(0), 5)).err).toBe(Err.UNIMPLEMENTED);
    expect(await closedWithin(c, 100)).toBe(false);
  });

  it('createTTL(21) with extendedTypesEnabled=true', async () => {
    const ext = await startServer('extendedTypesEnabled=true');
    try {
      const c = await client({}, ext);
      const r = await c.request(OpCode.createTTL, ops.createTTL('/t1', 'v', 5, 60000).body);
      expect(r.err).toBe(0);
      const { path, stat } = readCreate2(r);
      expect(path).toBe('/t1');
      expect(ext.server.tree.get('/t1')!.ephemeralOwner).toBe(BigInt.asIntN(64, 0xff00000000000000n | 60000n));
      expect(stat.ephemeralOwner).toBe(0n); // DataNode.getClientEphemeralOwner
      const seq = await c.request(OpCode.createTTL, ops.createTTL('/t1/s', '', 6, 1).body);
      expect(readCreate2(seq).path).toBe('/t1/s0000000000');
      for (const ttl of [0, -1, -100, 2 ** 40])
        expect((await c.request(OpCode.createTTL, ops.createTTL('/t2', '', 5, ttl).body)).err, `ttl ${ttl}`).toBe(Err.BADARGUMENTS);
      // createTTL with a non-TTL mode is a bad argument too.
      expect((await c.request(OpCode.createTTL, ops.createTTL('/t2', '', 0, 1000).body)).err).toBe(Err.BADARGUMENTS);
      // Plain create with a TTL flag has ttl -1: bad argument once the feature is on.
      expect((await c.create('/t2', Buffer.alloc(0), 5)).err).toBe(Err.BADARGUMENTS);
      expect((await c.exists('/t2')).err).toBe(Err.NONODE);
    } finally {
      await ext.stop();
    }
  });

  it('multiRead(22): mixed results including per-op errors', async () => {
    const c = await client();
    await mustCreate(c, '/mr', 'top');
    await mustCreate(c, '/mr/a', 'A');
    await mustCreate(c, '/mr/secret', 's', 0, USER_ACL('bob:pw'));
    const r = await c.request(
      OpCode.multiRead,
      multiBody([
        ops.getData('/mr'),
        ops.getChildren('/mr'),
        ops.getData('/mr/missing'),
        ops.getData('/mr/secret'),
        ops.getChildren('/mr/a'),
        ops.getChildren('/nope'),
      ]),
    );
    expect(r.err).toBe(0);
    const res = readMulti(r.body);
    expect(res.map((x) => [x.type, x.err])).toEqual([
      [OpCode.getData, 0],
      [OpCode.getChildren, 0],
      [-1, Err.NONODE],
      [-1, Err.NOAUTH],
      [OpCode.getChildren, 0],
      [-1, Err.NONODE],
    ]);
    expect(res[0].data!.toString()).toBe('top');
    expect(res[0].stat).toEqual(await statOf(c, '/mr'));
    expect(res[1].children!.sort()).toEqual(['a', 'secret']);
    expect(res[4].children).toEqual([]);
    // Writes are not allowed in multiRead.
    expect((await c.request(OpCode.multiRead, multiBody([ops.getData('/mr'), ops.create('/mr/b')]))).err).toBe(Err.MARSHALLINGERROR);
    expect((await c.request(OpCode.multiRead, multiBody([ops.create('/mr/b')]))).err).toBe(Err.MARSHALLINGERROR);
    expect((await c.exists('/mr/b')).err).toBe(Err.NONODE);
  });

  it('auth(100): digest adds an id; xid echoed; unknown scheme is AUTHFAILED and closes', async () => {
    const c = await client();
    const a = await c.auth('digest', 'carol:pw');
    expect([a.xid, a.err, a.zxid]).toEqual([Xid.auth, 0, 0]);
    // ZooKeeperServer.processPacket answers auth with the request's own xid.
    const a2 = await c.request(OpCode.auth, (w) => w.int(0).ustring('digest').buffer(Buffer.from('dave:pw')), 77);
    expect([a2.xid, a2.err]).toEqual([77, 0]);
    const who = await c.request(OpCode.whoAmI);
    const n = who.body.int();
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push(`${who.body.string()}:${who.body.string()}`);
    expect(ids.sort()).toEqual(['digest:carol', 'digest:dave', 'ip:127.0.0.1']);

    const d = await client();
    const bad = await d.auth('kerberos-ish', 'x');
    expect([bad.xid, bad.err]).toEqual([Xid.auth, Err.AUTHFAILED]);
    expect(await closedWithin(d)).toBe(true);
  });

  it('sasl(102) without SASL configured: OK with a null token', async () => {
    const c = await client();
    const r = await c.request(OpCode.sasl, (w) => w.buffer(Buffer.from('token')), 9);
    expect([r.xid, r.err]).toEqual([9, 0]);
    expect(r.body.bufferView()).toBeNull();
    expect(r.body.remaining()).toBe(0);
    expect((await c.exists('/')).err).toBe(0);
  });

  it('getEphemerals(103) with and without a prefix', async () => {
    const c = await client();
    const other = await client();
    await mustCreate(c, '/ge');
    await mustCreate(c, '/ge/x', '', 1);
    await mustCreate(c, '/ge/y', '', 1);
    await mustCreate(c, '/ge-z', '', 1);
    await mustCreate(other, '/ge/other', '', 1);
    const get = async (prefix: string | null) => {
      const r = await c.request(OpCode.getEphemerals, (w) => w.ustring(prefix));
      expect(r.err).toBe(0);
      return (r.body.stringVector() ?? []).sort();
    };
    expect(await get('/')).toEqual(['/ge-z', '/ge/x', '/ge/y']);
    expect(await get('')).toEqual(['/ge-z', '/ge/x', '/ge/y']);
    expect(await get(null)).toEqual(['/ge-z', '/ge/x', '/ge/y']);
    expect(await get('/ge/')).toEqual(['/ge/x', '/ge/y']);
    expect(await get('/ge')).toEqual(['/ge-z', '/ge/x', '/ge/y']); // a plain string prefix
    expect(await get('/nothing')).toEqual([]);
    const none = await client();
    const r = await none.request(OpCode.getEphemerals, (w) => w.ustring('/'));
    expect(r.body.stringVector()).toEqual([]);
  });

  it('getAllChildrenNumber(104)', async () => {
    const c = await client();
    await mustCreate(c, '/gacn');
    await mustCreate(c, '/gacn/a');
    await mustCreate(c, '/gacn/a/b');
    await mustCreate(c, '/gacn/a/b/c');
    await mustCreate(c, '/gacn/d');
    await mustCreate(c, '/gacn-sibling'); // a string prefix, but not a descendant
    const n = async (p: string) => {
      const r = await c.request(OpCode.getAllChildrenNumber, (w) => w.ustring(p));
      return r.err === 0 ? r.body.int() : r.err;
    };
    expect(await n('/gacn')).toBe(4);
    expect(await n('/gacn/a')).toBe(2);
    expect(await n('/gacn/d')).toBe(0);
    expect(await n('/gacn-missing')).toBe(Err.NONODE);
    // The root counts every znode but itself, /zookeeper and its children included.
    expect(await n('/')).toBe(ts.server.tree.nodeCount - 1);
  });

  it('whoAmI(107): the ip id, then the digest user after auth', async () => {
    const c = await client();
    const who = async () => {
      const r = await c.request(OpCode.whoAmI);
      expect(r.err).toBe(0);
      const n = r.body.int();
      const out: [string, string][] = [];
      for (let i = 0; i < n; i++) out.push([r.body.string(), r.body.string()]);
      expect(r.body.remaining()).toBe(0);
      return out.sort();
    };
    expect(await who()).toEqual([['ip', '127.0.0.1']]);
    await c.auth('digest', 'erin:secret');
    // DigestAuthenticationProvider.getUserName: the part before the colon.
    expect(await who()).toEqual([
      ['digest', 'erin'],
      ['ip', '127.0.0.1'],
    ]);
  });

  it('closeSession(-11): reply, then the server closes; ephemerals are gone', async () => {
    const c = await client();
    const w = await client();
    await mustCreate(c, '/cs-eph', '', 1);
    const seqName = await mustCreate(c, '/cs-eph2-', '', 3);
    const r = await c.closeSession();
    expect(r.err).toBe(0);
    expect(r.zxid).toBeGreaterThan(0);
    expect(await closedWithin(c)).toBe(true);
    expect((await w.exists('/cs-eph')).err).toBe(Err.NONODE);
    expect((await w.exists(seqName)).err).toBe(Err.NONODE);
  });

  it('an unknown opcode gets UNIMPLEMENTED, then the connection closes', async () => {
    for (const op of [99, 10, 0, 23, 108, -3, 2 ** 31 - 1]) {
      const c = await client();
      const r = await c.request(op, (w) => w.ustring('/'));
      expect(r.err, `op ${op}`).toBe(Err.UNIMPLEMENTED);
      expect(await closedWithin(c)).toBe(true);
    }
    const ok = await client();
    expect((await ok.exists('/')).err).toBe(0);
  });

  it('replies carry the last zxid; errors have an empty body', async () => {
    const c = await client();
    const cr = await c.create('/zx');
    const g = await c.getData('/zx-missing');
    expect(g.err).toBe(Err.NONODE);
    expect(g.zxid).toBeGreaterThanOrEqual(cr.zxid);
    expect(g.body.remaining()).toBe(0);
  });

  it('NOAUTH on reads without READ; exists needs READ on an existing node (3.9.2+)', async () => {
    const c = await client();
    await mustCreate(c, '/noread', 'x', 0, USER_ACL('frank:pw'));
    expect((await c.getData('/noread')).err).toBe(Err.NOAUTH);
    expect((await c.exists('/noread')).err).toBe(Err.NOAUTH);
    expect((await c.getChildren('/noread')).err).toBe(Err.NOAUTH);
    expect((await c.request(OpCode.getAllChildrenNumber, (w) => w.ustring('/noread'))).err).toBe(Err.NOAUTH);
    expect((await c.create('/noread/x')).err).toBe(Err.NOAUTH);
    expect((await c.delete('/noread')).err).toBe(0); // DELETE is checked on the parent
  });
});
