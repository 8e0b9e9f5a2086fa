// Growing the tree's columns: a bigger array, the old contents copied in. Capacities
// double, so each slot is copied at most once on average. (Resizable ArrayBuffers would
// grow in place, but element access through them measured 1.6-2x slower on Node 20.)

type Column = Int32Array | Float64Array | Uint8Array;
type Ctor<T extends Column> = { new (length: number): T };

/** A copy of a with room for capacity elements. */
export function resized<T extends Column>(a: T, capacity: number): T {
  const b = new (a.constructor as Ctor<T>)(capacity);
  b.set(a as never);
  return b;
}
