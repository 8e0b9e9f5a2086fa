import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../src/client/raw.js';
import { Err } from '../src/protocol/constants.js';
import { startServer, type TestServer } from './helpers/server.js';

let ts: TestServer;
beforeAll(async () => {
  ts = await startServer();
});
afterAll(async () => ts.stop());

describe('raw protocol smoke', () => {
  it('creates, reads and deletes', async () => {
    const c = await RawClient.connect('127.0.0.1', ts.port);
    expect(c.session.timeout).toBe(30000);
    const r = await c.create('/a', Buffer.from('x'));
    expect(r.err).toBe(0);
    expect(r.body.string()).toBe('/a');
    const g = await c.getData('/a');
    expect(g.err).toBe(0);
    expect(g.body.buffer()!.toString()).toBe('x');
    expect((await c.getData('/nope')).err).toBe(Err.NONODE);
    expect((await c.delete('/a')).err).toBe(0);
    c.close();
  });

  it('keeps null data apart from empty data, as ZooKeeper does', async () => {
    const c = await RawClient.connect('127.0.0.1', ts.port);
    expect((await c.create('/null', Buffer.from('x'))).err).toBe(0);
    const set = await c.request(5, (w) => w.ustring('/null').buffer(null).int(-1)); // setData, null data
    expect(set.err).toBe(0);
    const g = await c.getData('/null');
    expect(g.body.buffer()).toBeNull();
    expect((await c.setData('/null', Buffer.alloc(0))).err).toBe(0);
    expect((await c.getData('/null')).body.buffer()).toEqual(Buffer.alloc(0));
    c.close();
  });
});
