import type { CorralConfig } from '../config/types.js';
import { treeDigest } from '../storage/digest.js';
import type { Storage } from '../storage/storage.js';
import type { Logger } from './log.js';
import { openStorage, snapshotSchedule, startAutopurge } from './housekeeping.js';
import { CorralServer, type TxnLog } from './server.js';
import type { WsListener } from '../ws/listener.js';

// Wires a standalone server to its storage: recover the tree, serve, snapshot every
// snapCount txns (randomised as ZooKeeper does, so an ensemble's members don't all
// snapshot at once), purge old snapshots and log on the autopurge schedule.

export interface Running {
  server: CorralServer;
  storage: Storage;
  host: string;
  port: number;
  /** The WebSocket listener (wsPort set and listening), with its bound port. */
  ws?: WsListener;
  stop(): Promise<void>;
}

export interface StandaloneOptions {
  /** Wraps the log the server appends to (tests observe when each batch becomes durable). */
  wrapTxnLog?: (log: TxnLog) => TxnLog;
  /** false: no listener; connections arrive through server.accept() (serverThreads=2). */
  listen?: boolean;
}

export async function startStandalone(config: CorralConfig, logger: Logger, opts: StandaloneOptions = {}): Promise<Running> {
  const storage = await openStorage(config, logger);
  const t0 = performance.now();
  let recovered;
  try {
    recovered = await storage.recover();
  } catch (e) {
    await storage.close();
    throw e;
  }
  const ms = (performance.now() - t0).toFixed(0);
  // The digest lets a test (or an operator) compare with `corral check-data`'s offline
  // replay. It hashes every znode before the server listens (~3 s at a million znodes),
  // so it is asked for, not paid on every start: CORRAL_RECOVERY_DIGEST=1.
  let digestNote = '';
  if (process.env.CORRAL_RECOVERY_DIGEST === '1') {
    const t1 = performance.now();
    digestNote = `, digest=${treeDigest(recovered.tree)} (${(performance.now() - t1).toFixed(0)} ms)`;
  }
  logger(
    'INFO',
    `recovered zxid 0x${recovered.lastZxid.toString(16)}: ${recovered.tree.nodeCount} znodes, ` +
      `${recovered.tree.sessions.size} sessions, ${recovered.replayed} txns replayed in ${ms} ms${digestNote}`,
  );

  const server: CorralServer = new CorralServer(config, {
    logger,
    txnLog: opts.wrapTxnLog ? opts.wrapTxnLog(storage) : storage,
    tree: recovered.tree,
    onCommitted: snapshotSchedule(config, storage, () => server.tree, logger),
  });
  const { host, port } = await server.start(opts.listen ?? true);
  // The WebSocket endpoint (#6) serves on the thread that owns the sockets: not in serverThreads=2's pipeline worker.
  const ws = opts.listen ?? true ? await startWsListener(server, config, logger) : undefined;

  const stopPurge = startAutopurge(config, storage, logger);

  return {
    server,
    storage,
    host,
    port,
    ws,
    async stop() {
      stopPurge();
      ws?.close();
      await server.stop(); // closes the storage once its last batch is durable
    },
  };
}

/** The WebSocket endpoint (#6) when wsPort is set; stops the server if it cannot listen. */
export async function startWsListener(server: CorralServer, config: CorralConfig, logger: Logger): Promise<WsListener | undefined> {
  if (config.wsPort === undefined) return undefined;
  let ws: WsListener;
  try {
    // Loaded only when configured: uWS and protobufjs cost ~60 ms of start-up.
    const { WsListener } = await import('../ws/listener.js');
    ws = await WsListener.start(server, { port: config.wsPort, host: config.wsPortAddress, maxMessage: config.juteMaxBuffer });
  } catch (e) {
    await server.stop();
    throw e;
  }
  logger('INFO', `websocket listener on ${config.wsPortAddress}:${ws.port}`);
  return ws;
}
