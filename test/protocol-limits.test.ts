// Server limits: jute.maxbuffer, maxClientCnxns, globalOutstandingLimit.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseZooCfg } from '../src/config/zoocfg.js';
import { CorralServer } from '../src/server/server.js';
import { RawClient, type Reply } from '../src/client/raw.js';
import { Err, OpCode } from '../src/protocol/constants.js';
import { Connection } from '../src/server/connection.js';
import { ByteSocket, closedWithin, connectFrame, logsFor, mustCreate, requestFrame, sleep, until } from './helpers/proto.js';
import { startServer, type TestServer } from './helpers/server.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
  vi.restoreAllMocks();
});

async function server(cfg: string): Promise<TestServer> {
  const ts = await startServer(cfg);
  cleanup.push(() => ts.stop());
  return ts;
}

async function client(ts: TestServer): Promise<RawClient> {
  const c = await RawClient.connect('127.0.0.1', ts.port);
  cleanup.push(() => c.close());
  return c;
}

describe('jute.maxbuffer', () => {
  it('closes a connection that announces a longer frame; others keep working', async () => {
    const ts = await server('jute.maxbuffer=10000');
    const other = await client(ts);
    const c = await client(ts);
    const port = c.socket.localPort!;
    await mustCreate(c, '/big');
    // Exactly jute.maxbuffer is fine: 8 (header) + 8 ("/big") + 4 + data + 4 (version).
    const data = Buffer.alloc(10000 - 24, 0x61);
    const ok = await c.setData('/big', data);
    expect(ok.err).toBe(0);
    // One byte more is a "Len error": the connection is closed before the body arrives.
    const w = Buffer.alloc(4 + 8);
    w.writeInt32BE(10001, 0);
    w.writeInt32BE(99, 4);
    w.writeInt32BE(OpCode.getData, 8);
    c.sendRaw(w);
    expect(await closedWithin(c)).toBe(true);
    const lines = logsFor(ts.logs, port);
    expect(lines.filter((l) => l.includes('closing connection'))).toHaveLength(1);
    expect(lines.join('\n')).toMatch(/10001/);
    const g = await other.getData('/big');
    expect(g.err).toBe(0);
    expect(g.body.buffer()!.length).toBe(10000 - 24);
  });

  it('applies to the ConnectRequest too', async () => {
    const ts = await server('jute.maxbuffer=10000');
    for (const len of [10001, 2 ** 31 - 1]) {
      const s = await ByteSocket.open(ts.port);
      const port = s.localPort;
      const b = Buffer.alloc(64);
      b.writeInt32BE(len, 0);
      s.write(b);
      expect(await s.waitClosed()).toBe(true);
      expect(s.received.length).toBe(0);
      expect(logsFor(ts.logs, port)).toHaveLength(1);
    }
    const c = await client(ts);
    expect((await c.exists('/')).err).toBe(0);
  });
});

describe('maxClientCnxns', () => {
  it('closes the 4th connection from one address when the limit is 3', async () => {
    const ts = await server('maxClientCnxns=3');
    const cs = [await client(ts), await client(ts), await client(ts)];
    const fourth = await ByteSocket.open(ts.port);
    const port = fourth.localPort;
    fourth.write(connectFrame({ readOnly: false }));
    expect(await fourth.waitClosed()).toBe(true);
    expect(fourth.received.length).toBe(0);
    const lines = logsFor(ts.logs, port);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/max is 3/);
    for (const c of cs) expect((await c.exists('/')).err).toBe(0);
    // A freed slot can be used again.
    cs[0].close();
    await cs[0].closed;
    await until(() => ts.server.connections.size === 2, 2000, 'the server to notice the close');
    const again = await client(ts);
    expect((await again.exists('/')).err).toBe(0);
    // Connections that are still handshaking count too.
    const fifth = await ByteSocket.open(ts.port);
    expect(await fifth.waitClosed()).toBe(true);
  });
});

describe('globalOutstandingLimit', () => {
  it('pauses reading but answers all 200 pipelined requests, in order', async () => {
    const ts = await server('globalOutstandingLimit=5');
    const pause = vi.spyOn(Connection.prototype, 'pause');
    const c = await client(ts);
    await mustCreate(c, '/thr');
    const order: number[] = [];
    const ps: Promise<Reply>[] = [];
    c.socket.cork();
    for (let i = 0; i < 200; i++) {
      const p =
        i % 4 === 0
          ? c.create(`/thr/n${i}`, Buffer.from(String(i)))
          : i % 4 === 1
            ? c.getData(`/thr/n${i - 1}`)
            : i % 4 === 2
              ? c.setData(`/thr/n${i - 2}`, Buffer.from(`v${i}`))
              : c.getData(`/thr/n${i - 3}`);
      ps.push(p.then((r) => (order.push(i), r)));
    }
    c.socket.uncork();
    const rs = await Promise.all(ps);
    expect(order).toEqual([...Array(200).keys()]);
    expect(rs.every((r) => r.err === 0)).toBe(true);
    for (let i = 0; i < 200; i += 4) {
      expect(rs[i + 1].body.buffer()!.toString()).toBe(String(i));
      expect(rs[i + 3].body.buffer()!.toString()).toBe(`v${i + 2}`);
    }
    expect(pause).toHaveBeenCalled();
    expect(ts.server.outstandingRequests).toBe(0);
    expect(ts.logs.filter((l) => l.startsWith('[WARN]') || l.startsWith('[ERROR]'))).toEqual([]);
  });

  it('several pipelining clients at once all finish', async () => {
    const ts = await server('globalOutstandingLimit=5');
    const cs = await Promise.all([0, 1, 2, 3].map(() => client(ts)));
    await mustCreate(cs[0], '/thr2');
    const results = await Promise.all(
      cs.map(async (c, k) => {
        const ps: Promise<Reply>[] = [];
        for (let i = 0; i < 150; i++)
          ps.push(i % 2 === 0 ? c.create(`/thr2/c${k}-${i}`) : c.exists(`/thr2/c${k}-${i - 1}`));
        return Promise.all(ps);
      }),
    );
    for (const rs of results) expect(rs.map((r) => r.err)).toEqual(Array(150).fill(0));
    expect(ts.server.outstandingRequests).toBe(0);
  });

  it('requests left unanswered by a closed connection do not stay outstanding', async () => {
    // A log that takes a while to make writes durable (as fsync does), so that the
    // client can vanish while its write is in flight and its reads wait behind it.
    const dir = mkdtempSync(join(tmpdir(), 'corral-limits-'));
    const { config } = parseZooCfg(`dataDir=${dir}\nclientPort=0\nclientPortAddress=127.0.0.1\nglobalOutstandingLimit=5\n`, 'test.cfg');
    const logs: string[] = [];
    const srv = new CorralServer(config, {
      logger: (level, msg) => logs.push(`[${level}] ${msg}`),
      txnLog: { append: () => sleep(30), close: async () => {} },
    });
    const { port } = await srv.start();
    cleanup.push(async () => {
      await srv.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    const ts = { port, server: srv } as TestServer;
    for (let k = 0; k < 4; k++) {
      const c = await RawClient.connect('127.0.0.1', ts.port);
      // A write with reads queued behind it, then the client vanishes.
      const frames = [requestFrame(1, OpCode.create, (w) => w.ustring(`/gone${k}`).buffer(null).int(1).int(31).ustring('world').ustring('anyone').int(0))];
      for (let i = 2; i < 12; i++) frames.push(requestFrame(i, OpCode.exists, (w) => w.ustring('/').bool(false)));
      c.sendRaw(Buffer.concat(frames));
      c.close();
      await c.closed;
    }
    await until(() => ts.server.connections.size === 0, 2000, 'connections to close');
    // The last client's write may still be in its (30 ms) append: the count must drain to
    // zero once it commits. A leaked count never would.
    await until(() => ts.server.outstandingRequests === 0, 2000, 'outstanding requests to drain');
    expect(ts.server.outstandingRequests).toBe(0);
    // One request at a time: a leaked count would leave this client paused for good.
    const c = await client(ts);
    for (let i = 0; i < 20; i++) expect((await c.exists('/')).err).toBe(0);
  });
});

describe('timeouts of idle sessions', () => {
  it('a session that stops pinging expires and its connection is closed', async () => {
    const ts = await server('tickTime=50');
    const c = await RawClient.connect('127.0.0.1', ts.port, { timeout: 100 });
    cleanup.push(() => c.close());
    expect(c.session.timeout).toBe(100);
    await mustCreate(c, '/idle-eph', '', 1);
    expect(await closedWithin(c, 3000)).toBe(true);
    const w = await client(ts);
    expect((await w.exists('/idle-eph')).err).toBe(Err.NONODE);
  });

  it('pings keep a session alive', async () => {
    const ts = await server('tickTime=50');
    const c = await RawClient.connect('127.0.0.1', ts.port, { timeout: 300 });
    cleanup.push(() => c.close());
    expect(c.session.timeout).toBe(300);
    await mustCreate(c, '/alive-eph', '', 1);
    const end = Date.now() + 1200; // four session timeouts
    while (Date.now() < end) {
      await sleep(50);
      expect((await c.ping()).err).toBe(0);
    }
    expect((await c.exists('/alive-eph')).err).toBe(0);
  });
});
