import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseZooCfg } from '../../src/config/zoocfg.js';
import type { CorralConfig } from '../../src/config/types.js';
import { silentLogger, type Logger } from '../../src/server/log.js';
import { startStandalone } from '../../src/server/boot.js';
import type { CorralServer } from '../../src/server/server.js';

export interface TestServer {
  server: CorralServer;
  port: number;
  /** The WebSocket listener's port, when the cfg set wsPort (wsPort=0: a free port). */
  wsPort?: number;
  /** host:port for client connection strings. */
  connect: string;
  config: CorralConfig;
  logs: string[];
  stop(): Promise<void>;
}

/**
 * An in-process Corral server on a free loopback port. `cfg` is extra zoo.cfg text
 * (e.g. "tickTime=200\n4lw.commands.whitelist=*").
 */
export async function startServer(cfg = '', opts: { logger?: Logger; dataDir?: string } = {}): Promise<TestServer> {
  const dir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'corral-test-'));
  const text = `tickTime=2000\ndataDir=${dir}\nclientPort=0\nclientPortAddress=127.0.0.1\n${cfg}\n`;
  const { config } = parseZooCfg(text, 'test.cfg');
  const logs: string[] = [];
  const logger: Logger = opts.logger ?? ((level, msg) => logs.push(`[${level}] ${msg}`));
  // The real storage (LMDB in a temp dir), as `corral start` runs it.
  const running = await startStandalone(config, logger ?? silentLogger);
  const { server, port } = running;
  return {
    server,
    port,
    wsPort: running.ws?.port,
    connect: `127.0.0.1:${port}`,
    config,
    logs,
    async stop() {
      await running.stop();
      if (opts.dataDir === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}
