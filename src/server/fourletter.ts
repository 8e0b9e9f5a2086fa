import { readdirSync, readFileSync, statSync } from 'node:fs';
import { arch, homedir, hostname, release, tmpdir, type as osType, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { LOG_SUBDIR, SNAP_SUBDIR } from '../storage/env.js';
import { zkFullVersion } from '../version.js';
import { type Connection, hex } from './connection.js';
import { type CorralServer, LISTEN_BACKLOG } from './server.js';
import type { Watcher } from './watches.js';

// The four letter words, answered in the layout of ZooKeeper 3.9 (a command per class
// in org.apache.zookeeper.server.command) so that scripts and monitoring that parse
// ZooKeeper's output parse Corral's. The whitelist is checked by the caller.

export interface FourLetterContext {
  /** The connection the word came on (it is listed by cons/stat like any other). */
  conn?: Connection;
  /** Bytes that followed the word: stmk's 8-byte trace mask. */
  rest?: Buffer;
}

/** An ensemble member between roles answers these words with one line (AbstractFourLetterCommand). */
export const ZK_NOT_SERVING = 'This ZooKeeper instance is not currently serving requests';
const NEEDS_SERVING = new Set(['srvr', 'stat', 'conf', 'cons', 'crst', 'srst', 'dump', 'dirs', 'mntr', 'wchs', 'wchc', 'wchp']);

export function runFourLetterWord(word: string, server: CorralServer, ctx: FourLetterContext = {}): string {
  if (server.serving === null) {
    if (NEEDS_SERVING.has(word)) return ZK_NOT_SERVING + '\n';
    if (word === 'hash') return ZK_NOT_SERVING;
    if (word === 'isro') return 'null';
  }
  switch (word) {
    case 'ruok':
      return 'imok';
    case 'srvr':
      return stat(server, false, ctx.conn);
    case 'stat':
      return stat(server, true, ctx.conn);
    case 'conf':
      return conf(server);
    case 'cons': {
      let out = '';
      for (const c of server.connections) out += connectionInfo(c, false, ctx.conn) + '\n';
      return out + '\n';
    }
    case 'crst':
      for (const c of server.connections) c.resetStats();
      return 'Connection stats reset.\n';
    case 'srst':
      server.stats.reset();
      return 'Server stats reset.\n';
    case 'dump':
      return dump(server, ctx.conn);
    case 'envi':
      return envi();
    case 'mntr':
      return mntr(server);
    case 'wchs':
      return watchSummary(server) + '\n';
    case 'wchc':
      return watchesByConnection(server) + '\n';
    case 'wchp':
      return watchesByPath(server) + '\n';
    case 'dirs':
      return `datadir_size: ${dirSize(snapDir(server))}\nlogdir_size: ${dirSize(logDir(server))}\n`;
    case 'isro':
      return 'rw';
    case 'gtmk':
      return String(traceMask(server));
    case 'stmk': {
      // ZooKeeper reads a long after the word and echoes it; without one, the mask stands.
      if (ctx.rest !== undefined && ctx.rest.length >= 8) traceMasks.set(server, ctx.rest.readBigInt64BE(0));
      return String(traceMask(server));
    }
    case 'hash':
      // ZooKeeper lists its digest log here; with digests disabled (Corral computes none) it is empty.
      return '';
    default:
      return '';
  }
}

// --- srvr / stat / cons -------------------------------------------------------------

function serverState(server: CorralServer): string {
  return server.role ?? 'standalone';
}

/** ServerStats.toString() followed by the node count, after the version (and clients for stat). */
function stat(server: CorralServer, withClients: boolean, self: Connection | undefined): string {
  let out = `Zookeeper version: ${zkFullVersion()}\n`;
  if (withClients) {
    out += 'Clients:\n';
    for (const c of server.connections) out += connectionInfo(c, true, self) + '\n';
    out += '\n';
  }
  const s = server.stats;
  out += `Latency min/avg/max: ${s.min}/${javaDouble(avgLatency(server))}/${s.maxLatency}\n`;
  out += `Received: ${s.packetsReceived}\n`;
  out += `Sent: ${s.packetsSent}\n`;
  out += `Connections: ${server.connections.size}\n`;
  out += `Outstanding: ${server.outstandingRequests}\n`;
  out += `Zxid: 0x${hex64(server.tree.lastZxid)}\n`;
  out += `Mode: ${serverState(server)}\n`;
  out += `Node count: ${server.tree.nodeCount}\n`;
  return out;
}

/** AvgMinMaxCounter.getAvg(): rounded half-up to four decimals. */
function avgLatency(server: CorralServer): number {
  return Math.round(server.stats.avg * 10000) / 10000;
}

/** ServerCnxn.dumpConnectionInfo. */
function connectionInfo(c: Connection, brief: boolean, self: Connection | undefined): string {
  // Interest ops: OP_READ while reading; none for a throttled connection or a 4lw one.
  const ops = c === self || c.paused || c.state === 'closed' ? 0 : 1;
  let s = ` ${socketAddress(c.remoteIp, c.remotePort)}[${ops.toString(16)}](queued=${c.queue.length},recved=${c.packetsReceived},sent=${c.packetsSent}`;
  if (!brief && c.sessionId !== 0n) {
    s += `,sid=0x${hex(c.sessionId)},lop=${c.lastOp},est=${c.established},to=${c.sessionTimeout}`;
    if (c.lastCxid >= 0) s += `,lcxid=0x${c.lastCxid.toString(16)}`;
    s += `,lzxid=0x${hex64(c.lastZxid)},lresp=${c.lastResponseTime},llat=${c.lastLatency}`;
    const min = c.latencyCount === 0 ? 0 : c.minLatency;
    const avg = c.latencyCount === 0 ? 0 : Math.floor(c.totalLatency / c.latencyCount);
    s += `,minlat=${min},avglat=${avg},maxlat=${c.maxLatency}`;
  }
  return s + ')';
}

/** InetSocketAddress.toString() of an accepted socket: `/1.2.3.4:5` or `/[0:0:0:0:0:0:0:1]:5`. */
function socketAddress(ip: string, port: number): string {
  return ip.includes(':') ? `/[${javaIpv6(ip)}]:${port}` : `/${ip}:${port}`;
}

/** Inet6Address.getHostAddress(): eight groups, no "::" compression, no leading zeros. */
function javaIpv6(ip: string): string {
  const pct = ip.indexOf('%');
  const scope = pct < 0 ? '' : ip.substring(pct);
  let addr = pct < 0 ? ip : ip.substring(0, pct);
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(addr);
  if (v4 !== null) {
    const b = v4.slice(1).map(Number);
    addr = addr.substring(0, v4.index) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = addr.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return groups.map((g) => parseInt(g, 16).toString(16)).join(':') + scope;
}

// --- conf / dirs ----------------------------------------------------------------------

function snapDir(server: CorralServer): string {
  return resolve(server.config.dataDir, SNAP_SUBDIR);
}

function logDir(server: CorralServer): string {
  return resolve(server.config.dataLogDir ?? server.config.dataDir, LOG_SUBDIR);
}

/** ZooKeeperServer.getDirSize: the sum of the file sizes below `path` (0 if it is missing). */
function dirSize(path: string): number {
  let st;
  try {
    st = statSync(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.size;
  let n = 0;
  let names: string[];
  try {
    names = readdirSync(path);
  } catch {
    return 0;
  }
  for (const name of names) n += dirSize(join(path, name));
  return n;
}

/** ZooKeeperServer.dumpConf (standalone). */
function conf(server: CorralServer): string {
  const c = server.config;
  const snap = snapDir(server);
  const log = logDir(server);
  return (
    `clientPort=${server.localPort}\n` +
    'secureClientPort=-1\n' +
    `dataDir=${snap}\n` +
    `dataDirSize=${dirSize(snap)}\n` +
    `dataLogDir=${log}\n` +
    `dataLogSize=${dirSize(log)}\n` +
    `tickTime=${c.tickTime}\n` +
    `maxClientCnxns=${c.maxClientCnxns}\n` +
    `minSessionTimeout=${c.minSessionTimeout}\n` +
    `maxSessionTimeout=${c.maxSessionTimeout}\n` +
    `clientPortListenBacklog=${LISTEN_BACKLOG}\n` +
    `serverId=${server.quorum?.myid ?? 0}\n` +
    quorumConf(server) +
    // Corral's own line: whether acknowledged writes are durable (ZooKeeper's conf omits it).
    `forceSync=${c.forceSync ? 'yes' : 'no'}\n`
  );
}

/** QuorumZooKeeperServer.dumpConf: limits, ports, peerType (0 participant, 1 observer), membership. */
function quorumConf(server: CorralServer): string {
  const q = server.quorum;
  if (q === undefined) return '';
  const self = q.servers.find((s) => s.id === q.myid)!;
  let out =
    `initLimit=${server.config.initLimit}\nsyncLimit=${server.config.syncLimit}\nelectionAlg=3\n` +
    `electionPort=${self.electionPort}\nquorumPort=${self.quorumPort}\npeerType=${self.role === 'observer' ? 1 : 0}\nmembership: \n`;
  for (const s of q.servers) {
    out += `server.${s.id}=${s.host}:${s.quorumPort}:${s.electionPort}:${s.role}`;
    if (s.clientPort !== undefined) out += `;${s.clientHost ?? '0.0.0.0'}:${s.clientPort}`;
    out += '\n';
  }
  return out + 'version=0\n';
}

// --- dump -----------------------------------------------------------------------------

/** NIOServerCnxnFactory's connection expiry interval (zookeeper.nio.sessionlessCnxnTimeout). */
const CNXN_EXPIRY_INTERVAL = 10000;

function dump(server: CorralServer, self: Connection | undefined): string {
  let out = 'SessionTracker dump:\n';
  const sessions = new Map<number, string[]>();
  let nSessions = 0;
  for (const s of server.tracker.all()) {
    push(sessions, s.expiresAt, `0x${hex(s.id)}`);
    nSessions++;
  }
  out += 'Session ' + expiryQueue(sessions, nSessions);

  out += 'ephemeral nodes dump:\n';
  out += `Sessions with Ephemerals (${server.tree.ephemerals.size}):\n`;
  for (const [id, paths] of server.tree.ephemerals) {
    out += `0x${hex(id)}:\n`;
    for (const p of paths) out += `\t${p}\n`;
  }

  // A connection expires a session timeout after its last activity (the sessionless
  // timeout before the handshake), rounded up to the queue's interval.
  out += 'Connections dump:\n';
  const conns = new Map<number, string[]>();
  for (const c of server.connections) {
    const last = Math.max(c.established, c.lastResponseTime);
    const timeout = c.sessionId !== 0n && c.sessionTimeout > 0 ? c.sessionTimeout : CNXN_EXPIRY_INTERVAL;
    const at = (Math.floor((last + timeout) / CNXN_EXPIRY_INTERVAL) + 1) * CNXN_EXPIRY_INTERVAL;
    push(conns, at, connectionInfo(c, false, self));
  }
  out += 'Connections ' + expiryQueue(conns, server.connections.size);
  return out;
}

function push(m: Map<number, string[]>, k: number, v: string): void {
  const l = m.get(k);
  if (l === undefined) m.set(k, [v]);
  else l.push(v);
}

/** ExpiryQueue.dump: the buckets in deadline order. */
function expiryQueue(buckets: Map<number, string[]>, elements: number): string {
  let out = `Sets (${buckets.size})/(${elements}):\n`;
  for (const at of [...buckets.keys()].sort((a, b) => a - b)) {
    const items = buckets.get(at)!;
    out += `${items.length} expire at ${javaDate(new Date(at))}:\n`;
    for (const i of items) out += `\t${i}\n`;
  }
  return out;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** java.util.Date.toString(): `EEE MMM dd HH:mm:ss zzz yyyy` in local time. */
function javaDate(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  let zone = 'GMT';
  try {
    zone =
      new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((x) => x.type === 'timeZoneName')
        ?.value ?? zone;
  } catch {
    // no Intl time zone data: keep GMT
  }
  return (
    `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${zone} ${d.getFullYear()}`
  );
}

// --- envi -------------------------------------------------------------------------------

/**
 * Environment.list(). The java.* keys describe the runtime, here Node.js; memory is
 * the V8 heap as Java's is its heap.
 */
function envi(): string {
  const na = '<NA>';
  const mb = 1024 * 1024;
  const heap = getHeapStatistics();
  let user = na;
  let home = na;
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry for this uid
  }
  try {
    home = homedir();
  } catch {
    // no home directory
  }
  const javaArch: Record<string, string> = { x64: 'amd64', ia32: 'x86', arm64: 'aarch64' };
  const entries: [string, string][] = [
    ['zookeeper.version', zkFullVersion()],
    ['host.name', hostname() || na],
    ['java.version', process.versions.node],
    ['java.vendor', 'Node.js'],
    ['java.home', dirname(dirname(process.execPath))],
    ['java.class.path', process.argv[1] ?? na],
    ['java.library.path', na],
    ['java.io.tmpdir', tmpdir()],
    ['java.compiler', na],
    ['os.name', osType()],
    ['os.arch', javaArch[arch()] ?? arch()],
    ['os.version', release()],
    ['user.name', user],
    ['user.home', home],
    ['user.dir', process.cwd()],
    ['os.memory.free', `${Math.floor((heap.total_heap_size - heap.used_heap_size) / mb)}MB`],
    ['os.memory.max', `${Math.floor(heap.heap_size_limit / mb)}MB`],
    ['os.memory.total', `${Math.floor(heap.total_heap_size / mb)}MB`],
  ];
  let out = 'Environment:\n';
  for (const [k, v] of entries) out += `${k}=${v}\n`;
  return out;
}

// --- mntr -------------------------------------------------------------------------------

/**
 * MonitorCommand: version and state, then the gauges ZooKeeperServer registers, in the
 * order ZooKeeper's DefaultMetricsProvider prints them (its ConcurrentHashMap's order).
 * Gauges Corral does not measure (client response sizes) and ServerMetrics' counters
 * and summaries are left out; zk_force_sync and zk_ws_backpressure_drops are Corral's own.
 */
function mntr(server: CorralServer): string {
  const s = server.stats;
  const fds = fileDescriptors();
  const values: [string, number | string][] = [
    ['version', zkFullVersion()],
    ['server_state', serverState(server)],
    ['ephemerals_count', server.tree.ephemeralCount()],
    ['num_alive_connections', server.connections.size],
    ['avg_latency', javaDouble(avgLatency(server))],
    ['outstanding_requests', server.outstandingRequests],
    ['znode_count', server.tree.nodeCount],
    ['global_sessions', server.tree.sessions.size],
    ['non_mtls_remote_conn_count', 0],
    ['packets_sent', s.packetsSent],
    ['packets_received', s.packetsReceived],
    ['connection_drop_probability', '0.0'],
    ['watch_count', server.watches.watchCount()],
    ['auth_failed_count', 0],
    ['min_latency', s.min],
    ['max_file_descriptor_count', fds.max],
    ['approximate_data_size', server.tree.dataSize],
    ['open_file_descriptor_count', fds.open],
    ['local_sessions', 0],
    ['uptime', Date.now() - server.startedAt],
    ['max_latency', s.maxLatency],
    ['outstanding_tls_handshake', 0],
    ['non_mtls_local_conn_count', 0],
    ['force_sync', server.config.forceSync ? 1 : 0],
    ['ws_backpressure_drops', s.wsBackpressureDrops],
  ];
  // Leader only, as in ZooKeeper (Leader's gauges; non-voting followers are a reconfig feature Corral lacks).
  const q = server.role === 'leader' ? server.quorumStats?.() : undefined;
  if (q !== undefined) {
    values.push(
      ['learners', q.learners],
      ['followers', q.learners],
      ['synced_followers', q.syncedFollowers],
      ['synced_non_voting_followers', 0],
      ['synced_observers', q.syncedObservers],
      ['pending_syncs', q.pendingSyncs],
    );
  }
  let out = '';
  for (const [k, v] of values) out += `zk_${k}\t${v}\n`;
  return out;
}

/** What the JVM's UnixOperatingSystemMXBean reports on Linux; -1 elsewhere. */
function fileDescriptors(): { open: number; max: number } {
  let open = -1;
  let max = -1;
  try {
    // The listing itself holds one descriptor open, which the JVM does not count either.
    open = readdirSync('/proc/self/fd').length - 1;
  } catch {
    // not Linux
  }
  try {
    const m = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m !== null && /^\d+$/.test(m[1]!)) max = Number(m[1]);
  } catch {
    // not Linux
  }
  return { open, max };
}

// --- wchs / wchc / wchp -----------------------------------------------------------------
// As in ZooKeeper, these describe the data-watch table (getData/exists watches and
// persistent ones); child watches count in mntr's zk_watch_count only.

function sessionOf(w: Watcher): bigint {
  return (w as { sessionId?: bigint }).sessionId ?? 0n;
}

/** WatchManager.toString(). */
function watchSummary(server: CorralServer): string {
  const t = server.watches.data;
  let total = 0;
  for (const paths of t.byWatcher.values()) total += paths.size;
  return `${t.byWatcher.size} connections watching ${t.byPath.size} paths\nTotal watches:${total}`;
}

/** WatchManager.dumpWatches(byPath=false). */
function watchesByConnection(server: CorralServer): string {
  let out = '';
  for (const [w, paths] of server.watches.data.byWatcher) {
    out += `0x${hex(sessionOf(w))}\n`;
    for (const p of paths.keys()) out += `\t${p}\n`;
  }
  return out;
}

/** WatchManager.dumpWatches(byPath=true). */
function watchesByPath(server: CorralServer): string {
  let out = '';
  for (const [p, ws] of server.watches.data.byPath) {
    out += `${p}\n`;
    for (const w of ws.keys()) out += `\t0x${hex(sessionOf(w))}\n`;
  }
  return out;
}

// --- gtmk / stmk ------------------------------------------------------------------------

/** ZooTrace's default: client requests, server packets, sessions, warnings. */
const DEFAULT_TRACE_MASK = (1n << 1n) | (1n << 4n) | (1n << 5n) | (1n << 8n);
const traceMasks = new WeakMap<CorralServer, bigint>();

function traceMask(server: CorralServer): bigint {
  return traceMasks.get(server) ?? DEFAULT_TRACE_MASK;
}

// --- number formats ---------------------------------------------------------------------

/** Long.toHexString: two's complement for negatives. */
function hex64(n: number): string {
  return BigInt.asUintN(64, BigInt(n)).toString(16);
}

/** Double.toString: `0.0`, `12.5`, `1.0E-4`, `1.0E7`. */
export function javaDouble(x: number): string {
  if (x === 0) return '0.0';
  const a = Math.abs(x);
  if (a >= 1e-3 && a < 1e7) return Number.isInteger(x) ? `${x}.0` : String(x);
  const [m, e] = x.toExponential().split('e') as [string, string];
  return `${m.includes('.') ? m : `${m}.0`}E${e.startsWith('+') ? e.substring(1) : e}`;
}
