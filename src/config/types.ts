// The server's settings, read from zoo.cfg (see zoocfg.ts). Names follow ZooKeeper's keys.

export interface ServerSpec {
  id: number;
  host: string;
  quorumPort: number;
  electionPort: number;
  role: 'participant' | 'observer';
  clientHost?: string;
  clientPort?: number;
}

export interface CorralConfig {
  /** Where the config came from (a path, or '<embedded default>'). */
  source: string;
  tickTime: number;
  initLimit: number;
  syncLimit: number;
  dataDir: string;
  /** Absent when the log shares dataDir. */
  dataLogDir?: string;
  clientPort: number;
  clientPortAddress: string;
  /** Defaults to 2 * tickTime, as in ZooKeeper. */
  minSessionTimeout: number;
  /** Defaults to 20 * tickTime. */
  maxSessionTimeout: number;
  /** Per client IP; 0 means unlimited. Default 60. */
  maxClientCnxns: number;
  /** Default 1000. */
  globalOutstandingLimit: number;
  /** Lower-case four letter words allowed; ['*'] means all. ZooKeeper's default is ['srvr']. */
  fourLetterWords: string[];
  extendedTypesEnabled: boolean;
  autopurgeSnapRetainCount: number;
  /** Hours; 0 disables. */
  autopurgePurgeInterval: number;
  snapCount: number;
  /** jute.maxbuffer, default 1048575 (0xfffff). */
  juteMaxBuffer: number;
  readonlyModeEnabled: boolean;
  /** DigestAuthenticationProvider.superDigest, `super:<base64 sha1>`. */
  superDigest?: string;
  forceSync: boolean;
  standaloneEnabled: boolean;
  peerType: 'participant' | 'observer';
  servers: ServerSpec[];
  /** Milliseconds between container/TTL reaper runs (znode.container.checkIntervalMs). Default 60000. */
  containerCheckIntervalMs: number;
  /** znode.container.maxPerMinute, default 10000. */
  containerMaxPerMinute: number;
  /** WebSocket listener (#6); absent = off. */
  wsPort?: number;
  wsPortAddress: string;
  /** Threads in the request path; 1 = everything on the main thread. */
  serverThreads: number;
  /** Every key=value as read, for `conf` and diagnostics. */
  raw: Map<string, string>;
}
