import { describe, it, expect } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError, DEFAULT_ZOO_CFG, defaultConfig, loadConfig, parseZooCfg, readMyId,
} from '../src/config/zoocfg.js';
import { resolveQuorum, type QuorumPlan } from '../src/config/quorum.js';

const parse = (text: string, baseDir?: string) => parseZooCfg(text, 'zoo.cfg', baseDir);
const cfg = (text: string) => parse(`dataDir=/var/zk\n${text}`).config;
const err = (text: string): string => {
  try {
    parse(text);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
};

function withTempDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'corral-cfg-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('parseZooCfg defaults', () => {
  it('uses ZooKeeper defaults when only dataDir is set', () => {
    const { config: c, warnings } = parse('dataDir=/var/zk');
    expect(warnings).toEqual([]);
    expect(c).toMatchObject({
      source: 'zoo.cfg', tickTime: 3000, initLimit: 10, syncLimit: 5, dataDir: '/var/zk', clientPort: 2181,
      clientPortAddress: '0.0.0.0', minSessionTimeout: 6000, maxSessionTimeout: 60000, maxClientCnxns: 60,
      globalOutstandingLimit: 1000, fourLetterWords: ['srvr'], extendedTypesEnabled: false,
      autopurgeSnapRetainCount: 3, autopurgePurgeInterval: 0, snapCount: 100000, juteMaxBuffer: 1048575,
      readonlyModeEnabled: false, forceSync: true, standaloneEnabled: true, peerType: 'participant', servers: [],
      containerCheckIntervalMs: 60000, containerMaxPerMinute: 10000, wsPortAddress: '127.0.0.1', serverThreads: 1,
    });
    expect(c.dataLogDir).toBeUndefined();
    expect(c.wsPort).toBeUndefined();
    expect(c.superDigest).toBeUndefined();
  });

  it('derives session timeout defaults from tickTime', () => {
    const c = cfg('tickTime=2000');
    expect([c.minSessionTimeout, c.maxSessionTimeout]).toEqual([4000, 40000]);
  });

  it('requires dataDir', () => {
    expect(err('tickTime=2000')).toBe('zoo.cfg: dataDir is not set');
  });
});

describe('parseZooCfg keys', () => {
  it('reads every key', () => {
    const c = cfg(`tickTime=1000
initLimit=20
syncLimit=7
dataLogDir=/var/zklog
clientPort=2281
clientPortAddress=10.0.0.1
minSessionTimeout=1500
maxSessionTimeout=90000
maxClientCnxns=0
globalOutstandingLimit=5000
4lw.commands.whitelist= Stat, RUOK ,conf,
extendedTypesEnabled=true
autopurge.snapRetainCount=5
autopurge.purgeInterval=24
snapCount=5000
forceSync=no
standaloneEnabled=false
peerType=observer
wsPort=9000
wsPortAddress=0.0.0.0
serverThreads=4
znode.container.checkIntervalMs=1000
znode.container.maxPerMinute=50
jute.maxbuffer=4194304
readonlymode.enabled=true
DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=`);
    expect(c).toMatchObject({
      tickTime: 1000, initLimit: 20, syncLimit: 7, dataLogDir: '/var/zklog', clientPort: 2281,
      clientPortAddress: '10.0.0.1', minSessionTimeout: 1500, maxSessionTimeout: 90000, maxClientCnxns: 0,
      globalOutstandingLimit: 5000, fourLetterWords: ['stat', 'ruok', 'conf'], extendedTypesEnabled: true,
      autopurgeSnapRetainCount: 5, autopurgePurgeInterval: 24, snapCount: 5000, forceSync: false,
      standaloneEnabled: false, peerType: 'observer', wsPort: 9000, wsPortAddress: '0.0.0.0', serverThreads: 4,
      containerCheckIntervalMs: 1000, containerMaxPerMinute: 50, juteMaxBuffer: 4194304, readonlyModeEnabled: true,
      superDigest: 'super:D/InIHSb7yEEbrWz8b9l71RjZJU=',
    });
  });

  it('treats * in the 4lw whitelist as all', () => {
    expect(cfg('4lw.commands.whitelist=stat, *').fourLetterWords).toEqual(['*']);
  });

  it('accepts true/false and yes/no in any case', () => {
    expect(cfg('forceSync=YES').forceSync).toBe(true);
    expect(cfg('forceSync=False').forceSync).toBe(false);
    expect(cfg('extendedTypesEnabled=Yes').extendedTypesEnabled).toBe(true);
    expect(err('dataDir=/d\nforceSync=maybe')).toBe('zoo.cfg:2: forceSync must be true/false or yes/no, got "maybe"');
  });

  it('accepts hex jute.maxbuffer', () => {
    expect(cfg('jute.maxbuffer=0xfffff').juteMaxBuffer).toBe(0xfffff);
    expect(err('dataDir=/d\njute.maxbuffer=1M')).toMatch(/^zoo\.cfg:2: jute\.maxbuffer must be an integer/);
  });

  it('raises autopurge.snapRetainCount below 3 to 3 with a warning', () => {
    const { config, warnings } = parse('dataDir=/d\nautopurge.snapRetainCount=1');
    expect(config.autopurgeSnapRetainCount).toBe(3);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^zoo\.cfg:2: autopurge\.snapRetainCount 1/);
  });

  it('rejects a bad peerType and a bad superDigest', () => {
    expect(err('dataDir=/d\npeerType=leader')).toMatch(/^zoo\.cfg:2: .*peerType/);
    expect(err('dataDir=/d\nDigestAuthenticationProvider.superDigest=nocolon')).toMatch(/^zoo\.cfg:2: /);
  });

  it('keeps empty dataLogDir as unset', () => {
    expect(cfg('dataLogDir=').dataLogDir).toBeUndefined();
  });

  it('resolves relative dirs against baseDir and keeps absolute ones', () => {
    const c = parse('dataDir=data\ndataLogDir=/abs/log', '/etc/corral').config;
    expect(c.dataDir).toBe('/etc/corral/data');
    expect(c.dataLogDir).toBe('/abs/log');
    expect(parse('dataDir=data').config.dataDir).toBe('data'); // no baseDir: left as is
  });

  it('records every key=value in raw, in file order', () => {
    const c = cfg('zookeeper.snapCount=10\nfooBar=1\nclientPort=2000');
    expect([...c.raw]).toEqual([['dataDir', '/var/zk'], ['zookeeper.snapCount', '10'], ['fooBar', '1'], ['clientPort', '2000']]);
  });
});

describe('zookeeper. prefix', () => {
  it('accepts system-property settings with the prefix', () => {
    const c = cfg(`zookeeper.jute.maxbuffer=0x200000
zookeeper.readonlymode.enabled=true
zookeeper.DigestAuthenticationProvider.superDigest=super:abc=
zookeeper.extendedTypesEnabled=true
zookeeper.forceSync=no
zookeeper.znode.container.checkIntervalMs=500
zookeeper.znode.container.maxPerMinute=7
zookeeper.snapCount=42
zookeeper.4lw.commands.whitelist=mntr`);
    expect(c).toMatchObject({
      juteMaxBuffer: 0x200000, readonlyModeEnabled: true, superDigest: 'super:abc=', extendedTypesEnabled: true,
      forceSync: false, containerCheckIntervalMs: 500, containerMaxPerMinute: 7, snapCount: 42, fourLetterWords: ['mntr'],
    });
  });

  it('does not accept the prefix on plain zoo.cfg keys', () => {
    const { config, warnings } = parse('dataDir=/d\nzookeeper.tickTime=1');
    expect(config.tickTime).toBe(3000);
    expect(warnings).toEqual(['zoo.cfg:2: unknown key "zookeeper.tickTime" ignored']);
  });
});

describe('Properties syntax', () => {
  it('accepts =, : and whitespace separators, trimming whitespace', () => {
    const c = cfg('tickTime = 1000\ninitLimit: 11\nsyncLimit 6\n  clientPortAddress\t=\t1.2.3.4  \n');
    expect([c.tickTime, c.initLimit, c.syncLimit, c.clientPortAddress]).toEqual([1000, 11, 6, '1.2.3.4']);
  });

  it('skips # and ! comments and blank lines, and handles CRLF', () => {
    const c = parse('# comment\r\n\r\n   ! also a comment\r\n\tdataDir=/d\r\n#tickTime=1\r\n').config;
    expect(c.dataDir).toBe('/d');
    expect(c.tickTime).toBe(3000);
    expect([...c.raw.keys()]).toEqual(['dataDir']);
  });

  it('joins backslash continuation lines and unescapes', () => {
    const c = cfg('4lw.commands.whitelist=stat, \\\n    ruok\nclientPortAddress=a\\:b');
    expect(c.fourLetterWords).toEqual(['stat', 'ruok']);
    expect(c.clientPortAddress).toBe('a:b');
  });

  it('the later of two identical keys wins', () => {
    expect(cfg('clientPort=1\nclientPort=2').clientPort).toBe(2);
  });

  it('warns once per unknown key and ignores known ZooKeeper keys', () => {
    const { warnings } = parse(`dataDir=/d
admin.enableServer=false
admin.serverPort=8080
metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider
secureClientPort=2281
electionAlg=3
reconfigEnabled=true
group.1=1:2:3
weight.1=1
ssl.keyStore.location=/x
authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider
requestThrottleLimit=100
quorumListenOnAllIPs=true
preAllocSize=65536
fooBar=1
`);
    expect(warnings).toEqual(['zoo.cfg:15: unknown key "fooBar" ignored']);
  });

  it('names the line of a line with no separator', () => {
    expect(err('dataDir=/d\n\n# c\n\nx=1\n\nfoo\n')).toBe('zoo.cfg:7: expected key=value, got "foo"');
  });

  it('names the line and key of a bad number', () => {
    expect(err('dataDir=/d\ntickTime=fast')).toBe('zoo.cfg:2: tickTime must be an integer, got "fast"');
    expect(err('dataDir=/d\nclientPort=')).toMatch(/^zoo\.cfg:2: clientPort must be an integer/);
  });
});

describe('validation', () => {
  it('rejects minSessionTimeout > maxSessionTimeout', () => {
    expect(err('dataDir=/d\nminSessionTimeout=5000\nmaxSessionTimeout=4000')).toMatch(/^zoo\.cfg: minSessionTimeout .*maxSessionTimeout/);
    // The max default follows tickTime, so a large min alone can also conflict.
    expect(err('dataDir=/d\ntickTime=100\nminSessionTimeout=3000')).toMatch(/minSessionTimeout/);
  });

  it('rejects tickTime <= 0 and clientPort out of range', () => {
    expect(err('dataDir=/d\ntickTime=0')).toMatch(/^zoo\.cfg:2: tickTime must be >= 1/);
    expect(err('dataDir=/d\nclientPort=65536')).toMatch(/^zoo\.cfg:2: clientPort must be between 0 and 65535/);
    expect(cfg('clientPort=0').clientPort).toBe(0);
  });
});

describe('server.N', () => {
  it('parses participant, observer and client port forms, sorted by id', () => {
    const c = cfg(`server.3=zk3:2888:3888:observer;2183
server.1=zk1:2888:3888
server.2=zk2:2889:3889:participant;0.0.0.0:2182
server.4=[::1]:2888:3888;[::1]:2184`);
    expect(c.servers).toEqual([
      { id: 1, host: 'zk1', quorumPort: 2888, electionPort: 3888, role: 'participant' },
      { id: 2, host: 'zk2', quorumPort: 2889, electionPort: 3889, role: 'participant', clientHost: '0.0.0.0', clientPort: 2182 },
      { id: 3, host: 'zk3', quorumPort: 2888, electionPort: 3888, role: 'observer', clientPort: 2183 },
      { id: 4, host: '::1', quorumPort: 2888, electionPort: 3888, role: 'participant', clientHost: '::1', clientPort: 2184 },
    ]);
  });

  it.each([
    'server.1=zk1:2888',
    'server.1=zk1:2888:3888:leader',
    'server.1=zk1:2888:x',
    'server.1=zk1:2888:99999',
    'server.1=:2888:3888',
    'server.1=zk1:2888:3888;a:b:c',
    'server.1=zk1:2888:3888:observer:extra',
    'server.x=zk1:2888:3888',
  ])('rejects %s naming the line', (line) => {
    expect(err(`dataDir=/d\n${line}`)).toMatch(/^zoo\.cfg:2: /);
  });
});

describe('defaultConfig and loadConfig', () => {
  it('builds the embedded standalone default from DEFAULT_ZOO_CFG', () => {
    const c = defaultConfig('/home/me/corral');
    expect(c).toMatchObject({
      source: '<embedded default>', tickTime: 2000, clientPortAddress: '127.0.0.1', clientPort: 2181,
      dataDir: '/home/me/corral/data', fourLetterWords: ['*'], wsPort: 2182, wsPortAddress: '127.0.0.1',
      minSessionTimeout: 4000, maxSessionTimeout: 40000, servers: [], standaloneEnabled: true, serverThreads: 1,
    });
    expect(parseZooCfg(DEFAULT_ZOO_CFG, 'x', '/w').warnings).toEqual([]);
  });

  it('loads a file, resolving dataDir next to it', () => {
    withTempDir((dir) => {
      const file = join(dir, 'zoo.cfg');
      writeFileSync(file, 'dataDir=data\nbogus=1\n');
      const { config, warnings } = loadConfig(file);
      expect(config.dataDir).toBe(join(dir, 'data'));
      expect(config.source).toBe(file);
      expect(warnings).toEqual([`${file}:2: unknown key "bogus" ignored`]);
    });
  });

  it('names the path of an unreadable file', () => {
    expect(() => loadConfig('/nonexistent/zoo.cfg')).toThrow(ConfigError);
    expect(() => loadConfig('/nonexistent/zoo.cfg')).toThrow(/\/nonexistent\/zoo\.cfg/);
  });
});

describe('readMyId', () => {
  it('reads a trimmed integer, or undefined when absent', () => {
    withTempDir((dir) => {
      expect(readMyId(dir)).toBeUndefined();
      writeFileSync(join(dir, 'myid'), ' 3\n');
      expect(readMyId(dir)).toBe(3);
    });
  });

  it('rejects non-integer content', () => {
    withTempDir((dir) => {
      writeFileSync(join(dir, 'myid'), 'three\n');
      expect(() => readMyId(dir)).toThrow(ConfigError);
      expect(() => readMyId(dir)).toThrow(/myid must be an integer, got "three"/);
    });
  });
});

// Writes zoo.cfg (with dataDir=data next to it) and, when given, data/myid into a temp dir, then resolves.
function quorumOf(text: string, myid?: string): { plan: QuorumPlan; file: string; dir: string } {
  return withTempDir((dir) => {
    const file = join(dir, 'zoo.cfg');
    writeFileSync(file, `dataDir=data\n${text}\n`);
    mkdirSync(join(dir, 'data'));
    if (myid !== undefined) writeFileSync(join(dir, 'data', 'myid'), myid);
    return { plan: resolveQuorum(loadConfig(file).config), file, dir };
  });
}
const quorumErr = (text: string, myid?: string): string => {
  try {
    quorumOf(text, myid);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    const msg = (e as Error).message;
    expect(msg).not.toContain('\n');
    expect(msg).toMatch(/^\/.*\/zoo\.cfg: /); // names the config source
    return msg;
  }
  throw new Error('expected a ConfigError');
};
const THREE = 'server.1=zk1:2888:3888\nserver.2=zk2:2888:3888\nserver.3=zk3:2888:3888';

describe('resolveQuorum: standalone', () => {
  it('runs standalone with no server lines, myid 1 without a myid file', () => {
    const { plan } = quorumOf('clientPort=2190');
    expect(plan).toEqual({
      mode: 'standalone', myid: 1, participants: [], observers: [], client: { host: '0.0.0.0', port: 2190 }, warnings: [],
    });
    expect(plan.self).toBeUndefined();
  });

  it('takes myid from the file when present', () => {
    expect(quorumOf('', '7\n').plan).toMatchObject({ mode: 'standalone', myid: 7 });
  });

  it('runs a single server line standalone, ignoring it with a warning', () => {
    const { plan, file } = quorumOf('server.1=zk1:2888:3888');
    expect(plan).toMatchObject({ mode: 'standalone', myid: 1, participants: [], observers: [] });
    expect(plan.self).toBeUndefined();
    expect(plan.warnings).toHaveLength(1);
    expect(plan.warnings[0]).toMatch(new RegExp(`^${file}: only one server line \\(server\\.1\\).*standaloneEnabled=false`));
  });

  it('takes the client address from the single line when myid names it', () => {
    expect(quorumOf('server.1=zk1:2888:3888;127.0.0.1:2300', '1').plan.client).toEqual({ host: '127.0.0.1', port: 2300 });
    expect(quorumOf('server.1=zk1:2888:3888;2300', '2').plan.client).toEqual({ host: '0.0.0.0', port: 2181 });
  });

  it('warns that peerType=observer means nothing standalone', () => {
    expect(quorumOf('peerType=observer').plan.warnings).toEqual([expect.stringMatching(/peerType=observer is ignored/)]);
  });

  it('still reads myid in standalone and rejects a bad one, naming the file', () => {
    expect(quorumErr('', 'one')).toMatch(/data\/myid: myid must be an integer, got "one"/);
  });

  it('rejects standaloneEnabled=false without server lines', () => {
    expect(quorumErr('standaloneEnabled=false')).toMatch(/standaloneEnabled=false needs at least one participant server\.N line/);
  });
});

describe('resolveQuorum: quorum mode', () => {
  it('resolves 3 participants and 1 observer from the observer\'s myid', () => {
    const { plan } = quorumOf(`${THREE}\nserver.4=zk4:2888:3888:observer;2184\npeerType=observer`, '4\n');
    expect(plan.mode).toBe('quorum');
    expect(plan.myid).toBe(4);
    expect(plan.self).toEqual({ id: 4, host: 'zk4', quorumPort: 2888, electionPort: 3888, role: 'observer', clientPort: 2184 });
    expect(plan.participants.map((s) => s.id)).toEqual([1, 2, 3]);
    expect(plan.observers.map((s) => s.id)).toEqual([4]);
    expect(plan.client).toEqual({ host: '0.0.0.0', port: 2184 });
    expect(plan.warnings).toEqual([]);
  });

  it('resolves a participant and sorts the voters by id', () => {
    const { plan } = quorumOf('server.3=zk3:2888:3888\nserver.1=zk1:2888:3888\nserver.2=zk2:2888:3888', '2');
    expect(plan).toMatchObject({ mode: 'quorum', myid: 2, self: { id: 2, host: 'zk2', role: 'participant' }, observers: [], warnings: [] });
    expect(plan.participants.map((s) => s.id)).toEqual([1, 2, 3]);
  });

  it('runs a quorum of one with standaloneEnabled=false, warning no failure is tolerated', () => {
    const { plan } = quorumOf('standaloneEnabled=false\nserver.5=zk5:2888:3888', '5');
    expect(plan).toMatchObject({ mode: 'quorum', myid: 5, self: { id: 5 } });
    expect(plan.participants.map((s) => s.id)).toEqual([5]);
    expect(plan.warnings).toEqual([expect.stringMatching(/1 participant: no server failure will be tolerated/)]);
  });

  it('allows observers with a single participant when standaloneEnabled=false', () => {
    const { plan } = quorumOf('standaloneEnabled=false\nserver.1=zk1:2888:3888\nserver.2=zk2:2888:3888:observer', '1');
    expect(plan).toMatchObject({ mode: 'quorum', myid: 1 });
    expect(plan.observers.map((s) => s.id)).toEqual([2]);
  });

  it('requires the myid file, naming its path and the ids', () => {
    const msg = quorumErr(THREE);
    expect(msg).toMatch(/myid file \/.*\/data\/myid, which is missing; write this server's id \(one of 1, 2, 3\) in it$/);
  });

  it('requires myid to be one of the server ids', () => {
    expect(quorumErr(THREE, '9')).toMatch(/myid 9 \(from \/.*\/data\/myid\) is not one of the server ids 1, 2, 3; .*server\.9/);
  });

  it('lets the server line decide the role, warning on a peerType mismatch', () => {
    const obs = quorumOf(`${THREE}\nserver.4=zk4:2888:3888:observer`, '4').plan;
    expect(obs.self?.role).toBe('observer');
    expect(obs.warnings).toEqual([expect.stringMatching(/peerType is not set .* server\.4 is an observer; using observer/)]);
    const part = quorumOf(`${THREE}\npeerType=observer`, '1').plan;
    expect(part.self?.role).toBe('participant');
    expect(part.warnings).toEqual([expect.stringMatching(/peerType=observer but server\.1 is a participant; using participant/)]);
  });

  it('warns about 2 participants and about an even count', () => {
    const two = quorumOf('server.1=zk1:2888:3888\nserver.2=zk2:2888:3888', '1').plan;
    expect(two.mode).toBe('quorum');
    expect(two.warnings).toEqual([expect.stringMatching(/2 participants: no server failure will be tolerated; use at least 3$/)]);
    const four = quorumOf(`${THREE}\nserver.4=zk4:2888:3888`, '1').plan;
    expect(four.warnings).toEqual([expect.stringMatching(/4 participants tolerate 1 failure, no more than 3 would; consider an odd number$/)]);
    const six = quorumOf(`${THREE}\nserver.4=zk4:1:2\nserver.5=zk5:1:2\nserver.6=zk6:1:2`, '1').plan;
    expect(six.warnings).toEqual([expect.stringMatching(/6 participants tolerate 2 failures, no more than 5 would/)]);
    expect(quorumOf(`${THREE}\nserver.4=zk4:1:2\nserver.5=zk5:1:2`, '1').plan.warnings).toEqual([]);
  });

  it('rejects observers without any participant', () => {
    expect(quorumErr('server.1=zk1:2888:3888:observer\nserver.2=zk2:2888:3888:observer', '1'))
      .toMatch(/no participant among the server lines \(server\.1, server\.2 are all observers\) .*make at least one a participant$/);
    expect(quorumErr('server.1=zk1:2888:3888:observer', '1')).toMatch(/\(server\.1 is an observer\)/);
  });

  it('rejects observers with a single participant when standaloneEnabled=true', () => {
    expect(quorumErr('server.1=zk1:2888:3888\nserver.2=zk2:2888:3888:observer\nserver.3=zk3:2888:3888:observer', '1'))
      .toMatch(/observers server\.2, server\.3 need a quorum/);
    expect(quorumErr('server.1=zk1:2888:3888\nserver.2=zk2:2888:3888:observer', '1'))
      .toMatch(/observer server\.2 needs a quorum but server\.1 is the only participant .*set standaloneEnabled=false or add participants$/);
  });

  it('requires initLimit and syncLimit >= 1 and tickTime > 0', () => {
    withTempDir((dir) => {
      writeFileSync(join(dir, 'myid'), '1');
      const base = parseZooCfg(`dataDir=${dir}\n${THREE}`, 'zoo.cfg').config;
      expect(resolveQuorum(base).mode).toBe('quorum');
      for (const [key, re] of [
        ['initLimit', /^zoo\.cfg: initLimit must be at least 1 tick in quorum mode, got 0/],
        ['syncLimit', /^zoo\.cfg: syncLimit must be at least 1 tick in quorum mode, got 0/],
        ['tickTime', /^zoo\.cfg: tickTime must be a positive number/],
      ] as const) {
        expect(() => resolveQuorum({ ...base, [key]: 0 })).toThrow(ConfigError);
        expect(() => resolveQuorum({ ...base, [key]: 0 })).toThrow(re);
      }
      // initLimit/syncLimit only matter to a quorum.
      expect(resolveQuorum({ ...base, servers: [], initLimit: 0, syncLimit: 0 }).mode).toBe('standalone');
      expect(() => resolveQuorum({ ...base, servers: [], tickTime: 0 })).toThrow(/tickTime/);
    });
  });
});

describe('resolveQuorum: addresses', () => {
  it('refuses hierarchical quorums (group.N / weight.N) rather than deciding by a majority instead', () => {
    const msg = quorumErr(`${THREE}\ngroup.1=1:2\ngroup.2=3\nweight.1=1\nweight.2=1\nweight.3=1`, '1');
    expect(msg).toMatch(/hierarchical quorums \(group\.1, group\.2, weight\.1, \.\.\.\) are not supported/);
  });

  it('rejects a server whose quorumPort equals its electionPort', () => {
    expect(quorumErr('server.1=zk1:2888:2888')).toMatch(/server\.1 uses port 2888 for both quorumPort and electionPort/);
  });

  it.each([
    ['quorum/quorum', 'server.1=h:2888:3888\nserver.2=h:2888:3889', 'server.1 quorumPort and server.2 quorumPort are both h:2888'],
    ['election/election', 'server.1=h:2888:3888\nserver.2=h:2889:3888', 'server.1 electionPort and server.2 electionPort are both h:3888'],
    ['quorum/election', 'server.1=h:2888:3888\nserver.2=h:3888:3889', 'server.1 electionPort and server.2 quorumPort are both h:3888'],
    ['election/quorum', 'server.1=h:2888:3888\nserver.2=h:2889:2888', 'server.1 quorumPort and server.2 electionPort are both h:2888'],
    ['host case', 'server.1=ZK:2888:3888\nserver.2=zk:2888:3889', 'server.1 quorumPort and server.2 quorumPort are both ZK:2888'],
    ['IPv6', 'server.1=[::1]:2888:3888\nserver.2=[::1]:2888:3889', 'both [::1]:2888'],
    ['with an observer', 'server.1=h:2888:3888\nserver.2=h:2890:3890\nserver.3=h:2890:3891:observer', 'server.2 quorumPort and server.3 quorumPort'],
  ])('rejects two servers sharing a host:port (%s), naming both', (_name, lines, expected) => {
    const msg = quorumErr(lines, '1');
    expect(msg).toContain(expected);
    expect(msg).toMatch(/give each server its own host:port$/);
  });

  it('allows the same ports on different hosts', () => {
    expect(quorumOf('server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.2:2888:3888\nserver.3=zk3:2888:3888', '1').plan.mode).toBe('quorum');
  });

  it('runs a local three-node ensemble on distinct ports', () => {
    const lines = 'server.1=localhost:2888:3888;2181\nserver.2=localhost:2889:3889;2182\nserver.3=localhost:2890:3890;2183';
    expect(quorumOf(lines, '2').plan.client).toEqual({ host: '0.0.0.0', port: 2182 });
  });

  it.each([
    ['its own quorumPort', 'clientPort=2888', 'server.1=h1:2888:3888\nserver.2=h2:2888:3888\nserver.3=h3:2888:3888', /client port 2888 of this server \(server\.1\) is also its own quorumPort on h1; choose a different clientPort$/],
    ['its own electionPort, from its line', '', 'server.1=h1:2888:3888;3888\nserver.2=h2:2888:3888\nserver.3=h3:2888:3888', /client port 3888 .* its own electionPort/],
    ['another server on the same host', 'clientPort=2889', 'server.1=localhost:2888:3888\nserver.2=localhost:2889:3889\nserver.3=localhost:2890:3890', /client port 2889 of this server \(server\.1\) is also server\.2's quorumPort on localhost/],
    ['another server on the client host', '', 'server.1=10.0.0.1:2888:3888;127.0.0.1:3890\nserver.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890', /server\.3's electionPort on 127\.0\.0\.1/],
  ])('rejects a client port equal to %s', (_name, extra, lines, re) => {
    expect(quorumErr(`${extra}\n${lines}`, '1')).toMatch(re);
  });

  it('allows a client port equal to a quorum port on another host', () => {
    const { plan } = quorumOf('clientPort=2888\nserver.1=h1:2000:3000\nserver.2=h2:2888:3888\nserver.3=h3:2888:3888', '1');
    expect(plan.client).toEqual({ host: '0.0.0.0', port: 2888 });
  });

  it('takes the client address from the server line, rejecting a clientPort that disagrees', () => {
    expect(quorumOf(`${THREE.replace('3888\n', '3888;zk1:2200\n')}`, '1').plan.client).toEqual({ host: 'zk1', port: 2200 });
    // Agreeing: same port with a wildcard clientPortAddress, or the same host and port.
    expect(quorumOf(`clientPort=2200\n${THREE.replace('3888\n', '3888;zk1:2200\n')}`, '1').plan.client).toEqual({ host: 'zk1', port: 2200 });
    expect(quorumOf(`clientPort=2200\nclientPortAddress=zk1\n${THREE.replace('3888\n', '3888;zk1:2200\n')}`, '1').plan.client)
      .toEqual({ host: 'zk1', port: 2200 });
    expect(quorumErr(`clientPort=2181\n${THREE.replace('3888\n', '3888;2200\n')}`, '1'))
      .toMatch(/client address of server\.1 is 0\.0\.0\.0:2181 from clientPort\/clientPortAddress but 0\.0\.0\.0:2200 in its server line; make them agree/);
    // A specific clientPortAddress must match the line's host too (a bare port in the line means 0.0.0.0).
    expect(quorumErr(`clientPort=2200\nclientPortAddress=127.0.0.1\n${THREE.replace('3888\n', '3888;2200\n')}`, '1'))
      .toMatch(/is 127\.0\.0\.1:2200 from clientPort\/clientPortAddress but 0\.0\.0\.0:2200 in its server line/);
    // Another server's client address is not this server's business.
    expect(quorumOf(`clientPort=2181\n${THREE.replace('3888\n', '3888;2200\n')}`, '2').plan.client).toEqual({ host: '0.0.0.0', port: 2181 });
  });
});
