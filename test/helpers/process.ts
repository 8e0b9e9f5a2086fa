import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { corralArgv } from '../../src/cli/launch.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Node arguments that run `corral <args>` the way `npm start` does (the snapshot when built). */
export function corralCommand(...args: string[]): string[] {
  return corralArgv(ROOT, args);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Sends a four-letter word and returns the whole answer. */
export function fourLetter(port: number, word: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(word));
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('error', reject);
    s.on('close', () => resolve(out));
  });
}

export interface CorralProcess {
  child: ChildProcess;
  port: number;
  dir: string;
  output(): string;
  /** SIGTERM and wait; resolves with the exit code. */
  stop(): Promise<number | null>;
  cleanup(): void;
}

/**
 * Runs `corral start` on a generated zoo.cfg (extra lines in `cfg`) and waits for `ruok`.
 * `dir` reuses an earlier process's directory (and data) instead of a new one.
 */
export async function startCorralProcess(cfg: string, dir = mkdtempSync(path.join(tmpdir(), 'corral-proc-'))): Promise<CorralProcess> {
  const port = await freePort();
  const file = path.join(dir, 'zoo.cfg');
  writeFileSync(file, `tickTime=2000\ndataDir=${dir}/data\nclientPort=${port}\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n${cfg}\n`);
  const child = spawn(process.execPath, corralCommand('start', file), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d.toString()));
  child.stderr!.on('data', (d) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const deadline = Date.now() + 15000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`corral exited ${child.exitCode}:\n${out}`);
    const answer = await fourLetter(port, 'ruok').catch(() => '');
    if (answer === 'imok') break;
    if (Date.now() > deadline) throw new Error(`corral did not answer ruok:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    port,
    dir,
    output: () => out,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
    cleanup() {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
