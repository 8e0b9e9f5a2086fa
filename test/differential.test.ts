// Differential test: the scenarios of test/differential/scenarios.ts run against Corral
// and, when ZK_REFERENCE=host:port names an Apache ZooKeeper server, against it too,
// with the replies, notifications and closed connections compared field by field
// (see test/differential/scenario.ts for what is normalised and which 3.8-vs-3.9
// differences are allowed, by name). Without ZK_REFERENCE only the Corral half runs:
// each scenario's stated error codes and connection closes are checked.
//
//   ZK_REFERENCE=127.0.0.1:12181 npx vitest run test/differential.test.ts
//
// Set ZK_DIFF_VERBOSE=1 to print every transcript.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../src/client/raw.js';
import { Err, OpCode } from '../src/protocol/constants.js';
import type { JuteWriter } from '../src/protocol/jute.js';
import { checkExpectations, compare, runScenario, type RunResult, type Scenario, type Step } from './differential/scenario.js';
import { scenarios } from './differential/scenarios.js';
import { startServer, type TestServer } from './helpers/server.js';

const REF = process.env.ZK_REFERENCE;
const VERBOSE = process.env.ZK_DIFF_VERBOSE === '1';
const [refHost, refPortText] = (REF ?? ':').split(':');
const refPort = Number(refPortText);

const servers = new Map<string, TestServer>();
async function corralFor(sc: Scenario): Promise<TestServer> {
  const cfg = sc.corralCfg ?? '';
  let s = servers.get(cfg);
  if (s === undefined) {
    s = await startServer(cfg);
    servers.set(cfg, s);
  }
  return s;
}

/** Whether the reference accepts TTL nodes (zookeeper.extendedTypesEnabled). */
let refExtended: boolean | undefined;
async function probeExtended(): Promise<boolean> {
  const c = await RawClient.connect(refHost, refPort);
  try {
    const path = `/diff-probe-ttl-${Math.random().toString(36).slice(2, 10)}`;
    const r = await c.request(OpCode.createTTL, (w) => {
      w.ustring(path).buffer(Buffer.alloc(0));
      w.int(1).int(31).ustring('world').ustring('anyone');
      w.int(5).longNum(60000);
    });
    if (r.err === 0) await c.delete(path);
    return r.err === 0;
  } finally {
    c.close();
  }
}

/**
 * Whether the reference's container reaper runs often (started with
 * -Dznode.container.checkIntervalMs=<under 1000>): an emptied container goes within 3 s.
 */
let refFastReaper: boolean | undefined;
async function probeReaper(): Promise<boolean> {
  const c = await RawClient.connect(refHost, refPort);
  try {
    const path = `/diff-probe-reaper-${Math.random().toString(36).slice(2, 10)}`;
    const acl = (w: JuteWriter) => w.int(1).int(31).ustring('world').ustring('anyone');
    const r = await c.request(OpCode.createContainer, (w) => (w.ustring(path).buffer(Buffer.alloc(0)), acl(w), w.int(4)));
    if (r.err !== 0) return false;
    await c.create(`${path}/k`);
    await c.delete(`${path}/k`);
    for (const deadline = Date.now() + 3000; Date.now() < deadline; ) {
      if ((await c.exists(path)).err === Err.NONODE) return true;
      await new Promise((res) => setTimeout(res, 100));
    }
    await c.delete(path);
    return false;
  } finally {
    c.close();
  }
}

/** The reference's version, from the srvr four-letter word ("Zookeeper version: 3.8.0-..."). */
let refVersion: number[] = [];
async function probeVersion(): Promise<number[]> {
  const c = await RawClient.open(refHost, refPort);
  let text = '';
  c.socket.on('data', (d: Buffer) => (text += d.toString()));
  c.sendRaw(Buffer.from('srvr'));
  await Promise.race([c.closed, new Promise((r) => setTimeout(r, 3000))]);
  c.close();
  const m = /version: (\d+)\.(\d+)\.(\d+)/.exec(text);
  return m === null ? [] : [Number(m[1]), Number(m[2]), Number(m[3])];
}

const older = (v: number[], than: number[]) => v.length === 0 || v[0] * 1e6 + v[1] * 1e3 + v[2] < than[0] * 1e6 + than[1] * 1e3 + than[2];

/** Steps a reference must not get: a top-level check poisons the txn log of ZooKeeper < 3.9.3. */
function refSkip(s: Step): string | undefined {
  if (s.known === 'top-level-check' && older(refVersion, [3, 9, 3]))
    return `reference ${refVersion.join('.') || '?'} < 3.9.3 would log it as an unreplayable txn`;
  return undefined;
}

beforeAll(async () => {
  if (REF !== undefined) {
    refVersion = await probeVersion();
    refExtended = await probeExtended();
    refFastReaper = await probeReaper();
    console.log(`differential: reference ${REF} (ZooKeeper ${refVersion.join('.') || 'version unknown'}), extendedTypesEnabled=${refExtended}, fast container reaper=${refFastReaper}`);
  } else {
    console.log('differential: ZK_REFERENCE not set, running the scenarios on Corral only (the comparison with Apache ZooKeeper is skipped)');
  }
});

afterAll(async () => {
  for (const s of servers.values()) await s.stop();
});

function dump(r: RunResult): string {
  return r.transcript.map((rec) => JSON.stringify(rec)).join('\n');
}

describe('differential scenarios', () => {
  for (const sc of scenarios) {
    it(`${sc.name}: Corral gives the stated results`, async () => {
      const ts = await corralFor(sc);
      const run = await runScenario(sc, '127.0.0.1', ts.port, 'corral');
      if (VERBOSE) console.log(`--- ${sc.name} on corral\n${dump(run)}`);
      expect(checkExpectations(sc, run)).toEqual([]);
    });

    it.skipIf(REF === undefined)(`${sc.name}: Corral matches the reference ZooKeeper`, async (ctx) => {
      if (sc.extendedTypes !== undefined && refExtended !== sc.extendedTypes) {
        console.log(`differential: ${sc.name} skipped: it needs a reference with extendedTypesEnabled=${sc.extendedTypes}`);
        ctx.skip();
        return;
      }
      if (sc.fastReaper && !refFastReaper) {
        console.log(`differential: ${sc.name} skipped: it needs a reference started with -Dznode.container.checkIntervalMs=500`);
        ctx.skip();
        return;
      }
      const ts = await corralFor(sc);
      const mine = await runScenario(sc, '127.0.0.1', ts.port, 'corral');
      const ref = await runScenario(sc, refHost, refPort, 'reference', { skip: refSkip });
      if (VERBOSE) console.log(`--- ${sc.name} on the reference\n${dump(ref)}`);
      const { differences, exceptions } = compare(sc, mine, ref);
      if (exceptions.length > 0) {
        // One line per named difference, with the steps where it was needed.
        const byName = new Map<string, string[]>();
        for (const x of exceptions) {
          const m = /^step (\d+) \(.*?\): ([\w-]+) /.exec(x);
          const name = m?.[2] ?? x;
          byName.set(name, [...(byName.get(name) ?? []), m?.[1] ?? '?']);
        }
        const lines = [...byName].map(([n, steps]) => `${n} at steps ${[...new Set(steps)].join(',')}`);
        console.log(`differential: ${sc.name}: allowed 3.8/3.9 differences: ${lines.join('; ')}`);
      }
      expect({ corral: mine.problems, reference: ref.problems, differences }).toEqual({ corral: [], reference: [], differences: [] });
    });
  }

  it('the comparison notices a difference (Corral without vs with extendedTypesEnabled)', async () => {
    // Guards the comparison itself: two servers that really differ must not compare equal.
    const sc = scenarios.find((x) => x.name === 'containers')!;
    const plain = await corralFor(sc);
    const extended = await corralFor({ ...sc, corralCfg: 'extendedTypesEnabled=true' });
    const a = await runScenario(sc, '127.0.0.1', plain.port, 'corral');
    const b = await runScenario(sc, '127.0.0.1', extended.port, 'corral-extended');
    const { differences } = compare(sc, a, b);
    expect(differences.some((d) => d.includes('(a create /t).err: corral=-6 reference=0'))).toBe(true);
    expect(differences.some((d) => /getChildren2 \)\.body\.children/.test(d))).toBe(true);
  });

  it('the scenarios state what they expect', () => {
    // Guards the guard: every scenario has steps, and some expect failures.
    expect(scenarios.length).toBeGreaterThan(10);
    const codes = new Set(scenarios.flatMap((s) => s.steps.map((st) => st.err ?? Err.OK)));
    for (const code of [Err.NONODE, Err.NOAUTH, Err.BADARGUMENTS, Err.INVALIDACL, Err.NOWATCHER, Err.UNIMPLEMENTED, Err.AUTHFAILED])
      expect(codes).toContain(code);
  });
});
