import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../src/client/raw.js';
import { ZK_PROTOCOL_VERSION } from '../src/protocol/constants.js';
import { javaDouble } from '../src/server/fourletter.js';
import { corralVersion } from '../src/version.js';
import { startServer, type TestServer } from './helpers/server.js';

/** Sends a four letter word (and any extra bytes) on a fresh socket; reads until the server closes. */
function flw(port: number, word: string, extra?: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    s.on('connect', () => s.write(extra === undefined ? Buffer.from(word) : Buffer.concat([Buffer.from(word), extra])));
  });
}

const hexId = (id: bigint) => BigInt.asUintN(64, id).toString(16);
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

const VERSION = `${esc(ZK_PROTOCOL_VERSION)}-corral-${esc(corralVersion())}, built on \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC`;
const SERVER_STATS =
  'Latency min/avg/max: \\d+/\\d+\\.\\d+(?:E-?\\d+)?/\\d+\\n' +
  'Received: \\d+\\nSent: \\d+\\nConnections: \\d+\\nOutstanding: \\d+\\nZxid: 0x[0-9a-f]+\\nMode: standalone\\nNode count: \\d+\\n';
const BRIEF_CNXN = ' /127\\.0\\.0\\.1:\\d+\\[[01]\\]\\(queued=\\d+,recved=\\d+,sent=\\d+\\)';

function field(text: string, name: string): string {
  const m = new RegExp(`^${esc(name)}: (.*)$`, 'm').exec(text);
  if (m === null) throw new Error(`no "${name}" in:\n${text}`);
  return m[1]!;
}

function mntrMap(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n').slice(0, -1)) {
    expect(line).toMatch(/^zk_[a-z_]+\t\S.*$/);
    const [k, v] = line.split('\t') as [string, string];
    out.set(k, v);
  }
  return out;
}

/** The cons/dump line for one client connection (the server's view of its socket). */
function consLine(text: string, c: RawClient): string {
  const line = text.split('\n').find((l) => l.includes(`/127.0.0.1:${c.socket.localPort}[`));
  if (line === undefined) throw new Error(`connection ${c.socket.localPort} not listed in:\n${text}`);
  return line;
}

describe('four letter words, all enabled', () => {
  let ts: TestServer;
  let c: RawClient;
  beforeAll(async () => {
    ts = await startServer('4lw.commands.whitelist=*');
    c = await RawClient.connect('127.0.0.1', ts.port);
  });
  afterAll(async () => {
    c.close();
    await ts.stop();
  });

  it('ruok answers imok, isro rw, hash nothing (no digests)', async () => {
    expect(await flw(ts.port, 'ruok')).toBe('imok');
    expect(await flw(ts.port, 'isro')).toBe('rw');
    expect(await flw(ts.port, 'hash')).toBe('');
  });

  it('srvr: version, server stats, node count', async () => {
    expect((await c.create('/srvr', Buffer.from('abc'))).err).toBe(0);
    const out = await flw(ts.port, 'srvr');
    expect(out).toMatch(new RegExp(`^Zookeeper version: ${VERSION}\\n${SERVER_STATS}$`));
    expect(field(out, 'Node count')).toBe(String(ts.server.tree.nodeCount));
    expect(field(out, 'Zxid')).toBe(`0x${ts.server.tree.lastZxid.toString(16)}`);
    // The client's connection and this one.
    expect(field(out, 'Connections')).toBe('2');
    expect(field(out, 'Outstanding')).toBe('0');
    expect((await c.delete('/srvr')).err).toBe(0);
  });

  it('stat: srvr plus the brief client list', async () => {
    const out = await flw(ts.port, 'stat');
    expect(out).toMatch(new RegExp(`^Zookeeper version: ${VERSION}\\nClients:\\n(?:${BRIEF_CNXN}\\n)+\\n${SERVER_STATS}$`));
    expect(consLine(out, c)).toMatch(/^ \/127\.0\.0\.1:\d+\[1\]\(queued=0,recved=\d+,sent=\d+\)$/);
    // The word's own connection is listed too, with its one packet and no interest ops.
    expect(out).toMatch(/^ \/127\.0\.0\.1:\d+\[0\]\(queued=0,recved=1,sent=0\)$/m);
  });

  it('cons: full details of a session, brief for the command connection', async () => {
    expect((await c.create('/cons')).err).toBe(0);
    expect((await c.getData('/cons')).err).toBe(0);
    const out = await flw(ts.port, 'cons');
    expect(out.endsWith(')\n\n')).toBe(true);
    const line = consLine(out, c);
    const sid = hexId(c.session.sessionId);
    expect(line).toMatch(
      new RegExp(
        `^ /127\\.0\\.0\\.1:${c.socket.localPort}\\[1\\]\\(queued=0,recved=\\d+,sent=\\d+,sid=0x${sid},lop=GETD,` +
          `est=\\d{13},to=30000,lcxid=0x[0-9a-f]+,lzxid=0x[0-9a-f]+,lresp=\\d{13},llat=\\d+,minlat=\\d+,avglat=\\d+,maxlat=\\d+\\)$`,
      ),
    );
    const conn = ts.server.sessionConns.get(c.session.sessionId)!;
    expect(line).toContain(`,recved=${conn.packetsReceived},sent=${conn.packetsSent},`);
    expect(line).toContain(`,lcxid=0x${conn.lastCxid.toString(16)},`);
    expect(out).toMatch(/^ \/127\.0\.0\.1:\d+\[0\]\(queued=0,recved=1,sent=0\)$/m);
    expect((await c.delete('/cons')).err).toBe(0);
  });

  it('crst resets every connection\'s counters', async () => {
    expect((await c.exists('/nope')).err).not.toBe(0);
    expect(consLine(await flw(ts.port, 'cons'), c)).not.toContain('recved=0,sent=0,');
    expect(await flw(ts.port, 'crst')).toBe('Connection stats reset.\n');
    const line = consLine(await flw(ts.port, 'cons'), c);
    expect(line).toContain('(queued=0,recved=0,sent=0,');
    expect(line).toContain(',lop=NA,');
    expect(line).not.toContain('lcxid');
    expect(line).toContain(',lzxid=0xffffffffffffffff,lresp=0,llat=0,minlat=0,avglat=0,maxlat=0)');
  });

  it('srst resets the server counters', async () => {
    expect((await c.getData('/')).err).toBe(0);
    expect(Number(field(await flw(ts.port, 'srvr'), 'Received'))).toBeGreaterThan(1);
    expect(await flw(ts.port, 'srst')).toBe('Server stats reset.\n');
    const out = await flw(ts.port, 'srvr');
    expect(field(out, 'Latency min/avg/max')).toBe('0/0.0/0');
    expect(field(out, 'Received')).toBe('1'); // this srvr
    expect(field(out, 'Sent')).toBe('0');
  });

  it('mntr: zk_ key/value lines with the tree\'s real counts', async () => {
    const base = ts.server.tree.nodeCount;
    for (const p of ['/m1', '/m2', '/m3']) expect((await c.create(p, Buffer.from('12345'))).err).toBe(0);
    expect((await c.create('/m1/eph', Buffer.alloc(0), 1 /* EPHEMERAL */)).err).toBe(0);
    expect((await c.getData('/m2', true)).err).toBe(0);
    const out = await flw(ts.port, 'mntr');
    expect(out.endsWith('\n')).toBe(true);
    const m = mntrMap(out);
    expect([...m.keys()].slice(0, 2)).toEqual(['zk_version', 'zk_server_state']);
    expect(m.get('zk_version')).toMatch(new RegExp(`^${VERSION}$`));
    expect(m.get('zk_server_state')).toBe('standalone');
    expect(m.get('zk_znode_count')).toBe(String(base + 4));
    expect(m.get('zk_ephemerals_count')).toBe('1');
    expect(m.get('zk_watch_count')).toBe('1');
    expect(m.get('zk_approximate_data_size')).toBe(String(ts.server.tree.dataSize));
    expect(m.get('zk_num_alive_connections')).toBe('2');
    expect(m.get('zk_outstanding_requests')).toBe('0');
    expect(m.get('zk_global_sessions')).toBe('1');
    expect(m.get('zk_force_sync')).toBe('1');
    for (const k of ['zk_packets_received', 'zk_packets_sent', 'zk_min_latency', 'zk_max_latency', 'zk_uptime'])
      expect(m.get(k), k).toMatch(/^\d+$/);
    expect(m.get('zk_avg_latency')).toMatch(/^\d+\.\d+(?:E-?\d+)?$/);
    if (process.platform === 'linux') {
      expect(Number(m.get('zk_open_file_descriptor_count'))).toBeGreaterThan(0);
      expect(Number(m.get('zk_max_file_descriptor_count'))).toBeGreaterThan(0);
    } else {
      expect(m.get('zk_open_file_descriptor_count')).toMatch(/^-?\d+$/);
    }
    for (const p of ['/m1/eph', '/m1', '/m2', '/m3']) expect((await c.delete(p)).err).toBe(0);
  });

  it('wchs, wchc, wchp describe the data watches', async () => {
    const w = await RawClient.connect('127.0.0.1', ts.port);
    try {
      expect((await w.create('/wa')).err).toBe(0);
      expect((await w.getData('/wa', true)).err).toBe(0);
      expect((await w.exists('/wb', true)).err).not.toBe(0);
      const sid = hexId(w.session.sessionId);
      const wchc = await flw(ts.port, 'wchc');
      expect(wchc).toContain(`0x${sid}\n\t/wa\n\t/wb\n`);
      expect(wchc).toMatch(/^(0x[0-9a-f]+\n(\t\/.*\n)+)*\n$/);
      const wchp = await flw(ts.port, 'wchp');
      expect(wchp).toContain(`/wa\n\t0x${sid}\n`);
      expect(wchp).toContain(`/wb\n\t0x${sid}\n`);
      expect(wchp).toMatch(/^(\/.*\n(\t0x[0-9a-f]+\n)+)*\n$/);
      const wchs = await flw(ts.port, 'wchs');
      const watchers = ts.server.watches.data.byWatcher.size;
      const paths = ts.server.watches.data.byPath.size;
      expect(wchs).toMatch(/^\d+ connections watching \d+ paths\nTotal watches:\d+\n$/);
      expect(wchs.startsWith(`${watchers} connections watching ${paths} paths\n`)).toBe(true);
      // The watch fires and is spent.
      expect((await w.setData('/wa', Buffer.from('x'))).err).toBe(0);
      await w.waitNotifications(1);
      expect(await flw(ts.port, 'wchc')).not.toContain('\t/wa\n');
      expect((await w.delete('/wa')).err).toBe(0);
    } finally {
      w.close();
      await w.closed;
    }
  });

  it('dump: sessions, ephemerals and connections', async () => {
    expect((await c.create('/dump-eph', Buffer.alloc(0), 1)).err).toBe(0);
    const sid = hexId(c.session.sessionId);
    // Sessions whose client went away without closing stay until they expire.
    const out = await flw(ts.port, 'dump');
    const date = '[A-Z][a-z]{2} [A-Z][a-z]{2} \\d\\d \\d\\d:\\d\\d:\\d\\d \\S+ \\d{4}';
    expect(out).toMatch(
      new RegExp(
        `^SessionTracker dump:\\nSession Sets \\(\\d+\\)/\\(${ts.server.tracker.size}\\):\\n(?:\\d+ expire at ${date}:\\n(?:\\t0x[0-9a-f]+\\n)*)+` +
          `ephemeral nodes dump:\\nSessions with Ephemerals \\(1\\):\\n0x${sid}:\\n\\t/dump-eph\\n` +
          `Connections dump:\\nConnections Sets \\(\\d+\\)/\\(2\\):\\n(?:\\d+ expire at ${date}:\\n(?:\\t .*\\n)*)+$`,
      ),
    );
    expect(out).toContain(`\t0x${sid}\n`);
    expect(consLine(out, c)).toContain(`,sid=0x${sid},`);
    expect((await c.delete('/dump-eph')).err).toBe(0);
  });

  it('conf: ZooKeeper\'s standalone keys', async () => {
    const out = await flw(ts.port, 'conf');
    const keys = [
      'clientPort', 'secureClientPort', 'dataDir', 'dataDirSize', 'dataLogDir', 'dataLogSize', 'tickTime', 'maxClientCnxns',
      'minSessionTimeout', 'maxSessionTimeout', 'clientPortListenBacklog', 'serverId', 'forceSync',
    ];
    const lines = out.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((l) => l.split('=')[0])).toEqual(keys);
    const kv = new Map(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
    expect(kv.get('clientPort')).toBe(String(ts.port));
    expect(kv.get('secureClientPort')).toBe('-1');
    expect(kv.get('tickTime')).toBe('2000');
    expect(kv.get('minSessionTimeout')).toBe('4000');
    expect(kv.get('maxSessionTimeout')).toBe('40000');
    expect(kv.get('maxClientCnxns')).toBe('60');
    expect(kv.get('dataDir')!.startsWith(ts.config.dataDir)).toBe(true);
    expect(kv.get('dataDirSize')).toMatch(/^\d+$/);
    expect(kv.get('clientPortListenBacklog')).toBe('4096');
    // Corral reports its durability setting; forceSync=no is shown the same way.
    expect(kv.get('forceSync')).toBe('yes');
    const nosync = await startServer('forceSync=no\n4lw.commands.whitelist=*');
    try {
      expect(await flw(nosync.port, 'conf')).toMatch(/^forceSync=no$/m);
      expect(await flw(nosync.port, 'mntr')).toMatch(/^zk_force_sync\t0$/m);
      expect(nosync.logs.some((l) => l.includes('forceSync=no'))).toBe(true);
    } finally {
      await nosync.stop();
    }
  });

  it('envi: Environment: then key=value lines', async () => {
    const out = await flw(ts.port, 'envi');
    expect(out).toMatch(new RegExp(`^Environment:\\nzookeeper\\.version=${VERSION}\\nhost\\.name=.*\\n`));
    const keys = out.split('\n').slice(1, -1).map((l) => l.slice(0, l.indexOf('=')));
    expect(keys).toEqual([
      'zookeeper.version', 'host.name', 'java.version', 'java.vendor', 'java.home', 'java.class.path', 'java.library.path',
      'java.io.tmpdir', 'java.compiler', 'os.name', 'os.arch', 'os.version', 'user.name', 'user.home', 'user.dir',
      'os.memory.free', 'os.memory.max', 'os.memory.total',
    ]);
    expect(out).toMatch(/\nos\.memory\.max=\d+MB\n/);
  });

  it('dirs: sizes of the snapshot and log directories', async () => {
    expect(await flw(ts.port, 'dirs')).toMatch(/^datadir_size: \d+\nlogdir_size: \d+\n$/);
  });

  it('gtmk and stmk: the trace mask', async () => {
    expect(await flw(ts.port, 'gtmk')).toBe('306');
    const mask = Buffer.alloc(8);
    mask.writeBigInt64BE(0x1234n);
    expect(await flw(ts.port, 'stmk', mask)).toBe('4660');
    expect(await flw(ts.port, 'gtmk')).toBe('4660');
    // Without the long, the mask stands.
    expect(await flw(ts.port, 'stmk')).toBe('4660');
    mask.writeBigInt64BE(306n);
    expect(await flw(ts.port, 'stmk', mask)).toBe('306');
  });
});

describe('four letter word whitelist', () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startServer();
  });
  afterAll(async () => ts.stop());

  it('the default whitelist runs srvr only', async () => {
    expect(await flw(ts.port, 'srvr')).toMatch(/^Zookeeper version: /);
    for (const w of ['ruok', 'mntr', 'stat', 'cons', 'srst'])
      expect(await flw(ts.port, w)).toBe(`${w} is not executed because it is not in the whitelist.\n`);
  });

  it('srvr stays enabled whatever the whitelist says, as in ZooKeeper', async () => {
    const t2 = await startServer('4lw.commands.whitelist=ruok, mntr\nforceSync=no');
    try {
      expect(await flw(t2.port, 'ruok')).toBe('imok');
      expect(await flw(t2.port, 'srvr')).toMatch(/^Zookeeper version: /);
      expect(await flw(t2.port, 'conf')).toBe('conf is not executed because it is not in the whitelist.\n');
      expect(mntrMap(await flw(t2.port, 'mntr')).get('zk_force_sync')).toBe('0');
    } finally {
      await t2.stop();
    }
  });
});

describe('javaDouble', () => {
  it('formats like Double.toString', () => {
    expect(javaDouble(0)).toBe('0.0');
    expect(javaDouble(2)).toBe('2.0');
    expect(javaDouble(0.3333)).toBe('0.3333');
    expect(javaDouble(12.5)).toBe('12.5');
    expect(javaDouble(0.0001)).toBe('1.0E-4');
    expect(javaDouble(1.5e7)).toBe('1.5E7');
    expect(javaDouble(1e7)).toBe('1.0E7');
  });
});
