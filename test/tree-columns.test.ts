// The data tree's storage: values in append-only segments, fields in columns, children
// as intrusive lists. Checked against plain JS models over random operation sequences.

import { describe, expect, it } from 'vitest';
import { NodeColumns, NONE } from '../src/tree/columns.js';
import { ValueArena } from '../src/tree/values.js';
import { DataTree, apply } from '../src/tree/datatree.js';
import { Rng } from '../src/zab/sim.js';

function randomValue(rng: Rng): Buffer | null {
  const r = rng.next();
  // Mostly small values, some empty or null, a few big enough for a segment of their own.
  const n = r < 0.05 ? -1 : r < 0.1 ? 0 : r < 0.97 ? 1 + rng.int(300) : 16 * 1024 + rng.int(40_000);
  if (n < 0) return null;
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(256);
  return b;
}

describe('ValueArena', () => {
  for (const seed of [1, 2, 3, 4]) {
    it(`keeps every value and every view intact over random set/free (seed ${seed})`, () => {
      const rng = new Rng(seed);
      const slots = 2000;
      const arena = new ValueArena(slots);
      const model: (Buffer | null)[] = new Array<Buffer | null>(slots).fill(null);
      const views: { view: Buffer; copy: Buffer }[] = [];
      for (let step = 0; step < 40_000; step++) {
        const slot = rng.int(slots);
        if (rng.chance(0.2)) {
          arena.free(slot);
          model[slot] = null;
        } else {
          const v = randomValue(rng);
          arena.set(slot, v);
          // The arena copies: changing the caller's buffer afterwards must not matter.
          model[slot] = v === null ? null : Buffer.from(v);
          if (v !== null && v.length > 0) v.fill(0xee);
        }
        if (rng.chance(0.01)) {
          const s = rng.int(slots);
          const view = arena.get(s);
          if (view !== null && view.length > 0) views.push({ view, copy: Buffer.from(view) });
        }
        if (step % 1000 === 999) {
          let live = 0;
          const wrong: number[] = [];
          for (let s = 0; s < slots; s++) {
            const got = arena.get(s);
            const want = model[s]!;
            const same = want === null ? got === null : got !== null && got.equals(want);
            if (!same || arena.length(s) !== (want === null ? -1 : want.length)) wrong.push(s);
            if (want !== null) live += want.length;
          }
          expect(wrong).toEqual([]);
          // Segments are reclaimed: at most about twice the live bytes, plus the current segment.
          expect(arena.segmentBytes).toBeLessThanOrEqual(2 * (live + 8 * slots) + 2 * (256 << 10));
        }
      }
      // A view handed out earlier still shows the bytes it showed then.
      for (const { view, copy } of views) expect(view.equals(copy)).toBe(true);
    });
  }
});

describe('NodeColumns', () => {
  it('links and unlinks children in creation order, reusing freed slots', () => {
    const rng = new Rng(9);
    const c = new NodeColumns(4);
    const root = c.alloc();
    const model: number[] = [];
    for (let step = 0; step < 5000; step++) {
      if (model.length === 0 || rng.chance(0.6)) {
        const s = c.alloc();
        c.link(root, s);
        model.push(s);
      } else {
        const i = rng.int(model.length);
        const [s] = model.splice(i, 1);
        c.unlink(s!);
        c.release(s!);
      }
      if (step % 250 === 0 || step === 4999) {
        const got: number[] = [];
        for (let k = c.firstChild[root]!; k !== NONE; k = c.next[k]!) got.push(k);
        expect(got).toEqual(model);
        const back: number[] = [];
        for (let k = c.lastChild[root]!; k !== NONE; k = c.prev[k]!) back.push(k);
        expect(back).toEqual([...model].reverse());
        expect(c.numChildren[root]).toBe(model.length);
      }
    }
    expect(c.capacity).toBeGreaterThanOrEqual(model.length + 1);
  });
});

describe('DataTree on columns', () => {
  it('getChildren order, stats and values survive deletes and slot reuse', () => {
    const tree = new DataTree();
    let zxid = 0;
    const txn = (op: Parameters<typeof apply>[1]['op']) => apply(tree, { zxid: ++zxid, time: 1000 + zxid, sessionId: 1n, cxid: zxid, op });
    const create = (path: string, data: Buffer | null, owner = 0n) =>
      txn({ type: 'create', op: 1, path, data, acl: [{ perms: 31, scheme: 'world', id: 'anyone' }], ephemeralOwner: owner, parentCVersion: (tree.get(path.substring(0, path.lastIndexOf('/')) || '/')?.cversion ?? 0) + 1 });
    create('/a', Buffer.from('A'));
    for (const n of ['x', 'y', 'z']) create(`/a/${n}`, Buffer.from(n));
    create('/a/e', null, 0x1234n);
    expect(tree.get('/a')!.children).toEqual(['x', 'y', 'z', 'e']);
    txn({ type: 'delete', op: 2, path: '/a/y' });
    create('/a/w', Buffer.alloc(0)); // takes y's freed slot
    expect(tree.get('/a')!.children).toEqual(['x', 'z', 'e', 'w']);
    expect(tree.get('/a/w')!.data).toEqual(Buffer.alloc(0));
    expect(tree.get('/a/e')!.data).toBeNull();
    expect(tree.get('/a/e')!.ephemeralOwner).toBe(0x1234n);
    expect([...tree.ephemerals.get(0x1234n)!]).toEqual(['/a/e']);
    expect(tree.get('/a/x')!.ephemeralOwner).toBe(0n);
    const a = tree.get('/a')!.stat();
    expect(a).toMatchObject({ numChildren: 4, cversion: 2 * 5 - 4, dataLength: 1, version: 0 });
    txn({ type: 'setData', path: '/a/x', data: Buffer.from('xx'), version: 1 });
    expect(tree.get('/a/x')!.stat()).toMatchObject({ version: 1, dataLength: 2, mzxid: zxid, mtime: 1000 + zxid });
    expect(tree.get('/a/x')!.data!.toString()).toBe('xx');
    expect(tree.countDescendants('/')).toBe(3 + 1 + 4); // /zookeeper, quota, config; /a and its 4
    expect(tree.get('/')!.children).toEqual(['zookeeper', 'a']);
    expect(tree.dataSize).toBe(['/a', '/a/x', '/a/z', '/a/e', '/a/w'].reduce((n, p) => n + p.length, 0) + 1 + 2 + 1);
  });
});

describe('PathIndex', () => {
  it('finds exactly the paths added, through deletes (backward shift) and growth, ASCII or not', async () => {
    const { PathIndex } = await import('../src/tree/pathindex.js');
    const rng = new Rng(17);
    const capacity = 1 << 14;
    const index = new PathIndex(capacity);
    const model = new Map<string, number>();
    const free: number[] = [];
    for (let s = capacity - 1; s >= 1; s--) free.push(s);
    const names = ['a', 'b', 'ü', '日本', 'key-0', 'x y'];
    const randomPath = () => {
      let p = '';
      for (let d = 1 + rng.int(3); d > 0; d--) p += '/' + rng.pick(names) + rng.int(400);
      return p;
    };
    for (let step = 0; step < 60_000; step++) {
      const p = randomPath();
      const have = model.get(p);
      expect(index.find(p)).toBe(have ?? -1);
      if (have === undefined && free.length > 0 && rng.chance(0.6)) {
        const s = free.pop()!;
        index.add(p, s);
        model.set(p, s);
      } else if (have !== undefined && rng.chance(0.5)) {
        index.remove(have);
        model.delete(p);
        free.push(have);
      }
      if (step % 5000 === 4999) {
        const wrong = [...model].filter(([q, s]) => index.find(q) !== s || index.pathOf(s) !== q);
        expect(wrong).toEqual([]);
        expect(index.size).toBe(model.size);
      }
    }
  });
});
