// Reads zoo.cfg the way ZooKeeper's QuorumPeerConfig does: the file is a Java Properties
// file, values are trimmed, and unknown keys are tolerated (ZooKeeper turns them into
// `zookeeper.<key>` system properties, which is why some settings accept either form).

import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { CorralConfig, ServerSpec } from './types.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** The embedded config `npm start` uses; kept as zoo.cfg text so the default is itself a valid file. */
export const DEFAULT_ZOO_CFG = `# Corral's embedded default: standalone, local only.
tickTime=2000
dataDir=data
clientPortAddress=127.0.0.1
clientPort=2181
4lw.commands.whitelist=*
wsPort=2182
wsPortAddress=127.0.0.1
`;

const INT_MIN = -(2 ** 31);
const INT_MAX = 2 ** 31 - 1;

// Settings ZooKeeper reads as system properties; accepted with or without `zookeeper.`.
const PREFIXABLE = new Set([
  'jute.maxbuffer', 'readonlymode.enabled', 'DigestAuthenticationProvider.superDigest',
  'extendedTypesEnabled', 'forceSync', 'znode.container.checkIntervalMs',
  'znode.container.maxPerMinute', 'snapCount', '4lw.commands.whitelist',
]);

// Real ZooKeeper keys Corral has no use for; accepted silently so an operator's zoo.cfg loads clean.
const IGNORED = new Set([
  'admin.enableServer', 'admin.serverPort', 'admin.serverAddress', 'admin.commandURL', 'admin.idleTimeout',
  'secureClientPort', 'secureClientPortAddress', 'electionAlg', 'syncEnabled', 'quorumListenOnAllIPs',
  'reconfigEnabled', 'skipACL', 'leaderServes', 'localSessionsEnabled', 'localSessionsUpgradingEnabled',
  'preAllocSize', 'snapSizeLimitInKb', 'txnLogSizeLimitInKb', 'maxCnxns', 'dynamicConfigFile', 'cnxTimeout',
  'sessionRequireClientSASLAuth', 'enforceQuota', 'digest.enabled', 'flushDelay', 'maxBatchSize',
  'maxWriteQueuePollTime', 'observerMasterPort', 'connectToLearnerMasterLimit', 'serverCnxnFactory',
]);
const IGNORED_PREFIXES = ['metricsProvider.', 'group.', 'weight.', 'ssl.', 'authProvider.', 'requestThrottle', 'quorum.auth.'];

interface Entry { key: string; value: string; line: number }

/** Java Properties escapes: \t \n \r \f \uXXXX, and `\x` is `x`. */
function unescape(s: string): string {
  const named: Record<string, string> = { t: '\t', n: '\n', r: '\r', f: '\f' };
  return s.replace(/\\(u[0-9a-fA-F]{4}|[^])/g, (_m, c: string) =>
    c.length === 5 ? String.fromCharCode(parseInt(c.slice(1), 16)) : (named[c] ?? c));
}

/** Splits Properties text into key/value entries, keeping the line each logical line started on. */
function readProperties(text: string, source: string): Entry[] {
  const lines = text.split(/\r\n|\r|\n/);
  const stripLead = (s: string) => s.replace(/^[ \t\f]+/, '');
  const out: Entry[] = [];
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = stripLead(lines[i]!);
    if (line === '' || line[0] === '#' || line[0] === '!') continue;
    // An odd number of trailing backslashes continues the logical line (Java Properties).
    while ((/\\+$/.exec(line)?.[0].length ?? 0) % 2 === 1) {
      line = line.slice(0, -1) + (i + 1 < lines.length ? stripLead(lines[++i]!) : '');
    }
    line = line.trimEnd(); // ZooKeeper trims values
    // The key ends at the first unescaped '=', ':' or whitespace.
    let k = 0;
    while (k < line.length && !'=: \t\f'.includes(line[k]!)) k += line[k] === '\\' ? 2 : 1;
    if (k === 0 || k >= line.length) {
      throw new ConfigError(`${source}:${lineNo}: expected key=value, got "${line}"`);
    }
    let v = k;
    while (v < line.length && ' \t\f'.includes(line[v]!)) v++;
    if (line[v] === '=' || line[v] === ':') v++;
    while (v < line.length && ' \t\f'.includes(line[v]!)) v++;
    out.push({ key: unescape(line.slice(0, k)), value: unescape(line.slice(v)), line: lineNo });
  }
  return out;
}

/** Splits `host:a:b`, allowing a bracketed IPv6 host (`[::1]:a:b`). Returns [] when malformed. */
function hostParts(s: string): string[] {
  if (!s.startsWith('[')) return s.split(':').map((p) => p.trim());
  const close = s.indexOf(']');
  if (close < 0) return [];
  const rest = s.slice(close + 1);
  if (rest === '') return [s.slice(1, close)];
  if (rest[0] !== ':') return [];
  return [s.slice(1, close), ...rest.slice(1).split(':').map((p) => p.trim())];
}

function parseServer(id: number, value: string, at: string): ServerSpec {
  const bad = () => new ConfigError(
    `${at}: bad server.${id}="${value}", expected host:quorumPort:electionPort[:participant|observer][;[clientHost:]clientPort]`);
  const port = (s: string | undefined) => {
    if (s === undefined || !/^\d+$/.test(s) || Number(s) > 65535) throw bad();
    return Number(s);
  };
  const [addr, client, ...extra] = value.split(';');
  const parts = hostParts(addr!.trim());
  if (extra.length || !parts[0] || parts.length < 3 || parts.length > 4) throw bad();
  const role = (parts[3] ?? 'participant').toLowerCase();
  if (role !== 'participant' && role !== 'observer') throw bad();
  const spec: ServerSpec = { id, host: parts[0], quorumPort: port(parts[1]), electionPort: port(parts[2]), role };
  if (client !== undefined) {
    const cp = hostParts(client.trim());
    if (cp.length === 1) spec.clientPort = port(cp[0]);
    else if (cp.length === 2 && cp[0]) { spec.clientHost = cp[0]; spec.clientPort = port(cp[1]); }
    else throw bad();
  }
  return spec;
}

export function parseZooCfg(text: string, source: string, baseDir?: string): { config: CorralConfig; warnings: string[] } {
  const warnings: string[] = [];
  const raw = new Map<string, string>();
  const servers = new Map<number, ServerSpec>();
  // ZooKeeper's defaults; -1 session timeouts mean "derive from tickTime" (as in ZooKeeper).
  const cfg: CorralConfig = {
    source, tickTime: 3000, initLimit: 10, syncLimit: 5, dataDir: '', clientPort: 2181, clientPortAddress: '0.0.0.0',
    minSessionTimeout: -1, maxSessionTimeout: -1, maxClientCnxns: 60, globalOutstandingLimit: 1000,
    fourLetterWords: ['srvr'], extendedTypesEnabled: false, autopurgeSnapRetainCount: 3, autopurgePurgeInterval: 0,
    snapCount: 100000, juteMaxBuffer: 1048575, readonlyModeEnabled: false, forceSync: true, standaloneEnabled: true,
    peerType: 'participant', servers: [], containerCheckIntervalMs: 60000, containerMaxPerMinute: 10000,
    wsPortAddress: '127.0.0.1', serverThreads: 1, raw,
  };

  for (const { key: rawKey, value, line } of readProperties(text, source)) {
    raw.set(rawKey, value);
    const at = `${source}:${line}`;
    const key = rawKey.startsWith('zookeeper.') && PREFIXABLE.has(rawKey.slice(10)) ? rawKey.slice(10) : rawKey;
    const int = (min = INT_MIN, max = INT_MAX, hex = false): number => {
      const m = hex ? /^(?:[+-]?\d+|0[xX][0-9a-fA-F]+)$/.exec(value) : /^[+-]?\d+$/.exec(value);
      const n = m ? Number(value) : NaN;
      if (!m || !Number.isSafeInteger(n)) throw new ConfigError(`${at}: ${rawKey} must be an integer, got "${value}"`);
      if (n < min || n > max) {
        throw new ConfigError(`${at}: ${rawKey} must be ${max === INT_MAX ? `>= ${min}` : `between ${min} and ${max}`}, got ${n}`);
      }
      return n;
    };
    const bool = (): boolean => {
      if (/^(true|yes)$/i.test(value)) return true;
      if (/^(false|no)$/i.test(value)) return false;
      throw new ConfigError(`${at}: ${rawKey} must be true/false or yes/no, got "${value}"`);
    };

    switch (key) {
      case 'tickTime': cfg.tickTime = int(1); break;
      case 'initLimit': cfg.initLimit = int(1); break;
      case 'syncLimit': cfg.syncLimit = int(1); break;
      case 'dataDir': cfg.dataDir = value; break;
      case 'dataLogDir': cfg.dataLogDir = value || undefined; break;
      case 'clientPort': cfg.clientPort = int(0, 65535); break;
      case 'clientPortAddress': cfg.clientPortAddress = value; break;
      case 'minSessionTimeout': cfg.minSessionTimeout = int(-1); break;
      case 'maxSessionTimeout': cfg.maxSessionTimeout = int(-1); break;
      case 'maxClientCnxns': cfg.maxClientCnxns = int(0); break;
      case 'globalOutstandingLimit': cfg.globalOutstandingLimit = int(1); break;
      case '4lw.commands.whitelist': {
        const words = value.split(',').map((w) => w.trim().toLowerCase()).filter(Boolean);
        cfg.fourLetterWords = words.includes('*') ? ['*'] : words;
        break;
      }
      case 'extendedTypesEnabled': cfg.extendedTypesEnabled = bool(); break;
      case 'autopurge.snapRetainCount': {
        const n = int();
        if (n < 3) warnings.push(`${at}: autopurge.snapRetainCount ${n} is below the minimum 3; using 3`); // as ZooKeeper does
        cfg.autopurgeSnapRetainCount = Math.max(n, 3);
        break;
      }
      case 'autopurge.purgeInterval': cfg.autopurgePurgeInterval = int(0); break;
      case 'snapCount': {
        const n = int();
        if (n < 2) warnings.push(`${at}: snapCount ${n} is below the minimum 2; using 2`); // as ZooKeeperServer does
        cfg.snapCount = Math.max(n, 2);
        break;
      }
      case 'forceSync': cfg.forceSync = bool(); break;
      case 'standaloneEnabled': cfg.standaloneEnabled = bool(); break;
      case 'peerType': {
        const t = value.toLowerCase();
        if (t !== 'participant' && t !== 'observer') throw new ConfigError(`${at}: unrecognised peerType "${value}"`);
        cfg.peerType = t;
        break;
      }
      case 'wsPort': cfg.wsPort = int(0, 65535); break;
      case 'wsPortAddress': cfg.wsPortAddress = value; break;
      case 'serverThreads': cfg.serverThreads = int(1); break;
      case 'znode.container.checkIntervalMs': cfg.containerCheckIntervalMs = int(1); break;
      case 'znode.container.maxPerMinute': cfg.containerMaxPerMinute = int(0); break;
      case 'jute.maxbuffer': cfg.juteMaxBuffer = int(1, INT_MAX, true); break;
      case 'readonlymode.enabled': cfg.readonlyModeEnabled = bool(); break;
      case 'DigestAuthenticationProvider.superDigest':
        // ZooKeeper compares it with `user:base64(sha1(user:password))`; the user is normally "super".
        if (!/^[^:\s]+:[A-Za-z0-9+/]+={0,2}$/.test(value)) {
          throw new ConfigError(`${at}: ${rawKey} must look like super:<base64 sha1>, got "${value}"`);
        }
        cfg.superDigest = value;
        break;
      default: {
        const sid = /^server\.(.*)$/.exec(key);
        if (sid) {
          if (!/^\d+$/.test(sid[1]!) || !Number.isSafeInteger(Number(sid[1]))) {
            throw new ConfigError(`${at}: server id must be a non-negative integer, got "${key}"`);
          }
          const id = Number(sid[1]);
          servers.set(id, parseServer(id, value, at)); // last one wins, as with Properties
        } else {
          const bare = key.startsWith('zookeeper.') ? key.slice(10) : key; // ZooKeeper treats both alike
          if (!IGNORED.has(bare) && !IGNORED_PREFIXES.some((p) => bare.startsWith(p))) {
            warnings.push(`${at}: unknown key "${rawKey}" ignored`);
          }
        }
      }
    }
  }

  if (!cfg.dataDir) throw new ConfigError(`${source}: dataDir is not set`);
  const abs = (p: string) => (baseDir && !isAbsolute(p) ? resolve(baseDir, p) : p);
  cfg.dataDir = abs(cfg.dataDir);
  if (cfg.dataLogDir !== undefined) cfg.dataLogDir = abs(cfg.dataLogDir);
  if (cfg.minSessionTimeout === -1) cfg.minSessionTimeout = 2 * cfg.tickTime;
  if (cfg.maxSessionTimeout === -1) cfg.maxSessionTimeout = 20 * cfg.tickTime;
  if (cfg.minSessionTimeout > cfg.maxSessionTimeout) {
    throw new ConfigError(`${source}: minSessionTimeout (${cfg.minSessionTimeout}) must not be larger than maxSessionTimeout (${cfg.maxSessionTimeout})`);
  }
  cfg.servers = [...servers.values()].sort((a, b) => a.id - b.id);
  return { config: cfg, warnings };
}

export function loadConfig(path: string): { config: CorralConfig; warnings: string[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${path}: cannot read config: ${(err as Error).message}`);
  }
  return parseZooCfg(text, path, dirname(resolve(path)));
}

export function defaultConfig(cwd: string): CorralConfig {
  return parseZooCfg(DEFAULT_ZOO_CFG, '<embedded default>', cwd).config;
}

/** `<dataDir>/myid`, as a quorum member finds its own id; undefined when the file is absent. */
export function readMyId(dataDir: string): number | undefined {
  const file = join(dataDir, 'myid');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(`${file}: cannot read myid: ${(err as Error).message}`);
  }
  const t = text.trim();
  if (!/^\d+$/.test(t) || !Number.isSafeInteger(Number(t))) {
    throw new ConfigError(`${file}: myid must be an integer, got "${t}"`);
  }
  return Number(t);
}
