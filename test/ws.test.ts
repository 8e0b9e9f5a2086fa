import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { RawClient } from '../src/client/raw.js';
import { connect } from '../src/client/index.js';
import type { WebSocketCtor } from '../src/client/ws-transport.js';
import { type PFrame, decodeFrames, encodeFrames, idToBytes } from '../src/ws/proto.js';
import { startServer, type TestServer } from './helpers/server.js';
import { freePort, startCorralProcess } from './helpers/process.js';

// The WebSocket endpoint at the protocol level: raw protobuf frames over a `ws` socket.

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer('wsPort=0');
});
afterAll(async () => {
  await srv?.stop();
});

class Peer {
  readonly frames: PFrame[] = [];
  closeCode: number | undefined;
  readonly closed: Promise<number>;
  private waiters: (() => void)[] = [];
  constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => {
      this.frames.push(...decodeFrames(new Uint8Array(d)));
      for (const f of this.waiters.splice(0)) f();
    });
    this.closed = new Promise((r) => ws.on('close', (code) => {
      this.closeCode = code;
      for (const f of this.waiters.splice(0)) f();
      r(code);
    }));
  }
  static open(port: number): Promise<Peer> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new Peer(ws)));
      ws.once('error', reject);
    });
  }
  send(frames: PFrame[]): void {
    this.ws.send(encodeFrames(frames));
  }
  async waitFor(pred: (f: PFrame) => boolean, ms = 5000): Promise<PFrame> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.frames.findIndex(pred);
      if (i >= 0) return this.frames.splice(i, 1)[0]!;
      if (this.closeCode !== undefined || Date.now() > deadline) throw new Error(`no such frame (closed ${this.closeCode}); have ${JSON.stringify(this.frames)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => { clearTimeout(t); r(); });
      });
    }
  }
  response(id: number) {
    return this.waitFor((f) => f.response?.id === id).then((f) => f.response!);
  }
}

const OPEN = [{ perms: 31, scheme: 'world', id: 'anyone' }];

describe('websocket protocol', () => {
  it('connects, pipelines requests in one message, gets responses and a watch event', async () => {
    const p = await Peer.open(srv.wsPort!);
    p.send([
      { connect: { timeoutMs: 10000 } },
      { request: { id: 1, create: { path: '/ws1', data: new TextEncoder().encode('hi'), acl: OPEN } } },
      { request: { id: 2, getData: { path: '/ws1', watch: true } } },
      { request: { id: 3, exists: { path: '/nope' } } },
    ]);
    const c = (await p.waitFor((f) => !!f.connected)).connected!;
    expect(c.timeoutMs).toBe(10000);
    expect(c.sessionId!.length).toBe(8);
    expect((await p.response(1)).path!.path).toBe('/ws1');
    const g = await p.response(2);
    expect(new TextDecoder().decode(g.data!.data!)).toBe('hi');
    expect(g.data!.stat!.version).toBe(0);
    expect((await p.response(3)).err).toBe(-101);
    p.send([{ request: { id: 4, setData: { path: '/ws1', data: new Uint8Array([1]), version: 0 } } }]);
    const ev = (await p.waitFor((f) => !!f.event)).event!;
    expect(ev).toMatchObject({ type: 3, path: '/ws1', state: 3 });
    expect((await p.response(4)).stat!.stat!.version).toBe(1);
    p.send([{ request: { id: 5, close: {} } }]);
    expect((await p.response(5)).err).toBe(0);
    expect(await p.closed).toBe(1000);
  });
});

describe('malformed messages get an error frame and a close, never a crash', () => {
  async function expectRejected(send: (p: Peer) => void, closeCode: number, errCode: number): Promise<void> {
    const p = await Peer.open(srv.wsPort!);
    send(p);
    const e = (await p.waitFor((f) => !!f.error)).error!;
    expect(e.code).toBe(errCode);
    expect(e.closeCode).toBe(closeCode);
    expect(await p.closed).toBe(closeCode);
  }

  it('undecodable bytes', async () => {
    await expectRejected((p) => p.ws.send(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])), 1007, -5);
  });

  it('a request before connect', async () => {
    await expectRejected((p) => p.send([{ request: { id: 1, ping: {} } }]), 1002, -5);
  });

  it('a server-side frame from a client', async () => {
    await expectRejected((p) => p.send([{ connect: {} }, { response: { id: 1 } }]), 1002, -5);
  });

  it('a request naming no operation', async () => {
    await expectRejected((p) => p.send([{ connect: {} }, { request: { id: 1 } }]), 1007, -5);
  });

  it('a session id that is not 8 bytes', async () => {
    await expectRejected((p) => p.send([{ connect: { sessionId: new Uint8Array(3) } }]), 1007, -5);
  });

  it('a text message', async () => {
    await expectRejected((p) => p.ws.send('hello'), 1003, -5);
  });

  it('a message larger than jute.maxbuffer', async () => {
    const big = new Uint8Array(srv.config.juteMaxBuffer + 2048);
    await expectRejected((p) => p.send([{ connect: {} }, { request: { id: 1, create: { path: '/big', data: big } } }]), 1009, -5);
  });

  it('a message far over jute.maxbuffer: uWS cuts the connection', async () => {
    const p = await Peer.open(srv.wsPort!);
    p.send([{ connect: {} }, { request: { id: 1, create: { path: '/big', data: new Uint8Array(3 * srv.config.juteMaxBuffer) } } }]);
    expect(await p.closed).toBeGreaterThanOrEqual(1000);
  });

  it('a jute frame over jute.maxbuffer from several requests in one message is refused by the core', async () => {
    const p = await Peer.open(srv.wsPort!);
    p.send([{ connect: { timeoutMs: 5000 } }]);
    await p.waitFor((f) => !!f.connected);
    // Invalid paths reach the core and come back as ordinary errors.
    p.send([{ request: { id: 7, create: { path: 'no-slash', acl: OPEN } } }]);
    expect((await p.response(7)).err).toBe(-8);
    p.send([{ request: { id: 8, close: {} } }]);
    await p.response(8);
    // The server is still fine.
    const q = await Peer.open(srv.wsPort!);
    q.send([{ connect: {} }, { request: { id: 1, ping: {} } }]);
    expect((await q.response(1)).err).toBe(0);
    q.ws.close();
  });
});

describe('one session across transports', () => {
  it('moves from TCP to WebSocket and back', async () => {
    const tcp = await RawClient.connect('127.0.0.1', srv.port, { timeout: 5000 });
    const { sessionId, passwd } = tcp.session;
    expect((await tcp.create('/moving', Buffer.from('x'), 1)).err).toBe(0);
    // The same session over WebSocket: the server moves it (and closes the TCP connection).
    const ws = await connect(`127.0.0.1:${srv.wsPort}`, {
      transport: 'ws', WebSocket: WebSocket as unknown as WebSocketCtor, sessionId, password: passwd,
    });
    expect(ws.sessionId).toBe(sessionId);
    await tcp.closed;
    expect(await ws.getEphemerals('/moving')).toEqual(['/moving']);
    expect((await ws.exists('/moving'))!.ephemeralOwner).toBe(sessionId);
    ws.on('disconnected', () => void ws.close());
    // And back to TCP.
    const back = await RawClient.connect('127.0.0.1', srv.port, { timeout: 5000, sessionId, passwd });
    expect(back.session.sessionId).toBe(sessionId);
    expect((await back.exists('/moving')).err).toBe(0);
    await waitClosed(() => ws.state === 'closed');
    expect((await back.closeSession()).err).toBe(0);
    const check = await RawClient.connect('127.0.0.1', srv.port);
    expect((await check.exists('/moving')).err).toBe(-101);
    check.close();
  });
});

async function waitClosed(f: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!f() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(f()).toBe(true);
}

describe('backpressure', () => {
  it('drops a client that does not read, with a log line', async () => {
    const p = await Peer.open(srv.wsPort!);
    p.send([{ connect: { timeoutMs: 5000 } }, { request: { id: 1, create: { path: '/fat', data: new Uint8Array(900_000), acl: OPEN } } }]);
    expect((await p.response(1)).err).toBe(0);
    // Stop reading, then ask for ~36 MB of replies.
    (p.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const reqs: PFrame[] = [];
    for (let i = 0; i < 40; i++) reqs.push({ request: { id: 10 + i, getData: { path: '/fat' } } });
    p.send(reqs);
    await waitClosed(() => srv.logs.some((l) => l.includes('dropping client') && l.includes('unread')));
    const line = srv.logs.find((l) => l.includes('dropping client'))!;
    expect(line).toMatch(/backpressure drops so far: [1-9]/);
    expect(srv.server.stats.wsBackpressureDrops).toBeGreaterThanOrEqual(1); // mntr's zk_ws_backpressure_drops
    (p.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    expect(await p.closed).toBe(1006); // cut, not closed politely: a close frame would wait behind the unread data
    const q = await Peer.open(srv.wsPort!);
    q.send([{ connect: {} }, { request: { id: 1, delete: { path: '/fat', version: -1 } } }]);
    expect((await q.response(1)).err).toBe(0);
    q.ws.close();
  });
});

describe('fuzz: the server survives arbitrary messages', () => {
  it('random bytes, truncated and bit-flipped valid messages, odd field values', async () => {
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const valid: PFrame[][] = [
      [{ connect: { timeoutMs: 3000 } }, { request: { id: 1, create: { path: '/fz', data: new Uint8Array(3), acl: OPEN, flags: 1 } } }],
      [{ connect: { sessionId: new Uint8Array(3) } }],
      [{ connect: {} }, { request: { id: 1, multi: { ops: [{}, { delete: { path: '/x' } }] } } }],
      [{ connect: {} }, { request: { id: 2, setAcl: { path: '/', acl: [{ perms: 31, scheme: 'nope', id: '' }] } } }],
      [{ connect: {} }, { request: { id: 3, createTtl: { path: '/t', flags: 5, ttl: -1, acl: OPEN } } }],
      [{ connect: {} }, { request: { id: 4, addWatch: { path: '/', mode: 9 } } }, { request: { id: 5, removeWatches: { path: '/', type: 77 } } }],
      [{ connect: {} }, { request: { id: 6, setWatches: { relativeZxid: 1e15, data: ['/a'], recursive: ['/'] } } }],
      [{ connect: {} }, { request: { id: 7, auth: { scheme: 'digest', auth: new Uint8Array(0) } } }],
    ];
    for (let i = 0; i < 150; i++) {
      const p = await Peer.open(srv.wsPort!);
      let msg: Uint8Array;
      const base = encodeFrames(valid[rnd(valid.length)]!);
      switch (rnd(3)) {
        case 0:
          msg = Uint8Array.from({ length: 1 + rnd(200) }, () => rnd(256));
          break;
        case 1:
          msg = base.subarray(0, rnd(base.length));
          break;
        default:
          msg = Uint8Array.from(base);
          for (let k = 0; k < 1 + rnd(4); k++) msg[rnd(msg.length)] ^= 1 << rnd(8);
      }
      p.ws.send(msg);
      await Promise.race([p.closed, new Promise((r) => setTimeout(r, 30))]);
      p.ws.terminate();
    }
    // Still serving.
    const q = await Peer.open(srv.wsPort!);
    q.send([{ connect: {} }, { request: { id: 1, exists: { path: '/' } } }]);
    expect((await q.response(1)).err).toBe(0);
    q.ws.close();
    expect(srv.logs.filter((l) => l.startsWith('[ERROR]'))).toEqual([]);
  });
});

describe.each([1, 2])('the real `corral start` process with serverThreads=%i', (threads) => {
  it('serves WebSocket clients, shares sessions with TCP, and stops cleanly', async () => {
    const wsPort = await freePort();
    const p = await startCorralProcess(`serverThreads=${threads}\nwsPort=${wsPort}\nwsPortAddress=127.0.0.1`);
    try {
      const c = await connect(`127.0.0.1:${wsPort}`, { transport: 'ws', WebSocket: WebSocket as unknown as WebSocketCtor });
      await c.create('/proc', 'v');
      const fired = new Promise((r) => void c.getData('/proc', r));
      const tcp = await RawClient.connect('127.0.0.1', p.port);
      expect((await tcp.setData('/proc', Buffer.from('w'))).err).toBe(0);
      expect(await fired).toMatchObject({ type: 3, path: '/proc' });
      // The WebSocket session continues over TCP.
      c.on('disconnected', () => void c.close());
      const moved = await RawClient.connect('127.0.0.1', p.port, { sessionId: c.sessionId, passwd: Buffer.from(c.password) });
      expect(moved.session.sessionId).toBe(c.sessionId);
      expect((await moved.delete('/proc')).err).toBe(0);
      moved.close();
      tcp.close();
      expect(p.output()).toContain(`websocket listener on 127.0.0.1:${wsPort}`);
      // An open WebSocket must not keep the process from stopping (or abort it).
      const open = await Peer.open(wsPort);
      expect(await p.stop()).toBe(0);
      expect(await open.closed).toBeGreaterThanOrEqual(1000);
    } finally {
      p.cleanup();
    }
  });
});
