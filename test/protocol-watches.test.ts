// Watches at the protocol level: what fires, when, with which zxid, in what order, and
// for whom (ZooKeeper 3.9: DataTree, WatchManager, NIOServerCnxn.process).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../src/acl/auth.js';
import { RawClient } from '../src/client/raw.js';
import { AddWatchMode, Err, EventType, OpCode, Perms, WatcherType, Xid } from '../src/protocol/constants.js';
import type { Acl } from '../src/tree/types.js';
import { eventOf, multiBody, mustCreate, ops, OrderedSession } from './helpers/proto.js';
import { startServer, type TestServer } from './helpers/server.js';

let ts: TestServer;
const clients: RawClient[] = [];
const sessions: OrderedSession[] = [];

async function client(o: Parameters<typeof RawClient.connect>[2] = {}): Promise<RawClient> {
  const c = await RawClient.connect('127.0.0.1', ts.port, o);
  clients.push(c);
  return c;
}

async function ordered(): Promise<OrderedSession> {
  const s = await OrderedSession.connect(ts.port);
  sessions.push(s);
  return s;
}

beforeAll(async () => {
  ts = await startServer();
});
afterAll(async () => {
  for (const c of clients) c.close();
  for (const s of sessions) s.close();
  await ts.stop();
});

const { NodeCreated, NodeDeleted, NodeDataChanged, NodeChildrenChanged } = EventType;
type Ev = [type: number, path: string, zxid: number];

/**
 * Everything delivered to `c` so far. The writes that trigger events have been answered
 * by then, so their notifications are already on the wire; a ping round trip on `c`
 * makes sure they have arrived.
 */
async function drain(c: RawClient): Promise<Ev[]> {
  expect((await c.ping()).err).toBe(0);
  return c.notifications.splice(0).map((n) => {
    expect(n.state).toBe(3); // SyncConnected
    return [n.type, n.path, n.zxid];
  });
}

const watchReq = (c: RawClient, op: number, path: string, type: number) =>
  c.request(op, (w) => w.ustring(path).int(type));
const check = (c: RawClient, path: string, type: number) => watchReq(c, OpCode.checkWatches, path, type).then((r) => r.err);
const remove = (c: RawClient, path: string, type: number) => watchReq(c, OpCode.removeWatches, path, type).then((r) => r.err);
const addWatch = (c: RawClient, path: string, mode: number) => c.request(OpCode.addWatch, (w) => w.ustring(path).int(mode));

describe('notifications', () => {
  it('carry the triggering zxid and arrive before the reply to a later read', async () => {
    const a = await client();
    await mustCreate(a, '/n1', 'v0');
    const o = await ordered();
    o.send(1, OpCode.getData, (w) => w.ustring('/n1').bool(true));
    await o.waitXid(1);
    const set = await a.setData('/n1', Buffer.from('v1'));
    o.send(2, OpCode.getData, (w) => w.ustring('/n1').bool(false));
    const fs = await o.waitXid(2);
    expect(fs.map((f) => f.xid)).toEqual([1, Xid.notification, 2]);
    const n = fs[1];
    expect(n.err).toBe(0);
    expect(n.zxid).toBe(set.zxid); // ZOOKEEPER-4655
    expect(eventOf(n)).toEqual({ type: NodeDataChanged, state: 3, path: '/n1' });
    expect(n.body.length).toBe(12 + 3);
  });

  it('on the writing connection, the event precedes the reply to the write itself', async () => {
    const a = await client();
    await mustCreate(a, '/n2', 'v0');
    const o = await ordered();
    // Pipelined in one write: watch, change, read.
    o.s.socket.cork();
    o.send(1, OpCode.exists, (w) => w.ustring('/n2').bool(true));
    o.send(2, OpCode.setData, (w) => w.ustring('/n2').buffer(Buffer.from('v1')).int(-1));
    o.send(3, OpCode.getData, (w) => w.ustring('/n2').bool(false));
    o.s.socket.uncork();
    const fs = await o.waitXid(3);
    expect(fs.map((f) => f.xid)).toEqual([1, Xid.notification, 2, 3]);
    expect(fs[1].zxid).toBe(fs[2].zxid);
    expect(eventOf(fs[1]).type).toBe(NodeDataChanged);
  });

  it('NodeCreated, NodeDeleted, NodeDataChanged, NodeChildrenChanged with their zxids; standard watches fire once', async () => {
    const a = await client();
    const w = await client();
    await mustCreate(a, '/ev');
    expect((await w.exists('/ev/x', true)).err).toBe(Err.NONODE); // an exist watch on a missing node
    await w.getChildren('/ev', true);
    const cr = await a.create('/ev/x', Buffer.from('1'));
    expect(await drain(w)).toEqual([
      [NodeCreated, '/ev/x', cr.zxid],
      [NodeChildrenChanged, '/ev', cr.zxid],
    ]);
    await w.getData('/ev/x', true);
    const s1 = await a.setData('/ev/x', Buffer.from('2'));
    await a.setData('/ev/x', Buffer.from('3'));
    expect(await drain(w)).toEqual([[NodeDataChanged, '/ev/x', s1.zxid]]);
    await w.getData('/ev/x', true);
    await w.getChildren('/ev', true);
    const del = await a.delete('/ev/x');
    expect(await drain(w)).toEqual([
      [NodeDeleted, '/ev/x', del.zxid],
      [NodeChildrenChanged, '/ev', del.zxid],
    ]);
    // Nothing is left armed.
    await a.create('/ev/x');
    await a.delete('/ev/x');
    expect(await drain(w)).toEqual([]);
  });

  it('a multi fires its events under its one zxid', async () => {
    const a = await client();
    const w = await client();
    await mustCreate(a, '/evm');
    await w.getChildren('/evm', true);
    await w.exists('/evm/a', true);
    await w.getData('/evm', true);
    const r = await a.request(OpCode.multi, multiBody([ops.create('/evm/a'), ops.setData('/evm', 'x')]));
    expect(r.err).toBe(0);
    const evs = await drain(w);
    expect(evs.map((e) => e[2])).toEqual([r.zxid, r.zxid, r.zxid]);
    expect(evs.map((e) => `${e[0]}${e[1]}`).sort()).toEqual([`${NodeCreated}/evm/a`, `${NodeChildrenChanged}/evm`, `${NodeDataChanged}/evm`].sort());
  });

  it('a deleted node with data and child watches is reported once, and both watches are spent', async () => {
    const a = await client();
    const w = await client();
    await mustCreate(a, '/dd');
    await w.getData('/dd', true);
    await w.getChildren('/dd', true);
    const del = await a.delete('/dd');
    expect(await drain(w)).toEqual([[NodeDeleted, '/dd', del.zxid]]);
    expect(await check(w, '/dd', WatcherType.Children)).toBe(Err.NOWATCHER);
    expect(await check(w, '/dd', WatcherType.Any)).toBe(Err.NOWATCHER);
    await mustCreate(a, '/dd');
    await mustCreate(a, '/dd/kid');
    expect(await drain(w)).toEqual([]);
  });

  it('watches belong to the connection: a resumed session has none until it sets them again', async () => {
    const a = await client();
    const w = await client();
    await mustCreate(a, '/conn-w');
    await w.getData('/conn-w', true);
    const w2 = await client({ sessionId: w.session.sessionId, passwd: w.session.passwd });
    await w.closed;
    await a.setData('/conn-w', Buffer.from('x'));
    expect(await drain(w2)).toEqual([]);
    expect(await check(w2, '/conn-w', WatcherType.Data)).toBe(Err.NOWATCHER);
  });

  it('multiRead never sets watches (Op.getData/getChildren drop the flag)', async () => {
    const a = await client();
    const w = await client();
    await mustCreate(a, '/mrw');
    const r = await w.request(OpCode.multiRead, multiBody([ops.getData('/mrw', true), ops.getChildren('/mrw', true)]));
    expect(r.err).toBe(0);
    expect(await check(w, '/mrw', WatcherType.Any)).toBe(Err.NOWATCHER);
    await a.setData('/mrw', Buffer.from('x'));
    await a.create('/mrw/k');
    expect(await drain(w)).toEqual([]);
  });
});

describe('ACL filter on delivery (3.9)', () => {
  const ALICE: Acl[] = [{ perms: Perms.ALL, scheme: 'digest', id: digestOf('alice:pw') }];

  it('a session without READ on the node is not told, and its watch is spent', async () => {
    const a = await client();
    await a.auth('digest', 'alice:pw');
    const stranger = await client();
    const friend = await client();
    await friend.auth('digest', 'alice:pw');
    await mustCreate(a, '/aw', 'open');
    await stranger.getData('/aw', true);
    await friend.getData('/aw', true);
    const setAcl = await a.request(OpCode.setACL, (w) => {
      w.ustring('/aw').int(1).int(Perms.ALL).ustring('digest').ustring(ALICE[0].id).int(-1);
    });
    expect(setAcl.err).toBe(0);
    expect(await drain(stranger)).toEqual([]); // setACL fires nothing
    const s = await a.setData('/aw', Buffer.from('closed'));
    expect(await drain(friend)).toEqual([[NodeDataChanged, '/aw', s.zxid]]);
    expect(await drain(stranger)).toEqual([]);
    expect(await check(stranger, '/aw', WatcherType.Data)).toBe(Err.NOWATCHER);
  });

  it('NodeCreated is filtered by the new node ACL, NodeChildrenChanged by the parent ACL', async () => {
    const a = await client();
    await a.auth('digest', 'alice:pw');
    const stranger = await client();
    await mustCreate(a, '/aw2');
    await stranger.exists('/aw2/secret', true);
    await stranger.getChildren('/aw2', true);
    const cr = await a.create('/aw2/secret', Buffer.alloc(0), 0, ALICE);
    expect(cr.err).toBe(0);
    expect(await drain(stranger)).toEqual([[NodeChildrenChanged, '/aw2', cr.zxid]]);
    // A node readable by the stranger under an unreadable parent: the other way round.
    await stranger.exists('/aw2/secret/open', true);
    await stranger.getData('/aw2/secret', true); // NOAUTH: sets nothing
    const cr2 = await a.create('/aw2/secret/open');
    expect(await drain(stranger)).toEqual([[NodeCreated, '/aw2/secret/open', cr2.zxid]]);
  });
});

describe('setWatches(101) / setWatches2(105)', () => {
  it('fires what changed after relativeZxid and re-arms the rest', async () => {
    const a = await client();
    for (const p of ['/sw', '/sw/d1', '/sw/d2', '/sw/d3', '/sw/c1', '/sw/c2', '/sw/c3']) await mustCreate(a, p);
    const rel = (await a.ping()).zxid;
    await a.setData('/sw/d1', Buffer.from('changed'));
    await a.delete('/sw/d2');
    await mustCreate(a, '/sw/e1');
    await mustCreate(a, '/sw/c1/kid');
    await a.delete('/sw/c3');
    const o = await ordered();
    o.send(Xid.setWatches, OpCode.setWatches, (w) => {
      w.longNum(rel);
      w.stringVector(['/sw/d1', '/sw/d2', '/sw/d3']); // data
      w.stringVector(['/sw/e1', '/sw/e2']); // exist
      w.stringVector(['/sw/c1', '/sw/c2', '/sw/c3']); // child
    });
    const fs = await o.waitXid(Xid.setWatches);
    const reply = fs[fs.length - 1];
    expect([reply.xid, reply.err]).toEqual([Xid.setWatches, 0]);
    expect(reply.body.length).toBe(0);
    // The missed events come first, each once, with no zxid (WatchedEvent's NO_ZXID).
    const evs = fs.slice(0, -1);
    expect(evs.every((f) => f.xid === Xid.notification && f.zxid === -1)).toBe(true);
    expect(evs.map((f) => eventOf(f)).map((e) => `${e.type} ${e.path}`)).toEqual([
      `${NodeDataChanged} /sw/d1`,
      `${NodeDeleted} /sw/d2`,
      `${NodeCreated} /sw/e1`,
      `${NodeChildrenChanged} /sw/c1`,
      `${NodeDeleted} /sw/c3`,
    ]);
    // The rest are armed: d3 (data), e2 (exist), c2 (child); the fired ones are not.
    const s = await a.setData('/sw/d3', Buffer.from('x'));
    const c = await a.create('/sw/e2');
    const k = await a.create('/sw/c2/kid');
    await a.setData('/sw/d1', Buffer.from('again'));
    await a.create('/sw/c1/kid2');
    o.send(Xid.ping, OpCode.ping);
    const after = (await o.waitXid(Xid.ping)).slice(fs.length);
    expect(after.map((f) => f.xid)).toEqual([Xid.notification, Xid.notification, Xid.notification, Xid.ping]);
    expect(after.slice(0, -1).map((f) => [f.xid, f.zxid, eventOf(f).type, eventOf(f).path])).toEqual([
      [Xid.notification, s.zxid, NodeDataChanged, '/sw/d3'],
      [Xid.notification, c.zxid, NodeCreated, '/sw/e2'],
      [Xid.notification, k.zxid, NodeChildrenChanged, '/sw/c2'],
    ]);
  });

  it('setWatches2 re-arms persistent and persistent-recursive watches', async () => {
    const a = await client();
    await mustCreate(a, '/sw2');
    await mustCreate(a, '/sw2/p');
    await mustCreate(a, '/sw2/r');
    const rel = (await a.ping()).zxid;
    const w = await client();
    const r = await w.request(
      OpCode.setWatches2,
      (b) => {
        b.longNum(rel).stringVector([]).stringVector([]).stringVector([]);
        b.stringVector(['/sw2/p']).stringVector(['/sw2/r']);
      },
      Xid.setWatches,
    );
    expect([r.xid, r.err]).toEqual([Xid.setWatches, 0]);
    expect(await check(w, '/sw2/p', WatcherType.Persistent)).toBe(0);
    expect(await check(w, '/sw2/r', WatcherType.PersistentRecursive)).toBe(0);
    const s1 = await a.setData('/sw2/p', Buffer.from('1'));
    const s2 = await a.setData('/sw2/p', Buffer.from('2'));
    const c1 = await a.create('/sw2/p/kid');
    const c2 = await a.create('/sw2/r/deep');
    expect(await drain(w)).toEqual([
      [NodeDataChanged, '/sw2/p', s1.zxid],
      [NodeDataChanged, '/sw2/p', s2.zxid],
      [NodeChildrenChanged, '/sw2/p', c1.zxid],
      [NodeCreated, '/sw2/r/deep', c2.zxid],
    ]);
  });

  it('accepts a client xid other than -8 and echoes it', async () => {
    const w = await client();
    const r = await w.request(OpCode.setWatches, (b) => b.longNum(0).stringVector([]).stringVector([]).stringVector([]), 42);
    expect([r.xid, r.err]).toEqual([42, 0]);
  });
});

describe('addWatch(106)', () => {
  it('persistent: Created/Deleted/DataChanged/ChildrenChanged on the path, repeatedly', async () => {
    const a = await client();
    const w = await client();
    const r = await addWatch(w, '/pw', AddWatchMode.Persistent);
    expect(r.err).toBe(0);
    expect(r.body.int()).toBe(0); // ErrorResponse{0}
    expect(r.body.remaining()).toBe(0);
    const z: number[] = [];
    const op = async (p: Promise<{ err: number; zxid: number }>) => {
      const x = await p;
      expect(x.err).toBe(0);
      z.push(x.zxid);
    };
    await op(a.create('/pw'));
    await op(a.setData('/pw', Buffer.from('1')));
    await op(a.setData('/pw', Buffer.from('2')));
    await op(a.create('/pw/c'));
    await op(a.create('/pw/c/d')); // a grandchild: not watched
    await op(a.setData('/pw/c', Buffer.from('x'))); // a child's data: not watched
    await op(a.delete('/pw/c/d'));
    await op(a.delete('/pw/c'));
    await op(a.delete('/pw'));
    await op(a.create('/pw'));
    expect(await drain(w)).toEqual([
      [NodeCreated, '/pw', z[0]],
      [NodeDataChanged, '/pw', z[1]],
      [NodeDataChanged, '/pw', z[2]],
      [NodeChildrenChanged, '/pw', z[3]],
      [NodeChildrenChanged, '/pw', z[7]],
      [NodeDeleted, '/pw', z[8]], // once, though it sits in both tables
      [NodeCreated, '/pw', z[9]],
    ]);
    expect(await check(w, '/pw', WatcherType.Persistent)).toBe(0);
  });

  it('persistent-recursive: every descendant, no NodeChildrenChanged', async () => {
    const a = await client();
    const w = await client();
    expect((await addWatch(w, '/rw', AddWatchMode.PersistentRecursive)).err).toBe(0);
    const z: number[] = [];
    const op = async (p: Promise<{ err: number; zxid: number }>) => {
      const x = await p;
      expect(x.err).toBe(0);
      z.push(x.zxid);
    };
    await op(a.create('/rw'));
    await op(a.create('/rw/a'));
    await op(a.create('/rw/a/b'));
    await op(a.setData('/rw/a/b', Buffer.from('x')));
    await op(a.create('/rwx')); // a string prefix, not a descendant
    await op(a.delete('/rw/a/b'));
    await op(a.setData('/rw', Buffer.from('y')));
    await op(a.create('/rw/a/b'));
    expect(await drain(w)).toEqual([
      [NodeCreated, '/rw', z[0]],
      [NodeCreated, '/rw/a', z[1]],
      [NodeCreated, '/rw/a/b', z[2]],
      [NodeDataChanged, '/rw/a/b', z[3]],
      [NodeDeleted, '/rw/a/b', z[5]],
      [NodeDataChanged, '/rw', z[6]],
      [NodeCreated, '/rw/a/b', z[7]],
    ]);
    expect(await check(w, '/rw', WatcherType.PersistentRecursive)).toBe(0);
    expect(await check(w, '/rw', WatcherType.Persistent)).toBe(Err.NOWATCHER);
    expect(await check(w, '/rw/a', WatcherType.Any)).toBe(Err.NOWATCHER);
  });

  it('a standard and a persistent watch on one path: one event, the standard one spent', async () => {
    const a = await client();
    const w = await client();
    await mustCreate(a, '/mix');
    await addWatch(w, '/mix', AddWatchMode.Persistent);
    await w.getData('/mix', true);
    await w.getChildren('/mix', true);
    const s = await a.setData('/mix', Buffer.from('1'));
    const c = await a.create('/mix/k');
    expect(await drain(w)).toEqual([
      [NodeDataChanged, '/mix', s.zxid],
      [NodeChildrenChanged, '/mix', c.zxid],
    ]);
    expect(await check(w, '/mix', WatcherType.Data)).toBe(Err.NOWATCHER);
    expect(await check(w, '/mix', WatcherType.Children)).toBe(Err.NOWATCHER);
    expect(await check(w, '/mix', WatcherType.Persistent)).toBe(0);
  });

  it('a recursive watch and a child watch on the parent both fire', async () => {
    const a = await client();
    const w = await client();
    await mustCreate(a, '/rc');
    await addWatch(w, '/rc', AddWatchMode.PersistentRecursive);
    await w.getChildren('/rc', true);
    const c = await a.create('/rc/k');
    expect(await drain(w)).toEqual([
      [NodeCreated, '/rc/k', c.zxid],
      [NodeChildrenChanged, '/rc', c.zxid],
    ]);
  });

  it('an invalid mode is a marshalling error', async () => {
    const w = await client();
    expect((await addWatch(w, '/x', 2)).err).toBe(Err.MARSHALLINGERROR);
    expect((await addWatch(w, '/x', -1)).err).toBe(Err.MARSHALLINGERROR);
    expect(await check(w, '/x', WatcherType.Any)).toBe(Err.NOWATCHER);
  });
});

describe('checkWatches(17) / removeWatches(18)', () => {
  it('NOWATCHER without a watch; each type checks and removes its own kind', async () => {
    const a = await client();
    const w = await client();
    await mustCreate(a, '/cw');
    for (const t of [1, 2, 3, 4, 5]) {
      expect(await check(w, '/cw', t), `check ${t}`).toBe(Err.NOWATCHER);
      expect(await remove(w, '/cw', t), `remove ${t}`).toBe(Err.NOWATCHER);
    }
    await w.getData('/cw', true);
    expect(await check(w, '/cw', WatcherType.Data)).toBe(0);
    expect(await check(w, '/cw', WatcherType.Any)).toBe(0);
    expect(await check(w, '/cw', WatcherType.Children)).toBe(Err.NOWATCHER);
    expect(await check(w, '/cw', WatcherType.Persistent)).toBe(Err.NOWATCHER);
    expect(await remove(w, '/cw', WatcherType.Children)).toBe(Err.NOWATCHER);
    const r = await watchReq(w, OpCode.removeWatches, '/cw', WatcherType.Data);
    expect(r.err).toBe(0);
    expect(r.body.remaining()).toBe(0);
    expect(await check(w, '/cw', WatcherType.Data)).toBe(Err.NOWATCHER);
    await a.setData('/cw', Buffer.from('x'));
    expect(await drain(w)).toEqual([]);

    await w.getChildren('/cw', true);
    expect(await check(w, '/cw', WatcherType.Children)).toBe(0);
    expect(await remove(w, '/cw', WatcherType.Children)).toBe(0);
    await a.create('/cw/k');
    expect(await drain(w)).toEqual([]);

    // Any removes both kinds at once.
    await w.getData('/cw', true);
    await w.getChildren('/cw', true);
    expect(await remove(w, '/cw', WatcherType.Any)).toBe(0);
    expect(await check(w, '/cw', WatcherType.Any)).toBe(Err.NOWATCHER);

    // Another session's watch is not ours.
    const other = await client();
    await other.getData('/cw', true);
    expect(await check(w, '/cw', WatcherType.Data)).toBe(Err.NOWATCHER);
    expect(await remove(w, '/cw', WatcherType.Data)).toBe(Err.NOWATCHER);
    expect(await check(other, '/cw', WatcherType.Data)).toBe(0);
  });

  it('persistent watches: removing Data leaves the persistent one; removing Persistent leaves the standard one', async () => {
    const a = await client();
    const w = await client();
    await mustCreate(a, '/cwp');
    await addWatch(w, '/cwp', AddWatchMode.Persistent);
    await w.getData('/cwp', true);
    expect(await remove(w, '/cwp', WatcherType.Data)).toBe(0);
    const s = await a.setData('/cwp', Buffer.from('1'));
    expect(await drain(w)).toEqual([[NodeDataChanged, '/cwp', s.zxid]]);
    await w.getData('/cwp', true);
    expect(await remove(w, '/cwp', WatcherType.Persistent)).toBe(0);
    expect(await check(w, '/cwp', WatcherType.Persistent)).toBe(Err.NOWATCHER);
    expect(await check(w, '/cwp', WatcherType.Data)).toBe(0);
    const s2 = await a.setData('/cwp', Buffer.from('2'));
    await a.setData('/cwp', Buffer.from('3'));
    await a.create('/cwp/k');
    expect(await drain(w)).toEqual([[NodeDataChanged, '/cwp', s2.zxid]]);

    await addWatch(w, '/cwp', AddWatchMode.PersistentRecursive);
    expect(await check(w, '/cwp', WatcherType.PersistentRecursive)).toBe(0);
    expect(await remove(w, '/cwp', WatcherType.Persistent)).toBe(Err.NOWATCHER);
    expect(await remove(w, '/cwp', WatcherType.PersistentRecursive)).toBe(0);
    await a.create('/cwp/k2');
    expect(await drain(w)).toEqual([]);
  });

  it('an invalid WatcherType is a marshalling error; the connection stays', async () => {
    const w = await client();
    await w.getData('/', true);
    for (const t of [0, 6, -1, 99]) {
      expect(await check(w, '/', t), `check ${t}`).toBe(Err.MARSHALLINGERROR);
      expect(await remove(w, '/', t), `remove ${t}`).toBe(Err.MARSHALLINGERROR);
    }
    expect(await check(w, '/', WatcherType.Data)).toBe(0);
  });
});
