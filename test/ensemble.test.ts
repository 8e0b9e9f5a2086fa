import { afterEach, describe, expect, it } from 'vitest';
import { CorralClient } from '../src/client/client.js';
import { tcpTransport } from '../src/client/tcp-transport.js';
import { RawClient } from '../src/client/raw.js';
import { Ensemble, retry, sleep } from './helpers/ensemble.js';
import { connectNzc, type Nzc, nzcCode, zk } from './helpers/nzc.js';
import { fourLetter } from './helpers/process.js';

// Real ensembles of `corral start` processes on loopback, driven by node-zookeeper-client
// (and Corral's own client where a sync is needed): what an operator and a client see.

let ens: Ensemble | undefined;
const clients: { close(): void }[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) {
    try {
      c.close();
    } catch {
      // already closed
    }
  }
  await ens?.stop();
  ens = undefined;
});

async function nzc(connect: string, timeout = 6000): Promise<Nzc> {
  const c = await connectNzc(connect, timeout);
  clients.push(c);
  return c;
}

async function corral(connect: string): Promise<CorralClient> {
  const c = await CorralClient.connect(connect, { transport: tcpTransport(), sessionTimeout: 6000 });
  clients.push(c);
  return c;
}


describe('a 3-server ensemble', () => {
  it('elects one leader and serves on every server within 5 seconds of a simultaneous start', async () => {
    // Timed from when all three processes answer four-letter words (spawning Node is not the
    // ensemble's business): electing and syncing must fit in the 5 s.
    ens = await Ensemble.start({ participants: 3 });
    const leader = await ens.waitServing(undefined, 5000);
    const st = await ens.states();
    expect([...st.values()].sort()).toEqual(['follower', 'follower', 'leader']);
    const mntr = await fourLetter(ens.member(leader).clientPort, 'mntr');
    expect(mntr).toMatch(/^zk_server_state\tleader$/m);
    expect(mntr).toMatch(/^zk_synced_followers\t2$/m);
    expect(mntr).toMatch(/^zk_pending_syncs\t0$/m);
    const follower = [...st].find(([, s]) => s === 'follower')![0];
    expect(await fourLetter(ens.member(follower).clientPort, 'mntr')).toMatch(/^zk_server_state\tfollower$/m);
  });

  it('replicates writes made through any server; reads, watches and ephemerals follow', async () => {
    ens = await Ensemble.start({ participants: 3 });
    const leader = await ens.waitServing();
    const ids = ens.members.map((m) => m.id);
    const c = await Promise.all(ids.map((id) => nzc(ens!.connectString([id]))));
    // Session ids carry the id of the server that created them (global sessions).
    for (let i = 0; i < 3; i++) expect(c[i]!.sessionId().slice(0, 2)).toBe(`0${ids[i]}`);
    await c[0]!.create('/app', 'v0');
    // A write through a follower and one through the leader: both reach every server.
    const viaFollower = ids.findIndex((id) => id !== leader);
    await c[viaFollower]!.setData('/app', 'v1');
    // A watch set on one server fires for a write made through another.
    const fired = new Promise<string>((resolve) => void c[2]!.getData('/app', (e) => resolve(e.getName())));
    await sleep(50);
    await c[ids.indexOf(leader)]!.setData('/app', 'v2');
    expect(await fired).toBe('NODE_DATA_CHANGED');
    for (const x of c) {
      const r = await retry(async () => {
        const d = await x.getData('/app');
        if (d.data !== 'v2') throw new Error('not yet');
        return d;
      }, 3000);
      expect(r.version).toBe(2);
    }
    // Errors are decided by the leader and reported by the server the client is on.
    await expect(c[viaFollower]!.create('/app', 'x')).rejects.toSatisfy((e) => nzcCode(e) === zk.Exception.NODE_EXISTS);
    await expect(c[viaFollower]!.setData('/app', 'x', 7)).rejects.toSatisfy((e) => nzcCode(e) === zk.Exception.BAD_VERSION);
    // An ephemeral made through a follower is deleted through the log when its session closes.
    await c[viaFollower]!.create('/app/eph', 'e', zk.CreateMode.EPHEMERAL);
    expect(await c[0]!.exists('/app/eph')).toBe(true);
    c[viaFollower]!.close();
    await retry(async () => {
      for (const x of c.filter((_, i) => i !== viaFollower)) if (await x.exists('/app/eph')) throw new Error('still there');
    }, 5000);
  });

  it('sync brings a follower up to the leader before the next read', async () => {
    ens = await Ensemble.start({ participants: 3 });
    const leader = await ens.waitServing();
    const follower = ens.members.find((m) => m.id !== leader)!.id;
    const writer = await corral(ens.connectString([leader]));
    const reader = await corral(ens.connectString([follower]));
    await writer.create('/s', '0');
    for (let i = 1; i <= 50; i++) {
      await writer.setData('/s', String(i));
      await reader.sync('/s');
      const { data } = await reader.getData('/s');
      expect(new TextDecoder().decode(data)).toBe(String(i));
    }
  });

  it('refuses a client that has seen a later zxid than the server has', async () => {
    ens = await Ensemble.start({ participants: 3 });
    const leader = await ens.waitServing();
    const follower = ens.members.find((m) => m.id !== leader)!;
    const raw = await RawClient.open('127.0.0.1', follower.clientPort);
    await expect(raw.handshake({ lastZxidSeen: 0x7_0000_0000 })).rejects.toThrow();
    raw.close();
    await sleep(50);
    expect(follower.out).toMatch(/client has seen zxid 0x700000000/);
  });

  it('loses no acknowledged write and no session when the leader is killed under write load', async () => {
    ens = await Ensemble.start({ participants: 3 });
    const leader = await ens.waitServing();
    const connect = ens.connectString();
    const writers = await Promise.all([0, 1, 2].map(() => nzc(connect, 8000)));
    const sessions = writers.map((w) => w.sessionId());
    for (let i = 0; i < writers.length; i++) await writers[i]!.create(`/eph-${i}`, 'mine', zk.CreateMode.EPHEMERAL);
    const acked: string[] = [];
    let stop = false;
    const load = writers.map(async (w, i) => {
      for (let n = 0; !stop; n++) {
        const p = `/k-${i}-${n}`;
        try {
          await w.create(p, String(n));
          acked.push(p);
        } catch {
          await sleep(20); // connection loss during the failover: unknown outcome, not counted
        }
      }
    });
    await sleep(500);
    const before = acked.length;
    await ens.kill(leader);
    const killedAt = Date.now();
    const next = await ens.waitServing(ens.members.filter((m) => m.id !== leader).map((m) => m.id));
    expect(next).not.toBe(leader);
    // Writes go on after the failover.
    await retry(async () => {
      if (acked.length < before + 50) throw new Error('no progress');
    });
    const failoverMs = Date.now() - killedAt;
    stop = true;
    await Promise.all(load);
    expect(failoverMs).toBeLessThan(15000);
    // Every acknowledged create is on every surviving server.
    for (const m of ens.members.filter((x) => x.id !== leader)) {
      const c = await nzc(ens.connectString([m.id]));
      const children = new Set(await c.getChildren('/'));
      const missing = acked.filter((p) => !children.has(p.slice(1)));
      expect(missing, `server ${m.id} lost acknowledged writes`).toEqual([]);
      // Sessions survived: same ids, ephemerals still there.
      for (let i = 0; i < writers.length; i++) expect(await c.exists(`/eph-${i}`)).toBe(true);
    }
    expect(writers.map((w) => w.sessionId())).toEqual(sessions);
  });

  it('a restarted follower catches up, and a whole-ensemble restart keeps everything', async () => {
    ens = await Ensemble.start({ participants: 3 });
    const leader = await ens.waitServing();
    const follower = ens.members.find((m) => m.id !== leader)!.id;
    const c = await nzc(ens.connectString([leader]));
    await c.create('/r', 'a');
    await ens.kill(follower);
    for (let i = 0; i < 100; i++) await c.create(`/r/n${i}`, String(i));
    await ens.spawn(follower);
    await ens.waitServing();
    const f = await nzc(ens.connectString([follower]));
    expect((await f.getChildren('/r')).length).toBe(100);
    c.close();
    f.close();
    // Everyone down, everyone up.
    for (const m of ens.members) await ens.kill(m.id, 'SIGTERM');
    await Promise.all(ens.members.map((m) => ens!.spawn(m.id)));
    await ens.waitServing(undefined, 5000);
    for (const m of ens.members) {
      const x = await nzc(ens.connectString([m.id]));
      expect((await x.getChildren('/r')).length).toBe(100);
      expect((await x.getData('/r')).data).toBe('a');
    }
  });

  it('sends a snapshot to a follower that is behind what the leader still logs', async () => {
    ens = await Ensemble.start({ participants: 3, extra: 'snapCount=40' });
    const leader = await ens.waitServing();
    const follower = ens.members.find((m) => m.id !== leader)!.id;
    const c = await nzc(ens.connectString([leader]));
    await c.create('/big', '');
    await ens.kill(follower);
    for (let i = 0; i < 300; i++) await c.create(`/big/n${i}`, 'x'.repeat(50));
    await sleep(300); // let the last snapshot finish
    await ens.spawn(follower);
    await ens.waitServing();
    const f = await nzc(ens.connectString([follower]));
    expect((await f.getChildren('/big')).length).toBe(300);
    expect(ens.member(follower).out).toMatch(/installed the leader's snapshot/);
  });
});

describe('observers and partitions', () => {
  it('an observer serves reads and writes but never votes', async () => {
    ens = await Ensemble.start({ participants: 3, observers: 1 });
    await ens.waitServing();
    expect(await ens.state(4)).toBe('observer');
    const obs = await nzc(ens.connectString([4]));
    await obs.create('/o', 'through the observer');
    const other = await nzc(ens.connectString([1]));
    expect((await retry(() => other.getData('/o'))).data).toBe('through the observer');
    expect(await fourLetter(ens.member(4).clientPort, 'mntr')).toMatch(/^zk_server_state\tobserver$/m);
    // Two of three participants gone: no quorum, and the observer cannot make one.
    const leader = (await ens.leader())!;
    const others = [1, 2, 3].filter((id) => id !== leader);
    await ens.kill(leader);
    await ens.kill(others[0]!);
    await retry(async () => {
      if ((await ens!.state(4)) !== 'not serving') throw new Error('observer still serving');
      if ((await ens!.state(others[1]!)) !== 'not serving') throw new Error('participant still serving');
    }, 10000);
  });

  it('a partitioned leader stops serving; the majority elects a new one and goes on; healed, it follows', async () => {
    ens = await Ensemble.start({ participants: 3, proxied: true });
    const old = await ens.waitServing();
    const rest = ens.members.filter((m) => m.id !== old).map((m) => m.id);
    const c = await nzc(ens.connectString(rest));
    await c.create('/p', 'before');
    ens.partition(old);
    const next = await ens.waitServing(rest);
    expect(next).not.toBe(old);
    await retry(async () => {
      if ((await ens!.state(old)) !== 'not serving') throw new Error('minority still serving');
    }, 10000);
    await retry(() => c.setData('/p', 'after'));
    ens.heal(old);
    await ens.waitServing();
    expect(await ens.state(old)).toBe('follower');
    const o = await nzc(ens.connectString([old]));
    expect((await retry(async () => {
      const d = await o.getData('/p');
      if (d.data !== 'after') throw new Error('not yet');
      return d;
    })).data).toBe('after');
  });
});

describe('global sessions', () => {
  it('a session moves to another server with its ephemerals and watches, and is told what it missed', async () => {
    ens = await Ensemble.start({ participants: 3 });
    const leader = await ens.waitServing();
    const [first, second] = ens.members.filter((m) => m.id !== leader).map((m) => m.id);
    const writer = await nzc(ens.connectString([leader]));
    await writer.create('/w', '0');
    // The client knows two servers and is on `first` (node-zookeeper-client shuffles its list).
    const c = await connectNzc(ens.connectString([first!, second!]), 6000);
    clients.push(c);
    const on = (c.raw.connectionManager?.socket?.remotePort as number | undefined) ?? 0;
    const here = ens.members.find((m) => m.clientPort === on)?.id;
    expect(here === first || here === second).toBe(true);
    const session = c.sessionId();
    await c.create('/w/eph', 'e', zk.CreateMode.EPHEMERAL);
    const fired = new Promise<string>((resolve) => void c.getData('/w', (e) => resolve(e.getName())));
    await sleep(100);
    // Its server dies; the data changes while the client is between servers.
    await ens.kill(here!);
    await writer.setData('/w', 'changed while you were away');
    // It resumes the same session elsewhere; setWatches fires the event it missed.
    expect(await fired).toBe('NODE_DATA_CHANGED');
    expect(c.sessionId()).toBe(session);
    expect(await retry(() => c.exists('/w/eph'))).toBe(true);
    expect((await writer.getChildren('/w'))).toEqual(['eph']);
  });

  it('the leader expires a session whose client vanished from a follower, deleting its ephemerals everywhere', async () => {
    const { TcpProxy } = await import('./helpers/proxy.js');
    ens = await Ensemble.start({ participants: 3 });
    const leader = await ens.waitServing();
    const follower = ens.members.find((m) => m.id !== leader)!;
    const proxy = await TcpProxy.start(follower.clientPort);
    try {
      const doomed = await nzc(proxy.connect, 2000);
      await doomed.create('/gone', 'soon', zk.CreateMode.EPHEMERAL);
      const watcher = await nzc(ens.connectString([leader]));
      expect(await watcher.exists('/gone')).toBe(true);
      const deleted = new Promise<string>((resolve) => void watcher.getData('/gone', (e) => resolve(e.getName())));
      proxy.partition(); // no closeSession, no pings: only expiry can end it
      const t0 = Date.now();
      expect(await deleted).toBe('NODE_DELETED');
      const took = Date.now() - t0;
      // Not before the negotiated timeout (2000 ms, within 400..4000 for tickTime=200).
      expect(took).toBeGreaterThan(1500);
      for (const m of ens.members) {
        const x = await nzc(ens.connectString([m.id]));
        expect(await x.exists('/gone')).toBe(false);
      }
    } finally {
      await proxy.close();
    }
  });
});

describe('larger ensembles', () => {
  it('5 servers: the leader is killed under load; a new one commits writes and nothing acknowledged is lost', async () => {
    ens = await Ensemble.start({ participants: 5 });
    const leader = await ens.waitServing(undefined, 8000);
    const writers = await Promise.all([0, 1, 2, 3].map(() => nzc(ens!.connectString(), 8000)));
    const acked: string[] = [];
    let stop = false;
    const load = writers.map(async (w, i) => {
      for (let n = 0; !stop; n++) {
        try {
          await w.create(`/f-${i}-${n}`, '');
          acked.push(`f-${i}-${n}`);
        } catch {
          await sleep(20);
        }
      }
    });
    await sleep(400);
    const before = acked.length;
    await ens.kill(leader);
    await ens.waitServing(ens.members.filter((m) => m.id !== leader).map((m) => m.id));
    await retry(async () => {
      if (acked.length < before + 40) throw new Error('no progress');
    });
    stop = true;
    await Promise.all(load);
    for (const m of ens.members.filter((x) => x.id !== leader)) {
      const c = await nzc(ens.connectString([m.id]));
      const children = new Set(await c.getChildren('/'));
      expect(acked.filter((p) => !children.has(p)), `server ${m.id}`).toEqual([]);
    }
  });

  it('an observer added to a running ensemble syncs and serves reads; conf shows the membership', async () => {
    ens = await Ensemble.start({ participants: 3, observers: 1, startLater: [4] });
    const leader = await ens.waitServing([1, 2, 3]);
    const c = await nzc(ens.connectString([leader]));
    for (let i = 0; i < 20; i++) await c.create(`/pre${i}`, String(i));
    await ens.spawn(4);
    await ens.waitServing();
    expect(await ens.state(4)).toBe('observer');
    const o = await nzc(ens.connectString([4]));
    expect((await o.getData('/pre19')).data).toBe('19');
    const conf = await fourLetter(ens.member(4).clientPort, 'conf');
    expect(conf).toMatch(/^serverId=4$/m);
    expect(conf).toMatch(/^peerType=1$/m);
    expect(conf).toMatch(/^membership: $/m);
    for (const m of ens.members) {
      expect(conf).toContain(`server.${m.id}=127.0.0.1:${m.quorumPort}:${m.electionPort}:${m.observer ? 'observer' : 'participant'}\n`);
    }
    const lm = await fourLetter(ens.member(leader).clientPort, 'mntr');
    expect(lm).toMatch(/^zk_synced_observers\t1$/m);
  });
});

describe('the C client', () => {
  it('fails over with its session, ephemeral and watch when its server is killed, and syncs', async () => {
    const ZooKeeper = (await import('zookeeper')).default;
    ens = await Ensemble.start({ participants: 3 });
    const leader = await ens.waitServing();
    const order = ens.members.map((m) => m.id).sort((a, b) => (a === leader ? 1 : b === leader ? -1 : a - b));
    // host_order_deterministic: the C client tries the servers in the order given, a follower first.
    const zk = new ZooKeeper({ connect: ens.connectString(order), timeout: 6000, debug_level: 0, host_order_deterministic: true });
    clients.push({ close: () => zk.close() });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('C client did not connect')), 8000);
      zk.once('connect', () => {
        clearTimeout(t);
        resolve();
      });
      zk.init({});
    });
    const session = zk.client_id;
    await zk.create('/c', 'v0', 0);
    await zk.create('/c/eph', 'mine', ZooKeeper.constants.ZOO_EPHEMERAL);
    // The C client also tells data watchers about the connection loss (ZOO_SESSION_EVENT): skip those.
    const fired = new Promise<number>(
      (resolve) => void zk.w_get('/c', (type: number) => type !== ZooKeeper.constants.ZOO_SESSION_EVENT && resolve(type)),
    );
    await sleep(100);
    await ens.kill(order[0]!);
    const other = await nzc(ens.connectString([leader]));
    await other.setData('/c', 'v1');
    expect(await fired).toBe(ZooKeeper.constants.ZOO_CHANGED_EVENT);
    expect(zk.client_id).toBe(session);
    await retry(() => zk.sync('/c'));
    const [stat, data] = (await zk.get('/c', false)) as [{ version: number }, Buffer];
    expect(data.toString()).toBe('v1');
    expect(stat.version).toBe(1);
    expect(await zk.pathExists('/c/eph', false)).toBe(true);
  });
});

describe('bad input on the peer ports', () => {
  it('drops a connection that sends garbage, with one log line, and goes on serving', async () => {
    const { connect: tcp } = await import('node:net');
    ens = await Ensemble.start({ participants: 3 });
    const leader = await ens.waitServing();
    const victim = ens.members.find((m) => m.id !== leader)!;
    const frame = (json: unknown) => {
      const head = Buffer.from(JSON.stringify(json));
      const out = Buffer.alloc(8 + head.length);
      out.writeUInt32BE(4 + head.length, 0);
      out.writeUInt32BE(head.length, 4);
      head.copy(out, 8);
      return out;
    };
    const payloads: Buffer[] = [
      Buffer.from('GET / HTTP/1.1\r\n\r\n'), // a length of 0x47455420
      Buffer.from([0, 0, 0, 1, 0]), // shorter than a header
      frame('not an object'),
      Buffer.concat([Buffer.from([0, 0, 0, 9, 0, 0, 0, 5]), Buffer.from('{{{{{')]), // not JSON
      frame({ type: 'NOTIFICATION', from: leader, state: 'leading', round: 1 }), // no vote
      frame({ type: 'ACK', from: leader, epoch: 'x', zxid: 1, logged: 1 }), // wrong type
      frame({ type: 'PROPOSAL', from: leader, epoch: 1, prevZxid: 0, txns: [7] }), // no such blob
      frame({ type: 'PING', from: 99, epoch: 1, commitZxid: 0 }), // not a member
      frame({ type: 'HELLO', from: leader }),
    ];
    for (const port of [victim.quorumPort, victim.electionPort]) {
      for (const p of payloads) {
        const s = tcp(port, '127.0.0.1');
        s.on('error', () => undefined);
        await new Promise<void>((resolve) => s.once('connect', () => resolve()));
        s.write(p);
        await new Promise<void>((resolve) => {
          s.once('close', () => resolve());
          setTimeout(() => {
            s.destroy();
            resolve();
          }, 300);
        });
      }
    }
    expect(ens.isUp(victim.id)).toBe(true);
    expect(await ens.state(victim.id)).toBe('follower');
    const dropped = victim.out.split('\n').filter((l) => /dropping connection from/.test(l));
    expect(dropped.length).toBeGreaterThanOrEqual(2 * (payloads.length - 1));
    // Still part of the ensemble: a write through it commits.
    const c = await nzc(ens.connectString([victim.id]));
    await c.create('/still-here', 'yes');
    expect((await c.getData('/still-here')).data).toBe('yes');
  });
});

describe('WebSocket clients of an ensemble', () => {
  it('a follower serves a WebSocket session; its write goes through the leader', async () => {
    const WebSocket = (await import('ws')).default;
    const { wsTransport } = await import('../src/client/ws-transport.js');
    const { freePort } = await import('./helpers/process.js');
    const wsPorts = [await freePort(), await freePort(), await freePort()];
    ens = await Ensemble.start({
      participants: 3,
      memberExtra: { 1: `wsPort=${wsPorts[0]}`, 2: `wsPort=${wsPorts[1]}`, 3: `wsPort=${wsPorts[2]}` },
    });
    const leader = await ens.waitServing();
    const follower = ens.members.find((m) => m.id !== leader)!.id;
    const ws = await CorralClient.connect(`127.0.0.1:${wsPorts[follower - 1]}`, {
      transport: wsTransport({ WebSocket: WebSocket as never }),
      sessionTimeout: 6000,
    });
    clients.push(ws);
    await ws.create('/over-ws', 'hello');
    const tcp = await nzc(ens.connectString([leader]));
    expect((await tcp.getData('/over-ws')).data).toBe('hello');
    await tcp.setData('/over-ws', 'back');
    await ws.sync('/over-ws');
    expect(new TextDecoder().decode((await ws.getData('/over-ws')).data)).toBe('back');
  });
});
