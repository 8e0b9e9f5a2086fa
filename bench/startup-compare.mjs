// Start to serving on an empty dataDir, Corral vs Apache ZooKeeper, timed the same way:
// spawn the server, then every 3 ms a TCP connect, a ConnectRequest and exists("/")
// (an attempt gives up after 250 ms); serving = the first exists reply without error.
// Starts alternate (A B, B A, ...) and the ratio is taken per pair.
//
//   ZK_CLIENT_PORT=12196 ../shared/tools/zkref/start.sh standalone /tmp/zkref-st     (from the project root)
//   tr '\0' '\n' < /proc/$(cut -d' ' -f1 /tmp/zkref-st/pids)/cmdline > /tmp/zkref-st/cmdline
//   ../shared/tools/zkref/stop.sh /tmp/zkref-st
//   node bench/startup-compare.mjs 11 dist/src/cli/main.js /tmp/zkref-st 12196
//
// ZooKeeper is then spawned with the JVM command line zkref used, its data dir emptied
// before each start.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { mkdtempSync, writeFileSync, rmSync, readFileSync, mkdirSync } from 'node:fs';
const N = Number(process.argv[2] ?? 9);
function frame(parts) { const body = Buffer.concat(parts); const h = Buffer.alloc(4); h.writeInt32BE(body.length); return Buffer.concat([h, body]); }
const i32 = (v) => { const b = Buffer.alloc(4); b.writeInt32BE(v); return b; };
const i64 = () => Buffer.alloc(8);
const str = (s) => Buffer.concat([i32(Buffer.byteLength(s)), Buffer.from(s)]);
const connectReq = frame([i32(0), i64(), i32(30000), i64(), i32(16), Buffer.alloc(16), Buffer.from([0])]);
const existsReq = frame([i32(1), i32(3), str('/'), Buffer.from([0])]);
function probe(port) {
  return new Promise((res) => {
    const s = net.connect(port, '127.0.0.1'); let buf = Buffer.alloc(0); let stage = 0; let done = false;
    const fin = (ok) => { if (!done) { done = true; s.destroy(); res(ok); } };
    s.setNoDelay(true); setTimeout(() => fin(false), 250);
    s.on('connect', () => s.write(connectReq));
    s.on('data', (d) => { buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) { const len = buf.readInt32BE(0); const body = buf.subarray(4, 4 + len); buf = buf.subarray(4 + len);
        if (stage === 0) { stage = 1; s.write(existsReq); } else { fin(body.readInt32BE(0) === 1 && body.readInt32BE(12) === 0); } } });
    s.on('error', () => fin(false)); s.on('close', () => fin(false));
  });
}
async function time(cmd, args, port, prep) {
  prep();
  const t0 = performance.now();
  const c = spawn(cmd, args, { stdio: 'ignore' });
  while (!(await probe(port))) await new Promise((r) => setTimeout(r, 3));
  const ms = performance.now() - t0;
  c.kill('SIGKILL'); await new Promise((r) => c.on('exit', r));
  return ms;
}
const corralMain = process.argv[3] ?? 'dist/src/cli/main.js';
const zkDir = process.argv[4] ?? '/tmp/zkref-st';
const zkPort = Number(process.argv[5] ?? 12196);
const zkCmd = readFileSync(`${zkDir}/cmdline`, 'utf8').split('\n').filter(Boolean);
const zkData = `${zkDir}/zk1/data`;
const cdir = mkdtempSync('/tmp/startcmp-');
writeFileSync(cdir + '/zoo.cfg', `tickTime=2000\ndataDir=${cdir}/data\nclientPort=12486\nclientPortAddress=127.0.0.1\n`);
const res = { corral: [], zk: [] };
for (let i = 0; i < N; i++) {
  const order = i % 2 === 0 ? ['corral', 'zk'] : ['zk', 'corral'];
  for (const who of order) {
    if (who === 'corral') res.corral.push(await time(process.execPath, [corralMain, 'start', cdir + '/zoo.cfg'], 12486, () => rmSync(cdir + '/data', { recursive: true, force: true })));
    else res.zk.push(await time(zkCmd[0], zkCmd.slice(1), zkPort, () => { rmSync(zkData, { recursive: true, force: true }); mkdirSync(zkData); }));
  }
}
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };
const ratios = res.corral.map((c, i) => c / res.zk[i]);
for (const k of ['corral', 'zk']) console.log(k, 'median', med(res[k]).toFixed(0), 'ms [', Math.min(...res[k]).toFixed(0), '-', Math.max(...res[k]).toFixed(0), ']', res[k].map((x) => x.toFixed(0)).join(' '));
console.log('paired ratio median', med(ratios).toFixed(2), '(', Math.min(...ratios).toFixed(2), '-', Math.max(...ratios).toFixed(2), ')');
rmSync(cdir, { recursive: true, force: true });
