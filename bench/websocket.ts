// WebSocket measurements for native-notes/websocket.md (#6):
//   node dist/bench/websocket.js echo        uWS vs `ws` echo servers (child processes), `ws` clients here
//   node dist/bench/websocket.js corral      Corral over TCP+jute vs WebSocket+protobuf, same client code
// Servers run as child processes; their CPU time per request comes from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import WebSocket, { WebSocketServer } from 'ws';
import { connect, type CorralClient } from '../src/client/index.js';
import type { WebSocketCtor } from '../src/client/ws-transport.js';
import { loadUws } from '../src/ws/uws.js';

const HERE = dirname(fileURLToPath(import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, in clock ticks of 10 ms
}

function waitForLine(p: ChildProcess, re: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const on = (d: Buffer) => {
      out += d.toString();
      if (re.test(out)) {
        p.stdout!.off('data', on);
        resolve();
      }
    };
    p.stdout!.on('data', on);
    p.once('exit', (c) => reject(new Error(`child exited ${c}: ${out}`)));
  });
}

// --- echo servers (child mode) --------------------------------------------------------

function echoServer(kind: string, port: number): void {
  if (kind === 'uws2') {
    // Two uWS apps on two worker threads sharing the port (SO_REUSEPORT): the kernel spreads connections.
    let up = 0;
    for (let i = 0; i < 2; i++) {
      const w = new Worker(fileURLToPath(import.meta.url), { argv: ['echo-server', 'uws', String(port)], stdout: true });
      w.stdout.on('data', (d: Buffer) => {
        if (d.toString().includes('listening') && ++up === 2) console.log('listening');
      });
    }
    return;
  }
  if (kind === 'uws') {
    const uws = loadUws();
    uws.App().ws('/*', {
      maxPayloadLength: 1 << 20,
      idleTimeout: 0,
      message: (ws, msg) => void ws.send(msg, true),
    }).listen('127.0.0.1', port, (ls) => console.log(ls ? 'listening' : 'failed'));
  } else {
    const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false }, () => console.log('listening'));
    wss.on('connection', (ws) => ws.on('message', (d: Buffer) => ws.send(d)));
  }
}

async function echoClients(port: number, seconds: number, conns: number, depth: number): Promise<number> {
  const msg = Buffer.alloc(100, 7);
  let done = 0;
  let stop = false;
  const sockets = await Promise.all(
    Array.from({ length: conns }, () => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    })),
  );
  for (const ws of sockets) {
    ws.on('message', () => {
      done++;
      if (!stop) ws.send(msg);
    });
    for (let i = 0; i < depth; i++) ws.send(msg);
  }
  await new Promise((r) => setTimeout(r, 500)); // warm up
  const d0 = done;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const n = done - d0;
  stop = true;
  for (const ws of sockets) ws.terminate();
  return n / seconds;
}

/**
 * A minimal WebSocket client on a raw TCP socket, so that the client is cheap enough for the
 * server to be the bottleneck: pre-masked 100-byte frames (zero mask), replies counted by
 * size (every echo is a 102-byte unmasked frame), one write per read.
 */
async function rawEchoClients(port: number, seconds: number, conns: number, depth: number): Promise<number> {
  const frame = Buffer.concat([Buffer.from([0x82, 0x80 | 100, 0, 0, 0, 0]), Buffer.alloc(100, 7)]);
  const many = Buffer.concat(Array.from({ length: 4096 }, () => frame));
  let done = 0;
  let stop = false;
  const socks = await Promise.all(Array.from({ length: conns }, () => new Promise<import('node:net').Socket>((resolve, reject) => {
    const s = netConnect(port, '127.0.0.1');
    s.setNoDelay(true);
    s.once('error', reject);
    s.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    let head = '';
    const onHead = (d: Buffer) => {
      head += d.toString('latin1');
      const i = head.indexOf('\r\n\r\n');
      if (i < 0) return;
      s.off('data', onHead);
      let bytes = head.length - i - 4;
      let counted = 0;
      s.on('data', (x: Buffer) => {
        bytes += x.length;
        const n = Math.floor(bytes / 102) - counted;
        counted += n;
        done += n;
        if (!stop && n > 0) s.write(many.subarray(0, Math.min(n, 4096) * frame.length));
      });
      s.write(many.subarray(0, depth * frame.length));
      resolve(s);
    };
    s.on('data', onHead);
  })));
  await new Promise((r) => setTimeout(r, 500));
  const d0 = done;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const n = done - d0;
  stop = true;
  for (const s of socks) s.destroy();
  return n / seconds;
}

async function echo(seconds: number, raw: boolean): Promise<void> {
  console.log(`echo: 16 connections x 32 in flight, 100-byte binary messages, ${seconds}s, ` +
    `clients in this process: ${raw ? 'raw frames on net sockets' : 'the ws package'}`);
  for (const kind of ['uws', 'uws2', 'ws']) {
    const port = await freePort();
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'echo-server', kind, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await waitForLine(child, /listening/);
    const c0 = cpuMs(child.pid!);
    const t0 = Date.now();
    const rate = raw ? await rawEchoClients(port, seconds, 16, 32) : await echoClients(port, seconds, 16, 32);
    const cpu = cpuMs(child.pid!) - c0;
    const wall = Date.now() - t0;
    console.log(`  ${kind.padEnd(4)} ${Math.round(rate).toLocaleString('en')} msgs/s; server CPU ${(cpu / wall * 100).toFixed(0)}% of a core, ` +
      `${((cpu * 1000) / (rate * (wall / 1000))).toFixed(1)} µs per message`);
    child.kill('SIGKILL');
  }
}

// --- Corral over both transports ------------------------------------------------------------

interface RunResult { ops: number; p50: number; p99: number; cpuUs: number }

async function corralRun(clients: CorralClient[], depth: number, seconds: number, op: 'read' | 'write', pid: number): Promise<RunResult> {
  const data = new Uint8Array(100);
  let stop = false;
  let n = 0;
  const lat: number[] = [];
  let measuring = false;
  const loop = async (c: CorralClient, i: number) => {
    const path = `/bench-${i % clients.length}`;
    while (!stop) {
      const t = performance.now();
      if (op === 'read') await c.getData(path);
      else await c.setData(path, data);
      if (measuring) {
        n++;
        if (lat.length < 2_000_000) lat.push(performance.now() - t);
      }
    }
  };
  const loops = clients.flatMap((c, ci) => Array.from({ length: depth }, () => loop(c, ci)));
  await new Promise((r) => setTimeout(r, 500));
  measuring = true;
  const c0 = cpuMs(pid);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const wall = performance.now() - t0;
  const cpu = cpuMs(pid) - c0;
  stop = true;
  await Promise.all(loops);
  lat.sort((a, b) => a - b);
  return {
    ops: n / (wall / 1000),
    p50: lat[Math.floor(lat.length * 0.5)] ?? 0,
    p99: lat[Math.floor(lat.length * 0.99)] ?? 0,
    cpuUs: (cpu * 1000) / n,
  };
}

async function corral(seconds: number, forceSync: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'corral-wsbench-'));
  const [port, wsPort] = [await freePort(), await freePort()];
  writeFileSync(join(dir, 'zoo.cfg'), `tickTime=2000\ndataDir=${dir}/data\nclientPort=${port}\nclientPortAddress=127.0.0.1\n` +
    `wsPort=${wsPort}\nwsPortAddress=127.0.0.1\nforceSync=${forceSync}\n`);
  const child = spawn(process.execPath, [join(HERE, '../src/cli/main.js'), 'start', join(dir, 'zoo.cfg')], { stdio: ['ignore', 'pipe', 'inherit'] });
  await waitForLine(child, /serving clients/);
  console.log(`corral (forceSync=${forceSync}): 100-byte values, ${seconds}s per run, Corral in a child process, clients here (CorralClient)`);
  try {
    for (const transport of ['tcp', 'ws'] as const) {
      const addr = `127.0.0.1:${transport === 'tcp' ? port : wsPort}`;
      const open = () => connect(addr, { transport, WebSocket: WebSocket as unknown as WebSocketCtor });
      const clients = await Promise.all(Array.from({ length: 16 }, open));
      if (transport === 'tcp') await Promise.all(clients.map((c, i) => c.create(`/bench-${i}`, new Uint8Array(100)).catch(() => '')));
      for (const op of ['read', 'write'] as const) {
        const thr = await corralRun(clients, 16, seconds, op, child.pid!);
        const one = await corralRun(clients.slice(0, 1), 1, seconds, op, child.pid!);
        console.log(`  ${transport.padEnd(3)} ${op.padEnd(5)} 16x16 in flight: ${Math.round(thr.ops).toLocaleString('en')} ops/s, ` +
          `p50 ${thr.p50.toFixed(2)} ms, p99 ${thr.p99.toFixed(2)} ms, server CPU ${thr.cpuUs.toFixed(1)} µs/op | ` +
          `1 in flight: ${Math.round(one.ops).toLocaleString('en')} ops/s, p50 ${one.p50.toFixed(3)} ms, p99 ${one.p99.toFixed(3)} ms`);
      }
      await Promise.all(clients.map((c) => c.close()));
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

const [mode, a, b] = process.argv.slice(2);
// (a uws2 worker thread runs this file with argv echo-server uws <port>)
if (mode === 'echo-server') echoServer(a!, Number(b));
else if (mode === 'echo') await echo(Number(a ?? 5), b === 'raw');
else if (mode === 'corral') await corral(Number(a ?? 5), b ?? 'yes');
else {
  console.error('usage: websocket.js echo [seconds] [raw] | corral [seconds] [forceSync yes|no]');
  process.exit(2);
}
if (mode === 'echo' || mode === 'corral') process.exit(0);
