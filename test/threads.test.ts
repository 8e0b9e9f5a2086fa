import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../src/client/raw.js';
import { Err, EventType } from '../src/protocol/constants.js';
import { type CorralProcess, fourLetter, startCorralProcess } from './helpers/process.js';

const require = createRequire(import.meta.url);
const zk = require('node-zookeeper-client');

// The real `corral start` process in both pipeline modes: serverThreads=1 (everything on
// the main thread) and serverThreads=2 (sockets on the main thread, the pipeline on a
// worker). Clients cannot tell them apart.
describe.each([1, 2])('corral start with serverThreads=%i', (threads) => {
  let p: CorralProcess;
  beforeAll(async () => {
    p = await startCorralProcess(`serverThreads=${threads}`);
  });
  afterAll(() => p?.cleanup());

  it('serves node-zookeeper-client: create, watch, set, children, delete', async () => {
    const c = zk.createClient(`127.0.0.1:${p.port}`, { sessionTimeout: 10000 });
    await new Promise<void>((r) => {
      c.once('connected', () => r());
      c.connect();
    });
    const call = <T>(f: (cb: (e: Error | null, v?: T) => void) => void) =>
      new Promise<T>((res, rej) => f((e, v) => (e ? rej(e) : res(v as T))));
    await call((cb) => c.create('/t', Buffer.from('a'), cb));
    const fired = new Promise<string>((r) => c.getData('/t', (ev: { getName(): string }) => r(ev.getName()), () => {}));
    await call((cb) => c.setData('/t', Buffer.from('b'), -1, cb));
    expect(await fired).toBe('NODE_DATA_CHANGED');
    const children = await call<string[]>((cb) => c.getChildren('/', cb));
    expect(children.sort()).toEqual(['t', 'zookeeper']);
    await call((cb) => c.remove('/t', -1, cb));
    c.close();
  });

  it('answers thousands of pipelined requests from several sessions in order', async () => {
    const clients = await Promise.all([0, 1, 2, 3].map(() => RawClient.connect('127.0.0.1', p.port)));
    await clients[0].create('/pipe', Buffer.from('v'));
    const replies = await Promise.all(
      clients.map(async (c, i) => {
        const rs = [];
        for (let j = 0; j < 500; j++) rs.push(j % 10 === 0 ? c.setData('/pipe', Buffer.from(`${i}-${j}`)) : c.getData('/pipe'));
        return Promise.all(rs);
      }),
    );
    for (const rs of replies) {
      expect(rs.every((r) => r.err === 0)).toBe(true);
      // Replies of one session carry non-decreasing zxids: FIFO per session.
      for (let k = 1; k < rs.length; k++) expect(rs[k].zxid).toBeGreaterThanOrEqual(rs[k - 1].zxid);
    }
    for (const c of clients) c.close();
  });

  it('delivers a notification before the reply to a later read', async () => {
    const a = await RawClient.connect('127.0.0.1', p.port);
    const b = await RawClient.connect('127.0.0.1', p.port);
    await a.create('/w', Buffer.from('1'));
    await a.getData('/w', true);
    await b.setData('/w', Buffer.from('2'));
    const r = await a.getData('/w');
    expect(r.err).toBe(0);
    expect(a.notifications.map((n) => n.type)).toEqual([EventType.NodeDataChanged]);
    a.close();
    b.close();
  });

  it('resumes a session on a new connection and keeps its ephemerals', async () => {
    const a = await RawClient.connect('127.0.0.1', p.port, { timeout: 10000 });
    expect((await a.create('/eph', Buffer.alloc(0), 1)).err).toBe(0);
    const { sessionId, passwd } = a.session;
    a.close();
    const b = await RawClient.connect('127.0.0.1', p.port, { sessionId, passwd, timeout: 10000 });
    expect(b.session.sessionId).toBe(sessionId);
    expect((await b.exists('/eph')).err).toBe(Err.OK);
    b.close();
  });

  it('answers four-letter words and stops cleanly on SIGTERM', async () => {
    expect(await fourLetter(p.port, 'ruok')).toBe('imok');
    expect(await fourLetter(p.port, 'srvr')).toMatch(/^Zookeeper version: 3\.9\.3-corral-/);
    expect(await p.stop()).toBe(0);
    expect(p.output()).toMatch(/stopped/);
  });
});
