import { createServer, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import type { CorralConfig } from '../../config/types.js';
import type { Logger } from '../log.js';
import { LISTEN_BACKLOG } from '../server.js';
import type { ClientSocket } from '../connection.js';
import type { WsListener } from '../../ws/listener.js';
import { BytePacker, type FromWorker, type InEvent, type ToWorker } from './messages.js';

// serverThreads=2: this (main) thread owns the listener and every socket and does the
// system calls; the pipeline thread owns everything else. Node 20 cannot hand a socket
// to a worker, so bytes cross instead, batched per turn (see native-notes/threading.md).

export interface ThreadedServer {
  host: string;
  port: number;
  /** The WebSocket listener (wsPort), on this thread like the TCP sockets. */
  ws?: WsListener;
  stop(): Promise<void>;
}

/** What this thread does with a client socket: a net.Socket, or a WebSocket's stand-in (#6). */
interface Sock {
  write(b: Buffer): unknown;
  end(): unknown;
  destroy(): unknown;
  pause(): unknown;
  resume(): unknown;
}

export async function startThreaded(config: CorralConfig, logger: Logger): Promise<ThreadedServer> {
  const worker = new Worker(new URL('./pipeline-worker.js', import.meta.url), { workerData: config });
  const sockets = new Map<number, Sock>();
  let nextId = 1;
  let events: InEvent[] = [];
  const bytes = new BytePacker();
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const buf = bytes.take();
    const msg: ToWorker = { t: 'io', events, buf };
    events = [];
    worker.postMessage(msg, [buf]);
  };
  const push = (e: InEvent) => {
    events.push(e);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };

  let onStopped: () => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    worker.on('error', (e) => reject(e));
    worker.on('message', (m: FromWorker) => {
      if (m.t === 'ready') resolve();
      else if (m.t === 'failed') reject(new Error(m.message));
      else if (m.t === 'stopped') onStopped();
      else if (m.t === 'io') {
        const b = Buffer.from(m.buf);
        for (const op of m.ops) {
          const s = sockets.get(op.id);
          if (s === undefined) continue;
          switch (op.k) {
            case 'write':
              s.write(b.subarray(op.off, op.off + op.len));
              break;
            case 'end':
              sockets.delete(op.id);
              if (op.len > 0) s.write(b.subarray(op.off, op.off + op.len));
              s.end();
              break;
            case 'destroy':
              sockets.delete(op.id);
              s.destroy();
              break;
            case 'pause':
              s.pause();
              break;
            case 'resume':
              s.resume();
              break;
          }
        }
      }
    });
  });
  await ready;

  const register = (s: Socket | ClientSocket) => {
    const id = nextId++;
    sockets.set(id, s);
    push({ k: 'open', id, addr: s.remoteAddress ?? '', port: s.remotePort ?? 0 });
    s.on('data', (chunk: Buffer) => push({ k: 'data', id, ...bytes.add(chunk) }));
    s.on('error', () => {});
    s.on('close', () => {
      if (sockets.delete(id)) push({ k: 'close', id });
    });
  };
  const net = createServer({ noDelay: true }, register);
  await new Promise<void>((resolve, reject) => {
    net.once('error', reject);
    net.listen({ port: config.clientPort, host: config.clientPortAddress, backlog: LISTEN_BACKLOG }, () => resolve());
  });
  const addr = net.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : config.clientPort;
  logger('INFO', 'serverThreads=2: sockets on the main thread, the request pipeline on a worker thread');
  let ws: WsListener | undefined;
  if (config.wsPort !== undefined) {
    // (Its backpressure drops are logged and counted on the listener; mntr runs on the pipeline thread.)
    const { WsListener } = await import('../../ws/listener.js'); // only when configured
    ws = await WsListener.start({ accept: register, log: logger }, { port: config.wsPort, host: config.wsPortAddress, maxMessage: config.juteMaxBuffer });
    logger('INFO', `websocket listener on ${config.wsPortAddress}:${ws.port}`);
  }
  return {
    host: config.clientPortAddress,
    port,
    ws,
    async stop() {
      ws?.close();
      const closed = new Promise<void>((r) => net.close(() => r()));
      for (const s of sockets.values()) s.destroy();
      await closed;
      await new Promise<void>((r) => {
        onStopped = r;
        worker.postMessage({ t: 'stop' } satisfies ToWorker);
      });
      await worker.terminate();
    },
  };
}
