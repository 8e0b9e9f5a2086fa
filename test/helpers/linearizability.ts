// Linearizability checker for histories of operations on independent registers: each
// register is one znode's (data, version), driven by setData (blind or conditional) and
// getData. An ensemble fault test records what its clients issued and what came back, and
// this decides whether some single order of those operations, each placed between its
// invocation and its completion, explains every result.
//
// The search is Wing & Gong's, as refined by Lowe and used by Knossos and Porcupine: walk
// the history in time order, repeatedly pick an operation that may take effect next (its
// invocation precedes every pending completion), apply it to the model, and backtrack when
// nothing fits. Visited configurations (which operations are linearized + register state)
// are memoised, so a configuration reached by two orders is explored once. Registers are
// independent, so each key is checked on its own (Herlihy & Wing's locality), which keeps
// every search small; and a few reductions that follow from how versions work (see Search)
// keep failing searches, which must rule out every order, close to linear in the history.
// See native-notes/linearizability.md.

export type RegOp =
  | { kind: 'write'; value: string } // setData with version -1; result: new version number
  | { kind: 'cas'; expectVersion: number; value: string } // setData with version; ok => new version; fail => BADVERSION
  | { kind: 'read' }; // getData (or sync+getData); result: {value, version}

export interface HistoryEvent {
  /** Which register (znode path); registers are independent and checked separately. */
  key: string;
  /** Process id; a client has at most one operation outstanding. Only shown in explanations. */
  client: number;
  op: RegOp;
  /** Time the call was issued (monotonic ms, e.g. performance.now()). */
  invoke: number;
  /** Time the result arrived; null = unknown outcome (timeout, connection loss): the operation
   *  may or may not have taken effect, at any time after `invoke`, and its result is not checked. */
  complete: number | null;
  result?: { ok: true; value?: string; version: number } | { ok: false; err: 'BADVERSION' };
}

export interface CheckResult {
  ok: boolean;
  /** The key whose history is not linearizable (or whose search hit the limit). */
  key?: string;
  explanation?: string;
  /** Configurations visited, summed over keys. */
  statesExplored: number;
  /** Set when the search stopped at `maxStates` before deciding: neither pass nor fail. */
  inconclusive?: true;
}

export interface RegisterState {
  value: string;
  version: number;
}

/** Per-key bound on visited configurations. A configuration costs a few hundred bytes (state,
 *  a few words of bitset, a hash-table slot), so the bound is about 400 MB and, measured on a
 *  loaded two-core machine, 10-20 s; a linearizable history needs about one per operation. */
const DEFAULT_MAX_STATES = 1_000_000;

/**
 * Is `history` linearizable with respect to a set of independent registers starting at
 * `initial` (one state for every key, or one per key)? A failed result names the key and
 * shows the longest linearizable prefix found and the operations none of which could follow
 * it. `maxStates` bounds each key's search; exceeding it gives `{ ok: false, inconclusive:
 * true, explanation: 'search limit' }` unless another key fails outright.
 */
export function checkLinearizable(
  history: HistoryEvent[],
  initial: RegisterState | Map<string, RegisterState>,
  opts: { maxStates?: number } = {},
): CheckResult {
  const maxStates = opts.maxStates ?? DEFAULT_MAX_STATES;
  const byKey = new Map<string, HistoryEvent[]>();
  for (const e of history) {
    let list = byKey.get(e.key);
    if (list === undefined) byKey.set(e.key, (list = []));
    list.push(e);
  }

  let statesExplored = 0;
  let limitHit: string | undefined;
  for (const [key, events] of byKey) {
    const init = initial instanceof Map ? initial.get(key) : initial;
    if (init === undefined) throw new Error(`checkLinearizable: no initial state for key ${JSON.stringify(key)}`);
    const r = checkRegister(key, events, init, maxStates);
    statesExplored += r.states;
    if (r.verdict === 'fail') return { ok: false, key, explanation: r.explanation, statesExplored };
    // Keep going: a definite failure on another key says more than "ran out of budget".
    if (r.verdict === 'limit' && limitHit === undefined) limitHit = key;
  }
  if (limitHit !== undefined) {
    return { ok: false, inconclusive: true, key: limitHit, explanation: 'search limit', statesExplored };
  }
  return { ok: true, statesExplored };
}

// ---------------------------------------------------------------------------------------
// One register

/** An operation of one key's history, in the form the search uses. */
interface Op {
  /** Index in the key's operations: those with a known outcome first, in invocation order,
   *  then the others (see buildOps). Also its bit in the linearized set; shown as #id. */
  id: number;
  ev: HistoryEvent;
  /** Known outcome: must be linearized, and its result must match. Unknown-outcome operations
   *  are optional: one that never takes effect is simply never linearized. */
  required: boolean;
  /** The register version this operation must see when it takes effect (Infinity if any):
   *  a successful write/cas that returned v saw v-1; a read that returned v saw v. Versions
   *  never decrease, so once the register is past this, the operation can never fit. */
  needVersion: number;
  /** For a known outcome: did it succeed, and the version it returned (NaN if it failed). */
  resultOk: boolean;
  resultVersion: number;
  /** Interned value a read returned (-1 otherwise). */
  readValue: number;
  /** Interned value a write or cas writes (-1 for a read). */
  writeValue: number;
  /** For an unknown-outcome write or cas: its class of interchangeable operations (same kind,
   *  expected version and interned value); -1 otherwise. */
  symmetry: number;
}

/** A node of the doubly linked list of call and return entries, in time order. Linearizing
 *  an operation "lifts" both its entries out; backtracking puts them back (Porcupine). */
interface Entry {
  op: Op | null; // null only for the head sentinel
  isCall: boolean;
  time: number;
  match: Entry | null; // call -> its return
  prev: Entry | null;
  next: Entry | null;
}

/** A step on the search stack: the entry linearized and the register state before it.
 *  `forced` marks a move that was the only one worth making (see `forcedMove`): when the
 *  search backs out of it, the configuration it was made from has failed as a whole. */
interface Frame {
  entry: Entry;
  value: number;
  version: number;
  forced: boolean;
}

type RegisterVerdict =
  | { verdict: 'ok'; states: number }
  | { verdict: 'limit'; states: number }
  | { verdict: 'fail'; states: number; explanation: string };

function checkRegister(key: string, events: HistoryEvent[], init: RegisterState, maxStates: number): RegisterVerdict {
  const { ops, values } = buildOps(events);
  const initValue = values.intern(init.value);
  const search = new Search(ops, initValue, init.version, maxStates);
  const verdict = search.run();
  if (verdict !== 'fail') return { verdict, states: search.states };
  return { verdict, states: search.states, explanation: explain(key, ops, init, initValue, search.best?.frames ?? []) };
}

/**
 * The WGL search over one register's operations, as Porcupine does it: a linked list of call
 * and return entries in time order; the operations that may take effect next are the calls
 * before the first return still in the list. Linearizing one lifts its call and return out of
 * the list; backtracking puts them back and tries the next call. A configuration already
 * visited (same linearized set, same register) is not explored twice.
 *
 * Four reductions specific to this register, each sound (a configuration is linearizable
 * with them iff it is without), keep failing searches, which must exhaust every alternative,
 * from exploding with concurrency:
 *  - An operation that leaves the register unchanged (a read, a failed cas) and fits now is
 *    taken at once, with no alternative: every op still pending completes after it was
 *    invoked, and moving it to the front of any linearization changes no other result.
 *  - Then, a known-successful write or cas that fits now is likewise the only move: any other
 *    change to the register would take the version past the one it returned.
 *  - Unknown-outcome writes that are interchangeable (same kind, same expected version, and a
 *    value no read returned, or the same value) are tried only once per configuration: all of
 *    them are free to take effect at any later time, so if one leads nowhere, so does another.
 *  - An unknown-outcome write of a value some read returned, where no read returns that value
 *    at the version it would make, is not tried when an interchangeable write of an unread
 *    value (for a cas: with the same expected version) could be: that one does the same here,
 *    and swapping the two in any linearization that uses the first leaves every result as is.
 * Plus a prune: a move that takes the version past what a pending operation needs is dead.
 */
class Search {
  states = 0;
  /** The longest linearizable prefix, for the explanation: snapshotted when the search first
   *  backs out of a configuration at the greatest depth reached. */
  best: { frames: Frame[] } | null = null;

  private readonly head: Entry;
  private readonly linearized: LinearizedSet;
  /** Smallest version a pending operation needs. */
  private readonly need: MinTree;
  private readonly visited: VisitedSet;
  private readonly stack: Frame[] = [];
  /** Per depth: symmetry classes of unknown-outcome operations already tried there. */
  private readonly tried: number[][] = [[]];
  /** Per depth: can an unknown-outcome write of an unread value take effect there (bit 0: a
   *  blind one, bit 1: a cas on the current version)? Set by forcedMove. */
  private readonly unreadWriter: number[] = [0];
  /** "value version" for every (interned value, version) a read returned. */
  private readonly readAt: Set<string>;
  private requiredLeft: number;
  private bestDepth = 0;

  constructor(
    private readonly ops: Op[],
    private value: number,
    private version: number,
    private readonly maxStates: number,
  ) {
    this.head = buildEntryList(ops);
    this.requiredLeft = ops.reduce((k, o) => k + (o.required ? 1 : 0), 0);
    this.linearized = new LinearizedSet(ops.length, this.requiredLeft);
    this.visited = new VisitedSet();
    this.need = new MinTree(ops.map((o) => o.needVersion));
    this.readAt = new Set(ops.filter((o) => o.readValue >= 0).map((o) => `${o.readValue} ${o.resultVersion}`));
  }

  run(): 'ok' | 'fail' | 'limit' {
    // `entry` walks the candidates of the current configuration; null = a new configuration.
    let entry: Entry | null = null;
    while (this.requiredLeft > 0) {
      if (this.states > this.maxStates) return 'limit';
      if (entry === null) {
        const forced = this.forcedMove();
        if (forced === null) {
          entry = this.head.next;
        } else {
          if (!this.linearize(forced, true)) {
            // The only move is impossible: this configuration is dead.
            const next = this.backtrack();
            if (next === undefined) return 'fail';
            entry = next;
          }
          continue;
        }
      }
      if (entry !== null && entry.isCall) {
        const op = entry.op!;
        if (op.symmetry >= 0) {
          const tried = this.tried[this.stack.length]!;
          if (tried.includes(op.symmetry) || this.dominated(op)) {
            entry = entry.next;
            continue;
          }
          tried.push(op.symmetry);
        }
        if (this.linearize(entry, false)) entry = null;
        else entry = entry.next;
      } else {
        // Reached the first pending return (or the end): that operation cannot be placed after
        // anything later, and nothing earlier fits now. Undo the last choice and try the next.
        const next = this.backtrack();
        if (next === undefined) return 'fail';
        entry = next;
      }
    }
    return 'ok';
  }

  /** The one move worth making in this configuration, if the reductions above name one.
   *  On the way, notes whether a write of an unread value could take effect here. */
  private forcedMove(): Entry | null {
    let mutation: Entry | null = null;
    let unreadWriter = 0;
    for (let e = this.head.next; e !== null && e.isCall; e = e.next) {
      const op = e.op!;
      if (!op.required) {
        if (op.writeValue === UNREAD) {
          const o = op.ev.op;
          if (o.kind === 'write') unreadWriter |= 1;
          else if (o.kind === 'cas' && o.expectVersion === this.version) unreadWriter |= 2;
        }
        continue;
      }
      if (!step(op, this.value, this.version)) continue;
      if (stepOut.version === this.version) return e; // leaves the register as it is
      mutation ??= e;
    }
    this.unreadWriter[this.stack.length] = unreadWriter;
    return mutation;
  }

  /** Is unknown-outcome `op` a write of a read value that no read sees at the version it would
   *  make, while a write of an unread value could do the same here? (The last reduction.) */
  private dominated(op: Op): boolean {
    if (op.writeValue === UNREAD) return false;
    const kind = op.ev.op.kind === 'write' ? 1 : 2;
    if ((this.unreadWriter[this.stack.length]! & kind) === 0) return false;
    return !this.readAt.has(`${op.writeValue} ${this.version + 1}`);
  }

  /** Apply `entry`'s operation if it fits, does not strand another, and leads somewhere new. */
  private linearize(entry: Entry, forced: boolean): boolean {
    const op = entry.op!;
    if (!step(op, this.value, this.version)) return false;
    const nextValue = stepOut.value;
    const nextVersion = stepOut.version;
    // Prune: if another pending operation needs an older version, nothing after this move can
    // place it. Without this every optional write would be tried at every point.
    this.need.set(op.id, Infinity);
    if (nextVersion <= this.need.min()) {
      this.linearized.set(op.id);
      if (this.visited.add(this.linearized, nextValue, nextVersion)) {
        this.states++;
        this.stack.push({ entry, value: this.value, version: this.version, forced });
        (this.tried[this.stack.length] ??= []).length = 0;
        this.value = nextValue;
        this.version = nextVersion;
        if (op.required) this.requiredLeft--;
        lift(entry);
        if (this.stack.length > this.bestDepth) {
          this.bestDepth = this.stack.length;
          this.best = null;
        }
        return true;
      }
      this.linearized.clear(op.id);
    }
    this.need.set(op.id, op.needVersion);
    return false;
  }

  /** Undo moves until one leaves an alternative; returns the entry to try next, or undefined
   *  when the initial configuration has failed. Backing out of a forced move fails the
   *  configuration it was made from, so the undoing goes on. */
  private backtrack(): Entry | undefined {
    if (this.best === null && this.stack.length === this.bestDepth) this.best = { frames: this.stack.slice() };
    for (;;) {
      const frame = this.stack.pop();
      if (frame === undefined) {
        this.best ??= { frames: [] };
        return undefined;
      }
      const op = frame.entry.op!;
      this.value = frame.value;
      this.version = frame.version;
      this.linearized.clear(op.id);
      this.need.set(op.id, op.needVersion);
      if (op.required) this.requiredLeft++;
      unlift(frame.entry);
      if (!frame.forced) return frame.entry.next!;
    }
  }
}

// ---------------------------------------------------------------------------------------
// The register model

/** Output of `step`, reused to avoid an allocation per attempt. */
const stepOut = { value: 0, version: 0 };

/**
 * Can `op` take effect on the register (value, version), giving exactly the result it
 * reported? If so, leaves the new state in `stepOut`. An unknown-outcome operation "fits"
 * only when it changes the register: taking effect as a no-op (a cas that fails) is the
 * same as never taking effect, and is covered by leaving it unlinearized.
 */
function step(op: Op, value: number, version: number): boolean {
  const o = op.ev.op;
  switch (o.kind) {
    case 'write':
      stepOut.value = op.writeValue;
      stepOut.version = version + 1;
      return !op.required || (op.resultOk && op.resultVersion === version + 1);
    case 'cas':
      if (version === o.expectVersion) {
        stepOut.value = op.writeValue;
        stepOut.version = version + 1;
        return !op.required || (op.resultOk && op.resultVersion === version + 1);
      }
      stepOut.value = value;
      stepOut.version = version;
      return op.required && !op.resultOk;
    case 'read':
      stepOut.value = value;
      stepOut.version = version;
      return op.resultOk && op.resultVersion === version && op.readValue === value;
  }
}

/** Why `op` cannot take effect on the register, in words; null if it can. `shown` is the
 *  register's actual value (the search state holds an interned, possibly merged, one). */
function whyNot(op: Op, value: number, version: number, shown: string): string | null {
  if (step(op, value, version)) return null;
  const o = op.ev.op;
  const reg = `register is ${showValue(shown)}@v${version}`;
  if (!op.required) return `would not change the register (${reg})`; // only a mismatching cas
  if (o.kind === 'read') return reg;
  if (!op.resultOk) return `setData with version ${o.kind === 'cas' ? o.expectVersion : -1} would succeed here (${reg})`;
  if (o.kind === 'cas' && version !== o.expectVersion) return `version does not match (${reg})`;
  return `would make v${version + 1}, not v${op.resultVersion} (${reg})`;
}

// ---------------------------------------------------------------------------------------
// Building the search structures

/** The interned id of every value no read returned. */
const UNREAD = 0;

/**
 * Interns register values so states compare and hash as two numbers. Every value that no read
 * in the history returned is interned as one and the same id: reads are the only thing that
 * look at the value, and they tell such values apart from theirs and not from each other.
 * That makes configurations that differ only in an unread value one configuration, and
 * unknown-outcome writes of unread values interchangeable.
 */
class ValueTable {
  private readonly ids = new Map<string, number>();
  constructor(private readonly readValues: Set<string>) {}
  intern(s: string): number {
    if (!this.readValues.has(s)) return UNREAD;
    let id = this.ids.get(s);
    if (id === undefined) this.ids.set(s, (id = this.ids.size + 1));
    return id;
  }
}

function buildOps(events: HistoryEvent[]): { ops: Op[]; values: ValueTable } {
  const readValues = new Set<string>();
  for (const ev of events) {
    if (!Number.isFinite(ev.invoke)) throw new RangeError(`checkLinearizable: invoke must be a finite time (${describeEvent(ev)})`);
    if (ev.complete !== null && !(ev.complete >= ev.invoke)) {
      throw new RangeError(`checkLinearizable: complete before invoke (${describeEvent(ev)})`);
    }
    if (ev.complete !== null && ev.result === undefined) {
      throw new TypeError(`checkLinearizable: completed operation without a result (${describeEvent(ev)})`);
    }
    if (ev.complete !== null && ev.op.kind === 'read' && ev.result!.ok) {
      if (ev.result!.value === undefined) throw new TypeError(`checkLinearizable: read result without a value (${describeEvent(ev)})`);
      readValues.add(ev.result!.value);
    }
  }
  const values = new ValueTable(readValues);
  const classes = new Map<string, number>();
  const ops: Op[] = [];
  // Known outcomes first, each group in invocation order: ids then read as time order in
  // explanations, and the visited set can store bitsets compactly (see VisitedSet).
  const ordered = events
    .filter((ev) => ev.complete !== null || ev.op.kind !== 'read') // a read whose answer never came constrains nothing
    .sort((a, b) => (a.complete === null ? 1 : 0) - (b.complete === null ? 1 : 0) || a.invoke - b.invoke);
  for (const ev of ordered) {
    const required = ev.complete !== null;
    const r = ev.result;
    const resultOk = required && r!.ok;
    const resultVersion = required && r !== undefined && r.ok ? r.version : NaN;
    let needVersion = Infinity;
    let readValue = -1;
    if (resultOk) {
      if (ev.op.kind === 'read') {
        readValue = values.intern((r as { value: string }).value);
        needVersion = resultVersion;
      } else {
        needVersion = resultVersion - 1;
      }
    }
    const writeValue = ev.op.kind === 'read' ? -1 : values.intern(ev.op.value);
    let symmetry = -1;
    if (!required && ev.op.kind !== 'read') {
      const cls = `${ev.op.kind === 'cas' ? ev.op.expectVersion : 'w'} ${writeValue}`;
      symmetry = classes.get(cls) ?? classes.size;
      classes.set(cls, symmetry);
    }
    ops.push({ id: ops.length, ev, required, needVersion, resultOk, resultVersion, readValue, writeValue, symmetry });
  }
  return { ops, values };
}

/** Call and return entries sorted by time, linked behind a head sentinel. On equal times a
 *  call goes before a return, so the two operations count as concurrent: with millisecond
 *  clocks, the lenient reading avoids reporting an order the clocks could not establish. */
function buildEntryList(ops: Op[]): Entry {
  const entries: Entry[] = [];
  for (const op of ops) {
    const ret: Entry = { op, isCall: false, time: op.ev.complete ?? Infinity, match: null, prev: null, next: null };
    entries.push({ op, isCall: true, time: op.ev.invoke, match: ret, prev: null, next: null }, ret);
  }
  entries.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? 0 : a.isCall ? -1 : 1) || a.op!.id - b.op!.id);
  const head: Entry = { op: null, isCall: false, time: -Infinity, match: null, prev: null, next: null };
  let prev = head;
  for (const e of entries) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }
  return head;
}

/** Take a call entry and its return out of the list. A call always has a successor (at the
 *  latest, its own return), so only the return's `next` can be null. */
function lift(call: Entry): void {
  call.prev!.next = call.next;
  call.next!.prev = call.prev;
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

/** Undo `lift`, in reverse order so each entry's neighbours are the ones it left. */
function unlift(call: Entry): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next !== null) ret.next.prev = ret;
  call.prev!.next = call;
  call.next!.prev = call;
}

// ---------------------------------------------------------------------------------------
// Memoisation

/**
 * The set of linearized operations, as a bitset with what memoising it cheaply needs: a hash
 * kept up to date on every change, and bounds on where its interesting words are. Operations
 * are numbered with every known-outcome one first, in invocation order, then the
 * unknown-outcome ones (see buildOps), and the latter start on a fresh word. So the
 * known-outcome words are all ones up to about the search's frontier and all zeros after it,
 * and only the words around the frontier, plus the unknown-outcome words, say anything: that
 * is what VisitedSet stores.
 */
class LinearizedSet {
  readonly words: Uint32Array;
  /** Words [0, knownWords) hold the known-outcome operations, ids [0, known). */
  readonly knownWords: number;
  private readonly known: number;
  /** Bit of unknown-outcome operation `id` is id + shift, so they start on a fresh word. */
  private readonly shift: number;
  /** Known-outcome words below `low` are all ones; from `high` on, all zeros. */
  low = 0;
  high = 0;
  /** Words from `tail` on are all zeros (tail >= knownWords). */
  tail: number;
  /** XOR of a random key per member (Zobrist hashing): O(1) per change. */
  hash = 0;
  private readonly keys: Uint32Array;

  constructor(n: number, known: number) {
    this.known = known;
    this.knownWords = (known + 31) >>> 5;
    this.shift = this.knownWords * 32 - known;
    this.words = new Uint32Array(this.knownWords + ((n - known + 31) >>> 5));
    this.tail = this.knownWords;
    this.keys = zobristKeys(n);
  }

  set(id: number): void {
    const b = id < this.known ? id : id + this.shift;
    const w = b >>> 5;
    this.words[w]! |= 1 << (b & 31);
    this.hash ^= this.keys[id]!;
    if (w < this.knownWords) {
      if (w >= this.high) this.high = w + 1;
      while (this.low < this.knownWords && this.words[this.low] === 0xffffffff) this.low++;
    } else if (w >= this.tail) {
      this.tail = w + 1;
    }
  }

  clear(id: number): void {
    const b = id < this.known ? id : id + this.shift;
    const w = b >>> 5;
    this.words[w]! &= ~(1 << (b & 31));
    this.hash ^= this.keys[id]!;
    if (w < this.knownWords) {
      if (w < this.low) this.low = w;
      while (this.high > this.low && this.words[this.high - 1] === 0) this.high--;
    } else {
      while (this.tail > this.knownWords && this.words[this.tail - 1] === 0) this.tail--;
    }
  }
}

/** Random 32-bit keys, from a fixed seed so runs are reproducible. */
function zobristKeys(n: number): Uint32Array {
  const keys = new Uint32Array(n);
  let s = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    // mulberry32
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    keys[i] = (t ^ (t >>> 14)) >>> 0;
  }
  return keys;
}

/**
 * The configurations (linearized set, register state) visited. Each is stored as its state
 * and the informative words of its set (LinearizedSet's low..high and knownWords..tail),
 * packed into one growing arena rather than an object and array apiece: a failing search
 * stores hundreds of thousands, and per-entry allocations dominated its time.
 */
class VisitedSet {
  /** Configuration hash -> index of the newest entry with it; older ones chain via NEXT. */
  private readonly heads = new Map<number, number>();
  private meta = new Float64Array(META * 1024);
  private arena = new Uint32Array(4096);
  private count = 0;
  private used = 0;

  /** Record (set, value, version) as visited; false if it already was. */
  add(set: LinearizedSet, value: number, version: number): boolean {
    const h = (set.hash ^ Math.imul(value + 1, 0x9e3779b1) ^ Math.imul(version + 0x632be5ab, 0x85ebca77)) | 0;
    const { words, low, high, tail, knownWords } = set;
    const span = high > low ? high - low : 0;
    const len = span + tail - knownWords;
    const { meta, arena } = this;
    const head = this.heads.get(h);
    for (let i = head ?? -1; i >= 0; i = meta[i * META + NEXT]!) {
      const m = i * META;
      if (meta[m + VALUE] !== value || meta[m + VERSION] !== version || meta[m + LOW] !== low || meta[m + SPAN] !== span || meta[m + LEN] !== len) continue;
      const off = meta[m + OFFSET]!;
      let same = true;
      for (let k = 0; k < span && same; k++) same = arena[off + k] === words[low + k];
      for (let k = 0; k < len - span && same; k++) same = arena[off + span + k] === words[knownWords + k];
      if (same) return false;
    }
    if ((this.count + 1) * META > this.meta.length) this.meta = grow(this.meta, (this.count + 1) * META);
    if (this.used + len > this.arena.length) this.arena = grow(this.arena, this.used + len);
    const m = this.count * META;
    this.meta[m + NEXT] = head ?? -1;
    this.meta[m + LOW] = low;
    this.meta[m + SPAN] = span;
    this.meta[m + LEN] = len;
    this.meta[m + OFFSET] = this.used;
    this.meta[m + VALUE] = value;
    this.meta[m + VERSION] = version;
    this.arena.set(words.subarray(low, low + span), this.used);
    this.arena.set(words.subarray(knownWords, tail), this.used + span);
    this.used += len;
    this.heads.set(h, this.count++);
    return true;
  }
}

// Fields of a VisitedSet entry in `meta`: chain link, where its words came from (known-outcome
// words LOW..LOW+SPAN, then unknown-outcome words up to LEN in all), where they are in the
// arena, and the register state.
const NEXT = 0;
const LOW = 1;
const SPAN = 2;
const LEN = 3;
const OFFSET = 4;
const VALUE = 5;
const VERSION = 6;
const META = 7;

function grow<T extends Float64Array | Uint32Array>(a: T, min: number): T {
  let size = a.length * 2;
  while (size < min) size *= 2;
  const b = new (a.constructor as new (n: number) => T)(size);
  b.set(a);
  return b;
}

/** Minimum over a fixed array with point updates (a segment tree): the smallest version any
 *  pending operation still needs. */
class MinTree {
  private readonly size: number;
  private readonly tree: Float64Array;
  constructor(values: number[]) {
    let size = 1;
    while (size < values.length) size *= 2;
    this.size = size;
    this.tree = new Float64Array(2 * size).fill(Infinity);
    this.tree.set(values, size);
    for (let i = size - 1; i >= 1; i--) this.tree[i] = Math.min(this.tree[2 * i]!, this.tree[2 * i + 1]!);
  }
  set(i: number, v: number): void {
    let p = i + this.size;
    this.tree[p] = v;
    for (p >>= 1; p >= 1; p >>= 1) this.tree[p] = Math.min(this.tree[2 * p]!, this.tree[2 * p + 1]!);
  }
  min(): number {
    return this.tree[1]!;
  }
}

// ---------------------------------------------------------------------------------------
// Explaining a failure

const PREFIX_SHOWN = 6;
const CANDIDATES_SHOWN = 8;

/**
 * Describe where the search got stuck: the tail of the longest linearizable prefix (with the
 * register after each operation), the register at its end, and the operations that could
 * come next (invoked before the earliest pending completion), each with why it does not fit.
 */
function explain(key: string, ops: Op[], init: RegisterState, initValue: number, frames: Frame[]): string {
  const t0 = ops.reduce((t, o) => Math.min(t, o.ev.invoke), Infinity);
  // Replay the prefix with the actual values (the search state merges unread ones).
  let shown = init.value;
  const after: string[] = [];
  for (const f of frames) {
    const o = f.entry.op!;
    if (o.ev.op.kind !== 'read' && step(o, f.value, f.version) && stepOut.version > f.version) shown = o.ev.op.value;
    after.push(showValue(shown));
  }
  const last = frames.length > 0 ? frames[frames.length - 1]! : null;
  if (last !== null) step(last.entry.op!, last.value, last.version);
  const value = last === null ? initValue : stepOut.value;
  const version = last === null ? init.version : stepOut.version;

  const lines: string[] = [];
  const known = ops.filter((o) => o.required).length;
  lines.push(`key ${JSON.stringify(key)}: not linearizable (${ops.length} operations, ${known} with known outcome).`);
  lines.push(`Longest linearizable prefix: ${frames.length} operations${frames.length > PREFIX_SHOWN ? `; the last ${PREFIX_SHOWN}` : ''}:`);
  if (frames.length === 0) lines.push('  (none)');
  for (let i = Math.max(0, frames.length - PREFIX_SHOWN); i < frames.length; i++) {
    const v = i + 1 < frames.length ? frames[i + 1]!.version : version;
    lines.push(`  ${describeOp(frames[i]!.entry.op!, t0)}   => ${after[i]}@v${v}`);
  }
  lines.push(`Register then: ${showValue(shown)}@v${version}.`);

  const linearized = new Set(frames.map((f) => f.entry.op!.id));
  const pending = ops.filter((o) => !linearized.has(o.id));
  const deadline = pending.reduce((t, o) => (o.required ? Math.min(t, o.ev.complete!) : t), Infinity);
  const open = pending.filter((o) => o.ev.invoke <= deadline).sort((a, b) => a.ev.invoke - b.ev.invoke);
  // Unknown-outcome operations stay open to the end, so they would crowd the list; they are
  // summarised instead (the search did try them here).
  const candidates = open.filter((o) => o.required);
  const optional = open.length - candidates.length;
  lines.push(`None of these can come next (invoked before the first pending completion, ${fmtTime(deadline, t0)}):`);
  for (const op of candidates.slice(0, CANDIDATES_SHOWN)) {
    let why = whyNot(op, value, version, shown);
    if (why === null) {
      // It fits the register, so either it strands an operation that needs an older version
      // (the pruning rule), or the search below it failed further on.
      const next = op.ev.op.kind === 'read' || !op.resultOk ? version : version + 1;
      const stranded = pending.reduce<Op | null>((m, o) => (o !== op && o.needVersion < (m?.needVersion ?? Infinity) ? o : m), null);
      why =
        stranded !== null && next > stranded.needVersion
          ? `fits, but leaves v${next} while ${describeOp(stranded, t0)} still needs v${stranded.needVersion}`
          : 'fits here, but every continuation after it dead-ends';
    }
    lines.push(`  ${describeOp(op, t0)}: ${why}`);
  }
  if (candidates.length > CANDIDATES_SHOWN) lines.push(`  ... and ${candidates.length - CANDIDATES_SHOWN} more`);
  if (optional > 0) lines.push(`  (and ${optional} unknown-outcome operations, none of which helps by taking effect here)`);
  return lines.join('\n');
}

function describeOp(op: Op, t0: number): string {
  return `#${op.id} ${describeCall(op.ev)} [${fmtTime(op.ev.invoke, t0)} .. ${op.ev.complete === null ? '?' : fmtTime(op.ev.complete, t0)}]`;
}

function describeCall(ev: HistoryEvent): string {
  const o = ev.op;
  const call = o.kind === 'write' ? `write(${showValue(o.value)})` : o.kind === 'cas' ? `cas(v${o.expectVersion}, ${showValue(o.value)})` : 'read';
  let res: string;
  const r = ev.result;
  if (ev.complete === null || r === undefined) res = '? (unknown outcome)';
  else if (!r.ok) res = r.err;
  else if (o.kind === 'read') res = `${r.value === undefined ? '?' : showValue(r.value)}@v${r.version}`;
  else res = `v${r.version}`;
  return `client ${ev.client} ${call} -> ${res}`;
}

function describeEvent(ev: HistoryEvent): string {
  return `key ${JSON.stringify(ev.key)}, ${describeCall(ev)}, invoke ${ev.invoke}, complete ${ev.complete}`;
}

function fmtTime(t: number, t0: number): string {
  return Number.isFinite(t) ? `+${(t - t0).toFixed(1)}ms` : 'never';
}

function showValue(s: string): string {
  const j = JSON.stringify(s);
  return j.length > 24 ? `${j.slice(0, 20)}..."` : j;
}
