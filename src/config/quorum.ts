// Decides from a parsed zoo.cfg whether this server runs standalone or as a quorum member, and
// checks the ensemble the way ZooKeeper 3.9's QuorumPeerConfig does (parseDynamicConfig,
// setupMyId, setupClientPort, setupPeerType, checkValidity), plus address clash checks that
// ZooKeeper leaves to bind() failures at run time. Hosts are compared as strings: no DNS.

import { join } from 'node:path';
import type { CorralConfig, ServerSpec } from './types.js';
import { ConfigError, readMyId } from './zoocfg.js';

export interface QuorumPlan {
  mode: 'standalone' | 'quorum';
  /** From `<dataDir>/myid`; 1 in standalone when there is no myid file (the id ZooKeeper uses for session ids). */
  myid: number;
  /** Quorum mode: this server's line. */
  self?: ServerSpec;
  /** Voters, sorted by id; empty in standalone. */
  participants: ServerSpec[];
  /** Sorted by id; empty in standalone. */
  observers: ServerSpec[];
  /**
   * Where this server listens for clients: its server line's `;[host:]port` when given (as ZooKeeper's
   * setupClientPort prefers it), else clientPortAddress:clientPort.
   */
  client: { host: string; port: number };
  /** One line each, prefixed with the config source. */
  warnings: string[];
}

const WILDCARDS = new Set(['', '0.0.0.0', '::', '0:0:0:0:0:0:0:0']);
const isWildcard = (host: string) => WILDCARDS.has(host);
const sameHost = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
const fmtHost = (host: string) => (host.includes(':') ? `[${host}]` : host);
const ids = (servers: ServerSpec[]) => servers.map((s) => s.id).join(', ');
const names = (servers: ServerSpec[]) => servers.map((s) => `server.${s.id}`).join(', ');
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

interface Endpoint { server: ServerSpec; kind: 'quorumPort' | 'electionPort'; port: number }

function endpoints(servers: ServerSpec[]): Endpoint[] {
  return servers.flatMap((server) => [
    { server, kind: 'quorumPort' as const, port: server.quorumPort },
    { server, kind: 'electionPort' as const, port: server.electionPort },
  ]);
}

/** Each line's own two ports must differ; no two servers may share a host:port. */
function checkAddresses(src: string, servers: ServerSpec[]): void {
  for (const s of servers) {
    // ZooKeeper's QuorumServer: "Client and election port must be different! ... on server.N".
    if (s.quorumPort === s.electionPort) {
      throw new ConfigError(
        `${src}: server.${s.id} uses port ${s.quorumPort} for both quorumPort and electionPort; give them different ports`);
    }
  }
  const eps = endpoints(servers);
  for (let i = 0; i < eps.length; i++) {
    for (let j = i + 1; j < eps.length; j++) {
      const a = eps[i]!;
      const b = eps[j]!;
      if (a.server === b.server || a.port !== b.port || !sameHost(a.server.host, b.server.host)) continue;
      throw new ConfigError(
        `${src}: server.${a.server.id} ${a.kind} and server.${b.server.id} ${b.kind} are both ` +
        `${fmtHost(a.server.host)}:${a.port}; give each server its own host:port`);
    }
  }
}

/**
 * ZooKeeper's setupClientPort: a client address in this server's line wins, but if zoo.cfg also sets
 * clientPort the two must agree (only the port when clientPortAddress is a wildcard).
 */
function resolveClient(src: string, config: CorralConfig, line: ServerSpec | undefined): { host: string; port: number } {
  const fromStatic = { host: config.clientPortAddress, port: config.clientPort };
  if (line?.clientPort === undefined) return fromStatic;
  const fromLine = { host: line.clientHost ?? '0.0.0.0', port: line.clientPort };
  // ZooKeeper only compares when clientPort is set; Corral's config always has one, so look at what the file said.
  if (config.raw.has('clientPort')) {
    const differs = isWildcard(fromStatic.host)
      ? fromStatic.port !== fromLine.port
      : fromStatic.port !== fromLine.port || !sameHost(fromStatic.host, fromLine.host);
    if (differs) {
      throw new ConfigError(
        `${src}: client address of server.${line.id} is ${fmtHost(fromStatic.host)}:${fromStatic.port} from ` +
        `clientPort/clientPortAddress but ${fmtHost(fromLine.host)}:${fromLine.port} in its server line; ` +
        `make them agree or give it in only one place`);
    }
  }
  return fromLine;
}

/** The client port must not be a quorum or election port on the same machine. */
function checkClientCollision(src: string, self: ServerSpec, client: { host: string; port: number }, servers: ServerSpec[]): void {
  if (client.port === 0) return; // ephemeral
  for (const ep of endpoints(servers)) {
    if (ep.port !== client.port) continue;
    const here = ep.server === self || sameHost(ep.server.host, self.host) ||
      (!isWildcard(client.host) && sameHost(ep.server.host, client.host));
    if (!here) continue;
    const whose = ep.server === self ? 'its own' : `server.${ep.server.id}'s`;
    throw new ConfigError(
      `${src}: client port ${client.port} of this server (server.${self.id}) is also ${whose} ${ep.kind} on ` +
      `${fmtHost(ep.server.host)}; choose a different clientPort`);
  }
}

function readMyIdFor(src: string, config: CorralConfig): number | undefined {
  try {
    return readMyId(config.dataDir);
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`${src}: ${e.message}; write this server's numeric id in it`);
    throw e;
  }
}

export function resolveQuorum(config: CorralConfig): QuorumPlan {
  const src = config.source;
  const warnings: string[] = [];
  const warn = (msg: string) => warnings.push(`${src}: ${msg}`);

  // ZooKeeper: "tickTime is not set" (0); Corral's parser already rejects <= 0 from a file.
  if (!(Number.isInteger(config.tickTime) && config.tickTime > 0)) {
    throw new ConfigError(`${src}: tickTime must be a positive number of milliseconds, got ${config.tickTime}; set tickTime (e.g. tickTime=2000)`);
  }

  const servers = [...config.servers].sort((a, b) => a.id - b.id);
  checkAddresses(src, servers);
  const participants = servers.filter((s) => s.role === 'participant');
  const observers = servers.filter((s) => s.role === 'observer');

  // parseDynamicConfig's cases, in its order.
  if (participants.length === 0) {
    if (!config.standaloneEnabled) {
      throw new ConfigError(
        `${src}: standaloneEnabled=false needs at least one participant server.N line; ` +
        `add server.N=host:quorumPort:electionPort lines or set standaloneEnabled=true`);
    }
    if (observers.length > 0) {
      throw new ConfigError(
        `${src}: no participant among the server lines (${names(observers)} ` +
        `${observers.length === 1 ? 'is an observer' : 'are all observers'}) and observers cannot form a quorum; ` +
        `make at least one a participant`);
    }
  } else if (participants.length === 1 && config.standaloneEnabled && observers.length > 0) {
    throw new ConfigError(
      `${src}: ${observers.length === 1 ? 'observer' : 'observers'} ${names(observers)} ` +
      `${observers.length === 1 ? 'needs' : 'need'} a quorum but server.${participants[0]!.id} is the only ` +
      `participant and standaloneEnabled=true makes a single participant run standalone; ` +
      `set standaloneEnabled=false or add participants`);
  }

  const myidFile = join(config.dataDir, 'myid');
  const fileId = readMyIdFor(src, config);

  if (participants.length === 0 || (participants.length === 1 && config.standaloneEnabled)) {
    // Standalone. ZooKeeper ignores a single server line here ("only one server specified (ignoring)"),
    // though setupClientPort still takes that line's client address when myid names it.
    if (servers.length === 1) {
      warn(`only one server line (server.${servers[0]!.id}), so running standalone and ignoring it; ` +
        `set standaloneEnabled=false to run a quorum of one`);
    }
    if (config.peerType === 'observer') warn('peerType=observer is ignored in standalone mode');
    const line = fileId === undefined ? undefined : servers.find((s) => s.id === fileId);
    return {
      mode: 'standalone', myid: fileId ?? 1, participants: [], observers: [],
      client: resolveClient(src, config, line), warnings,
    };
  }

  // Quorum mode (ZooKeeper's isDistributed()). checkValidity: initLimit, syncLimit and myid must be set.
  for (const [key, value] of [['initLimit', config.initLimit], ['syncLimit', config.syncLimit]] as const) {
    if (!(Number.isInteger(value) && value >= 1)) {
      throw new ConfigError(`${src}: ${key} must be at least 1 tick in quorum mode, got ${value}; set ${key} (e.g. ${key}=${key === 'initLimit' ? 10 : 5})`);
    }
  }
  if (fileId === undefined) {
    throw new ConfigError(
      `${src}: quorum mode needs the myid file ${myidFile}, which is missing; ` +
      `write this server's id (one of ${ids(servers)}) in it`);
  }
  // ZooKeeper fails later, in QuorumPeer.start(): "My id N not in the peer list".
  const self = servers.find((s) => s.id === fileId);
  if (!self) {
    throw new ConfigError(
      `${src}: myid ${fileId} (from ${myidFile}) is not one of the server ids ${ids(servers)}; ` +
      `fix the myid file or add a server.${fileId} line`);
  }

  // setupPeerType: a disagreeing peerType is only a warning; the server line decides.
  if (config.peerType !== self.role) {
    const said = config.raw.has('peerType') ? `peerType=${config.peerType}` : 'peerType is not set (participant by default)';
    warn(`${said} but server.${self.id} is ${self.role === 'observer' ? 'an observer' : 'a participant'}; ` +
      `using ${self.role} from the server line${self.role === 'observer' ? ' (add peerType=observer to say so)' : ''}`);
  }

  const client = resolveClient(src, config, self);
  checkClientCollision(src, self, client, servers);

  // Hierarchical quorums (QuorumHierarchical: group.N / weight.N) decide differently from a
  // majority; running a majority instead would quietly change which splits keep serving.
  const hier = [...config.raw.keys()].filter((k) => /^(zookeeper\.)?(group|weight)\.\d+$/.test(k));
  if (hier.length > 0) {
    throw new ConfigError(
      `${src}: hierarchical quorums (${hier.slice(0, 3).join(', ')}${hier.length > 3 ? ', ...' : ''}) are not supported: ` +
      'Corral decides by a majority of the participants; remove the group.N and weight.N lines');
  }

  // Majority quorums: n voters tolerate floor((n - 1) / 2) failures.
  const n = participants.length;
  if (n <= 2) {
    warn(`${plural(n, 'participant')}: no server failure will be tolerated; use at least 3`);
  } else if (n % 2 === 0) {
    const f = Math.floor((n - 1) / 2);
    warn(`${n} participants tolerate ${plural(f, 'failure')}, no more than ${n - 1} would; consider an odd number`);
  }

  return { mode: 'quorum', myid: fileId, self, participants, observers, client, warnings };
}
