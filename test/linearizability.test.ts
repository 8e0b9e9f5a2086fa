// The linearizability checker that the ensemble fault test feeds its histories to: small
// hand-built histories whose verdict is known, then large random histories from a simulated
// linearizable register (must pass, quickly) and the same with one read corrupted (must fail).
import { describe, expect, it } from 'vitest';
import { checkLinearizable, type HistoryEvent, type RegOp } from './helpers/linearizability.js';
import { Rng } from '../src/zab/sim.js';

const K = '/r';
const INIT = { value: '', version: 0 };

// Builders. Times are plain numbers (ms); `null` completion = unknown outcome.
function ev(client: number, op: RegOp, invoke: number, complete: number | null, result?: HistoryEvent['result'], key = K): HistoryEvent {
  return complete === null ? { key, client, op, invoke, complete } : { key, client, op, invoke, complete, result };
}
const write = (client: number, value: string, invoke: number, complete: number | null, version = -1, key = K) =>
  ev(client, { kind: 'write', value }, invoke, complete, { ok: true, version }, key);
const cas = (client: number, expectVersion: number, value: string, invoke: number, complete: number | null, version: number | 'BADVERSION', key = K) =>
  ev(client, { kind: 'cas', expectVersion, value }, invoke, complete, version === 'BADVERSION' ? { ok: false, err: 'BADVERSION' } : { ok: true, version }, key);
const read = (client: number, invoke: number, complete: number | null, value: string, version: number, key = K) =>
  ev(client, { kind: 'read' }, invoke, complete, { ok: true, value, version }, key);

describe('hand-built histories', () => {
  it('accepts a sequential valid history, and an empty one', () => {
    const h = [
      write(1, 'a', 0, 1, 1),
      read(2, 2, 3, 'a', 1),
      cas(1, 1, 'b', 4, 5, 2),
      cas(2, 1, 'c', 6, 7, 'BADVERSION'),
      read(2, 8, 9, 'b', 2),
      write(3, 'd', 10, 11, 3),
      read(1, 12, 13, 'd', 3),
    ];
    const r = checkLinearizable(h, INIT);
    expect(r).toMatchObject({ ok: true });
    expect(r.statesExplored).toBeGreaterThanOrEqual(h.length);
    expect(checkLinearizable([], INIT).ok).toBe(true);
  });

  it('finds the one ordering of concurrent operations that works', () => {
    // Two overlapping writes; the versions they returned say B went first. A read overlapping
    // both saw B alone, and a read after both sees A.
    const ok = [
      write(1, 'A', 0, 10, 2),
      write(2, 'B', 1, 9, 1),
      read(3, 2, 8, 'B', 1),
      read(3, 11, 12, 'A', 2),
    ];
    expect(checkLinearizable(ok, INIT).ok).toBe(true);
    // Same intervals, but the final read says B was last: it contradicts the versions.
    const bad = [...ok.slice(0, 3), read(3, 11, 12, 'B', 2)];
    const r = checkLinearizable(bad, INIT);
    expect(r.ok).toBe(false);
    expect(r.inconclusive).toBeUndefined();
    expect(r.key).toBe(K);
  });

  it('allows a concurrent read to see the old value but rejects a stale read after a completed write', () => {
    const concurrent = [write(1, 'a', 0, 10, 1), read(2, 5, 6, '', 0), read(3, 7, 8, 'a', 1)];
    expect(checkLinearizable(concurrent, INIT).ok).toBe(true);

    const stale = [write(1, 'a', 0, 10, 1), read(2, 11, 12, '', 0)];
    const r = checkLinearizable(stale, INIT);
    expect(r.ok).toBe(false);
    expect(r.key).toBe(K);
    // The explanation names the key, shows the prefix and the read that cannot follow it.
    expect(r.explanation).toContain('"/r"');
    expect(r.explanation).toContain('client 2 read -> ""@v0');
    expect(r.explanation).toContain('client 1 write("a") -> v1');
  });

  it('rejects a read that has a new version but another value', () => {
    const h = [write(1, 'a', 0, 1, 1), read(2, 2, 3, 'b', 1)];
    expect(checkLinearizable(h, INIT).ok).toBe(false);
  });

  it('rejects lost writes', () => {
    // Both writes completed; a later read sees only the first.
    const lost = [write(1, 'a', 0, 1, 1), write(2, 'b', 2, 3, 2), read(3, 4, 5, 'a', 1)];
    expect(checkLinearizable(lost, INIT).ok).toBe(false);
    // Two sequential writes that both claim version 1: one overwrote the other unseen.
    const reused = [write(1, 'a', 0, 1, 1), write(2, 'b', 2, 3, 1), read(3, 4, 5, 'b', 1)];
    expect(checkLinearizable(reused, INIT).ok).toBe(false);
    // A write whose returned version skips one that nobody made.
    const skipped = [write(1, 'a', 0, 1, 2)];
    expect(checkLinearizable(skipped, INIT).ok).toBe(false);
  });

  it('checks compare-and-set successes and failures', () => {
    // Two concurrent cas on the same version: exactly one may win.
    expect(checkLinearizable([cas(1, 0, 'x', 0, 5, 1), cas(2, 0, 'y', 1, 6, 'BADVERSION')], INIT).ok).toBe(true);
    expect(checkLinearizable([cas(1, 0, 'x', 0, 5, 1), cas(2, 0, 'y', 1, 6, 1)], INIT).ok).toBe(false);
    expect(checkLinearizable([cas(1, 0, 'x', 0, 5, 'BADVERSION'), cas(2, 0, 'y', 1, 6, 'BADVERSION')], INIT).ok).toBe(false);
    // A cas whose version matched the whole time it was outstanding cannot fail...
    expect(checkLinearizable([cas(1, 0, 'x', 0, 1, 'BADVERSION')], INIT).ok).toBe(false);
    // ...but can if a concurrent write moved the version first.
    expect(checkLinearizable([write(2, 'w', 0, 3, 1), cas(1, 0, 'x', 1, 2, 'BADVERSION')], INIT).ok).toBe(true);
    // A cas on a version the register never had cannot succeed.
    expect(checkLinearizable([cas(1, 5, 'x', 0, 1, 6)], INIT).ok).toBe(false);
    // Chain: cas on each new version, the winner observed by a read.
    const chain = [
      cas(1, 0, 'a', 0, 2, 1),
      cas(2, 1, 'b', 3, 6, 2),
      cas(3, 1, 'c', 4, 7, 'BADVERSION'),
      read(1, 8, 9, 'b', 2),
    ];
    expect(checkLinearizable(chain, INIT).ok).toBe(true);
    const wrongWinner = [...chain.slice(0, 3), read(1, 8, 9, 'c', 2)];
    expect(checkLinearizable(wrongWinner, INIT).ok).toBe(false);
  });

  it('lets unknown-outcome operations take effect late or never', () => {
    // Timed out, then observed long after.
    expect(checkLinearizable([write(1, 'x', 0, null), read(2, 100, 101, 'x', 1)], INIT).ok).toBe(true);
    // Timed out and never observed: reads keep seeing the old state.
    expect(checkLinearizable([write(1, 'x', 0, null), read(2, 100, 101, '', 0), read(2, 200, 201, '', 0)], INIT).ok).toBe(true);
    // Observed between two other writes: its version slots in between.
    const between = [write(1, 'x', 0, null), write(2, 'a', 10, 11, 1), read(3, 20, 21, 'x', 2), write(2, 'b', 30, 31, 3)];
    expect(checkLinearizable(between, INIT).ok).toBe(true);
    // Several lost writes never seen, interleaved with known ones: still fine (and cheap).
    const many = [];
    for (let i = 0; i < 20; i++) many.push(write(100 + i, `lost${i}`, i * 10, null));
    for (let i = 0; i < 200; i++) many.push(write(1, `k${i}`, i * 10 + 1, i * 10 + 2, i + 1));
    const rMany = checkLinearizable(many, INIT);
    expect(rMany.ok).toBe(true);
    expect(rMany.statesExplored).toBeLessThan(50_000);
    // An unknown-outcome cas that succeeded, observed later; another that did not, never observed.
    expect(checkLinearizable([cas(1, 0, 'x', 0, null, 0), cas(2, 0, 'y', 1, null, 0), read(3, 50, 51, 'y', 1)], INIT).ok).toBe(true);
    // An unknown-outcome read constrains nothing, whatever it carries.
    expect(checkLinearizable([read(1, 0, null, 'nonsense', 99)], INIT).ok).toBe(true);
    // But an unknown write cannot be seen before it was issued...
    expect(checkLinearizable([read(2, 0, 1, 'x', 1), write(1, 'x', 5, null)], INIT).ok).toBe(false);
    // ...nor take effect twice.
    expect(checkLinearizable([write(1, 'x', 0, null), read(2, 10, 11, 'x', 1), read(2, 12, 13, 'x', 2)], INIT).ok).toBe(false);
  });

  it('checks registers independently', () => {
    // Interleaved in time; each key on its own is fine, though as one register it would not be.
    const h = [
      write(1, 'a1', 0, 1, 1, '/a'),
      write(2, 'b1', 2, 3, 1, '/b'),
      read(1, 4, 5, 'a1', 1, '/a'),
      write(2, 'b2', 6, 7, 2, '/b'),
      read(3, 8, 9, 'b2', 2, '/b'),
      read(3, 10, 11, 'a1', 1, '/a'),
    ];
    expect(checkLinearizable(h, INIT).ok).toBe(true);
    const initial = new Map([
      ['/a', { value: '', version: 0 }],
      ['/b', { value: 'seed', version: 7 }],
    ]);
    const shifted = h.map((e) =>
      e.key === '/b' && e.result?.ok ? { ...e, result: { ...e.result, version: e.result.version + 7 } } : e,
    );
    expect(checkLinearizable(shifted, initial).ok).toBe(true);
    // A failure on /b is reported as /b.
    const bad = [...h, read(4, 12, 13, 'b1', 1, '/b')];
    const r = checkLinearizable(bad, INIT);
    expect(r).toMatchObject({ ok: false, key: '/b' });
    expect(r.explanation).toContain('"/b"');
    // A key without an initial state is a caller error.
    expect(() => checkLinearizable(h, new Map([['/a', INIT]]))).toThrow(/no initial state/);
  });

  it('rejects malformed events', () => {
    expect(() => checkLinearizable([write(1, 'a', 5, 4, 1)], INIT)).toThrow(/complete before invoke/);
    expect(() => checkLinearizable([{ key: K, client: 1, op: { kind: 'read' }, invoke: 0, complete: 1 }], INIT)).toThrow(/without a result/);
  });
});

// ---------------------------------------------------------------------------------------
// Random histories from a simulated linearizable register

/** The simulator's seeded PRNG (mulberry32), as a plain function. */
function mulberry32(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

interface Sim {
  history: HistoryEvent[];
  initial: Map<string, { value: string; version: number }>;
}

/**
 * Clients issue reads, blind writes and cas (on the last version they saw, sometimes stale)
 * one at a time, with random gaps and durations so their intervals overlap. Each operation
 * takes effect at a random instant inside its interval, in instant order, on a real register,
 * which fixes its result. A few writes and cas time out (unknown outcome): half of those take
 * effect, possibly well after the client gave up, and half never do.
 */
function simulate(seed: number, opsPerKey: number, keys: string[], clients: number, unknownRate = 0.01): Sim {
  const rand = mulberry32(seed);
  interface Pending {
    event: HistoryEvent;
    at: number; // instant it takes effect; Infinity = never
    client: number;
  }
  const pending: Pending[] = [];
  const clock = new Array<number>(clients).fill(0);
  const total = opsPerKey * keys.length;
  for (let i = 0; i < total; i++) {
    // The client that is free soonest issues the next operation.
    let c = 0;
    for (let j = 1; j < clients; j++) if (clock[j]! < clock[c]!) c = j;
    const key = keys[Math.floor(rand() * keys.length)]!;
    const invoke = clock[c]! + rand() * 0.5;
    const duration = 0.02 + rand() ** 3 * 6; // mostly short, some long: overlaps of every size
    const p = rand();
    const op: RegOp =
      p < 0.45 ? { kind: 'read' } : p < 0.75 ? { kind: 'write', value: `s${seed}-${i}` } : { kind: 'cas', expectVersion: -1, value: `s${seed}-${i}` };
    const unknown = op.kind !== 'read' && rand() < unknownRate;
    const event: HistoryEvent = { key, client: c, op, invoke, complete: unknown ? null : invoke + duration };
    let at = invoke + rand() * duration;
    if (unknown) at = rand() < 0.5 ? Infinity : invoke + rand() * 30;
    pending.push({ event, at, client: c });
    clock[c] = invoke + duration;
  }

  const initial = new Map(keys.map((k, i) => [k, { value: `init${i}`, version: i * 3 }]));
  const reg = new Map([...initial].map(([k, v]) => [k, { ...v }]));
  const lastSeen = new Map<string, number>(); // `${client} ${key}` -> version
  for (const { event, at, client } of [...pending].sort((a, b) => a.at - b.at)) {
    if (at === Infinity) continue;
    const r = reg.get(event.key)!;
    const seen = `${client} ${event.key}`;
    const op = event.op;
    if (op.kind === 'read') {
      event.result = { ok: true, value: r.value, version: r.version };
    } else {
      if (op.kind === 'cas') {
        // Decided now, from what this client last saw (its previous op took effect earlier).
        const last = lastSeen.get(seen) ?? initial.get(event.key)!.version;
        op.expectVersion = rand() < 0.8 ? last : r.version + Math.floor(rand() * 3) - 1;
      }
      if (op.kind === 'write' || op.expectVersion === r.version) {
        r.value = op.value;
        r.version++;
        event.result = { ok: true, version: r.version };
      } else {
        event.result = { ok: false, err: 'BADVERSION' };
      }
    }
    if (event.complete === null) delete event.result;
    else lastSeen.set(seen, r.version);
  }
  // Unknown-outcome cas that never took effect still need some expected version.
  for (const { event } of pending) if (event.op.kind === 'cas' && event.op.expectVersion === -1) event.op.expectVersion = 0;
  // Shuffle: the checker must not depend on the order events are handed to it.
  const history = pending.map((p) => p.event);
  for (let i = history.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [history[i], history[j]] = [history[j]!, history[i]!];
  }
  return { history, initial };
}

function timed<T>(f: () => T): { value: T; ms: number } {
  const t = performance.now();
  const value = f();
  return { value, ms: performance.now() - t };
}

describe('random histories', () => {
  const SEED = 20261122;

  it('passes a large linearizable history quickly, and fails it with one read corrupted', () => {
    const { history, initial } = simulate(SEED, 5000, ['/big'], 6);
    const overlaps = countOverlaps(history);
    const pass = timed(() => checkLinearizable(history, initial));
    console.log(
      `linearizability: ${history.length} ops on one key (${overlaps} overlapping pairs), ` +
        `pass in ${pass.ms.toFixed(0)} ms, ${pass.value.statesExplored} states`,
    );
    expect(pass.value.ok, pass.value.explanation).toBe(true);
    expect(pass.ms).toBeLessThan(2000);

    // Corrupt one read in the middle of the history (by time).
    const reads = history.filter((e) => e.op.kind === 'read' && e.complete !== null).sort((a, b) => a.invoke - b.invoke);
    const victim = reads[Math.floor(reads.length / 2)]!;
    const mutated = history.map((e) => (e === victim ? { ...e, result: { ok: true as const, value: 'bogus', version: (victim.result as { version: number }).version } } : e));
    const fail = timed(() => checkLinearizable(mutated, initial));
    console.log(`linearizability: same with one read corrupted: fail in ${fail.ms.toFixed(0)} ms, ${fail.value.statesExplored} states`);
    console.log(fail.value.explanation);
    expect(fail.value.ok).toBe(false);
    expect(fail.value.inconclusive).toBeUndefined();
    expect(fail.value.key).toBe('/big');
    expect(fail.value.explanation).toContain('"bogus"');
    expect(fail.value.explanation!.split('\n').length).toBeLessThan(25);
    expect(fail.ms).toBeLessThan(5000);
  });

  it('stays fast with many clients and many timeouts', () => {
    const { history, initial } = simulate(SEED + 1, 5000, ['/busy'], 20, 0.1);
    const pass = timed(() => checkLinearizable(history, initial));
    expect(pass.value.ok, pass.value.explanation).toBe(true);
    const reads = history.filter((e) => e.op.kind === 'read' && e.complete !== null).sort((a, b) => a.invoke - b.invoke);
    const victim = reads[Math.floor(reads.length / 3)]!;
    // A stale read this time: an older read's answer, from a version the register had
    // certainly left (an operation that completed before the victim was invoked saw a newer one).
    const versionOf = (e: HistoryEvent) => (e.result?.ok ? e.result.version : -1);
    const seen = Math.max(...history.filter((e) => e.complete !== null && e.complete < victim.invoke).map(versionOf));
    const stale = reads.filter((r) => r.complete! < victim.invoke && versionOf(r) < seen).pop()!;
    const mutated = history.map((e) => (e === victim ? { ...e, result: stale.result } : e));
    const fail = timed(() => checkLinearizable(mutated, initial));
    console.log(
      `linearizability: ${history.length} ops, 20 clients, 10% unknown outcome (${countOverlaps(history)} overlapping pairs): ` +
        `pass in ${pass.ms.toFixed(0)} ms (${pass.value.statesExplored} states), one stale read fails in ${fail.ms.toFixed(0)} ms (${fail.value.statesExplored} states)`,
    );
    expect(fail.value.ok).toBe(false);
    expect(fail.value.inconclusive).toBeUndefined();
    expect(pass.ms + fail.ms).toBeLessThan(5000);
  });

  it('passes many seeds on several keys, with more timeouts', () => {
    const t = performance.now();
    let states = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const { history, initial } = simulate(seed, 300, ['/a', '/b', '/c'], 5, 0.05);
      const r = checkLinearizable(history, initial);
      expect(r.ok, `seed ${seed}: ${r.explanation}`).toBe(true);
      states += r.statesExplored;
    }
    console.log(`linearizability: 20 seeds x 900 ops on 3 keys in ${(performance.now() - t).toFixed(0)} ms, ${states} states`);
  });

  it('fails each seed once one completed write is dropped from the register', () => {
    // Flip a successful write's reported version: the register never went through it.
    for (let seed = 1; seed <= 10; seed++) {
      const { history, initial } = simulate(seed, 300, ['/a'], 4);
      const writes = history.filter((e) => e.op.kind === 'write' && e.result?.ok).sort((a, b) => a.invoke - b.invoke);
      const victim = writes[Math.floor(writes.length / 2)]!;
      const bad = history.map((e) =>
        e === victim && e.result?.ok ? { ...e, result: { ok: true as const, version: e.result.version + 1000 } } : e,
      );
      const r = checkLinearizable(bad, initial);
      expect(r.ok, `seed ${seed}`).toBe(false);
      expect(r.inconclusive).toBeUndefined();
    }
  });

  it('reports an exhausted search budget as inconclusive', () => {
    const { history, initial } = simulate(SEED, 500, ['/a'], 6);
    const r = checkLinearizable(history, initial, { maxStates: 50 });
    expect(r).toMatchObject({ ok: false, inconclusive: true, key: '/a', explanation: 'search limit' });
  });
});

describe('against brute force', () => {
  it('agrees with trying every order on thousands of small histories', () => {
    // Small alphabets and a coarse clock, so values repeat, times tie and intervals overlap:
    // the cases the checker's reductions (merged unread values, interchangeable unknown
    // writes, forced moves) must get right.
    const rand = mulberry32(7);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    let passes = 0;
    let fails = 0;
    for (let trial = 0; trial < 5000; trial++) {
      const history = smallHistory(rand, 2 + Math.floor(rand() * 7), 2 + Math.floor(rand() * 4), 0.1 + rand() * 0.3);
      // Most of the time, corrupt one result or time.
      if (rand() < 0.75 && history.length > 0) {
        const e = pick(history);
        const r = e.result;
        const how = rand();
        if (how < 0.2) e.invoke = Math.max(0, e.invoke - 3);
        else if (how < 0.3 && e.complete !== null) e.complete = e.invoke + Math.floor(rand() * 3);
        else if (r?.ok && how < 0.6) r.version += pick([-1, 1]);
        else if (r?.ok && e.op.kind === 'read' && how < 0.8) r.value = pick(['', 'a', 'b', 'c']);
        else if (e.op.kind === 'cas' && e.complete !== null) e.result = r?.ok ? { ok: false, err: 'BADVERSION' } : { ok: true, version: e.op.expectVersion + 1 };
        else if (how < 0.9) e.complete = null;
      }
      const expected = bruteForce(history, INIT);
      const got = checkLinearizable(history, INIT);
      if (got.ok !== expected) {
        throw new Error(`trial ${trial}: checker says ${got.ok}, brute force ${expected}\n${JSON.stringify(history, null, 1)}\n${got.explanation ?? ''}`);
      }
      if (expected) passes++;
      else fails++;
    }
    expect(passes).toBeGreaterThan(800);
    expect(fails).toBeGreaterThan(800);
  });
});

/** A short history from a simulated register: 3 clients, `values` distinct values (some of
 *  which no read may return), integer times, some operations with unknown outcome. */
function smallHistory(rand: () => number, n: number, values: number, unknownRate: number): HistoryEvent[] {
  const clock = [0, 0, 0];
  const events: { e: HistoryEvent; at: number }[] = [];
  for (let i = 0; i < n; i++) {
    const c = Math.floor(rand() * 3);
    const invoke = clock[c]! + Math.floor(rand() * 3);
    const complete = invoke + Math.floor(rand() * 6);
    const p = rand();
    const value = 'abcde'[Math.floor(rand() * values)]!;
    const op: RegOp = p < 0.4 ? { kind: 'read' } : p < 0.7 ? { kind: 'write', value } : { kind: 'cas', expectVersion: Math.floor(rand() * 3), value };
    const unknown = rand() < unknownRate;
    const e: HistoryEvent = { key: K, client: c, op, invoke, complete: unknown ? null : complete };
    const at = unknown && rand() < 0.4 ? Infinity : invoke + rand() * (unknown ? 10 : complete - invoke);
    events.push({ e, at });
    clock[c] = complete + 1;
  }
  const reg = { ...INIT };
  for (const { e, at } of [...events].sort((x, y) => x.at - y.at)) {
    if (at === Infinity) continue;
    const op = e.op;
    if (op.kind === 'read') e.result = { ok: true, value: reg.value, version: reg.version };
    else if (op.kind === 'write' || op.expectVersion === reg.version) {
      reg.value = op.value;
      reg.version++;
      e.result = { ok: true, version: reg.version };
    } else e.result = { ok: false, err: 'BADVERSION' };
    if (e.complete === null) delete e.result;
  }
  return events.map((x) => x.e);
}

/** Linearizable iff some order of the operations, each after every operation that completed
 *  before it was invoked, explains every known result; unknown ones may be left out. */
function bruteForce(history: HistoryEvent[], init: { value: string; version: number }): boolean {
  const ops = history.filter((e) => !(e.complete === null && e.op.kind === 'read'));
  const done = ops.map(() => false);
  const rec = (value: string, version: number, left: number): boolean => {
    if (left === 0) return true;
    for (let i = 0; i < ops.length; i++) {
      if (done[i]) continue;
      const o = ops[i]!;
      if (ops.some((p, j) => !done[j] && p.complete !== null && p.complete < o.invoke)) continue;
      const r = o.complete === null ? undefined : o.result!;
      let next: { value: string; version: number } | null = null;
      if (o.op.kind === 'read') {
        if (r?.ok && r.value === value && r.version === version) next = { value, version };
      } else if (o.op.kind === 'write' || o.op.expectVersion === version) {
        if (r === undefined || (r.ok && r.version === version + 1)) next = { value: o.op.value, version: version + 1 };
      } else if (r !== undefined && !r.ok) {
        next = { value, version };
      }
      if (next === null) continue;
      done[i] = true;
      if (rec(next.value, next.version, left - (o.complete === null ? 0 : 1))) return true;
      done[i] = false;
    }
    return false;
  };
  return rec(init.value, init.version, ops.filter((o) => o.complete !== null).length);
}

/** Pairs of known-outcome operations whose intervals overlap, to show how concurrent a
 *  random history is. */
function countOverlaps(history: HistoryEvent[]): number {
  const iv = history
    .filter((e) => e.complete !== null)
    .map((e) => [e.invoke, e.complete!] as const)
    .sort((a, b) => a[0] - b[0]);
  let n = 0;
  for (let i = 0; i < iv.length; i++) {
    for (let j = i + 1; j < iv.length && iv[j]![0] < iv[i]![1]; j++) n++;
  }
  return n;
}
