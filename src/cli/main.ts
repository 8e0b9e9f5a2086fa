#!/usr/bin/env node
import { startupSnapshot } from 'node:v8';
import { ConfigError, defaultConfig, loadConfig } from '../config/zoocfg.js';
import type { CorralConfig } from '../config/types.js';
import { stdoutLogger } from '../server/log.js';
import { startStandalone } from '../server/boot.js';
import { resolveQuorum, type QuorumPlan } from '../config/quorum.js';
import { StorageError } from '../storage/errors.js';
import { ZK_PROTOCOL_VERSION } from '../protocol/constants.js';
import { corralVersion } from '../version.js';

const USAGE = `usage: corral start [path/to/zoo.cfg]
       corral check-data DATADIR [DATALOGDIR]
       corral version`;

async function start(cfgPath: string | undefined): Promise<void> {
  let config: CorralConfig;
  let plan: QuorumPlan;
  try {
    if (cfgPath === undefined) {
      config = defaultConfig(process.cwd());
      stdoutLogger('INFO', `no zoo.cfg given: using the embedded default config (data in ${config.dataDir})`);
    } else {
      const { config: c, warnings } = loadConfig(cfgPath);
      config = c;
      for (const w of warnings) stdoutLogger('WARN', w);
    }
    plan = resolveQuorum(config);
    for (const w of plan.warnings) stdoutLogger('WARN', w);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`corral: invalid configuration: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  let running;
  try {
    if (config.serverThreads > 2) {
      process.stderr.write(`corral: serverThreads=${config.serverThreads}: 1 (one thread) and 2 (sockets | pipeline) are the modes\n`);
      process.exit(2);
    }
    if (plan.mode === 'quorum') {
      if (config.serverThreads !== 1) stdoutLogger('WARN', `serverThreads=${config.serverThreads} is for standalone servers; an ensemble member runs on one thread`);
      stdoutLogger('INFO', `server ${plan.myid} of ${plan.participants.length} participant(s) and ${plan.observers.length} observer(s)`);
      // Loaded only for the mode in use: every module costs start-up time.
      const { startEnsembleMember } = await import('../ensemble/boot.js');
      // The client address resolveQuorum settled on (this server's line wins over clientPort, as in ZooKeeper).
      const memberConfig = { ...config, clientPort: plan.client.port, clientPortAddress: plan.client.host };
      running = await startEnsembleMember(memberConfig, plan.myid, [...plan.participants, ...plan.observers].sort((a, b) => a.id - b.id), stdoutLogger);
    } else {
      running =
        config.serverThreads === 2
          ? await (await import('../server/threads/socket-thread.js')).startThreaded(config, stdoutLogger)
          : await startStandalone(config, stdoutLogger);
    }
  } catch (e) {
    if (e instanceof StorageError) {
      stdoutLogger('ERROR', `cannot start: ${e.message}`);
      process.exit(3);
    }
    throw e;
  }
  const { host, port } = running;
  stdoutLogger(
    'INFO',
    `Corral ${corralVersion()} (ZooKeeper ${ZK_PROTOCOL_VERSION} protocol) serving clients on ${host}:${port}, ` +
      `tickTime=${config.tickTime}, sessions ${config.minSessionTimeout}-${config.maxSessionTimeout} ms`,
  );
  let stopping = false;
  const shutdown = (sig: string) => {
    if (stopping) return;
    stopping = true;
    stdoutLogger('INFO', `received ${sig}, shutting down`);
    running.stop().then(
      () => {
        stdoutLogger('INFO', 'stopped');
        process.exit(0);
      },
      (e: Error) => {
        stdoutLogger('ERROR', `shutdown failed: ${e.message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'start':
      return start(rest[0]);
    case 'check-data': {
      if (rest[0] === undefined) {
        process.stderr.write(USAGE + '\n');
        process.exit(2);
      }
      const { checkData } = await import('../storage/checkdata.js');
      const report = await checkData(rest[0], rest[1]);
      for (const line of report.lines) process.stdout.write(line + '\n');
      process.stdout.write(report.ok ? 'OK\n' : 'DAMAGED\n');
      process.exit(report.ok ? 0 : 1);
    }
    case 'version':
      process.stdout.write(`${ZK_PROTOCOL_VERSION}-corral-${corralVersion()}\n`);
      return;
    default:
      process.stderr.write(USAGE + '\n');
      process.exit(cmd === undefined || cmd === 'help' || cmd === '--help' ? 0 : 2);
  }
}

function run(argv: string[]): void {
  main(argv).catch((e: Error) => {
    process.stderr.write(`corral: ${e.stack ?? e.message}\n`);
    process.exit(1);
  });
}

// Built into a start-up snapshot (scripts/build-snapshot.mjs), the module bodies above
// ran at build time and this runs at start: `node --snapshot-blob <blob> start ...`
// has no script path, so the arguments begin at argv[1].
if (startupSnapshot.isBuildingSnapshot()) startupSnapshot.setDeserializeMainFunction(() => run(process.argv.slice(1)));
else run(process.argv.slice(2));
