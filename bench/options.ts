// Command-line flags of `npm run bench -- ...`, with the defaults (a few minutes on a
// 2-core machine) and the --quick profile (about a minute, for CI smoke runs).

import { cpus } from 'node:os';

// large-tree runs before large-values so its memory figures are not taken on a heap
// still full of 1 MiB buffers.
export const ALL_WORKLOADS = ['read', 'mix90', 'mix50', 'write', 'churn', 'watch', 'storm', 'large-tree', 'large-values', 'startup', 'failover'] as const;
export type WorkloadName = (typeof ALL_WORKLOADS)[number];
/**
 * What runs without --workloads: everything but `failover`, which starts ensembles of its
 * own and kills their leaders (ask for it by name).
 */
export const DEFAULT_WORKLOADS: WorkloadName[] = ALL_WORKLOADS.filter((w) => w !== 'failover');
export const TOPOLOGIES = ['standalone', 'ensemble3'] as const;
export type Topology = (typeof TOPOLOGIES)[number];

export interface Options {
  quick: boolean;
  /** Seconds measured per closed-loop (saturation) phase. */
  duration: number;
  /** Seconds per open-loop rate step. */
  stepDuration: number;
  /** Seconds of unmeasured load before each closed-loop phase. */
  warmup: number;
  /** Seconds of unmeasured mixed load on each target before its first workload (JIT warmup). */
  targetWarmup: number;
  sessions: number;
  depth: number;
  valueSize: number;
  /** Znodes of the large-tree workload. */
  keys: number;
  /** Keys the read/write workloads pick from. */
  rwKeys: number;
  workloads: WorkloadName[];
  sloMs: number;
  /** Open-loop steps: absolute rates (ops/s) or fractions of the measured saturation throughput. */
  rates: { abs: number[] } | { rel: number[] };
  target?: string;
  compare?: string;
  rounds: number;
  /** The Corral the bench starts: one standalone server, or a 3-member ensemble (sessions spread round-robin). */
  topology: Topology;
  /** Observers beside the started ensemble's voters (--topology ensemble3); sessions spread over them too. */
  observers: number;
  forceSync: boolean;
  /** Extra zoo.cfg lines for the Corral the bench starts (e.g. serverThreads=2). */
  corralCfg: string[];
  micro: boolean;
  /** WebSocket port of the --target / --compare server (--transport ws). */
  wsPort?: number;
  /** The load generator's transport: ZooKeeper jute over TCP, or Corral's protobuf over WebSocket (wsPort). */
  transport: 'tcp' | 'ws';
  /** large-tree: the started Corral's snapCount (0 = keys/2, so a snapshot runs during the create phase). */
  snapCount: number;
  /** startup: how many times Corral is started on an empty dataDir. */
  startups: number;
  /** startup: retry interval of the serving probe, ms. */
  startupPollMs: number;
  /** startup: also time Apache ZooKeeper (zkref) the same way, in this scratch directory. */
  startupZkref?: string;
  /** startup: zkref's client port. */
  startupZkPort: number;
  /** Load-generator worker threads. */
  threads: number;
  watchers: number;
  watchRounds: number;
  storm: number;
  stormReps: number;
  largeSizes: number[];
  largeSessions: number;
  largeDepth: number;
  /** failover: ensemble sizes, leader kills per size, and the steady write load (setData/s). */
  failoverSizes: number[];
  failoverRounds: number;
  failoverRate: number;
  /** Directory for the JSON and HTML results. */
  out: string;
  /** Regenerate table + HTML from an existing JSON file and exit. */
  report?: string;
  seed: number;
  help: boolean;
}

export const USAGE = `usage: npm run bench -- [flags]

Targets (default: start Corral as a child process with a temp dataDir, then stop it)
  --target host:port[,host:port]   drive this ZooKeeper-protocol server instead (several
                                   addresses: sessions spread over them round-robin)
  --compare host:port[,...]        run Corral and this server alternately, per workload
  --rounds N                       rounds per target (default 3 with --compare, else 1)
  --topology standalone|ensemble3  the Corral the bench starts: one server (default) or a
                                   3-member ensemble on loopback (leader + 2 followers, forceSync
                                   as below); the load generator spreads sessions round-robin
                                   over the members, as over the addresses of --target/--compare
  --observers N                    with --topology ensemble3: N observers beside the 3 voters
                                   (peerType=observer); sessions spread over all 3+N members
  --force-sync yes|no              the started Corral's forceSync (default yes)
  --corral-cfg key=value           an extra zoo.cfg line for the started Corral (repeatable),
                                   e.g. --corral-cfg serverThreads=2
  --transport tcp|ws               the load generator's wire: ZooKeeper jute over TCP (default)
                                   or Corral's protobuf over WebSocket (the started Corral gets
                                   wsPort; with --target/--compare give --ws-port)
  --ws-port N                      the external target's WebSocket port (--transport ws)

Load
  --workloads a,b,c    ${ALL_WORKLOADS.join(',')}
                       (default: all but failover, which runs only when named)
  --duration S         seconds measured per saturation phase (default 5, quick 1.5)
  --step-duration S    seconds per open-loop rate step (default 3, quick 1)
  --warmup S           unmeasured seconds before a saturation phase (default 1, quick 0.3)
  --target-warmup S    unmeasured mixed load per target before its first workload, so the
                       JVM's / V8's JIT is warm (default 5, quick 2; 0 = none)
  --sessions N         sessions (default 32, quick 16)
  --depth N            outstanding requests per session (default 16)
  --value-size B       znode value size, bytes (default 100)
  --rw-keys N          keys the read/write workloads pick from (default 1000)
  --keys N             znodes in the large-tree workload (default 100000, quick 10000;
                       --keys 1000000 for the full million)
  --rates LIST         open-loop steps: ops/s (5000,20000) or percentages of the measured
                       saturation throughput (10%,50%,85%); default 10%,25%,50%,70%,85%,100%
  --slo-ms MS          knee = highest step with p99 <= MS, no errors, >= 90% of the rate (default 10)
  --watchers N         sessions watching one znode in 'watch' (default 200, quick 50)
  --watch-rounds N     setData rounds in 'watch' (default 20, quick 5)
  --storm N            sessions connecting at once in 'storm' (default 1000, quick 200)
  --storm-reps N       storms per target per round (default 3, quick 1)
  --large-sizes LIST   value sizes for 'large-values' (default 4096,65536,524288,1047552)
  --large-sessions N / --large-depth N   concurrency for 'large-values' (default 4 / 2)
  --snap-count N       with large-tree: the started Corral's snapCount (default min(keys/2,
                       100000), so snapshots run during the create phase; they are timed and
                       probed, and the server is restarted on its dataDir to time recovery)
  --startups N         startup: times Corral is started on an empty dataDir (default 5): spawn to
                       a served request (connect + session + exists("/"), retried every
                       --startup-poll-ms, default 3), then one create timed to its ack
  --startup-zkref DIR  startup: also start Apache ZooKeeper (zkref's start.sh command line,
                       spawned by the bench, fresh dataDir each time) N times in DIR, timed the
                       same way, alternating with Corral's starts (A B B A ...)
  --startup-zk-port N  startup: zkref's client port (default 12195)
  --failover-sizes L   failover: ensemble sizes to start (default 3,5); each one gets a steady
                       setData load on all members, its leader SIGKILLed, and is timed: kill ->
                       first write acknowledged, kill -> new leader in srvr
  --failover-rounds N  failover: leader kills per size (default 5, the killed member is restarted
                       and rejoins in between)
  --failover-rate N    failover: steady setData load, ops/s over all members (default 1000)
  --threads N          load-generator worker threads (default 1 on <= 2 cores)
  --seed N             random seed (default 1)

Other
  --quick              about a minute in total (CI smoke)
  --micro              tinybench micro-benchmarks of the server's hot paths, no server
  --out DIR            where JSON + HTML results go (default bench-results)
  --report FILE.json   re-render the table and HTML report of an earlier run
  --help`;

function num(flag: string, v: string | undefined, min = 0): number {
  const n = Number(v);
  if (v === undefined || !Number.isFinite(n) || n < min) throw new Error(`${flag} needs a number >= ${min}, got '${v ?? ''}'`);
  return n;
}

function int(flag: string, v: string | undefined, min = 1): number {
  const n = num(flag, v, min);
  if (!Number.isInteger(n)) throw new Error(`${flag} needs an integer, got '${v}'`);
  return n;
}

function sizes(flag: string, v: string | undefined): number[] {
  if (v === undefined) throw new Error(`${flag} needs a list`);
  return v.split(',').map((x) => {
    const m = /^(\d+(?:\.\d+)?)\s*(k|ki|kib|m|mi|mib)?$/i.exec(x.trim());
    if (m === null) throw new Error(`${flag}: bad size '${x}'`);
    const mult = m[2] === undefined ? 1 : /^m/i.test(m[2]) ? 1024 * 1024 : 1024;
    return Math.round(Number(m[1]) * mult);
  });
}

export function parseArgs(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const cores = cpus().length;
  const o: Options = {
    quick,
    duration: quick ? 1.5 : 5,
    stepDuration: quick ? 1 : 3,
    warmup: quick ? 0.3 : 1,
    targetWarmup: quick ? 2 : 5,
    sessions: quick ? 16 : 32,
    depth: 16,
    valueSize: 100,
    keys: quick ? 10_000 : 100_000,
    rwKeys: 1000,
    workloads: [...DEFAULT_WORKLOADS],
    sloMs: 10,
    rates: { rel: quick ? [0.25, 0.5, 0.8, 1.0] : [0.1, 0.25, 0.5, 0.7, 0.85, 1.0] },
    rounds: 0,
    topology: 'standalone',
    observers: 0,
    forceSync: true,
    corralCfg: [],
    micro: false,
    transport: 'tcp',
    snapCount: 0,
    startups: 5,
    startupPollMs: 3,
    startupZkPort: 12195,
    threads: cores <= 2 ? 1 : Math.min(4, Math.floor(cores / 2)),
    watchers: quick ? 50 : 200,
    watchRounds: quick ? 5 : 20,
    storm: quick ? 200 : 1000,
    stormReps: quick ? 1 : 3,
    largeSizes: quick ? [65536, 1047552] : [4096, 65536, 524288, 1047552],
    largeSessions: 4,
    largeDepth: 2,
    failoverSizes: [3, 5],
    failoverRounds: 5,
    failoverRate: 1000,
    out: 'bench-results',
    seed: 1,
    help: false,
  };
  let stepSet = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const inline = a.startsWith('--') && eq > 0 ? a.slice(eq + 1) : undefined;
    const val = () => inline ?? argv[++i];
    switch (flag) {
      case '--quick':
        break;
      case '--help':
      case '-h':
        o.help = true;
        break;
      case '--micro':
        o.micro = true;
        break;
      case '--duration':
        o.duration = num(flag, val(), 0.1);
        break;
      case '--step-duration':
        o.stepDuration = num(flag, val(), 0.1);
        stepSet = true;
        break;
      case '--warmup':
        o.warmup = num(flag, val(), 0);
        break;
      case '--target-warmup':
        o.targetWarmup = num(flag, val(), 0);
        break;
      case '--sessions':
        o.sessions = int(flag, val());
        break;
      case '--depth':
        o.depth = int(flag, val());
        break;
      case '--value-size':
        o.valueSize = sizes(flag, val())[0];
        break;
      case '--keys':
        o.keys = int(flag, val());
        break;
      case '--rw-keys':
        o.rwKeys = int(flag, val());
        break;
      case '--workloads': {
        const list = (val() ?? '').split(',').map((s) => s.trim()).filter(Boolean);
        for (const w of list)
          if (!(ALL_WORKLOADS as readonly string[]).includes(w)) throw new Error(`unknown workload '${w}' (known: ${ALL_WORKLOADS.join(', ')})`);
        o.workloads = list as WorkloadName[];
        break;
      }
      case '--slo-ms':
        o.sloMs = num(flag, val(), 0.001);
        break;
      case '--rates': {
        const list = (val() ?? '').split(',').map((s) => s.trim()).filter(Boolean);
        if (list.length === 0) throw new Error('--rates needs a list');
        if (list.every((s) => s.endsWith('%'))) o.rates = { rel: list.map((s) => num('--rates', s.slice(0, -1), 0.001) / 100) };
        else if (list.every((s) => !s.endsWith('%'))) o.rates = { abs: list.map((s) => num('--rates', s, 1)) };
        else throw new Error('--rates: use either all absolute rates or all percentages');
        break;
      }
      case '--target':
        o.target = val();
        break;
      case '--compare':
        o.compare = val();
        break;
      case '--rounds':
        o.rounds = int(flag, val());
        break;
      case '--topology': {
        const v = val();
        if (!(TOPOLOGIES as readonly string[]).includes(v ?? '')) throw new Error(`--topology takes ${TOPOLOGIES.join(' or ')}, got '${v ?? ''}'`);
        o.topology = v as Topology;
        break;
      }
      case '--observers':
        o.observers = int(flag, val(), 0);
        break;
      case '--failover-sizes': {
        const list = (val() ?? '').split(',').map((x) => x.trim()).filter(Boolean);
        if (list.length === 0) throw new Error('--failover-sizes needs a list, e.g. 3,5');
        // A leader can only be replaced if the others still make a quorum: at least 3 members.
        o.failoverSizes = list.map((x) => int('--failover-sizes', x, 3));
        break;
      }
      case '--failover-rounds':
        o.failoverRounds = int(flag, val());
        break;
      case '--failover-rate':
        o.failoverRate = num(flag, val(), 1);
        break;
      case '--force-sync': {
        const v = (val() ?? '').toLowerCase();
        if (v !== 'yes' && v !== 'no') throw new Error('--force-sync takes yes or no');
        o.forceSync = v === 'yes';
        break;
      }
      case '--corral-cfg': {
        const line = val() ?? '';
        if (!/^[\w.]+\s*=/.test(line)) throw new Error(`--corral-cfg takes a zoo.cfg line key=value, got '${line}'`);
        o.corralCfg.push(line);
        break;
      }
      case '--transport': {
        const v = val();
        if (v !== 'tcp' && v !== 'ws') throw new Error('--transport takes tcp or ws');
        o.transport = v;
        break;
      }
      case '--ws-port':
        o.wsPort = int(flag, val(), 1);
        break;
      case '--snap-count':
        o.snapCount = int(flag, val(), 0);
        break;
      case '--startups':
        o.startups = int(flag, val(), 1);
        break;
      case '--startup-poll-ms':
        o.startupPollMs = int(flag, val(), 1);
        break;
      case '--startup-zkref':
        o.startupZkref = val();
        break;
      case '--startup-zk-port':
        o.startupZkPort = int(flag, val(), 1);
        break;
      case '--threads':
        o.threads = int(flag, val());
        break;
      case '--watchers':
        o.watchers = int(flag, val());
        break;
      case '--watch-rounds':
        o.watchRounds = int(flag, val());
        break;
      case '--storm':
        o.storm = int(flag, val());
        break;
      case '--storm-reps':
        o.stormReps = int(flag, val());
        break;
      case '--large-sizes':
        o.largeSizes = sizes(flag, val());
        break;
      case '--large-sessions':
        o.largeSessions = int(flag, val());
        break;
      case '--large-depth':
        o.largeDepth = int(flag, val());
        break;
      case '--out':
        o.out = val() ?? o.out;
        break;
      case '--report':
        o.report = val();
        break;
      case '--seed':
        o.seed = int(flag, val(), 0);
        break;
      default:
        throw new Error(`unknown flag '${a}' (see --help)`);
    }
  }
  if (o.target !== undefined && o.compare !== undefined) throw new Error('--target and --compare exclude each other');
  if (o.target !== undefined && o.topology !== 'standalone')
    throw new Error('--topology is the shape of the Corral the bench starts; with --target it starts none (use --compare, or list every member in --target)');
  if (o.observers > 0 && o.topology !== 'ensemble3') throw new Error('--observers adds observers to the ensemble the bench starts: give --topology ensemble3');
  if (o.transport === 'ws' && (o.target !== undefined || o.compare !== undefined) && o.wsPort === undefined)
    throw new Error('--transport ws with --target/--compare needs --ws-port (the server\'s WebSocket port)');
  if (o.rounds === 0) o.rounds = o.compare !== undefined ? 3 : 1;
  if (!stepSet && !quick) o.stepDuration = Math.max(0.5, Math.min(3, o.duration * 0.6));
  return o;
}
