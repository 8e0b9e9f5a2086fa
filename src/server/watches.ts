import { EventType, Perms, WatcherType } from '../protocol/constants.js';
import { checkAcl } from '../acl/auth.js';
import type { Id, WatchEvent } from '../tree/types.js';

// Watches live beside the tree, not in it: they belong to connections, not to the
// replicated state. Two tables as in ZooKeeper (data/exist, and child); a watcher's
// registration on a path carries mode bits, so a standard watch and a persistent one
// on the same path are tracked apart and a standard watch is spent when it fires.

export const STANDARD = 1;
export const PERSISTENT = 2;
export const RECURSIVE = 4;

export interface Watcher {
  /** The connection's authenticated ids: events for znodes it cannot READ are dropped. */
  readonly authIds: readonly Id[];
  deliver(event: WatchEvent): void;
}

class WatchTable {
  readonly byPath = new Map<string, Map<Watcher, number>>();
  readonly byWatcher = new Map<Watcher, Map<string, number>>();
  recursiveCount = 0;

  add(path: string, w: Watcher, mode: number): void {
    let ws = this.byPath.get(path);
    if (ws === undefined) this.byPath.set(path, (ws = new Map()));
    const old = ws.get(w) ?? 0;
    if ((old & RECURSIVE) === 0 && (mode & RECURSIVE) !== 0) this.recursiveCount++;
    ws.set(w, old | mode);
    let ps = this.byWatcher.get(w);
    if (ps === undefined) this.byWatcher.set(w, (ps = new Map()));
    ps.set(path, old | mode);
  }

  /** Removes `mode` bits (all bits when mode is 0); true if any were set. */
  remove(path: string, w: Watcher, mode: number): boolean {
    const ws = this.byPath.get(path);
    const old = ws?.get(w);
    if (ws === undefined || old === undefined) return false;
    const clear = mode === 0 ? old : mode;
    if ((old & clear) === 0) return false;
    this.setBits(path, ws, w, old & ~clear, old);
    return true;
  }

  private setBits(path: string, ws: Map<Watcher, number>, w: Watcher, bits: number, old: number): void {
    if ((old & RECURSIVE) !== 0 && (bits & RECURSIVE) === 0) this.recursiveCount--;
    const ps = this.byWatcher.get(w)!;
    if (bits === 0) {
      ws.delete(w);
      if (ws.size === 0) this.byPath.delete(path);
      ps.delete(path);
      if (ps.size === 0) this.byWatcher.delete(w);
    } else {
      ws.set(w, bits);
      ps.set(path, bits);
    }
  }

  has(path: string, w: Watcher, mode: number): boolean {
    const bits = this.byPath.get(path)?.get(w);
    return bits !== undefined && (mode === 0 || (bits & mode) !== 0);
  }

  removeWatcher(w: Watcher): void {
    const ps = this.byWatcher.get(w);
    if (ps === undefined) return;
    for (const [path, bits] of ps) {
      if ((bits & RECURSIVE) !== 0) this.recursiveCount--;
      const ws = this.byPath.get(path);
      ws?.delete(w);
      if (ws?.size === 0) this.byPath.delete(path);
    }
    this.byWatcher.delete(w);
  }

  /**
   * Collects who fires for an event at `path`: everyone registered on the path itself
   * (standard registrations are spent) and recursive watchers on its ancestors.
   */
  collect(path: string, into: Set<Watcher>, suppress: Set<Watcher> | null): void {
    const ws = this.byPath.get(path);
    if (ws !== undefined) {
      for (const [w, bits] of ws) {
        // A suppressed watcher is not told twice, but its standard watch is still spent
        // (WatchManager.triggerWatch removes it before it looks at `suppress`).
        if (!suppress?.has(w)) into.add(w);
        if ((bits & STANDARD) !== 0) this.setBits(path, ws, w, bits & ~STANDARD, bits);
      }
    }
    if (this.recursiveCount === 0) return;
    let p = path;
    while (p !== '/') {
      const i = p.lastIndexOf('/');
      p = i === 0 ? '/' : p.substring(0, i);
      const pw = this.byPath.get(p);
      if (pw === undefined) continue;
      for (const [w, bits] of pw) if ((bits & RECURSIVE) !== 0 && !suppress?.has(w)) into.add(w);
    }
  }

  count(): number {
    let n = 0;
    for (const ws of this.byPath.values()) n += ws.size;
    return n;
  }
}

export class WatchManager {
  readonly data = new WatchTable();
  readonly child = new WatchTable();

  addData(path: string, w: Watcher): void {
    this.data.add(path, w, STANDARD);
  }

  addChild(path: string, w: Watcher): void {
    this.child.add(path, w, STANDARD);
  }

  addPersistent(path: string, w: Watcher, recursive: boolean): void {
    if (recursive) {
      this.data.add(path, w, RECURSIVE);
    } else {
      this.data.add(path, w, PERSISTENT);
      this.child.add(path, w, PERSISTENT);
    }
  }

  /** Delivers one event from apply() to the watchers allowed to READ its znode. */
  trigger(e: WatchEvent): number {
    if (this.data.byPath.size === 0 && this.child.byPath.size === 0) return 0;
    const fired = new Set<Watcher>();
    switch (e.type) {
      case EventType.NodeCreated:
      case EventType.NodeDataChanged:
        this.data.collect(e.path, fired, null);
        break;
      case EventType.NodeChildrenChanged:
        this.child.collect(e.path, fired, null);
        break;
      case EventType.NodeDeleted: {
        this.data.collect(e.path, fired, null);
        const more = new Set<Watcher>();
        this.child.collect(e.path, more, fired);
        for (const w of more) fired.add(w);
        break;
      }
    }
    for (const w of fired) if (checkAcl(e.acl, Perms.READ, w.authIds)) w.deliver(e);
    return fired.size;
  }

  /** removeWatches (remove=true) and checkWatches (remove=false). */
  removeOrCheck(path: string, type: number, w: Watcher, remove: boolean): boolean {
    const op = (t: WatchTable, mode: number) => (remove ? t.remove(path, w, mode) : t.has(path, w, mode));
    switch (type) {
      case WatcherType.Children:
        return op(this.child, STANDARD);
      case WatcherType.Data:
        return op(this.data, STANDARD);
      case WatcherType.Persistent:
        if (!remove) return this.data.has(path, w, PERSISTENT);
        return [op(this.child, PERSISTENT), op(this.data, PERSISTENT)].some(Boolean);
      case WatcherType.PersistentRecursive:
        return op(this.data, RECURSIVE);
      case WatcherType.Any:
        if (!remove) return this.child.has(path, w, 0) || this.data.has(path, w, 0);
        return [op(this.child, 0), op(this.data, 0)].some(Boolean);
      default:
        return false;
    }
  }

  removeWatcher(w: Watcher): void {
    this.data.removeWatcher(w);
    this.child.removeWatcher(w);
  }

  watchCount(): number {
    return this.data.count() + this.child.count();
  }

  /** path -> watchers, for wchp; watcher -> paths for wchc. */
  paths(): Map<string, Set<Watcher>> {
    const out = new Map<string, Set<Watcher>>();
    for (const t of [this.data, this.child])
      for (const [p, ws] of t.byPath) {
        let s = out.get(p);
        if (s === undefined) out.set(p, (s = new Set()));
        for (const w of ws.keys()) s.add(w);
      }
    return out;
  }

  watchersPaths(): Map<Watcher, Set<string>> {
    const out = new Map<Watcher, Set<string>>();
    for (const t of [this.data, this.child])
      for (const [w, ps] of t.byWatcher) {
        let s = out.get(w);
        if (s === undefined) out.set(w, (s = new Set()));
        for (const p of ps.keys()) s.add(p);
      }
    return out;
  }
}
