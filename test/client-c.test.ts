import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ZooKeeper from 'zookeeper';
import { TcpProxy } from './helpers/proxy.js';
import { startServer, type TestServer } from './helpers/server.js';

// Corral driven by the `zookeeper` npm package: bindings of Apache ZooKeeper's own C
// client (single-threaded flavour), so this is the C client's view of the server: its
// return codes, stat objects, watcher callbacks and session events.
//
// Note: zookeeper_close() in the C client blocks for up to 1.5 s waiting for the
// closeSession reply, and the server shares this event loop, so every close costs that
// long (and stalls the server meanwhile). The tests therefore share two clients and open
// few others, and the server allows long session timeouts so a stall expires nobody.

const K = ZooKeeper.constants;

interface CStat {
  czxid: number;
  mzxid: number;
  pzxid: number;
  ctime: Date;
  mtime: Date;
  version: number;
  cversion: number;
  aversion: number;
  /** The owner's session id in hex, as the binding prints it (%llx). */
  ephemeralOwner: string;
  dataLength: number;
  numChildren: number;
  createdInThisSession: boolean;
}
interface CAcl {
  perms: number;
  scheme: string;
  auth: string;
}
type WatchFn = (type: number, state: number, path: string) => void;

/** The promise methods of the client, typed as these tests use them. */
interface Zk {
  create(path: string, data: string | Buffer, flags: number, ttl?: number): Promise<string>;
  exists(path: string, watch: boolean): Promise<CStat>;
  pathExists(path: string, watch: boolean): Promise<boolean>;
  w_exists(path: string, cb: WatchFn): Promise<CStat>;
  get(path: string, watch: boolean): Promise<[CStat, Buffer]>;
  w_get(path: string, cb: WatchFn): Promise<[CStat, Buffer]>;
  get_children(path: string, watch: boolean): Promise<string[]>;
  w_get_children(path: string, cb: WatchFn): Promise<string[]>;
  get_children2(path: string, watch: boolean): Promise<[string[], CStat]>;
  w_get_children2(path: string, cb: WatchFn): Promise<[string[], CStat]>;
  set(path: string, data: string | Buffer, version: number): Promise<CStat>;
  delete_(path: string, version: number): Promise<void>;
  get_acl(path: string): Promise<[CAcl[], CStat]>;
  set_acl(path: string, version: number, acl: CAcl[]): Promise<void>;
  sync(path: string): Promise<string>;
  add_auth(scheme: string, auth: string, cb: (rc: number, error: string) => void): number;
  mkdirp(path: string, cb: (e: Error | null) => void): void;
  close(): void;
  once(event: string, fn: (...args: any[]) => void): void;
  on(event: string, fn: (...args: any[]) => void): void;
  readonly client_id: string;
  readonly client_password: string;
  readonly timeout: number;
  readonly state: number;
}

/** The rc a call fails with: from the completion ("-101 no node") or from the call itself. */
async function rc(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (e) {
    const msg = (e as Error).message;
    const m = /^(-?\d+) /.exec(msg) ?? /(-?\d+)"$/.exec(msg);
    if (m) return Number(m[1]);
    throw e;
  }
  throw new Error('expected the call to fail');
}

function addAuth(zk: Zk, scheme: string, auth: string): Promise<number> {
  return new Promise((res) => {
    const r = zk.add_auth(scheme, auth, (code) => res(code));
    if (r !== 0) res(r);
  });
}

/** Collects watcher callbacks (a standard watch must deliver exactly one). */
class Watch {
  readonly events: { type: number; path: string }[] = [];
  private waiters: (() => void)[] = [];
  constructor(private readonly log?: string[]) {}
  readonly fn: WatchFn = (type, _state, path) => {
    this.events.push({ type, path });
    this.log?.push(`event:${type}`);
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const digest = (userPass: string) => `${userPass.split(':')[0]}:${createHash('sha1').update(userPass).digest('base64')}`;
const OPEN: CAcl[] = [{ perms: K.ZOO_PERM_ALL, scheme: 'world', auth: 'anyone' }];

async function waitGone(zk: Zk, path: string, ms: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (!(await zk.pathExists(path, false))) return Date.now() - t0;
    await sleep(25);
  }
  throw new Error(`${path} still there after ${ms} ms`);
}

// --- the server and clients --------------------------------------------------------------

const SUPER = `super:${createHash('sha1').update('super:secret').digest('base64')}`;
let ts: TestServer;
const clients: Zk[] = [];
let a: Zk;
let b: Zk;

interface Opts {
  connect?: string;
  timeout?: number;
  client_id?: string;
  client_password?: string;
}

function newClient(o: Opts = {}): Zk {
  const zk = new ZooKeeper({
    connect: o.connect ?? ts.connect,
    timeout: o.timeout ?? 15000,
    // Quiet: the C client logs every expected failure (partitions, refused sessions) at
    // ERROR. CORRAL_TEST_C_LOG=1..4 turns its log back on.
    debug_level: Number(process.env.CORRAL_TEST_C_LOG ?? 0),
    host_order_deterministic: true,
    ...(o.client_id !== undefined ? { client_id: o.client_id, client_password: o.client_password } : {}),
  }) as unknown as Zk;
  clients.push(zk);
  return zk;
}

/** Resolves once connected; rejects with the close code if the client gives up. */
function start(zk: Zk, ms = 8000): Promise<Zk> {
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error('no connect')), ms);
    zk.once('connect', () => {
      clearTimeout(t);
      res(zk);
    });
    zk.once('close', (_z: unknown, code: number) => {
      clearTimeout(t);
      rej(Object.assign(new Error(`closed with ${code}`), { code }));
    });
    (zk as unknown as { init(c: object): void }).init({});
  });
}

const connect = (o: Opts = {}) => start(newClient(o));

/** The close event's code (ZOO_EXPIRED_SESSION_STATE, ZOO_AUTH_FAILED_STATE, 0 for close()). */
function closed(zk: Zk, ms = 8000): Promise<number> {
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error('no close event')), ms);
    zk.once('close', (_z: unknown, code: number) => {
      clearTimeout(t);
      res(code);
    });
  });
}

beforeAll(async () => {
  ts = await startServer(
    [
      'tickTime=200',
      'minSessionTimeout=400',
      'maxSessionTimeout=20000',
      'extendedTypesEnabled=true',
      'znode.container.checkIntervalMs=100',
      `DigestAuthenticationProvider.superDigest=${SUPER}`,
    ].join('\n'),
  );
  a = await connect();
  b = await connect();
});
afterAll(async () => {
  for (const zk of clients) zk.close();
  await ts.stop();
});

// --- operations -------------------------------------------------------------------------

describe('C client: operations', () => {
  it('create, get, set, exists and delete, with the stat moving as in ZooKeeper', async () => {
    const before = Date.now();
    expect(await a.create('/basic', 'v0', K.ZOO_PERSISTENT)).toBe('/basic');
    const after = Date.now();
    const s0 = await a.exists('/basic', false);
    expect(s0.mzxid).toBe(s0.czxid);
    expect(s0.pzxid).toBe(s0.czxid);
    expect(s0).toMatchObject({ version: 0, cversion: 0, aversion: 0, ephemeralOwner: '0', dataLength: 2, numChildren: 0 });
    expect(s0.createdInThisSession).toBe(false);
    expect(s0.mtime.getTime()).toBe(s0.ctime.getTime());
    expect(s0.ctime.getTime()).toBeGreaterThanOrEqual(before - 5);
    expect(s0.ctime.getTime()).toBeLessThanOrEqual(after + 5);

    const [g0, d0] = await b.get('/basic', false);
    expect(d0.toString()).toBe('v0');
    expect(g0).toEqual(s0);

    const s1 = await b.set('/basic', 'value-1', 0);
    expect(s1).toMatchObject({ version: 1, czxid: s0.czxid, pzxid: s0.pzxid, cversion: 0, aversion: 0, dataLength: 7 });
    expect(s1.mzxid).toBeGreaterThan(s0.mzxid);
    expect(s1.mtime.getTime()).toBeGreaterThanOrEqual(s0.ctime.getTime());
    expect(s1.ctime.getTime()).toBe(s0.ctime.getTime());
    const [, d1] = await a.get('/basic', false);
    expect(d1.toString()).toBe('value-1');

    const bin = Buffer.from([0, 1, 2, 255, 0]);
    expect((await a.set('/basic', bin, -1)).version).toBe(2);
    expect((await a.get('/basic', false))[1]).toEqual(bin);

    expect(await rc(a.set('/basic', 'x', 1))).toBe(K.ZBADVERSION);
    expect(await rc(a.delete_('/basic', 1))).toBe(K.ZBADVERSION);
    await a.delete_('/basic', 2);
    expect(await rc(a.exists('/basic', false))).toBe(K.ZNONODE);
    expect(await a.pathExists('/basic', false)).toBe(false);
  });

  it('sequential names carry the parent cversion; a deleted child does not reset the counter', async () => {
    await a.create('/seq', '', K.ZOO_PERSISTENT);
    expect(await a.create('/seq/n-', 'x', K.ZOO_PERSISTENT_SEQUENTIAL)).toBe('/seq/n-0000000000');
    expect(await b.create('/seq/n-', 'y', K.ZOO_EPHEMERAL_SEQUENTIAL)).toBe('/seq/n-0000000001');
    await a.delete_('/seq/n-0000000001', -1);
    // Clients see creates + deletes in cversion (DataNode.copyStat: 2 * creates - children),
    // but the sequence counter counts creates only: the next name is ...2, not ...3.
    expect((await a.exists('/seq', false)).cversion).toBe(3);
    expect(await a.create('/seq/n-', 'z', K.ZOO_PERSISTENT | K.ZOO_SEQUENCE)).toBe('/seq/n-0000000002');
    // The C client lets a sequential create end in '/': the name is just the counter.
    expect(await a.create('/seq/', '', K.ZOO_PERSISTENT_SEQUENTIAL)).toBe('/seq/0000000003');
    expect((await a.get_children('/seq', false)).sort()).toEqual(['0000000003', 'n-0000000000', 'n-0000000002']);
  });

  it('get_children and get_children2 (with the parent stat)', async () => {
    await a.create('/kids', 'p', K.ZOO_PERSISTENT);
    for (const k of ['b', 'c', 'a']) await a.create(`/kids/${k}`, '', K.ZOO_PERSISTENT);
    expect((await b.get_children('/kids', false)).sort()).toEqual(['a', 'b', 'c']);
    const [kids, st] = await b.get_children2('/kids', false);
    expect(kids.sort()).toEqual(['a', 'b', 'c']);
    expect(st).toEqual(await b.exists('/kids', false));
    expect(st).toMatchObject({ numChildren: 3, cversion: 3, dataLength: 1, version: 0 });
    expect(st.pzxid).toBe((await b.exists('/kids/a', false)).czxid);
    expect(await b.get_children('/kids/a', false)).toEqual([]);
    expect(await rc(b.get_children2('/kids/none', false))).toBe(K.ZNONODE);
  });

  it('a child create bumps cversion and pzxid; so does a child delete (as clients see cversion)', async () => {
    await a.create('/par', 'data', K.ZOO_PERSISTENT);
    const p0 = await a.exists('/par', false);
    await a.create('/par/c', '', K.ZOO_PERSISTENT);
    const c = await a.exists('/par/c', false);
    const p1 = await a.exists('/par', false);
    expect(p1).toMatchObject({ cversion: 1, numChildren: 1, version: 0, mzxid: p0.mzxid, pzxid: c.czxid });
    await a.delete_('/par/c', -1);
    const p2 = await a.exists('/par', false);
    await a.create('/par-probe', '', K.ZOO_PERSISTENT);
    const probe = await a.exists('/par-probe', false);
    expect(p2).toMatchObject({ cversion: 2, numChildren: 0, version: 0, mzxid: p0.mzxid });
    expect(p2.pzxid).toBe(probe.czxid - 1);
    // The sequence counter did not move with the delete.
    expect(await a.create('/par/s-', '', K.ZOO_PERSISTENT_SEQUENTIAL)).toBe('/par/s-0000000001');
  });

  it('ephemerals are owned by the session and cannot have children', async () => {
    await a.create('/eph', 'e', K.ZOO_EPHEMERAL);
    const s = await a.exists('/eph', false);
    expect(s.ephemeralOwner).toBe(a.client_id);
    expect(s.createdInThisSession).toBe(true);
    const fromB = await b.exists('/eph', false);
    expect(fromB.ephemeralOwner).toBe(a.client_id);
    expect(fromB.createdInThisSession).toBe(false);
    expect(await rc(b.create('/eph/child', '', K.ZOO_PERSISTENT))).toBe(K.ZNOCHILDRENFOREPHEMERALS);
    expect(await rc(a.create('/eph/child', '', K.ZOO_EPHEMERAL_SEQUENTIAL))).toBe(K.ZNOCHILDRENFOREPHEMERALS);
    await a.delete_('/eph', -1);
  });

  it('sync answers with the path', async () => {
    await a.create('/synced', '', K.ZOO_PERSISTENT);
    await b.set('/synced', 'after', -1);
    expect(await a.sync('/synced')).toBe('/synced');
    expect((await a.get('/synced', false))[1].toString()).toBe('after');
  });

  it('mkdirp creates the missing ancestors', async () => {
    await new Promise<void>((res, rej) => a.mkdirp('/deep/er/path', (e) => (e ? rej(e) : res())));
    expect((await b.exists('/deep/er/path', false)).numChildren).toBe(0);
    expect((await b.exists('/deep', false)).numChildren).toBe(1);
  });

  it('round-trips a 512 KiB value', async () => {
    const big = Buffer.alloc(512 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 10)) & 0xff;
    await a.create('/big', big, K.ZOO_PERSISTENT);
    const [st, data] = await b.get('/big', false);
    expect(st.dataLength).toBe(big.length);
    expect(data.equals(big)).toBe(true);
  });

  it('surfaces ZooKeeper error codes', async () => {
    await a.create('/err', '', K.ZOO_PERSISTENT);
    await a.create('/err/child', '', K.ZOO_PERSISTENT);
    expect(await rc(a.get('/err/none', false))).toBe(K.ZNONODE);
    expect(await rc(a.set('/err/none', 'x', -1))).toBe(K.ZNONODE);
    expect(await rc(a.delete_('/err/none', -1))).toBe(K.ZNONODE);
    expect(await rc(a.create('/err/none/deeper', '', K.ZOO_PERSISTENT))).toBe(K.ZNONODE);
    // (A failing get_acl crashes the binding: its acl_completion frees a NULL ACL vector.)
    expect(await rc(a.set_acl('/err/none', -1, OPEN))).toBe(K.ZNONODE);
    expect(await rc(a.create('/err', '', K.ZOO_PERSISTENT))).toBe(K.ZNODEEXISTS);
    expect(await rc(a.delete_('/err', -1))).toBe(K.ZNOTEMPTY);
    expect(await rc(a.set_acl('/err', 4, OPEN))).toBe(K.ZBADVERSION);
    // BADARGUMENTS from the server, for paths the C client does not check itself.
    expect(await rc(a.create('/err/bad\u001fname', '', K.ZOO_PERSISTENT))).toBe(K.ZBADARGUMENTS);
    expect(await rc(a.create('/err/bad\u0085name', '', K.ZOO_PERSISTENT))).toBe(K.ZBADARGUMENTS);
    expect(await rc(a.create('/err/bad\ue000name', '', K.ZOO_PERSISTENT))).toBe(K.ZBADARGUMENTS);
    expect(await rc(a.create('/err/\ufff5', '', K.ZOO_PERSISTENT))).toBe(K.ZBADARGUMENTS);
    expect(await rc(a.set('/err/bad\u001f', 'x', -1))).toBe(K.ZBADARGUMENTS);
    expect(await rc(a.delete_('/zookeeper', -1))).toBe(K.ZBADARGUMENTS);
    expect(await rc(a.delete_('/zookeeper/config', -1))).toBe(K.ZBADARGUMENTS);
    // ... and the ones it checks itself: same code.
    expect(await rc(a.create('/err/trailing/', '', K.ZOO_PERSISTENT))).toBe(K.ZBADARGUMENTS);
    expect(await rc(a.get('/err/../x', false))).toBe(K.ZBADARGUMENTS);
    // INVALIDACL
    expect(await rc(a.set_acl('/err', -1, [{ perms: K.ZOO_PERM_ALL, scheme: 'auth', auth: '' }]))).toBe(K.ZINVALIDACL);
    expect(await rc(a.set_acl('/err', -1, [{ perms: K.ZOO_PERM_ALL, scheme: 'digest', auth: 'nocolon' }]))).toBe(K.ZINVALIDACL);
    expect(await rc(a.set_acl('/err', -1, [{ perms: K.ZOO_PERM_ALL, scheme: 'ip', auth: '1.2.3.4/99' }]))).toBe(K.ZINVALIDACL);
    expect(await rc(a.set_acl('/err', -1, [{ perms: K.ZOO_PERM_ALL, scheme: 'world', auth: 'nobody' }]))).toBe(K.ZINVALIDACL);
    expect(await rc(a.set_acl('/err', -1, []))).toBe(K.ZINVALIDACL);
    expect((await a.get_children('/err', false))).toEqual(['child']);
    const [acl, st] = await a.get_acl('/err');
    expect(acl).toEqual(OPEN);
    expect(st.aversion).toBe(0);
  });
});

// --- containers and TTL nodes ---------------------------------------------------------

describe('C client: containers and TTL nodes', () => {
  it('a container is reaped once its last child is gone, not before it had one', async () => {
    expect(await a.create('/box', '', K.ZOO_CONTAINER)).toBe('/box');
    // Clients see 0, not the container marker (DataNode.getClientEphemeralOwner).
    expect((await a.exists('/box', false)).ephemeralOwner).toBe('0');
    await sleep(350); // several reaper runs: a container that never had children stays
    expect(await a.pathExists('/box', false)).toBe(true);
    await a.create('/box/item', '', K.ZOO_PERSISTENT);
    await sleep(250); // and so does one with children
    expect(await a.pathExists('/box', false)).toBe(true);
    const w = new Watch();
    await b.w_exists('/box', w.fn);
    await a.delete_('/box/item', -1);
    await waitGone(a, '/box', 3000);
    expect(await w.next()).toEqual([{ type: K.ZOO_DELETED_EVENT, path: '/box' }]);
  });

  it('a TTL node goes once it has had no children and no change for its TTL', async () => {
    // TTL 2 s: long enough that a loaded machine's scheduling delays stay well inside it.
    expect(await a.create('/ttl', 'x', K.ZOO_PERSISTENT_WITH_TTL, 2000)).toBe('/ttl');
    // Clients see 0, not the TTL encoding (DataNode.getClientEphemeralOwner).
    expect((await a.exists('/ttl', false)).ephemeralOwner).toBe('0');
    expect(await a.create('/ttlseq-', 'x', K.ZOO_PERSISTENT_SEQUENTIAL_WITH_TTL, 60000)).toMatch(/^\/ttlseq-\d{10}$/);
    // A child keeps it; a write renews it.
    await a.create('/ttl/child', '', K.ZOO_PERSISTENT);
    await sleep(2500);
    expect(await a.pathExists('/ttl', false)).toBe(true);
    await a.delete_('/ttl/child', -1);
    await a.set('/ttl', 'renewed', -1);
    await sleep(300);
    expect(await a.pathExists('/ttl', false)).toBe(true);
    const gone = await waitGone(a, '/ttl', 8000);
    expect(gone).toBeGreaterThan(300);
    // The long-lived one is still there.
    expect((await a.get_children('/', false)).some((c) => c.startsWith('ttlseq-'))).toBe(true);
  });

  it('TTL nodes are refused without extendedTypesEnabled', async () => {
    const plain = await startServer('tickTime=200');
    try {
      const c = await connect({ connect: plain.connect });
      expect(await rc(c.create('/ttl', 'x', K.ZOO_PERSISTENT_WITH_TTL, 1000))).toBe(K.ZUNIMPLEMENTED);
      expect(await c.create('/box', '', K.ZOO_CONTAINER)).toBe('/box');
      c.close(); // (blocks 1.5 s: the server shares this thread)
    } finally {
      await plain.stop();
    }
  });
});

// --- watches ----------------------------------------------------------------------------

describe('C client: watches', () => {
  it('data, exist and child watches fire once, with the right type and path', async () => {
    await a.create('/w', '', K.ZOO_PERSISTENT);
    const data = new Watch();
    await a.w_get('/w', data.fn);
    const exist = new Watch();
    expect(await rc(a.w_exists('/w/new', exist.fn))).toBe(K.ZNONODE); // the watch is set anyway
    const child = new Watch();
    await a.w_get_children('/w', child.fn);
    const child2 = new Watch();
    await a.w_get_children2('/w', child2.fn);

    await b.set('/w', '1', -1);
    await b.set('/w', '2', -1);
    await b.create('/w/new', '', K.ZOO_PERSISTENT);
    await b.create('/w/other', '', K.ZOO_PERSISTENT);
    await a.exists('/w', false); // events precede this reply
    expect(data.events).toEqual([{ type: K.ZOO_CHANGED_EVENT, path: '/w' }]);
    expect(exist.events).toEqual([{ type: K.ZOO_CREATED_EVENT, path: '/w/new' }]);
    expect(child.events).toEqual([{ type: K.ZOO_CHILD_EVENT, path: '/w' }]);
    expect(child2.events).toEqual([{ type: K.ZOO_CHILD_EVENT, path: '/w' }]);
  });

  it('a delete fires NodeDeleted to data and child watchers and NodeChildrenChanged on the parent', async () => {
    await a.create('/wd', '', K.ZOO_PERSISTENT);
    await a.create('/wd/n', '', K.ZOO_PERSISTENT);
    const data = new Watch();
    await a.w_get('/wd/n', data.fn);
    const kids = new Watch();
    await a.w_get_children('/wd/n', kids.fn);
    const viaExists = new Watch();
    await b.w_exists('/wd/n', viaExists.fn);
    const parent = new Watch();
    await b.w_get_children('/wd', parent.fn);
    await b.delete_('/wd/n', -1);
    await a.exists('/wd', false);
    await b.exists('/wd', false);
    expect(data.events).toEqual([{ type: K.ZOO_DELETED_EVENT, path: '/wd/n' }]);
    expect(kids.events).toEqual([{ type: K.ZOO_DELETED_EVENT, path: '/wd/n' }]);
    expect(viaExists.events).toEqual([{ type: K.ZOO_DELETED_EVENT, path: '/wd/n' }]);
    expect(parent.events).toEqual([{ type: K.ZOO_CHILD_EVENT, path: '/wd' }]);
  });

  it('delivers the event before the reply of a later read, and before the write’s own reply', async () => {
    await a.create('/order', '0', K.ZOO_PERSISTENT);
    const log: string[] = [];
    const w = new Watch(log);
    await a.w_get('/order', w.fn);
    await b.set('/order', '1', -1);
    const [, d] = await a.get('/order', false).then((r) => {
      log.push('read');
      return r;
    });
    expect(d.toString()).toBe('1');
    expect(log).toEqual([`event:${K.ZOO_CHANGED_EVENT}`, 'read']);

    const log2: string[] = [];
    const w2 = new Watch(log2);
    await a.w_get('/order', w2.fn);
    await Promise.all([a.set('/order', '2', -1).then(() => log2.push('set')), a.get('/order', false).then(() => log2.push('read'))]);
    expect(log2).toEqual([`event:${K.ZOO_CHANGED_EVENT}`, 'set', 'read']);
  });

  it('a watch on an ephemeral fires NodeDeleted when its session closes', async () => {
    const c = await connect();
    await c.create('/weph', 'x', K.ZOO_EPHEMERAL);
    const w = new Watch();
    await b.w_get('/weph', w.fn);
    c.close();
    expect(await w.next()).toEqual([{ type: K.ZOO_DELETED_EVENT, path: '/weph' }]);
    expect(await b.pathExists('/weph', false)).toBe(false);
  });
});

// --- ACLs -------------------------------------------------------------------------------

describe('C client: ACLs', () => {
  let alice: Zk;
  beforeAll(async () => {
    alice = await connect();
    expect(await addAuth(alice, 'digest', 'alice:secret')).toBe(K.ZOK);
  });

  it('digest ACLs, and exists needs READ (3.9)', async () => {
    await alice.create('/dg', 'private', K.ZOO_PERSISTENT);
    await alice.set_acl('/dg', 0, [{ perms: K.ZOO_PERM_ALL, scheme: 'digest', auth: digest('alice:secret') }]);
    expect((await alice.get('/dg', false))[1].toString()).toBe('private');
    expect(await rc(b.get('/dg', false))).toBe(K.ZNOAUTH);
    expect(await rc(b.exists('/dg', false))).toBe(K.ZNOAUTH);
    expect(await rc(b.set('/dg', 'x', -1))).toBe(K.ZNOAUTH);
    expect(await rc(b.get_children('/dg', false))).toBe(K.ZNOAUTH);
    expect(await rc(b.set_acl('/dg', -1, OPEN))).toBe(K.ZNOAUTH);
    expect(await rc(b.create('/dg/c', '', K.ZOO_PERSISTENT))).toBe(K.ZNOAUTH);
    expect(await b.pathExists('/dg/missing', false)).toBe(false);
    const [acl, st] = await alice.get_acl('/dg');
    expect(acl).toEqual([{ perms: K.ZOO_PERM_ALL, scheme: 'digest', auth: digest('alice:secret') }]);
    expect(st.aversion).toBe(1);
  });

  it('the auth scheme (ZOO_CREATOR_ALL_ACL) stands for the caller’s ids', async () => {
    await alice.create('/mine', '', K.ZOO_PERSISTENT);
    await alice.set_acl('/mine', -1, [{ perms: K.ZOO_PERM_ALL, scheme: 'auth', auth: '' }]);
    expect((await alice.get_acl('/mine'))[0]).toEqual([{ perms: K.ZOO_PERM_ALL, scheme: 'digest', auth: digest('alice:secret') }]);
    expect(await rc(b.get('/mine', false))).toBe(K.ZNOAUTH);
  });

  it('get_acl shows digest hashes only to ADMIN', async () => {
    await alice.create('/hide', '', K.ZOO_PERSISTENT);
    await alice.set_acl('/hide', -1, [
      { perms: K.ZOO_PERM_ALL, scheme: 'digest', auth: digest('alice:secret') },
      { perms: K.ZOO_PERM_READ, scheme: 'world', auth: 'anyone' },
    ]);
    const [seen, st] = await b.get_acl('/hide');
    expect(seen).toEqual([
      { perms: K.ZOO_PERM_ALL, scheme: 'digest', auth: 'alice:x' },
      { perms: K.ZOO_PERM_READ, scheme: 'world', auth: 'anyone' },
    ]);
    expect(st.aversion).toBe(1);
    expect((await alice.get_acl('/hide'))[0][0].auth).toBe(digest('alice:secret'));
  });

  it('world and ip ACLs (single address and CIDR)', async () => {
    await a.create('/ipacl', 'i', K.ZOO_PERSISTENT);
    await a.set_acl('/ipacl', -1, [{ perms: K.ZOO_PERM_ALL, scheme: 'ip', auth: '127.0.0.1' }]);
    await b.set('/ipacl', 'ok', -1);
    await a.create('/cidr', 'c', K.ZOO_PERSISTENT);
    await a.set_acl('/cidr', -1, [{ perms: K.ZOO_PERM_READ, scheme: 'ip', auth: '127.0.0.0/8' }]);
    expect((await b.get('/cidr', false))[1].toString()).toBe('c');
    expect(await rc(b.set('/cidr', 'x', -1))).toBe(K.ZNOAUTH);
    await a.create('/far', 'f', K.ZOO_PERSISTENT);
    await a.set_acl('/far', -1, [{ perms: K.ZOO_PERM_ALL, scheme: 'ip', auth: '192.168.0.0/16' }]);
    expect(await rc(b.get('/far', false))).toBe(K.ZNOAUTH);
    expect(await rc(b.exists('/far', false))).toBe(K.ZNOAUTH);
    await a.create('/world-ro', 'w', K.ZOO_PERSISTENT);
    await a.set_acl('/world-ro', -1, [{ perms: K.ZOO_PERM_READ, scheme: 'world', auth: 'anyone' }]);
    expect((await b.get('/world-ro', false))[1].toString()).toBe('w');
    expect(await rc(b.set('/world-ro', 'x', -1))).toBe(K.ZNOAUTH);
    expect(await rc(b.create('/world-ro/c', '', K.ZOO_PERSISTENT))).toBe(K.ZNOAUTH);
    expect(await rc(a.set_acl('/world-ro', -1, OPEN))).toBe(K.ZNOAUTH); // no ADMIN
  });

  it('set_acl checks the aversion', async () => {
    await a.create('/av', '', K.ZOO_PERSISTENT);
    await a.set_acl('/av', 0, OPEN);
    expect(await rc(a.set_acl('/av', 0, OPEN))).toBe(K.ZBADVERSION);
    await a.set_acl('/av', 1, OPEN);
    expect((await a.exists('/av', false))).toMatchObject({ aversion: 2, version: 0 });
  });

  it('the super user gets past every ACL', async () => {
    await alice.create('/vault', 'gold', K.ZOO_PERSISTENT);
    await alice.set_acl('/vault', -1, [{ perms: K.ZOO_PERM_READ, scheme: 'digest', auth: digest('alice:secret') }]);
    const root = await connect();
    expect(await addAuth(root, 'digest', 'super:secret')).toBe(K.ZOK);
    expect((await root.get('/vault', false))[1].toString()).toBe('gold');
    await root.set('/vault', 'lead', -1);
    await root.create('/vault/c', '', K.ZOO_PERSISTENT);
    await root.delete_('/vault/c', -1);
    expect((await root.get_acl('/vault'))[0][0].auth).toBe(digest('alice:secret'));
    await root.set_acl('/vault', -1, OPEN);
    expect((await b.get('/vault', false))[1].toString()).toBe('lead');
  });

  it('an unknown auth scheme fails authentication and the client shuts down', async () => {
    const c = await connect();
    const gone = closed(c);
    const r = addAuth(c, 'nosuchscheme', 'x');
    expect(await gone).toBe(K.ZOO_AUTH_FAILED_STATE);
    expect(await r).toBe(K.ZAUTHFAILED);
  });
});

// --- sessions ---------------------------------------------------------------------------

describe('C client: sessions', () => {
  it('negotiates the timeout within the server bounds', async () => {
    expect(a.timeout).toBe(15000);
    const lo = await connect({ timeout: 100 });
    expect(lo.timeout).toBe(400);
    const hi = await connect({ timeout: 60000 });
    expect(hi.timeout).toBe(20000);
    expect(lo.client_id).not.toBe(hi.client_id);
    expect(lo.client_password).toMatch(/^[0-9A-F]{32}$/i);
    // Close them now: a 400 ms session would expire during another client's blocking close.
    lo.close();
    hi.close();
  });

  it('resumes with the session id and password: same session, ephemerals kept; a wrong password is refused', async () => {
    const proxy = await TcpProxy.start(ts.port);
    try {
      const first = await connect({ connect: proxy.connect, timeout: 6000 });
      await first.create('/resumed', 'r', K.ZOO_EPHEMERAL);
      const id = first.client_id;
      const pw = first.client_password;
      // Cut the first client off, and once it knows, let it go without a closeSession
      // (it is not connected, so zookeeper_close sends nothing): the session lives on.
      // (Left retrying, its reconnect loop would share fds with the clients opened below,
      // which the binding's poll handles do not survive.)
      const lost = new Promise<void>((res) => first.once('connecting', () => res()));
      proxy.partition();
      await lost;
      first.close();

      // A wrong password is refused as expired (while no connection holds the session:
      // ZooKeeper would drop the holder's connection first, and the binding copes badly
      // with reconnects, see below).
      const badPw = (pw[0] === '0' ? '1' : '0') + pw.slice(1);
      const refused = newClient({ client_id: id, client_password: badPw });
      await expect(start(refused)).rejects.toMatchObject({ code: K.ZOO_EXPIRED_SESSION_STATE });
      // The session is unharmed.
      expect((await b.exists('/resumed', false)).ephemeralOwner).toBe(id);

      const second = await connect({ client_id: id, client_password: pw, timeout: 6000 });
      expect(second.client_id).toBe(id);
      const st = await second.exists('/resumed', false);
      expect(st.ephemeralOwner).toBe(id);
      expect(st.createdInThisSession).toBe(true);
      await second.set('/resumed', 'still mine', -1);

      const w = new Watch();
      await b.w_exists('/resumed', w.fn);
      second.close();
      expect(await w.next()).toEqual([{ type: K.ZOO_DELETED_EVENT, path: '/resumed' }]);
    } finally {
      await proxy.close();
    }
  });

  it('expires a session whose client stops pinging; the expired session cannot be resumed', async () => {
    const proxy = await TcpProxy.start(ts.port);
    try {
      const victim = await connect({ connect: proxy.connect, timeout: 1000 });
      expect(victim.timeout).toBe(1000);
      await victim.create('/doomed', '', K.ZOO_EPHEMERAL);
      await victim.create('/doomed-seq-', '', K.ZOO_EPHEMERAL_SEQUENTIAL);
      const w = new Watch();
      await b.w_exists('/doomed', w.fn);
      const id = victim.client_id;
      const pw = victim.client_password;

      const t0 = Date.now();
      const lost = new Promise<void>((res) => victim.once('connecting', () => res()));
      proxy.partition();
      await lost;
      // The process is gone as far as the server can tell: no pings, no closeSession.
      // (The binding cannot be left in its reconnect loop: its poll handle goes deaf when
      // the C library reconnects on a reused fd number, so the victim stops here.)
      victim.close();
      expect(await w.next(1, 5000)).toEqual([{ type: K.ZOO_DELETED_EVENT, path: '/doomed' }]);
      const elapsed = Date.now() - t0;
      // Not before the timeout, and within a couple of ticks after it.
      expect(elapsed).toBeGreaterThanOrEqual(800);
      expect(elapsed).toBeLessThan(2500);
      expect(await b.pathExists('/doomed', false)).toBe(false);
      expect((await b.get_children('/', false)).filter((c) => c.startsWith('doomed-seq-'))).toEqual([]);

      // Coming back with the session's id and password: ZooKeeper's answer is "expired",
      // and the C client shuts down with ZOO_EXPIRED_SESSION_STATE.
      const late = newClient({ client_id: id, client_password: pw });
      await expect(start(late)).rejects.toMatchObject({ code: K.ZOO_EXPIRED_SESSION_STATE });
    } finally {
      await proxy.close();
    }
  });
});
