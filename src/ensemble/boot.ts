// Starts an ensemble member: storage recovered up to what is logged (not applied: the
// core decides what is committed), the Zab core restored from it and the epoch file,
// the peer transport, and the client listener, which refuses sessions until this
// member is a synced follower, an observer or an established leader.

import type { CorralConfig, ServerSpec } from '../config/types.js';
import { type Running, startWsListener } from '../server/boot.js';
import { openStorage, snapshotSchedule, startAutopurge } from '../server/housekeeping.js';
import type { Logger } from '../server/log.js';
import { CorralServer } from '../server/server.js';
import { zxidHex } from '../storage/zxid.js';
import { ZabPeer } from '../zab/peer.js';
import { emptyDurableState } from '../zab/types.js';
import { readHardState } from './hardstate.js';
import type { SnapState } from './messages.js';
import { QuorumPeer, type QuorumMember } from './quorum-peer.js';

export interface EnsembleRunning extends Running {
  peer: QuorumPeer;
}

/** A core tick: fine enough for prompt elections whatever tickTime is. */
export function coreTickMs(tickTime: number): number {
  return Math.max(1, Math.min(tickTime, 50));
}

export async function startEnsembleMember(
  config: CorralConfig,
  myid: number,
  servers: ServerSpec[],
  logger: Logger,
): Promise<EnsembleRunning> {
  const self = servers.find((s) => s.id === myid)!;
  const storage = await openStorage(config, logger);
  let rec;
  try {
    rec = await storage.recoverForZab();
  } catch (e) {
    await storage.close();
    throw e;
  }
  const hardState = readHardState(config.dataDir) ?? emptyDurableState().hardState;
  logger(
    'INFO',
    `server ${myid}: snapshot at zxid ${zxidHex(rec.tree.lastZxid)} (${rec.tree.nodeCount} znodes), ${rec.log.length} txns logged after it, ` +
      `currentEpoch=${hardState.currentEpoch} acceptedEpoch=${hardState.acceptedEpoch}`,
  );

  const tickMs = coreTickMs(config.tickTime);
  const perTick = (ms: number) => Math.max(1, Math.round(ms / tickMs));
  const zab = new ZabPeer(
    {
      id: myid,
      voters: servers.filter((s) => s.role === 'participant').map((s) => s.id),
      observers: servers.filter((s) => s.role === 'observer').map((s) => s.id),
      // FastLeaderElection's finalizeWait is 200 ms; notifications are resent at that pace too.
      electionTimeout: perTick(200),
      finalizeWait: perTick(200),
      initLimit: perTick(config.initLimit * config.tickTime),
      syncLimit: perTick(config.syncLimit * config.tickTime),
    },
    {
      hardState,
      snapshot: rec.snapshot === null ? null : { zxid: rec.snapshot.zxid, state: { id: rec.snapshot.id, endZxid: rec.snapshot.endZxid } satisfies SnapState },
      log: rec.log,
    },
  );
  const member = (s: ServerSpec): QuorumMember => ({
    id: s.id,
    quorum: { host: s.host, port: s.quorumPort },
    election: { host: s.host, port: s.electionPort },
  });
  const peer = new QuorumPeer({ config, zab, storage, members: servers.map(member), self: member(self), tickMs, log: logger });

  const server: CorralServer = new CorralServer(config, {
    logger,
    tree: rec.tree,
    serverId: myid,
    ensemble: peer.link,
    // Once a snapshot is durable, the Zab log before it can go.
    onCommitted: snapshotSchedule(config, storage, () => server.tree, logger, (info) => peer.compacted(info.zxid, info.id, info.endZxid)),
  });
  server.fuzzyEnd = rec.snapshot?.endZxid ?? 0;
  server.role = 'looking';
  server.quorum = { myid, servers };
  peer.server = server;
  try {
    await peer.start();
  } catch (e) {
    await peer.stop();
    await storage.close();
    throw e;
  }
  const { host, port } = await server.start(true);
  let ws;
  try {
    ws = await startWsListener(server, config, logger);
  } catch (e) {
    await peer.stop();
    await storage.close();
    throw e;
  }

  const stopPurge = startAutopurge(config, storage, logger);

  return {
    server,
    storage,
    host,
    port,
    peer,
    ws,
    async stop() {
      stopPurge();
      ws?.close();
      await peer.stop();
      server.stopServing('stopped');
      await server.stop();
      await storage.close();
    },
  };
}
