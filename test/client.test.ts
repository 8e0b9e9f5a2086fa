import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { connect, CorralClient, Err, KeeperError, MultiError, type WatchEvent } from '../src/client/index.js';
import type { WebSocketCtor } from '../src/client/ws-transport.js';
import { digestOf } from '../src/acl/auth.js';
import { startServer, type TestServer } from './helpers/server.js';

// The Corral client's test suite, run over both transports against an in-process server:
// TCP+jute (the ZooKeeper wire protocol) and WebSocket+protobuf.

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer('wsPort=0\ntickTime=200\nminSessionTimeout=400');
});
afterAll(async () => {
  await srv?.stop();
});

const WS = WebSocket as unknown as WebSocketCtor;
const td = new TextDecoder();

function waitFor<T>(f: () => T | undefined, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      const v = f();
      if (v !== undefined && v !== false) return resolve(v);
      if (Date.now() > deadline) return reject(new Error('timed out waiting'));
      setTimeout(tick, 10);
    };
    tick();
  });
}

async function code(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (e) {
    if (e instanceof KeeperError) return e.code;
    throw e;
  }
  return 0;
}

for (const transport of ['tcp', 'ws'] as const) {
  describe(`client over ${transport}`, () => {
    const addr = () => `127.0.0.1:${transport === 'tcp' ? srv.port : srv.wsPort}`;
    const open = (o: Parameters<typeof connect>[1] = {}, conn = addr()) =>
      connect(conn, { transport, WebSocket: WS, sessionTimeout: 4000, ...o });
    const root = `/c-${transport}`;
    let c: CorralClient;
    beforeAll(async () => {
      c = await open();
      await c.create(root);
    });
    afterAll(async () => {
      await c?.close();
    });

    it('creates, reads, updates and deletes', async () => {
      expect(c.state).toBe('connected');
      expect(c.sessionId).not.toBe(0n);
      expect(await c.create(`${root}/a`, 'one')).toBe(`${root}/a`);
      const g = await c.getData(`${root}/a`);
      expect(td.decode(g.data)).toBe('one');
      expect(g.stat.version).toBe(0);
      expect(g.stat.dataLength).toBe(3);
      const st = await c.setData(`${root}/a`, 'two', 0);
      expect(st.version).toBe(1);
      expect(await code(c.setData(`${root}/a`, 'x', 0))).toBe(Err.BADVERSION);
      expect((await c.exists(`${root}/a`))!.version).toBe(1);
      expect(await c.exists(`${root}/none`)).toBeNull();
      expect(await code(c.getData(`${root}/none`))).toBe(Err.NONODE);
      expect(await code(c.create(`${root}/a`))).toBe(Err.NODEEXISTS);
      const c2 = await c.create2(`${root}/b`, new Uint8Array([1, 2, 3]));
      expect(c2.stat.dataLength).toBe(3);
      expect((await c.getChildren(root)).sort()).toEqual(['a', 'b']);
      const ch = await c.getChildren2(root);
      expect(ch.stat.numChildren).toBe(2);
      expect(await c.getAllChildrenNumber(root)).toBe(2);
      await c.delete(`${root}/a`, 1);
      await c.delete(`${root}/b`);
      expect(await c.getChildren(root)).toEqual([]);
      expect(await c.sync(root)).toBe(root);
    });

    it('makes sequential and ephemeral nodes, owned by the session', async () => {
      const p = await c.create(`${root}/seq-`, '', { mode: 3 });
      expect(p).toMatch(new RegExp(`^${root}/seq-\\d{10}$`));
      const st = (await c.exists(p))!;
      expect(st.ephemeralOwner).toBe(c.sessionId);
      expect(await c.getEphemerals(root)).toContain(p);
      const other = await open();
      expect(await other.getEphemerals('/')).toEqual([]);
      const q = await other.create(`${root}/eph`, '', { mode: 1 });
      await other.close();
      expect(await c.exists(q)).toBeNull();
      await c.delete(p);
    });

    it('pipelines: many requests in flight answered in order', async () => {
      const n = 300;
      const ps = [];
      for (let i = 0; i < n; i++) ps.push(c.create(`${root}/p-`, String(i), { mode: 2 }));
      const paths = await Promise.all(ps);
      const seqs = paths.map((p) => Number(p.slice(-10)));
      for (let i = 1; i < n; i++) expect(seqs[i]).toBe(seqs[i - 1]! + 1);
      const reads = await Promise.all(paths.map((p) => c.getData(p)));
      expect(reads.map((r) => td.decode(r.data))).toEqual(paths.map((_, i) => String(i)));
      await Promise.all(paths.map((p) => c.delete(p)));
    });

    it('multi and multiRead', async () => {
      const rs = await c.multi([
        { op: 'create', path: `${root}/m1`, data: 'x' },
        { op: 'create', path: `${root}/m2` },
        { op: 'setData', path: `${root}/m1`, data: 'y' },
        { op: 'check', path: `${root}/m1`, version: 1 },
      ]);
      expect(rs.map((r) => r.err)).toEqual([0, 0, 0, 0]);
      expect(rs[0]!.path).toBe(`${root}/m1`);
      expect(rs[2]!.stat!.version).toBe(1);
      let err: unknown;
      try {
        await c.multi([{ op: 'delete', path: `${root}/m2` }, { op: 'check', path: `${root}/m1`, version: 7 }]);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(MultiError);
      expect((err as MultiError).code).toBe(Err.BADVERSION);
      expect(await c.exists(`${root}/m2`)).not.toBeNull();
      const rr = await c.multiRead([
        { op: 'getData', path: `${root}/m1` },
        { op: 'getChildren', path: root },
        { op: 'getData', path: `${root}/nope` },
      ]);
      expect(td.decode(rr[0]!.data!)).toBe('y');
      expect(rr[1]!.children!.sort()).toEqual(['m1', 'm2']);
      expect(rr[2]!.err).toBe(Err.NONODE);
      await c.multi([{ op: 'delete', path: `${root}/m1` }, { op: 'delete', path: `${root}/m2` }]);
    });

    it('ACLs and auth', async () => {
      const other = await open();
      await other.addAuth('digest', 'alice:secret');
      expect(await other.whoAmI()).toContainEqual({ scheme: 'digest', user: 'alice' });
      await other.create(`${root}/secret`, 'shh', { acl: [{ perms: 31, scheme: 'digest', id: digestOf('alice:secret') }] });
      expect(await code(c.getData(`${root}/secret`))).toBe(Err.NOAUTH);
      expect(td.decode((await other.getData(`${root}/secret`)).data)).toBe('shh');
      const acl = await other.getACL(`${root}/secret`);
      expect(acl.acl[0]!.scheme).toBe('digest');
      await other.setACL(`${root}/secret`, [{ perms: 31, scheme: 'world', id: 'anyone' }]);
      expect(td.decode((await c.getData(`${root}/secret`)).data)).toBe('shh');
      await other.delete(`${root}/secret`);
      await other.close();
      expect(other.state).toBe('closed');
    });

    it('watches: one-shot callbacks, persistent and recursive, async iterators, remove/check', async () => {
      const events: WatchEvent[] = [];
      const w = (e: WatchEvent) => events.push(e);
      expect(await c.exists(`${root}/w`, w)).toBeNull();
      await c.create(`${root}/w`, 'a');
      await waitFor(() => events.length === 1);
      expect(events[0]).toMatchObject({ type: 1, path: `${root}/w` });
      await c.getData(`${root}/w`, w);
      await c.getChildren(`${root}/w`, w);
      await c.setData(`${root}/w`, 'b');
      await waitFor(() => events.length === 2);
      expect(events[1]).toMatchObject({ type: 3 });
      await c.create(`${root}/w/kid`);
      await waitFor(() => events.length === 3);
      expect(events[2]).toMatchObject({ type: 4, path: `${root}/w` });

      const rec: WatchEvent[] = [];
      await c.addWatch(`${root}/w`, (e) => rec.push(e), { recursive: true });
      await c.checkWatches(`${root}/w`, 5);
      await c.setData(`${root}/w/kid`, '1');
      await c.setData(`${root}/w/kid`, '2');
      await waitFor(() => rec.length === 2);
      expect(rec.map((e) => e.path)).toEqual([`${root}/w/kid`, `${root}/w/kid`]);
      await c.removeWatches(`${root}/w`, 5);
      expect(await code(c.checkWatches(`${root}/w`, 5))).toBe(Err.NOWATCHER);

      const it = c.watch(`${root}/w`);
      const next = it.next();
      await new Promise((r) => setTimeout(r, 50));
      await c.setData(`${root}/w`, 'c');
      expect((await next).value).toMatchObject({ type: 3, path: `${root}/w` });
      await it.return!();
      await c.delete(`${root}/w/kid`);
      await c.delete(`${root}/w`);
    });

    it('reports a failed auth as authFailed and stops', async () => {
      const x = await open();
      const seen: string[] = [];
      x.on('authFailed', () => seen.push('authFailed'));
      expect(await code(x.addAuth('no-such-scheme', 'x'))).toBe(Err.AUTHFAILED);
      expect(x.state).toBe('authFailed');
      expect(seen).toEqual(['authFailed']);
      expect(await code(x.exists('/'))).toBe(Err.CONNECTIONLOSS);
    });

    it('whoAmI and ping', async () => {
      expect(await c.whoAmI()).toContainEqual({ scheme: 'ip', user: '127.0.0.1' });
      expect(await c.ping()).toBeGreaterThanOrEqual(0);
    });

    it('reconnects across the connection string and resumes the session with its watches', async () => {
      // The first server in the string is a dead port: the client moves on to the live one.
      const x = await open({ retryDelay: 10 }, `127.0.0.1:1,${addr()}`);
      expect(x.server).toBe(addr());
      const sid = x.sessionId;
      const eph = await x.create(`${root}/resume`, 'e', { mode: 1 });
      const events: WatchEvent[] = [];
      await x.getData(eph, (e) => events.push(e));
      const states: string[] = [];
      x.on('disconnected', () => states.push('disconnected'));
      x.on('connected', () => states.push('connected'));
      x.disconnect();
      // Requests made while disconnected wait for the next connection.
      const during = x.exists(eph);
      await waitFor(() => x.state === 'connected');
      expect(await during).not.toBeNull();
      expect(states).toEqual(['disconnected', 'connected']);
      expect(x.sessionId).toBe(sid);
      // The data watch was re-armed on the new connection.
      await c.setData(eph, 'changed');
      await waitFor(() => events.length === 1);
      expect(events[0]).toMatchObject({ type: 3, path: eph });
      expect(await c.exists(eph)).not.toBeNull();
      await x.close();
      expect(await c.exists(eph)).toBeNull();
    });

    it('reports an expired session', async () => {
      const x = await open({ sessionTimeout: 400 });
      const sid = x.sessionId;
      const pw = x.password;
      await x.close(); // closed sessions are gone: resuming one is an expiry
      let expired = false;
      let err: unknown;
      try {
        await open({ sessionId: sid, password: pw });
      } catch (e) {
        err = e;
        expired = e instanceof KeeperError && e.code === Err.SESSIONEXPIRED;
      }
      expect(expired, String(err)).toBe(true);
    });

    it('resumes a session opened elsewhere by id and password', async () => {
      const x = await open();
      const eph = await x.create(`${root}/moved`, '', { mode: 1 });
      const y = await open({ sessionId: x.sessionId, password: x.password });
      expect(y.sessionId).toBe(x.sessionId);
      expect(await y.getEphemerals(root)).toContain(eph);
      x.on('disconnected', () => x.close()); // stop x from taking the session back
      await y.close();
      expect(await c.exists(eph)).toBeNull();
      await x.close();
    });
  });
}
