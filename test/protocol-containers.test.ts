// Containers and TTL nodes (ContainerManager), with a short check interval.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../src/client/raw.js';
import { CONTAINER_OWNER, Err, EventType, OpCode } from '../src/protocol/constants.js';
import { ops, OPEN_ACL, readCreate2, sleep, statOf, until } from './helpers/proto.js';
import { startServer, type TestServer } from './helpers/server.js';

let ts: TestServer;
const clients: RawClient[] = [];

async function client(): Promise<RawClient> {
  const c = await RawClient.connect('127.0.0.1', ts.port);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  ts = await startServer('znode.container.checkIntervalMs=100\nextendedTypesEnabled=true');
});
afterAll(async () => {
  for (const c of clients) c.close();
  await ts.stop();
});

const gone = async (c: RawClient, path: string) => (await c.exists(path)).err === Err.NONODE;

async function createContainer(c: RawClient, path: string): Promise<void> {
  const r = await c.create(path, Buffer.alloc(0), 4, OPEN_ACL, OpCode.createContainer);
  expect(r.err).toBe(0);
  expect(readCreate2(r).stat.ephemeralOwner).toBe(0n); // clients see 0 for containers
  expect(ts.server.tree.get(path)!.ephemeralOwner).toBe(CONTAINER_OWNER);
}

async function createTTL(c: RawClient, path: string, ttl: number, flags = 5): Promise<string> {
  const r = await c.request(OpCode.createTTL, ops.createTTL(path, '', flags, ttl).body);
  expect(r.err).toBe(0);
  return readCreate2(r).path;
}

describe('containers', () => {
  it('a container whose last child is deleted is removed, and watchers are told', async () => {
    const c = await client();
    await createContainer(c, '/ct');
    expect((await c.create('/ct/a')).err).toBe(0);
    expect((await c.create('/ct/b')).err).toBe(0);
    await sleep(350); // several check intervals: a container with children stays
    expect(await gone(c, '/ct')).toBe(false);
    expect((await c.delete('/ct/a')).err).toBe(0);
    await sleep(250);
    expect(await gone(c, '/ct')).toBe(false); // still one child
    await c.exists('/ct', true);
    const del = await c.delete('/ct/b');
    await until(() => gone(c, '/ct'), 3000, 'the container to be reaped');
    await c.waitNotifications(1);
    const n = c.notifications.find((x) => x.path === '/ct')!;
    expect(n.type).toBe(EventType.NodeDeleted);
    expect(n.zxid).toBeGreaterThan(del.zxid); // the reaper's own deleteContainer txn
  });

  it('a container emptied by a session ending is removed', async () => {
    const c = await client();
    const owner = await client();
    await createContainer(c, '/ct-lock');
    expect((await owner.create('/ct-lock/lease-', Buffer.alloc(0), 3)).err).toBe(0);
    expect((await owner.closeSession()).err).toBe(0);
    await until(() => gone(c, '/ct-lock'), 3000, 'the container to be reaped');
  });

  it('a container that never had a child stays', async () => {
    const c = await client();
    await createContainer(c, '/ct-new');
    await sleep(500);
    expect(await gone(c, '/ct-new')).toBe(false);
    expect((await statOf(c, '/ct-new')).cversion).toBe(0);
  });

  it('a plain create with the CONTAINER flag does not make a container', async () => {
    // PrepRequestProcessor writes a CreateTxn (not a CreateContainerTxn) for op create.
    const c = await client();
    const r = await c.create('/ct-flag', Buffer.alloc(0), 4);
    expect(r.err).toBe(0);
    expect((await c.create('/ct-flag/k')).err).toBe(0);
    expect((await c.delete('/ct-flag/k')).err).toBe(0);
    await sleep(350);
    expect(await gone(c, '/ct-flag')).toBe(false);
  });
});

describe('TTL nodes', () => {
  it('expire once childless for longer than their ttl', async () => {
    const c = await client();
    const t0 = Date.now();
    await createTTL(c, '/ttl-a', 300);
    expect(await gone(c, '/ttl-a')).toBe(false);
    await until(() => gone(c, '/ttl-a'), 3000, 'the TTL node to expire');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
  });

  it('sequential TTL nodes expire too', async () => {
    const c = await client();
    const p = await createTTL(c, '/ttl-s-', 150, 6);
    expect(p).toMatch(/^\/ttl-s-\d{10}$/);
    await until(() => gone(c, p), 3000, 'the sequential TTL node to expire');
  });

  it('do not expire while they have children', async () => {
    const c = await client();
    await createTTL(c, '/ttl-b', 100);
    expect((await c.create('/ttl-b/k')).err).toBe(0);
    await sleep(400);
    expect(await gone(c, '/ttl-b')).toBe(false);
    expect((await c.delete('/ttl-b/k')).err).toBe(0);
    // Its mtime is long past the ttl: it goes at the next check.
    await until(() => gone(c, '/ttl-b'), 3000, 'the TTL node to expire');
  });

  it('a write refreshes the ttl (it counts from mtime)', async () => {
    const c = await client();
    await createTTL(c, '/ttl-c', 1000);
    await sleep(600);
    expect((await c.setData('/ttl-c', Buffer.from('x'))).err).toBe(0);
    await sleep(700); // 1300 ms after create, 700 after the write
    expect(await gone(c, '/ttl-c')).toBe(false);
    await until(() => gone(c, '/ttl-c'), 3000, 'the TTL node to expire');
  });
});
