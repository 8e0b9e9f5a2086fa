import { parentPort, workerData } from 'node:worker_threads';
import type { CorralConfig } from '../../config/types.js';
import { startStandalone } from '../boot.js';
import { stdoutLogger } from '../log.js';
import { BytePacker, type FromWorker, type OutOp, type ToWorker } from './messages.js';
import { VirtualSocket } from './virtual-socket.js';

// The pipeline thread: the tree, sessions, watches, prep/apply/reply and the log all
// live here; sockets stay on the main thread. Bytes arrive in one message per turn of
// the socket thread and leave in one message per turn of this one.

const port = parentPort!;
const config = workerData as CorralConfig;
const sockets = new Map<number, VirtualSocket>();
const out = {
  ops: [] as OutOp[],
  bytes: new BytePacker(),
  scheduled: false,
  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const buf = this.bytes.take();
      const msg: FromWorker = { t: 'io', ops: this.ops, buf };
      this.ops = [];
      port.postMessage(msg, [buf]);
    });
  },
};

startStandalone(config, stdoutLogger, { listen: false }).then(
  (running) => {
    port.on('message', (m: ToWorker) => {
      if (m.t === 'stop') {
        void running.stop().then(() => port.postMessage({ t: 'stopped' } satisfies FromWorker));
        return;
      }
      const bytes = Buffer.from(m.buf);
      for (const e of m.events) {
        if (e.k === 'open') {
          const s = new VirtualSocket(e.id, e.addr, e.port, out);
          sockets.set(e.id, s);
          running.server.accept(s);
        } else if (e.k === 'data') {
          sockets.get(e.id)?.emit('data', bytes.subarray(e.off, e.off + e.len));
        } else {
          const s = sockets.get(e.id);
          sockets.delete(e.id);
          if (s !== undefined && !s.destroyed) {
            s.destroyed = true;
            s.emit('close');
          }
        }
      }
    });
    port.postMessage({ t: 'ready' } satisfies FromWorker);
  },
  (e: Error) => port.postMessage({ t: 'failed', message: e.message } satisfies FromWorker),
);
