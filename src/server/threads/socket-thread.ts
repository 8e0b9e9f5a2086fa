import { createServer, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import type { CorralConfig } from '../../config/types.js';
import type { Logger } from '../log.js';
import { BytePacker, type FromWorker, type InEvent, type ToWorker } from './messages.js';

// serverThreads=2: this (main) thread owns the listener and every socket and does the
// system calls; the pipeline thread owns everything else. Node 20 cannot hand a socket
// to a worker, so bytes cross instead, batched per turn (see native-notes/threading.md).

export interface ThreadedServer {
  host: string;
  port: number;
  stop(): Promise<void>;
}

export async function startThreaded(config: CorralConfig, logger: Logger): Promise<ThreadedServer> {
  const worker = new Worker(new URL('./pipeline-worker.js', import.meta.url), { workerData: config });
  const sockets = new Map<number, Socket>();
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
              if (op.len > 0) s.end(b.subarray(op.off, op.off + op.len));
              else s.end();
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

  const net = createServer({ noDelay: true }, (s) => {
    const id = nextId++;
    sockets.set(id, s);
    push({ k: 'open', id, addr: s.remoteAddress ?? '', port: s.remotePort ?? 0 });
    s.on('data', (chunk: Buffer) => push({ k: 'data', id, ...bytes.add(chunk) }));
    s.on('error', () => {});
    s.on('close', () => {
      if (sockets.delete(id)) push({ k: 'close', id });
    });
  });
  await new Promise<void>((resolve, reject) => {
    net.once('error', reject);
    net.listen(config.clientPort, config.clientPortAddress, () => resolve());
  });
  const addr = net.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : config.clientPort;
  logger('INFO', 'serverThreads=2: sockets on the main thread, the request pipeline on a worker thread');
  return {
    host: config.clientPortAddress,
    port,
    async stop() {
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
