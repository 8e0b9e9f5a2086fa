// Typed access to the generated protobuf code (src/ws/gen/, from proto/corral.proto) and the
// small conversions both ends need. Browser-safe: no Node modules on this path.
import { corral as generated } from './gen/corral.js';
import type { corral } from './gen/corral-types.js';

export const pb = (generated as unknown as typeof corral).v1;
export type { corral };

export type PFrame = corral.v1.Frame.$Properties;
export type PRequest = corral.v1.Request.$Properties;
export type PResponse = corral.v1.Response.$Properties;
export type PConnectRequest = corral.v1.ConnectRequest.$Properties;
export type PConnectResponse = corral.v1.ConnectResponse.$Properties;
export type PWatchEvent = corral.v1.WatchEvent.$Properties;
export type PStat = corral.v1.Stat.$Properties;
export type PAcl = corral.v1.Acl.$Properties;
export type POp = corral.v1.Op.$Properties;
export type POpResult = corral.v1.OpResult.$Properties;
export type PErrorFrame = corral.v1.ErrorFrame.$Properties;

/** The protocol's version, as in the .proto's package name. */
export const PROTOCOL = 'corral.v1';

/** WebSocket close codes the server uses. */
export const CloseCode = {
  normal: 1000,
  /** A frame in the wrong place (request before connect, a server-side frame from a client). */
  protocolError: 1002,
  /** A text message. */
  unsupportedData: 1003,
  /** Undecodable protobuf or an invalid request. */
  invalidPayload: 1007,
  /** The client fell too far behind reading (backpressure). */
  policy: 1008,
  tooBig: 1009,
  /** The server is stopping. */
  goingAway: 1001,
} as const;

/**
 * int64 fields come back as numbers, or as Long objects when the `long` package is
 * loadable (Node): either way a number here (zxids and times stay below 2^53).
 */
export function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v === null || v === undefined) return 0;
  if (typeof v === 'object' && 'toNumber' in v) return (v as { toNumber(): number }).toNumber();
  return Number(v);
}

/** A 64-bit id (session id, ephemeral owner) as 8 big-endian bytes. */
export function idToBytes(id: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigInt64(0, BigInt.asIntN(64, id));
  return b;
}

export function bytesToId(b: Uint8Array | null | undefined): bigint {
  if (b === null || b === undefined || b.length === 0) return 0n;
  if (b.length !== 8) throw new RangeError(`64-bit id must be 8 bytes, got ${b.length}`);
  return new DataView(b.buffer, b.byteOffset, 8).getBigInt64(0);
}

/** The name of the request's operation field (which oneof member is set), or undefined. */
export const REQUEST_OPS = [
  'create', 'create2', 'createContainer', 'createTtl', 'delete', 'exists', 'getData', 'setData',
  'getAcl', 'setAcl', 'getChildren', 'getChildren2', 'getAllChildrenNumber', 'getEphemerals', 'sync',
  'multi', 'multiRead', 'addWatch', 'removeWatches', 'checkWatches', 'setWatches', 'auth', 'whoAmI',
  'ping', 'close', 'check',
] as const;
export type RequestOp = (typeof REQUEST_OPS)[number];

export function requestOp(r: PRequest): RequestOp | undefined {
  for (const k of REQUEST_OPS) if (r[k] !== null && r[k] !== undefined) return k;
  return undefined;
}

export function encodeFrames(frames: PFrame[]): Uint8Array {
  return pb.Frames.encode({ frames }).finish();
}

export function decodeFrames(b: Uint8Array): PFrame[] {
  return pb.Frames.decode(b).frames;
}
