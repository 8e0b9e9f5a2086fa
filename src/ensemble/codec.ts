// Peer message frames: [u32 length][u32 JSON length][JSON][blobs...], each blob
// [u32 length][bytes]. The JSON carries the message with every binary part (txns,
// request bodies, snapshot chunks) replaced by a blob index; bigints travel as strings.
// Txns travel as the log's own sealed records, so they are checksummed end to end.

import type { Txn } from '../tree/types.js';
import { decodeRecord, encodeRecord } from '../storage/txncodec.js';
import type { Message, SyncPlan } from '../zab/types.js';
import type { PeerMessage, SnapState } from './messages.js';

export class PeerCodecError extends Error {}

/** Largest frame accepted from a peer (a SNAP of a large tree is one frame). */
export const MAX_PEER_FRAME = 0x7fff0000;

interface Out {
  blobs: Buffer[];
}

function txnRefs(o: Out, txns: readonly Txn[]): number[] {
  return txns.map((t) => o.blobs.push(encodeRecord(t)) - 1);
}

function snapRef(o: Out, state: unknown): unknown {
  if (state === null || state === undefined) return null;
  const s = state as SnapState;
  if (s.raw === undefined) throw new PeerCodecError(`snapshot ${s.id} was not read before sending`);
  const marker = o.blobs.push(s.raw.marker) - 1;
  const chunks = s.raw.chunks.map((c) => o.blobs.push(c) - 1);
  return { id: s.id, endZxid: s.endZxid, marker, chunks };
}

function planOut(o: Out, p: SyncPlan): unknown {
  switch (p.mode) {
    case 'DIFF':
      return { mode: 'DIFF', txns: txnRefs(o, p.txns) };
    case 'TRUNC':
      return { mode: 'TRUNC', truncZxid: p.truncZxid, txns: txnRefs(o, p.txns) };
    case 'SNAP':
      return { mode: 'SNAP', snapshot: { zxid: p.snapshot.zxid, state: snapRef(o, p.snapshot.state) }, txns: txnRefs(o, p.txns) };
  }
}

export function encodePeerMessage(m: PeerMessage): Buffer {
  const o: Out = { blobs: [] };
  let json: Record<string, unknown>;
  switch (m.type) {
    case 'PROPOSAL':
    case 'INFORM':
      json = { ...m, txns: txnRefs(o, m.txns) };
      break;
    case 'NEWLEADER':
      json = { ...m, sync: planOut(o, m.sync) };
      break;
    case 'REQUEST':
      json = { ...m, sessionId: m.sessionId.toString(), body: o.blobs.push(m.body) - 1 };
      break;
    case 'TOUCH':
      json = { ...m, sessions: m.sessions.map((s) => [s.id.toString(), s.timeout]) };
      break;
    case 'SYNC':
    case 'SYNCED':
      json = { ...m, sessionId: m.sessionId.toString() };
      break;
    default:
      json = m as unknown as Record<string, unknown>;
  }
  const head = Buffer.from(JSON.stringify(json));
  let size = 4 + head.length;
  for (const b of o.blobs) size += 4 + b.length;
  if (size > MAX_PEER_FRAME) throw new PeerCodecError(`peer message of ${size} bytes is too large`);
  const out = Buffer.allocUnsafe(4 + size);
  out.writeUInt32BE(size, 0);
  out.writeUInt32BE(head.length, 4);
  head.copy(out, 8);
  let at = 8 + head.length;
  for (const b of o.blobs) {
    out.writeUInt32BE(b.length, at);
    b.copy(out, at + 4);
    at += 4 + b.length;
  }
  return out;
}

/** Numeric fields each message type must carry (besides `from`); the core trusts them. */
const NUMBERS: Record<string, string[]> = {
  NOTIFICATION: ['round'],
  FOLLOWERINFO: ['acceptedEpoch', 'lastZxid'],
  OBSERVERINFO: ['acceptedEpoch', 'lastZxid'],
  LEADERINFO: ['epoch'],
  ACKEPOCH: ['epoch', 'currentEpoch', 'lastZxid'],
  ACK: ['epoch', 'zxid', 'logged'],
  UPTODATE: ['epoch', 'commitZxid'],
  COMMIT: ['epoch', 'zxid'],
  PING: ['epoch', 'commitZxid'],
  PROPOSAL: ['epoch', 'prevZxid'],
  INFORM: ['epoch', 'prevZxid', 'commitZxid'],
  NEWLEADER: ['epoch', 'learnerZxid', 'lastZxid', 'commitZxid'],
  REQUEST: ['cxid', 'op'],
  TOUCH: [],
  SYNC: ['cxid'],
  SYNCED: ['cxid', 'zxid'],
};
const ROLES = new Set(['looking', 'following', 'leading', 'observing']);

/**
 * A peer is trusted, but a bug or a stray connection must cost a dropped connection and a
 * log line, never a crash inside the core: check the shape before anything reads it.
 */
function checkShape(json: Record<string, unknown>): void {
  const want = NUMBERS[json.type as string];
  if (want === undefined) throw new PeerCodecError(`unknown peer message type ${String(json.type)}`);
  const isNum = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  for (const k of ['from', ...want]) if (!isNum(json[k])) throw new PeerCodecError(`${String(json.type)}: field ${k} is not a number`);
  for (const k of ['pingSeq', 'seq', 'timeout']) if (json[k] !== undefined && !isNum(json[k])) throw new PeerCodecError(`${String(json.type)}: field ${k} is not a number`);
  const bad = (what: string) => new PeerCodecError(`${String(json.type)}: ${what}`);
  switch (json.type) {
    case 'NOTIFICATION': {
      const v = json.vote as Record<string, unknown> | null;
      if (!ROLES.has(json.state as string)) throw bad('bad state');
      if (typeof v !== 'object' || v === null || !isNum(v.leader) || !isNum(v.zxid) || !isNum(v.peerEpoch)) throw bad('bad vote');
      break;
    }
    case 'ACKEPOCH':
      if (typeof json.promised !== 'boolean') throw bad('bad promised');
      break;
    case 'PROPOSAL':
    case 'INFORM':
      if (!Array.isArray(json.txns)) throw bad('txns is not a list');
      break;
    case 'NEWLEADER': {
      const p = json.sync as Record<string, unknown> | null;
      if (typeof p !== 'object' || p === null || !Array.isArray(p.txns)) throw bad('bad sync plan');
      if (p.mode === 'TRUNC' && !isNum(p.truncZxid)) throw bad('bad truncZxid');
      if (p.mode === 'SNAP') {
        const snap = p.snapshot as Record<string, unknown> | null;
        if (typeof snap !== 'object' || snap === null || !isNum(snap.zxid)) throw bad('bad snapshot');
        const st = snap.state as Record<string, unknown> | null;
        if (st !== null && (typeof st !== 'object' || !isNum(st.id) || !isNum(st.endZxid) || !Array.isArray(st.chunks))) throw bad('bad snapshot state');
      } else if (p.mode !== 'DIFF' && p.mode !== 'TRUNC') throw bad('bad sync mode');
      break;
    }
    case 'REQUEST':
      if (typeof json.sessionId !== 'string' || !Array.isArray(json.authIds)) throw bad('bad session or auth');
      for (const a of json.authIds as Record<string, unknown>[])
        if (typeof a?.scheme !== 'string' || typeof a?.id !== 'string') throw bad('bad auth id');
      break;
    case 'TOUCH':
      if (!Array.isArray(json.sessions)) throw bad('sessions is not a list');
      for (const x of json.sessions as unknown[]) if (!Array.isArray(x) || typeof x[0] !== 'string' || !isNum(x[1])) throw bad('bad session');
      break;
    case 'SYNC':
    case 'SYNCED':
      if (typeof json.sessionId !== 'string') throw bad('bad session');
      break;
  }
}

/** Decodes one frame body (without its length prefix). Throws PeerCodecError on anything malformed. */
export function decodePeerMessage(frame: Buffer): PeerMessage {
  try {
    const headLen = frame.readUInt32BE(0);
    const json = JSON.parse(frame.toString('utf8', 4, 4 + headLen)) as Record<string, unknown>;
    const blobs: Buffer[] = [];
    for (let at = 4 + headLen; at < frame.length; ) {
      const n = frame.readUInt32BE(at);
      if (at + 4 + n > frame.length) throw new PeerCodecError('blob runs past the frame');
      blobs.push(frame.subarray(at + 4, at + 4 + n));
      at += 4 + n;
    }
    const blob = (i: unknown): Buffer => {
      const b = blobs[i as number];
      if (b === undefined) throw new PeerCodecError(`missing blob ${String(i)}`);
      return b;
    };
    const txns = (refs: unknown): Txn[] => (refs as number[]).map((i) => decodeRecord(blob(i)).txn);
    if (typeof json !== 'object' || json === null) throw new PeerCodecError('header is not an object');
    checkShape(json);
    switch (json.type) {
      case 'PROPOSAL':
      case 'INFORM':
        return { ...json, txns: txns(json.txns) } as unknown as Message;
      case 'NEWLEADER': {
        const p = json.sync as Record<string, unknown>;
        let sync: SyncPlan;
        if (p.mode === 'SNAP') {
          const s = p.snapshot as { zxid: number; state: null | { id: number; endZxid: number; marker: number; chunks: number[] } };
          const state: SnapState | null =
            s.state === null
              ? null
              : { id: s.state.id, endZxid: s.state.endZxid, raw: { marker: Buffer.from(blob(s.state.marker)), chunks: s.state.chunks.map((i) => Buffer.from(blob(i))) } };
          sync = { mode: 'SNAP', snapshot: { zxid: s.zxid, state }, txns: txns(p.txns) };
        } else if (p.mode === 'TRUNC') {
          sync = { mode: 'TRUNC', truncZxid: p.truncZxid as number, txns: txns(p.txns) };
        } else {
          sync = { mode: 'DIFF', txns: txns(p.txns) };
        }
        return { ...json, sync } as unknown as Message;
      }
      case 'REQUEST':
        return { ...json, sessionId: BigInt(json.sessionId as string), body: Buffer.from(blob(json.body)) } as unknown as PeerMessage;
      case 'TOUCH':
        return {
          ...json,
          sessions: (json.sessions as [string, number][]).map(([id, timeout]) => ({ id: BigInt(id), timeout })),
        } as unknown as PeerMessage;
      case 'SYNC':
      case 'SYNCED':
        return { ...json, sessionId: BigInt(json.sessionId as string) } as unknown as PeerMessage;
      case 'NOTIFICATION':
      case 'FOLLOWERINFO':
      case 'OBSERVERINFO':
      case 'LEADERINFO':
      case 'ACKEPOCH':
      case 'ACK':
      case 'UPTODATE':
      case 'COMMIT':
      case 'PING':
        if (typeof json.from !== 'number') throw new PeerCodecError('message without a sender');
        return json as unknown as Message;
      default:
        throw new PeerCodecError(`unknown peer message type ${String(json.type)}`);
    }
  } catch (e) {
    if (e instanceof PeerCodecError) throw e;
    throw new PeerCodecError((e as Error).message);
  }
}
