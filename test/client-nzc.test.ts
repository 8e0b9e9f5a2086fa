import { createHash } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TcpProxy } from './helpers/proxy.js';
import { startServer, type TestServer } from './helpers/server.js';

// Corral driven by node-zookeeper-client (pure JS, CommonJS): everything asserted here
// is what a user of that client sees: callback values, Exception codes, watcher
// events and state events.

// --- the client's surface, as far as these tests use it ---------------------------------

interface NzcStat {
  czxid: Buffer;
  mzxid: Buffer;
  ctime: Buffer;
  mtime: Buffer;
  version: number;
  cversion: number;
  aversion: number;
  ephemeralOwner: Buffer;
  dataLength: number;
  numChildren: number;
  pzxid: Buffer;
}
interface NzcEvent {
  getType(): number;
  getName(): string;
  getPath(): string;
}
interface NzcException extends Error {
  getCode(): number;
  getName(): string;
}
interface NzcId {
  scheme: string;
  id: string;
}
interface NzcAcl {
  permission: number;
  id: NzcId;
}
interface NzcState {
  name: string;
  code: number;
}
type Cb = (...args: any[]) => void;
interface NzcTransaction {
  create(path: string, data?: Buffer | NzcAcl[] | number, acls?: NzcAcl[] | number, mode?: number): NzcTransaction;
  setData(path: string, data: Buffer | null, version?: number): NzcTransaction;
  check(path: string, version?: number): NzcTransaction;
  remove(path: string, version?: number): NzcTransaction;
  commit(cb: Cb): void;
}
interface NzcClient extends EventEmitter {
  connect(): void;
  close(): void;
  create(path: string, ...args: unknown[]): void;
  remove(path: string, version: number, cb: Cb): void;
  exists(path: string, ...args: unknown[]): void;
  getData(path: string, ...args: unknown[]): void;
  setData(path: string, data: Buffer | null, version: number, cb: Cb): void;
  getChildren(path: string, ...args: unknown[]): void;
  getACL(path: string, cb: Cb): void;
  setACL(path: string, acls: NzcAcl[], version: number, cb: Cb): void;
  transaction(): NzcTransaction;
  addAuthInfo(scheme: string, auth: Buffer): void;
  getState(): NzcState;
  getSessionId(): Buffer;
  getSessionPassword(): Buffer;
  getSessionTimeout(): number;
  connectionManager: { socket: Socket };
}
interface NzcModule {
  createClient(connect: string, options?: Record<string, unknown>): NzcClient;
  ACL: {
    new (perms: number, id: NzcId): NzcAcl;
    OPEN_ACL_UNSAFE: NzcAcl[];
    READ_ACL_UNSAFE: NzcAcl[];
    CREATOR_ALL_ACL: NzcAcl[];
  };
  Id: new (scheme: string, id: string) => NzcId;
  Permission: { READ: number; WRITE: number; CREATE: number; DELETE: number; ADMIN: number; ALL: number };
  CreateMode: { PERSISTENT: number; EPHEMERAL: number; PERSISTENT_SEQUENTIAL: number; EPHEMERAL_SEQUENTIAL: number };
  Event: { NODE_CREATED: number; NODE_DELETED: number; NODE_DATA_CHANGED: number; NODE_CHILDREN_CHANGED: number };
  State: Record<'SYNC_CONNECTED' | 'DISCONNECTED' | 'EXPIRED' | 'AUTH_FAILED', NzcState>;
  Exception: Record<string, number>;
}

const nzc = createRequire(import.meta.url)('node-zookeeper-client') as NzcModule;
const { ACL, Id, Permission: P, CreateMode, Event, State, Exception: E } = nzc;

// --- helpers ---------------------------------------------------------------------------

interface Stat {
  czxid: number;
  mzxid: number;
  pzxid: number;
  ctime: number;
  mtime: number;
  version: number;
  cversion: number;
  aversion: number;
  ephemeralOwner: bigint;
  dataLength: number;
  numChildren: number;
}

/** The client hands longs over as 8-byte big-endian Buffers. */
function stat(s: NzcStat): Stat {
  const n = (b: Buffer) => Number(b.readBigInt64BE());
  return {
    czxid: n(s.czxid),
    mzxid: n(s.mzxid),
    pzxid: n(s.pzxid),
    ctime: n(s.ctime),
    mtime: n(s.mtime),
    version: s.version,
    cversion: s.cversion,
    aversion: s.aversion,
    ephemeralOwner: s.ephemeralOwner.readBigInt64BE(),
    dataLength: s.dataLength,
    numChildren: s.numChildren,
  };
}

const acl = (perms: number, scheme: string, id: string) => new ACL(perms, new Id(scheme, id));
const plainAcl = (a: NzcAcl) => ({ perms: a.permission, scheme: a.id.scheme, id: a.id.id });
const digest = (userPass: string) =>
  `${userPass.split(':')[0]}:${createHash('sha1').update(userPass).digest('base64')}`;

/** Collects watcher events; a standard watch must deliver exactly one. */
class Watch {
  readonly events: { type: number; path: string }[] = [];
  private waiters: (() => void)[] = [];
  constructor(private readonly log?: string[]) {}
  readonly fn = (e: NzcEvent): void => {
    this.events.push({ type: e.getType(), path: e.getPath() });
    this.log?.push(`event:${e.getName()}`);
    for (const w of this.waiters.splice(0)) w();
  };
  async next(n = 1, ms = 5000): Promise<{ type: number; path: string }[]> {
    const deadline = Date.now() + ms;
    while (this.events.length < n && Date.now() < deadline) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, deadline - Date.now());
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.events;
  }
}

/** The client with promises, so that tests read in order. */
class Z {
  constructor(readonly c: NzcClient) {}

  get sessionId(): bigint {
    return this.c.getSessionId().readBigInt64BE();
  }

  create(path: string, data?: Buffer | null, acls: NzcAcl[] = ACL.OPEN_ACL_UNSAFE, mode: number = CreateMode.PERSISTENT): Promise<string> {
    return new Promise((res, rej) => {
      const cb = (e: Error | null, p: string) => (e ? rej(e) : res(p));
      if (data === undefined) this.c.create(path, acls, mode, cb);
      else this.c.create(path, data, acls, mode, cb);
    });
  }
  get(path: string, watch?: Watch): Promise<{ data: Buffer | undefined; stat: Stat }> {
    return new Promise((res, rej) => {
      const cb = (e: Error | null, data: Buffer | undefined, s: NzcStat) => (e ? rej(e) : res({ data, stat: stat(s) }));
      if (watch) this.c.getData(path, watch.fn, cb);
      else this.c.getData(path, cb);
    });
  }
  set(path: string, data: Buffer | null, version = -1): Promise<Stat> {
    return new Promise((res, rej) => this.c.setData(path, data, version, (e: Error | null, s: NzcStat) => (e ? rej(e) : res(stat(s)))));
  }
  remove(path: string, version = -1): Promise<void> {
    return new Promise((res, rej) => this.c.remove(path, version, (e: Error | null) => (e ? rej(e) : res())));
  }
  exists(path: string, watch?: Watch): Promise<Stat | null> {
    return new Promise((res, rej) => {
      const cb = (e: Error | null, s: NzcStat | null) => (e ? rej(e) : res(s ? stat(s) : null));
      if (watch) this.c.exists(path, watch.fn, cb);
      else this.c.exists(path, cb);
    });
  }
  children(path: string, watch?: Watch): Promise<{ children: string[]; stat: Stat }> {
    return new Promise((res, rej) => {
      const cb = (e: Error | null, children: string[], s: NzcStat) =>
        e ? rej(e) : res({ children: [...children].sort(), stat: stat(s) });
      if (watch) this.c.getChildren(path, watch.fn, cb);
      else this.c.getChildren(path, cb);
    });
  }
  getACL(path: string): Promise<{ acls: { perms: number; scheme: string; id: string }[]; stat: Stat }> {
    return new Promise((res, rej) =>
      this.c.getACL(path, (e: Error | null, acls: NzcAcl[], s: NzcStat) => (e ? rej(e) : res({ acls: acls.map(plainAcl), stat: stat(s) }))),
    );
  }
  setACL(path: string, acls: NzcAcl[], version = -1): Promise<Stat> {
    return new Promise((res, rej) => this.c.setACL(path, acls, version, (e: Error | null, s: NzcStat) => (e ? rej(e) : res(stat(s)))));
  }
  /** commit(): the error the client reports (if any) and the per-op results. */
  commit(t: NzcTransaction): Promise<{ error: NzcException | null; results: any[] }> {
    return new Promise((res) => t.commit((error: NzcException | null, results: any[]) => res({ error: error ?? null, results })));
  }
  auth(userPass: string): void {
    this.c.addAuthInfo('digest', Buffer.from(userPass));
  }
  /** Closes the session and waits until the client has seen the connection go. */
  close(): Promise<void> {
    return new Promise((res) => {
      const st = this.c.getState();
      if (st !== State.SYNC_CONNECTED) {
        this.c.close();
        res();
        return;
      }
      const t = setTimeout(res, 3000);
      this.c.once('disconnected', () => {
        clearTimeout(t);
        res();
      });
      this.c.close();
    });
  }
}

/** Resolves to the Exception code a call fails with; fails the test if it succeeds. */
async function code(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (e) {
    if (typeof (e as NzcException).getCode === 'function') return (e as NzcException).getCode();
    throw e;
  }
  throw new Error('expected the call to fail');
}

function once(c: NzcClient, event: string, ms = 8000): Promise<void> {
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`no '${event}' event within ${ms} ms`)), ms);
    c.once(event, () => {
      clearTimeout(t);
      res();
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// --- the server --------------------------------------------------------------------------

const SUPER = `super:${createHash('sha1').update('super:secret').digest('base64')}`;
let ts: TestServer;
const open = new Set<Z>();

beforeAll(async () => {
  ts = await startServer(
    [
      'tickTime=200',
      'minSessionTimeout=400',
      'maxSessionTimeout=8000',
      'extendedTypesEnabled=true',
      'znode.container.checkIntervalMs=100',
      `DigestAuthenticationProvider.superDigest=${SUPER}`,
    ].join('\n'),
  );
});
afterEach(async () => {
  for (const z of open) await z.close();
  open.clear();
});
afterAll(async () => ts.stop());

async function connect(opts: Record<string, unknown> = {}, where?: string): Promise<Z> {
  const c = nzc.createClient(where ?? ts.connect, { sessionTimeout: 6000, spinDelay: 50, ...opts });
  const z = new Z(c);
  open.add(z);
  const connected = once(c, 'connected', 5000);
  c.connect();
  await connected;
  return z;
}

// --- operations and stats ---------------------------------------------------------------

describe('node-zookeeper-client: operations', () => {
  it('create, getData, setData, exists and remove, with the stat moving as in ZooKeeper', async () => {
    const a = await connect();
    const before = Date.now();
    expect(await a.create('/basic', Buffer.from('v0'))).toBe('/basic');
    const after = Date.now();

    const s0 = (await a.exists('/basic'))!;
    expect(s0).not.toBeNull();
    expect(s0.mzxid).toBe(s0.czxid);
    expect(s0.pzxid).toBe(s0.czxid);
    expect(s0).toMatchObject({ version: 0, cversion: 0, aversion: 0, ephemeralOwner: 0n, dataLength: 2, numChildren: 0 });
    expect(s0.mtime).toBe(s0.ctime);
    expect(s0.ctime).toBeGreaterThanOrEqual(before - 5);
    expect(s0.ctime).toBeLessThanOrEqual(after + 5);

    const g0 = await a.get('/basic');
    expect(g0.data!.toString()).toBe('v0');
    expect(g0.stat).toEqual(s0);

    const s1 = await a.set('/basic', Buffer.from('v1-longer'), 0);
    expect(s1.version).toBe(1);
    expect(s1.mzxid).toBeGreaterThan(s0.mzxid);
    expect(s1.czxid).toBe(s0.czxid);
    expect(s1.pzxid).toBe(s0.pzxid); // data changes do not touch pzxid
    expect(s1.ctime).toBe(s0.ctime);
    expect(s1.mtime).toBeGreaterThanOrEqual(s0.ctime);
    expect(s1).toMatchObject({ cversion: 0, aversion: 0, dataLength: 9, numChildren: 0 });
    expect((await a.get('/basic')).data!.toString()).toBe('v1-longer');

    const s2 = await a.set('/basic', Buffer.alloc(0), -1);
    expect(s2.version).toBe(2);
    expect(s2.dataLength).toBe(0);
    expect((await a.get('/basic')).data).toEqual(Buffer.alloc(0));

    expect(await code(a.set('/basic', Buffer.from('x'), 1))).toBe(E.BAD_VERSION);
    expect(await code(a.remove('/basic', 1))).toBe(E.BAD_VERSION);
    expect((await a.exists('/basic'))!.version).toBe(2);
    await a.remove('/basic', 2);
    expect(await a.exists('/basic')).toBeNull();
    expect(await code(a.get('/basic'))).toBe(E.NO_NODE);
  });

  it('sequential names carry the parent cversion, and deleting a child does not reset the counter', async () => {
    const a = await connect();
    await a.create('/seq');
    expect(await a.create('/seq/job-', Buffer.from('1'), ACL.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL)).toBe('/seq/job-0000000000');
    expect(await a.create('/seq/job-', null, ACL.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL_SEQUENTIAL)).toBe('/seq/job-0000000001');
    await a.remove('/seq/job-0000000001');
    // Clients see creates + deletes in cversion (DataNode.copyStat: 2 * creates - children),
    // but the sequence counter counts creates only, so it goes on from 2.
    expect((await a.exists('/seq'))!.cversion).toBe(3);
    expect(await a.create('/seq/job-', null, ACL.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL)).toBe('/seq/job-0000000002');
    // A plain create bumps the same counter.
    await a.create('/seq/plain');
    expect(await a.create('/seq/x', null, ACL.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL)).toBe('/seq/x0000000004');
    expect((await a.children('/seq')).children).toEqual(['job-0000000000', 'job-0000000002', 'plain', 'x0000000004']);
  });

  it('getChildren returns the children and the parent stat (getChildren2)', async () => {
    const a = await connect();
    await a.create('/kids', Buffer.from('p'));
    for (const k of ['c', 'a', 'b']) await a.create(`/kids/${k}`);
    const r = await a.children('/kids');
    expect(r.children).toEqual(['a', 'b', 'c']);
    expect(r.stat).toEqual(await a.exists('/kids'));
    expect(r.stat).toMatchObject({ numChildren: 3, cversion: 3, version: 0, dataLength: 1 });
    const lastChild = (await a.exists('/kids/b'))!;
    expect(r.stat.pzxid).toBe(lastChild.czxid);
    expect((await a.children('/kids/a')).children).toEqual([]);
    expect(await code(a.children('/kids/none'))).toBe(E.NO_NODE);
  });

  it('a child create bumps cversion and pzxid; so does a child delete (as clients see cversion)', async () => {
    const a = await connect();
    await a.create('/par', Buffer.from('data'));
    const p0 = (await a.exists('/par'))!;

    await a.create('/par/c1');
    const c1 = (await a.exists('/par/c1'))!;
    const p1 = (await a.exists('/par'))!;
    expect(p1).toMatchObject({ cversion: 1, numChildren: 1, version: 0, aversion: 0, dataLength: 4 });
    expect(p1.pzxid).toBe(c1.czxid);
    expect(p1.mzxid).toBe(p0.mzxid); // the parent's data did not change
    expect(p1.mtime).toBe(p0.mtime);

    await a.remove('/par/c1');
    const p2 = (await a.exists('/par'))!;
    // The next write's zxid is the one after the delete's.
    await a.create('/par-probe');
    const probe = (await a.exists('/par-probe'))!;
    expect(p2.cversion).toBe(2);
    expect(p2.numChildren).toBe(0);
    expect(p2.pzxid).toBe(probe.czxid - 1);
    expect(p2.mzxid).toBe(p0.mzxid);
    // The sequence counter counts creates only.
    expect(await a.create('/par/s-', null, ACL.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL)).toBe('/par/s-0000000001');
    await a.remove('/par/s-0000000001');

    // setACL moves aversion only.
    const p3 = await a.setACL('/par', ACL.OPEN_ACL_UNSAFE, 0);
    expect(p3).toMatchObject({ aversion: 1, version: 0, cversion: 4, numChildren: 0, mzxid: p0.mzxid });
  });

  it('a failed write consumes a zxid, as ZooKeeper logs it as an error txn', async () => {
    const a = await connect();
    await a.create('/zx1');
    const z1 = (await a.exists('/zx1'))!.czxid;
    expect(await code(a.create('/zx1'))).toBe(E.NODE_EXISTS);
    await a.create('/zx2');
    expect((await a.exists('/zx2'))!.czxid).toBe(z1 + 2);
  });

  it('ephemeral nodes are owned by the session, and cannot have children', async () => {
    const a = await connect();
    await a.create('/eph', Buffer.from('e'), ACL.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
    const s = (await a.exists('/eph'))!;
    expect(s.ephemeralOwner).toBe(a.sessionId);
    expect(s.ephemeralOwner).not.toBe(0n);
    expect(await code(a.create('/eph/child'))).toBe(E.NO_CHILDREN_FOR_EPHEMERALS);
    expect(await code(a.create('/eph/seq-', null, ACL.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL))).toBe(
      E.NO_CHILDREN_FOR_EPHEMERALS,
    );

    const b = await connect();
    expect((await b.exists('/eph'))!.ephemeralOwner).toBe(a.sessionId);
    const w = new Watch();
    await b.exists('/eph', w);
    await a.close();
    expect(await w.next()).toEqual([{ type: Event.NODE_DELETED, path: '/eph' }]);
    expect(await b.exists('/eph')).toBeNull();
  });

  // ZooKeeper keeps null data apart from empty data (jute buffer length -1;
  // DataNode.data == null), so getData answers null.
  it('a znode created without data reads back as no data, not as an empty buffer', async () => {
    const a = await connect();
    await a.create('/nodata');
    expect((await a.get('/nodata')).data).toBeUndefined();
    expect((await a.exists('/nodata'))!.dataLength).toBe(0);
    await a.create('/empty', Buffer.alloc(0));
    expect((await a.get('/empty')).data).toEqual(Buffer.alloc(0));
    // node-zookeeper-client cannot send a null setData (it throws before sending);
    // test/smoke.test.ts sends one over the raw protocol.
  });

  it('surfaces ZooKeeper error codes', async () => {
    const a = await connect();
    await a.create('/err');
    await a.create('/err/child');
    // NONODE
    expect(await code(a.get('/err/none'))).toBe(E.NO_NODE);
    expect(await code(a.set('/err/none', Buffer.from('x')))).toBe(E.NO_NODE);
    expect(await code(a.remove('/err/none'))).toBe(E.NO_NODE);
    expect(await code(a.create('/err/none/deeper'))).toBe(E.NO_NODE);
    expect(await code(a.getACL('/err/none'))).toBe(E.NO_NODE);
    expect(await code(a.setACL('/err/none', ACL.OPEN_ACL_UNSAFE))).toBe(E.NO_NODE);
    expect(await a.exists('/err/none')).toBeNull();
    // NODEEXISTS, NOTEMPTY, BADVERSION
    expect(await code(a.create('/err'))).toBe(E.NODE_EXISTS);
    expect(await code(a.remove('/err'))).toBe(E.NOT_EMPTY);
    expect(await code(a.remove('/err/child', 5))).toBe(E.BAD_VERSION);
    expect(await code(a.setACL('/err', ACL.OPEN_ACL_UNSAFE, 3))).toBe(E.BAD_VERSION);
    // BADARGUMENTS: paths the client lets through and the server refuses.
    expect(await code(a.create('/err/bad\u0001name'))).toBe(E.BAD_ARGUMENTS);
    expect(await code(a.create('/err/bad\u0000name'))).toBe(E.BAD_ARGUMENTS);
    expect(await code(a.create('/err/bad\u0085name'))).toBe(E.BAD_ARGUMENTS);
    expect(await code(a.create('/err/bad\ue000name'))).toBe(E.BAD_ARGUMENTS);
    expect(await code(a.set('/err/bad\u0001', Buffer.from('x')))).toBe(E.BAD_ARGUMENTS);
    expect(await code(a.exists('/err/a\u0000b'))).toBe(E.BAD_ARGUMENTS);
    expect(await code(a.remove('/zookeeper'))).toBe(E.BAD_ARGUMENTS);
    expect(await code(a.remove('/zookeeper/quota'))).toBe(E.BAD_ARGUMENTS);
    // Flags the server does not know.
    expect(await code(a.create('/err/flags', null, ACL.OPEN_ACL_UNSAFE, 7))).toBe(E.BAD_ARGUMENTS);
    // A TTL mode through a plain create (no TTL in the request) is refused.
    expect(await code(a.create('/err/ttl', null, ACL.OPEN_ACL_UNSAFE, 5))).toBe(E.BAD_ARGUMENTS);
    // INVALIDACL
    expect(await code(a.create('/err/acl1', null, ACL.CREATOR_ALL_ACL))).toBe(E.INVALID_ACL); // no auth yet
    expect(await code(a.create('/err/acl2', null, [acl(P.ALL, 'digest', 'nocolon')]))).toBe(E.INVALID_ACL);
    expect(await code(a.create('/err/acl3', null, [acl(P.ALL, 'ip', '999.0.0.1')]))).toBe(E.INVALID_ACL);
    expect(await code(a.create('/err/acl4', null, [acl(P.ALL, 'ip', '127.0.0.1/33')]))).toBe(E.INVALID_ACL);
    expect(await code(a.create('/err/acl5', null, [acl(P.ALL, 'nosuchscheme', 'x')]))).toBe(E.INVALID_ACL);
    expect(await code(a.setACL('/err', [acl(P.ALL, 'world', 'someone')]))).toBe(E.INVALID_ACL);
    expect(await code(a.setACL('/err', ACL.CREATOR_ALL_ACL))).toBe(E.INVALID_ACL);
    // Nothing of the failed creates exists, and the failed setACLs left the ACL alone.
    expect((await a.children('/err')).children).toEqual(['child']);
    expect((await a.getACL('/err')).acls).toEqual([{ perms: 31, scheme: 'world', id: 'anyone' }]);
  });

  it('a container mode through a plain create makes a persistent znode, as ZooKeeper does', async () => {
    // node-zookeeper-client has no CONTAINER mode and always sends opcode create; ZooKeeper
    // builds the znode from the CreateTxn, so it is an ordinary persistent node: it is not
    // reaped when its last child goes (the reaper runs every 100 ms here).
    const a = await connect();
    expect(await a.create('/notcontainer', null, ACL.OPEN_ACL_UNSAFE, 4)).toBe('/notcontainer');
    expect((await a.exists('/notcontainer'))!.ephemeralOwner).toBe(0n);
    await a.create('/notcontainer/child');
    await a.remove('/notcontainer/child');
    await sleep(400);
    expect(await a.exists('/notcontainer')).not.toBeNull();
  });

  it('round-trips a 512 KiB value', async () => {
    const a = await connect();
    const big = Buffer.alloc(512 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 9)) & 0xff;
    await a.create('/big', big);
    const g = await a.get('/big');
    expect(g.stat.dataLength).toBe(big.length);
    expect(g.data!.equals(big)).toBe(true);
    const big2 = Buffer.from(big).reverse();
    expect((await a.set('/big', big2, 0)).dataLength).toBe(big2.length);
    expect((await a.get('/big')).data!.equals(big2)).toBe(true);
    // A second client reads it too (frames split across TCP reads).
    const b = await connect();
    expect((await b.get('/big')).data!.equals(big2)).toBe(true);
  });
});

// --- multi ------------------------------------------------------------------------------

describe('node-zookeeper-client: transactions (multi)', () => {
  it('applies every op under one zxid and reports one result per op', async () => {
    const a = await connect();
    const { error, results } = await a.commit(
      a.c
        .transaction()
        .create('/txn')
        .create('/txn/1', Buffer.from('one'))
        .create('/txn/s-', Buffer.from('seq'), CreateMode.PERSISTENT_SEQUENTIAL)
        .setData('/txn/1', Buffer.from('uno'), 0)
        .check('/txn/1', 1)
        .remove('/txn/s-0000000001', -1),
    );
    expect(error).toBeNull();
    expect(results.map((r) => r.type)).toEqual([1, 1, 1, 5, 13, 2]);
    expect(results[0].path).toBe('/txn');
    expect(results[1].path).toBe('/txn/1');
    expect(results[2].path).toBe('/txn/s-0000000001');
    const setStat = stat(results[3].stat);
    expect(setStat.version).toBe(1);

    const t = (await a.exists('/txn'))!;
    const one = await a.get('/txn/1');
    expect(one.data!.toString()).toBe('uno');
    // One zxid for the whole multi.
    expect(one.stat.czxid).toBe(t.czxid);
    expect(one.stat.mzxid).toBe(t.czxid);
    expect(setStat.mzxid).toBe(t.czxid);
    expect(t.pzxid).toBe(t.czxid);
    // Two children created and one deleted: 2 * 2 - 1 as clients see it.
    expect(t.cversion).toBe(3);
    expect((await a.children('/txn')).children).toEqual(['1']);
  });

  it('is atomic: a failing op leaves nothing applied, with ZooKeeper’s error results', async () => {
    const a = await connect();
    await a.create('/atom');
    const before = (await a.exists('/atom'))!;

    const r1 = await a.commit(
      a.c
        .transaction()
        .create('/atom/a', Buffer.from('a'))
        .create('/atom/a/b')
        .create('/atom', Buffer.from('dup')) // NODEEXISTS
        .setData('/atom/a', Buffer.from('x')),
    );
    expect(r1.error).not.toBeNull();
    expect(r1.error!.getCode()).toBe(E.NODE_EXISTS);
    expect(r1.results).toEqual([
      { type: -1, err: 0 },
      { type: -1, err: 0 },
      { type: -1, err: E.NODE_EXISTS },
      { type: -1, err: E.RUNTIME_INCONSISTENCY },
    ]);
    expect(await a.exists('/atom/a')).toBeNull();
    expect(await a.exists('/atom')).toEqual(before);

    // A failing check at the end, after ops that would have made it pass.
    const r2 = await a.commit(a.c.transaction().create('/atom/x').setData('/atom', Buffer.from('z')).check('/atom', 5));
    expect(r2.error!.getCode()).toBe(E.BAD_VERSION);
    expect(r2.results).toEqual([
      { type: -1, err: 0 },
      { type: -1, err: 0 },
      { type: -1, err: E.BAD_VERSION },
    ]);
    expect(await a.exists('/atom')).toEqual(before);

    // What the failed multis would have created is not half-remembered by the server:
    // the same names can be created, and the sequence counter did not move.
    await a.create('/atom/a');
    expect(await a.create('/atom/s-', null, ACL.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL)).toBe('/atom/s-0000000001');

    // Failures from each kind of op.
    const r3 = await a.commit(a.c.transaction().remove('/atom/none'));
    expect(r3.error!.getCode()).toBe(E.NO_NODE);
    expect(r3.results).toEqual([{ type: -1, err: E.NO_NODE }]);
    const r4 = await a.commit(a.c.transaction().check('/atom/a', 0).remove('/atom'));
    expect(r4.error!.getCode()).toBe(E.NOT_EMPTY);
    expect(r4.results).toEqual([
      { type: -1, err: 0 },
      { type: -1, err: E.NOT_EMPTY },
    ]);
    const r5 = await a.commit(a.c.transaction().setData('/atom/a', Buffer.from('v'), 7));
    expect(r5.error!.getCode()).toBe(E.BAD_VERSION);
  });

  it('an op may depend on an earlier op of the same multi', async () => {
    const a = await connect();
    const { error } = await a.commit(
      a.c
        .transaction()
        .create('/dep')
        .create('/dep/a')
        .setData('/dep/a', Buffer.from('1'), 0)
        .setData('/dep/a', Buffer.from('2'), 1)
        .remove('/dep/a', 2)
        .create('/dep/a', Buffer.from('again')),
    );
    expect(error).toBeNull();
    const g = await a.get('/dep/a');
    expect(g.data!.toString()).toBe('again');
    expect(g.stat.version).toBe(0);
    expect((await a.exists('/dep'))!.cversion).toBe(3);
  });
});

// --- watches ----------------------------------------------------------------------------

describe('node-zookeeper-client: watches', () => {
  it('data, exist and child watches fire once, with the right type and path', async () => {
    const a = await connect();
    const b = await connect();
    await a.create('/w');

    const data = new Watch();
    await a.get('/w', data);
    const exist = new Watch();
    expect(await a.exists('/w/new', exist)).toBeNull();
    const child = new Watch();
    await a.children('/w', child);

    await b.set('/w', Buffer.from('1'));
    await b.set('/w', Buffer.from('2'));
    await b.create('/w/new');
    await b.create('/w/other');
    // Events come before the reply to any later read, so after this read none is in flight.
    await a.exists('/w');
    expect(data.events).toEqual([{ type: Event.NODE_DATA_CHANGED, path: '/w' }]);
    expect(exist.events).toEqual([{ type: Event.NODE_CREATED, path: '/w/new' }]);
    expect(child.events).toEqual([{ type: Event.NODE_CHILDREN_CHANGED, path: '/w' }]);
  });

  it('deleting a node fires NodeDeleted to its data and child watchers, and the parent’s child watch', async () => {
    const a = await connect();
    const b = await connect();
    await a.create('/wd');
    await a.create('/wd/n');
    const data = new Watch();
    await a.get('/wd/n', data);
    const kids = new Watch();
    await a.children('/wd/n', kids);
    const parent = new Watch();
    await a.children('/wd', parent);
    const viaExists = new Watch();
    await b.exists('/wd/n', viaExists);

    await b.remove('/wd/n');
    await a.exists('/wd');
    await b.exists('/wd');
    expect(data.events).toEqual([{ type: Event.NODE_DELETED, path: '/wd/n' }]);
    expect(kids.events).toEqual([{ type: Event.NODE_DELETED, path: '/wd/n' }]);
    expect(parent.events).toEqual([{ type: Event.NODE_CHILDREN_CHANGED, path: '/wd' }]);
    expect(viaExists.events).toEqual([{ type: Event.NODE_DELETED, path: '/wd/n' }]);
  });

  it('a child watch does not fire for data changes, a data watch not for children', async () => {
    const a = await connect();
    await a.create('/wsep');
    const child = new Watch();
    await a.children('/wsep', child);
    const data = new Watch();
    await a.get('/wsep', data);
    await a.set('/wsep', Buffer.from('d'));
    await a.exists('/wsep');
    expect(child.events).toEqual([]);
    expect(data.events).toEqual([{ type: Event.NODE_DATA_CHANGED, path: '/wsep' }]);
    await a.create('/wsep/c');
    await a.exists('/wsep');
    expect(child.events).toEqual([{ type: Event.NODE_CHILDREN_CHANGED, path: '/wsep' }]);
    expect(data.events.length).toBe(1);
  });

  it('delivers the event before the reply of a later read, and before the write’s own reply', async () => {
    const a = await connect();
    const b = await connect();
    await a.create('/order', Buffer.from('0'));

    // Another session writes; our next read must see the event first.
    const log: string[] = [];
    const w1 = new Watch(log);
    await a.get('/order', w1);
    await b.set('/order', Buffer.from('1'));
    const r = await a.get('/order').then((g) => {
      log.push('read');
      return g;
    });
    expect(r.data!.toString()).toBe('1');
    expect(log).toEqual(['event:NODE_DATA_CHANGED', 'read']);

    // Our own write: the event precedes the write's reply and the next read's reply.
    const log2: string[] = [];
    const w2 = new Watch(log2);
    await a.get('/order', w2);
    const set = a.set('/order', Buffer.from('2')).then(() => log2.push('set'));
    const read = a.get('/order').then(() => log2.push('read'));
    await Promise.all([set, read]);
    expect(log2).toEqual(['event:NODE_DATA_CHANGED', 'set', 'read']);
  });

  it('a watch on an ephemeral fires NodeDeleted when its session closes, and the parent’s child watch fires', async () => {
    const a = await connect();
    const b = await connect();
    await b.create('/weph');
    await a.create('/weph/e', null, ACL.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
    const gone = new Watch();
    await b.get('/weph/e', gone);
    const parent = new Watch();
    await b.children('/weph', parent);
    await a.close();
    expect(await gone.next()).toEqual([{ type: Event.NODE_DELETED, path: '/weph/e' }]);
    expect(await parent.next()).toEqual([{ type: Event.NODE_CHILDREN_CHANGED, path: '/weph' }]);
    const p = (await b.exists('/weph'))!;
    expect(p).toMatchObject({ numChildren: 0, cversion: 2 });
  });
});

// --- ACLs ------------------------------------------------------------------------------

describe('node-zookeeper-client: ACLs', () => {
  it('digest ACLs: only the authenticated user gets in; exists needs READ (3.9)', async () => {
    const alice = await connect();
    alice.auth('alice:secret');
    const anon = await connect();
    const wrong = await connect();
    wrong.auth('alice:wrong');

    await alice.create('/dg', Buffer.from('private'), [acl(P.ALL, 'digest', digest('alice:secret'))]);
    expect((await alice.get('/dg')).data!.toString()).toBe('private');
    expect((await alice.getACL('/dg')).acls).toEqual([{ perms: P.ALL, scheme: 'digest', id: digest('alice:secret') }]);

    for (const z of [anon, wrong]) {
      expect(await code(z.get('/dg'))).toBe(E.NO_AUTH);
      expect(await code(z.exists('/dg'))).toBe(E.NO_AUTH);
      expect(await code(z.set('/dg', Buffer.from('x')))).toBe(E.NO_AUTH);
      expect(await code(z.children('/dg'))).toBe(E.NO_AUTH);
      expect(await code(z.getACL('/dg'))).toBe(E.NO_AUTH);
      expect(await code(z.setACL('/dg', ACL.OPEN_ACL_UNSAFE))).toBe(E.NO_AUTH);
      expect(await code(z.create('/dg/child'))).toBe(E.NO_AUTH);
      // A missing child of an unreadable node is just missing.
      expect(await z.exists('/dg/missing')).toBeNull();
    }
    // The watch is not set when exists fails with NOAUTH.
    const w = new Watch();
    expect(await code(anon.exists('/dg', w))).toBe(E.NO_AUTH);
    await alice.set('/dg', Buffer.from('changed'));
    await anon.exists('/dg/missing');
    expect(w.events).toEqual([]);

    // Auth added later on a live connection counts from then on.
    anon.auth('alice:secret');
    expect((await anon.get('/dg')).data!.toString()).toBe('changed');
  });

  it('the auth scheme stands for the caller’s authenticated ids', async () => {
    const alice = await connect();
    alice.auth('alice:secret');
    alice.auth('bob:pw');
    await alice.create('/authacl', null, ACL.CREATOR_ALL_ACL);
    const got = (await alice.getACL('/authacl')).acls;
    expect(got).toHaveLength(2);
    expect(got).toEqual(
      expect.arrayContaining([
        { perms: P.ALL, scheme: 'digest', id: digest('alice:secret') },
        { perms: P.ALL, scheme: 'digest', id: digest('bob:pw') },
      ]),
    );
    const bob = await connect();
    bob.auth('bob:pw');
    await bob.set('/authacl', Buffer.from('bob was here'));
    const anon = await connect();
    expect(await code(anon.get('/authacl'))).toBe(E.NO_AUTH);
  });

  it('world and ip ACLs (single address and CIDR)', async () => {
    const a = await connect();
    await a.create('/ro', Buffer.from('r'), ACL.READ_ACL_UNSAFE);
    expect((await a.get('/ro')).data!.toString()).toBe('r');
    expect(await code(a.set('/ro', Buffer.from('w')))).toBe(E.NO_AUTH);
    expect(await code(a.create('/ro/c'))).toBe(E.NO_AUTH);
    expect(await code(a.setACL('/ro', ACL.OPEN_ACL_UNSAFE))).toBe(E.NO_AUTH);

    await a.create('/ip1', Buffer.from('1'), [acl(P.ALL, 'ip', '127.0.0.1')]);
    await a.set('/ip1', Buffer.from('ok'));
    expect((await a.get('/ip1')).data!.toString()).toBe('ok');

    await a.create('/ip8', Buffer.from('8'), [acl(P.READ | P.CREATE, 'ip', '127.0.0.0/8')]);
    expect((await a.get('/ip8')).data!.toString()).toBe('8');
    await a.create('/ip8/child');
    expect(await code(a.set('/ip8', Buffer.from('x')))).toBe(E.NO_AUTH);
    // Deleting a child needs DELETE on the parent.
    expect(await code(a.remove('/ip8/child'))).toBe(E.NO_AUTH);

    await a.create('/ip10', Buffer.from('10'), [acl(P.ALL, 'ip', '10.0.0.0/8')]);
    expect(await code(a.get('/ip10'))).toBe(E.NO_AUTH);
    expect(await code(a.exists('/ip10'))).toBe(E.NO_AUTH);
    // Deleting a node needs DELETE on its parent only.
    await a.remove('/ip10');
  });

  it('getACL needs READ or ADMIN and shows digest hashes only to ADMIN', async () => {
    const alice = await connect();
    alice.auth('alice:secret');
    const anon = await connect();
    await alice.create('/hide', null, [acl(P.ALL, 'digest', digest('alice:secret')), acl(P.READ, 'world', 'anyone')]);
    expect((await anon.getACL('/hide')).acls).toEqual([
      { perms: P.ALL, scheme: 'digest', id: 'alice:x' },
      { perms: P.READ, scheme: 'world', id: 'anyone' },
    ]);
    expect((await alice.getACL('/hide')).acls[0]).toEqual({ perms: P.ALL, scheme: 'digest', id: digest('alice:secret') });

    // ADMIN alone is enough to read the ACL (and see the hashes).
    await alice.create('/adminonly', null, [acl(P.ALL, 'digest', digest('alice:secret')), acl(P.ADMIN, 'world', 'anyone')]);
    expect((await anon.getACL('/adminonly')).acls[0].id).toBe(digest('alice:secret'));
    expect(await code(anon.get('/adminonly'))).toBe(E.NO_AUTH);
  });

  it('setACL checks ADMIN and the aversion, and moves aversion only', async () => {
    const a = await connect();
    await a.create('/sa', Buffer.from('x'));
    const s0 = (await a.exists('/sa'))!;
    const s1 = await a.setACL('/sa', [acl(P.READ | P.WRITE | P.ADMIN, 'world', 'anyone')], 0);
    expect(s1).toMatchObject({ aversion: 1, version: 0, mzxid: s0.mzxid, cversion: 0 });
    expect(await code(a.setACL('/sa', ACL.OPEN_ACL_UNSAFE, 0))).toBe(E.BAD_VERSION);
    const g = await a.getACL('/sa');
    expect(g.acls).toEqual([{ perms: P.READ | P.WRITE | P.ADMIN, scheme: 'world', id: 'anyone' }]);
    expect(g.stat.aversion).toBe(1);
    expect(await code(a.create('/sa/c'))).toBe(E.NO_AUTH);
    expect((await a.setACL('/sa', [acl(P.READ, 'world', 'anyone')], -1)).aversion).toBe(2);
    expect(await code(a.setACL('/sa', ACL.OPEN_ACL_UNSAFE))).toBe(E.NO_AUTH);
  });

  it('the super user gets past every ACL', async () => {
    const alice = await connect();
    alice.auth('alice:secret');
    await alice.create('/locked', Buffer.from('s'), [acl(P.READ, 'digest', digest('alice:secret'))]);
    await alice.create('/locked2', Buffer.from('s'), [acl(P.READ, 'digest', digest('alice:secret'))]);
    const root = await connect();
    root.auth('super:secret');
    expect((await root.get('/locked')).data!.toString()).toBe('s');
    await root.set('/locked', Buffer.from('t'));
    expect((await root.getACL('/locked2')).acls[0].id).toBe(digest('alice:secret'));
    await root.create('/locked/child');
    await root.remove('/locked/child');
    await root.setACL('/locked2', ACL.OPEN_ACL_UNSAFE);
    const anon = await connect();
    expect((await anon.get('/locked2')).data!.toString()).toBe('s');
    // A wrong super password is just another digest user.
    const notRoot = await connect();
    notRoot.auth('super:wrong');
    expect(await code(notRoot.get('/locked'))).toBe(E.NO_AUTH);
  });

  it('an unknown auth scheme fails authentication', async () => {
    const a = await connect();
    const failed = once(a.c, 'authenticationFailed', 5000);
    a.c.addAuthInfo('nosuchscheme', Buffer.from('x'));
    await failed;
    // The server answers AUTHFAILED and drops the connection; the client gives up.
    await expect(a.get('/')).rejects.toThrow();
  });
});

// --- sessions ---------------------------------------------------------------------------

describe('node-zookeeper-client: sessions', () => {
  it('negotiates the session timeout within the server bounds', async () => {
    const a = await connect({ sessionTimeout: 100 });
    expect(a.c.getSessionTimeout()).toBe(400);
    const b = await connect({ sessionTimeout: 60000 });
    expect(b.c.getSessionTimeout()).toBe(8000);
    const c = await connect({ sessionTimeout: 1500 });
    expect(c.c.getSessionTimeout()).toBe(1500);
    expect(a.sessionId).not.toBe(b.sessionId);
    expect(a.c.getSessionPassword()).toHaveLength(16);
  });

  it('resumes the session after the connection drops: ephemerals stay, watches are re-armed', async () => {
    const a = await connect({ sessionTimeout: 3000 });
    const b = await connect();
    await a.create('/resume', Buffer.from('0'));
    await a.create('/resume/e', null, ACL.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
    const id = a.sessionId;
    const w = new Watch();
    await a.get('/resume', w);

    const disconnected = once(a.c, 'disconnected');
    const reconnected = disconnected.then(() => once(a.c, 'connected'));
    a.c.connectionManager.socket.destroy();
    await reconnected;
    expect(a.sessionId).toBe(id);
    expect((await a.exists('/resume/e'))!.ephemeralOwner).toBe(id);
    expect((await b.exists('/resume/e'))!.ephemeralOwner).toBe(id);

    // The data watch survived the reconnect (SetWatches).
    await b.set('/resume', Buffer.from('1'));
    expect(await w.next()).toEqual([{ type: Event.NODE_DATA_CHANGED, path: '/resume' }]);
  });

  it('a change made while disconnected fires the re-armed watch on reconnect', async () => {
    const proxy = await TcpProxy.start(ts.port);
    try {
      const a = await connect({ sessionTimeout: 4000 }, proxy.connect);
      const b = await connect();
      await b.create('/missed', Buffer.from('0'));
      await b.create('/missed-kids');
      const data = new Watch();
      await a.get('/missed', data);
      const exist = new Watch();
      await a.exists('/missed-new', exist);
      const kids = new Watch();
      await a.children('/missed-kids', kids);
      const id = a.sessionId;

      const disconnected = once(a.c, 'disconnected');
      proxy.partition();
      await disconnected;
      await b.set('/missed', Buffer.from('1'));
      await b.create('/missed-new');
      await b.create('/missed-kids/k');
      const reconnected = once(a.c, 'connected');
      proxy.heal();
      await reconnected;
      expect(a.sessionId).toBe(id);
      expect(await data.next()).toEqual([{ type: Event.NODE_DATA_CHANGED, path: '/missed' }]);
      expect(await exist.next()).toEqual([{ type: Event.NODE_CREATED, path: '/missed-new' }]);
      expect(await kids.next()).toEqual([{ type: Event.NODE_CHILDREN_CHANGED, path: '/missed-kids' }]);
    } finally {
      await proxy.close();
    }
  });

  it('expires a session whose client stops pinging: ephemerals go, watchers see NodeDeleted, the client sees EXPIRED', async () => {
    const proxy = await TcpProxy.start(ts.port);
    try {
      const victim = await connect({ sessionTimeout: 1000 }, proxy.connect);
      expect(victim.c.getSessionTimeout()).toBe(1000);
      const observer = await connect();
      await victim.create('/exp', null, ACL.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
      await victim.create('/exp-seq-', null, ACL.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL_SEQUENTIAL);
      const w = new Watch();
      await observer.exists('/exp', w);
      const sessionId = victim.c.getSessionId();
      const passwd = victim.c.getSessionPassword();

      const t0 = Date.now();
      proxy.partition();
      expect(await w.next(1, 5000)).toEqual([{ type: Event.NODE_DELETED, path: '/exp' }]);
      const elapsed = Date.now() - t0;
      // Not before the timeout, and within a couple of ticks after it.
      expect(elapsed).toBeGreaterThanOrEqual(900);
      expect(elapsed).toBeLessThan(2500);
      expect(await observer.exists('/exp')).toBeNull();
      expect((await observer.children('/')).children.filter((c) => c.startsWith('exp-seq-'))).toEqual([]);

      // The client learns when it gets through again.
      const expired = once(victim.c, 'expired');
      proxy.heal();
      await expired;
      expect(victim.c.getState()).toBe(State.EXPIRED);
      expect(await code(victim.get('/'))).toBe(E.SESSION_EXPIRED);

      // Resuming the expired session with its right password is refused the same way.
      const again = nzc.createClient(ts.connect, { sessionTimeout: 1000, sessionId, sessionPassword: passwd });
      const againExpired = once(again, 'expired');
      again.connect();
      await againExpired;
      expect(again.getState()).toBe(State.EXPIRED);
    } finally {
      await proxy.close();
    }
  });

  it('resumes with the right session id and password, and refuses a wrong password', async () => {
    // The first client is cut off (it would otherwise reconnect and take the session
    // back); a second one carries on with the saved id and password.
    const proxy = await TcpProxy.start(ts.port);
    try {
      const a = await connect({ sessionTimeout: 4000 }, proxy.connect);
      await a.create('/owned', null, ACL.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
      const sessionId = a.c.getSessionId();
      const sessionPassword = a.c.getSessionPassword();
      const lost = once(a.c, 'disconnected');
      proxy.partition();
      await lost;

      const b = await connect({ sessionTimeout: 4000, sessionId, sessionPassword });
      expect(b.sessionId).toBe(a.sessionId);
      expect((await b.exists('/owned'))!.ephemeralOwner).toBe(b.sessionId);
      // It owns the session's ephemerals now: it may delete and re-create them.
      await b.remove('/owned');
      await b.create('/owned', null, ACL.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);

      const badPassword = Buffer.from(sessionPassword);
      badPassword[0] ^= 0xff;
      // As in ZooKeeper (processConnectRequest closes the session's connection before
      // reopenSession checks the password), the attempt costs b its connection, not its
      // session: b reconnects to the same session.
      const bBack = once(b.c, 'disconnected').then(() => once(b.c, 'connected'));
      const c = nzc.createClient(ts.connect, { sessionTimeout: 4000, sessionId, sessionPassword: badPassword });
      const refused = once(c, 'expired');
      c.connect();
      await refused;
      expect(c.getState()).toBe(State.EXPIRED);
      await bBack;
      expect(b.sessionId).toBe(a.sessionId);
      expect((await b.exists('/owned'))!.ephemeralOwner).toBe(b.sessionId);

      // A made-up session id is expired too.
      const bogus = Buffer.from(sessionId);
      bogus[7] ^= 0x55;
      const d = nzc.createClient(ts.connect, { sessionTimeout: 4000, sessionId: bogus, sessionPassword });
      const refused2 = once(d, 'expired');
      d.connect();
      await refused2;

      // Closing the session removes its ephemerals for everyone.
      const e = await connect();
      const w = new Watch();
      await e.exists('/owned', w);
      await b.close();
      expect(await w.next()).toEqual([{ type: Event.NODE_DELETED, path: '/owned' }]);
      expect(await e.exists('/owned')).toBeNull();
    } finally {
      await proxy.close();
    }
  });
});
