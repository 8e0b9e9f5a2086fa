import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { RawClient } from '../src/client/raw.js';
import { Storage } from '../src/storage/storage.js';
import { corralCommand, freePort, startCorralProcess } from './helpers/process.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// The `corral` command as an operator runs it: start, check-data, and the errors that
// stop it before it serves anything.

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function corral(...args: string[]) {
  return spawnSync(process.execPath, corralCommand(...args), { encoding: 'utf8', timeout: 20000 });
}

describe('corral command', () => {
  it('npm start runs the start-up snapshot npm install built, the same program as the ES modules', async () => {
    // The global setup builds it as npm install does; every process test starts from it.
    expect(corralCommand('version')[0]).toBe('--snapshot-blob');
    const fromSnapshot = corral('version');
    const fromModules = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'version'], { encoding: 'utf8' });
    expect(fromSnapshot.status).toBe(0);
    expect(fromSnapshot.stdout).toBe(fromModules.stdout);
    // scripts/start.sh is `npm start`: it execs node on the snapshot, config path passed on.
    const dir = mkdtempSync(path.join(tmpdir(), 'corral-cli-'));
    dirs.push(dir);
    const port = await freePort();
    writeFileSync(path.join(dir, 'zoo.cfg'), `tickTime=2000\ndataDir=${dir}/data\nclientPort=${port}\nclientPortAddress=127.0.0.1\n`);
    const child = spawn('sh', [path.join(ROOT, 'scripts', 'start.sh'), path.join(dir, 'zoo.cfg')], { stdio: 'ignore' });
    try {
      let c: RawClient | undefined;
      for (let i = 0; i < 200 && c === undefined; i++) {
        c = await RawClient.connect('127.0.0.1', port).catch(async () => {
          await new Promise((r) => setTimeout(r, 25));
          return undefined;
        });
      }
      expect(c, 'npm start did not serve').toBeDefined();
      expect((await c!.create('/started', Buffer.from('x'))).err).toBe(0);
      c!.close();
      expect(readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0')).toContain('--snapshot-blob');
    } finally {
      child.kill('SIGTERM');
    }
  });


  it('refuses a malformed zoo.cfg with an error naming the line', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'corral-cli-'));
    dirs.push(dir);
    const bad = path.join(dir, 'bad.cfg');
    // A key with no value at all (Java properties would read `key value` as key=value).
    writeFileSync(bad, `tickTime=2000\ndataDir=${dir}\nclientPort=0\njustakey\n`);
    const r = corral('start', bad);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/bad\.cfg:4:/);
  });

  it('refuses an ensemble config it cannot run: no myid, a myid not listed, two servers on one port', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'corral-cli-'));
    dirs.push(dir);
    const cfg = path.join(dir, 'zoo.cfg');
    const servers = 'server.1=127.0.0.1:24881:24891\nserver.2=127.0.0.1:24882:24892\nserver.3=127.0.0.1:24883:24893\n';
    writeFileSync(cfg, `tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir=${dir}\nclientPort=0\n${servers}`);
    let r = corral('start', cfg);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/myid/);
    expect(r.stderr).toContain(path.join(dir, 'myid'));
    writeFileSync(path.join(dir, 'myid'), '7\n');
    r = corral('start', cfg);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/7/);
    writeFileSync(path.join(dir, 'myid'), '1\n');
    writeFileSync(cfg, `tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir=${dir}\nclientPort=0\n${servers}server.4=127.0.0.1:24881:24894\n`);
    r = corral('start', cfg);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/server\.1.*server\.4|server\.4.*server\.1/);
  });

  it('a full log disk: one ERROR line naming the cause, exit code 1, and a restart with room keeps every acknowledged write', async (ctx) => {
    // A real ENOSPC: dataLogDir on a 1 MiB tmpfs (needs root to mount; skipped otherwise).
    const mnt = mkdtempSync(path.join(tmpdir(), 'corral-full-'));
    dirs.push(mnt);
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]).status !== 0) return ctx.skip('cannot mount a small tmpfs here (not root?)');
    try {
      const p = await startCorralProcess(`dataLogDir=${mnt}`);
      const exited = new Promise<number | null>((r) => (p.child.exitCode !== null ? r(p.child.exitCode) : p.child.once('exit', (code) => r(code))));
      const c = await RawClient.connect('127.0.0.1', p.port);
      const acked: string[] = [];
      const big = Buffer.alloc(100_000, 1);
      for (let i = 0; i < 40; i++) {
        const r = await c.create(`/n${i}`, big).catch(() => null);
        if (r === null) break;
        expect(r.err).toBe(0);
        acked.push(`/n${i}`);
      }
      expect(acked.length).toBeGreaterThan(0);
      expect(acked.length).toBeLessThan(40);
      // It stops by itself, saying why once.
      expect(await exited).toBe(1);
      const errors = p.output().split('\n').filter((l) => l.includes('[ERROR]'));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/transaction log failed, stopping: .*a commit failed \((?!Commit failed)/);
      // Room again (the tmpfs resized): every acknowledged create is there.
      spawnSync('mount', ['-o', 'remount,size=16m', mnt]);
      const r = spawnSync(process.execPath, corralCommand('check-data', path.join(p.dir, 'data'), mnt), { encoding: 'utf8', timeout: 20000 });
      expect(r.stdout, r.stderr).toMatch(/OK|torn tail/);
      const again = await startCorralProcess(`dataLogDir=${mnt}`, p.dir);
      try {
        const c2 = await RawClient.connect('127.0.0.1', again.port);
        for (const n of acked) expect((await c2.exists(n)).err, n).toBe(0);
        c2.close();
      } finally {
        await again.stop();
      }
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  it('check-data passes a data dir a server wrote, and both it and start refuse a damaged log', async () => {
    const p = await startCorralProcess('snapCount=50');
    try {
      const c = await RawClient.connect('127.0.0.1', p.port);
      for (let i = 0; i < 120; i++) expect((await c.create(`/n${i}`, Buffer.from(`v${i}`))).err).toBe(0);
      c.close();
      expect(await p.stop()).toBe(0);
      const dataDir = path.join(p.dir, 'data');
      const ok = corral('check-data', dataDir);
      expect(ok.status).toBe(0);
      expect(ok.stdout).toMatch(/^OK$/m);

      // Damage a record in the middle of the log: not a torn tail, so nothing may start.
      const s = await Storage.open({ dataDir, forceSync: true, log: () => {} });
      const mid = Math.floor(s.txnLog.lastZxid / 2);
      const raw = Buffer.from(s.txnLog.getRaw(mid)!);
      raw[raw.length - 1]! ^= 0x5a;
      await s.txnLog.putRaw(mid, raw);
      // Also drop the snapshots, so recovery has to read through the damaged record.
      for (const e of s.snapshots.list()) await s.snapshots.remove(e.id);
      await s.close();

      const damaged = corral('check-data', dataDir);
      expect(damaged.status).toBe(1);
      expect(damaged.stdout).toMatch(/^DAMAGED$/m);
      const start = corral('start', path.join(p.dir, 'zoo.cfg'));
      expect(start.status).toBe(3);
      expect(start.stdout).toMatch(/cannot start: .*corral-log/);
    } finally {
      p.cleanup();
    }
  });
});
