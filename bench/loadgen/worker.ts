// worker_threads entry: hosts one Engine and answers the coordinator's calls, so the
// load generator never shares an event loop with the coordinator or the server.

import { parentPort } from 'node:worker_threads';
import { Engine } from './engine.js';

if (parentPort === null) throw new Error('bench/loadgen/worker.js must run as a worker thread');
const port = parentPort;
const engine = new Engine();

port.on('message', (m: { id: number; method: string; args: unknown }) => {
  const f = (engine as unknown as Record<string, (a: unknown) => Promise<unknown>>)[m.method];
  if (typeof f !== 'function') {
    port.postMessage({ id: m.id, error: `unknown method ${m.method}` });
    return;
  }
  f.call(engine, m.args).then(
    (result) => port.postMessage({ id: m.id, result }),
    (e: Error) => port.postMessage({ id: m.id, error: e.stack ?? e.message }),
  );
});

setInterval(() => port.postMessage({ progress: engine.progress() }), 250).unref();
