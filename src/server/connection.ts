import { normaliseIp } from '../acl/auth.js';
import { getI32 } from '../protocol/bytes.js';
import { FOUR_LETTER_WORDS, OpCode, Xid } from '../protocol/constants.js';
import { JuteError, JuteReader, JuteWriter } from '../protocol/jute.js';
import type { Id, WatchEvent } from '../tree/types.js';
import type { Watcher } from './watches.js';

// One client connection: framing, the handshake, the 4lw sniff, and an output buffer
// that collects every reply and notification of one event-loop turn into one write.

/**
 * What a connection needs of its socket: a real `net.Socket`, or, when the pipeline
 * runs on its own thread, a stand-in whose bytes cross from the socket thread.
 */
export interface ClientSocket {
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  readonly destroyed: boolean;
  setNoDelay(on: boolean): unknown;
  on(event: 'data', f: (chunk: Buffer) => void): unknown;
  on(event: 'error' | 'close', f: () => void): unknown;
  write(b: Buffer): unknown;
  end(): unknown;
  end(text: string): unknown;
  destroy(): unknown;
  pause(): unknown;
  resume(): unknown;
}

export type ConnState = 'handshake' | 'connecting' | 'connected' | 'closed';

export interface ConnectionHost {
  readonly maxFrame: number;
  /** The first frame: a ConnectRequest. */
  onConnect(conn: Connection, frame: JuteReader): void;
  /** A request frame after the handshake (header not yet read). */
  onRequest(conn: Connection, frame: JuteReader): void;
  /** `rest` is what followed the word in the same read (stmk's 8-byte mask). */
  onFourLetterWord(conn: Connection, word: string, rest: Buffer): void;
  onClose(conn: Connection): void;
  /** Marks the connection as having output for this turn. */
  markDirty(conn: Connection): void;
  warn(msg: string): void;
}

const FLW = new Map<number, string>(FOUR_LETTER_WORDS.map((w) => [Buffer.from(w).readInt32BE(0), w]));

let nextConnId = 1;

/** The short names cons/stat show for the last operation (FinalRequestProcessor's lastOp). */
const OP_NAMES = new Map<number, string>([
  [OpCode.ping, 'PING'], [OpCode.create, 'CREA'], [OpCode.create2, 'CREA'], [OpCode.createContainer, 'CREA'],
  [OpCode.createTTL, 'CREA'], [OpCode.delete, 'DELE'], [OpCode.setData, 'SETD'], [OpCode.setACL, 'SETA'],
  [OpCode.closeSession, 'CLOS'], [OpCode.sync, 'SYNC'], [OpCode.check, 'CHEC'], [OpCode.exists, 'EXIS'],
  [OpCode.getData, 'GETD'], [OpCode.setWatches, 'SETW'], [OpCode.setWatches2, 'STW2'], [OpCode.addWatch, 'ADDW'],
  [OpCode.getACL, 'GETA'], [OpCode.getChildren, 'GETC'], [OpCode.getChildren2, 'GETC'],
  [OpCode.getAllChildrenNumber, 'GETACN'], [OpCode.checkWatches, 'CHKW'], [OpCode.removeWatches, 'REMW'],
  [OpCode.whoAmI, 'HOMI'], [OpCode.getEphemerals, 'GETE'], [OpCode.multi, 'MULT'], [OpCode.multiRead, 'MLTR'],
  [OpCode.reconfig, 'RECO'],
]);

export class Connection implements Watcher {
  readonly id = nextConnId++;
  state: ConnState = 'handshake';
  sessionId = 0n;
  sessionTimeout = 0;
  /** Whether the client sent the readOnly byte (so the reply carries one too). */
  readOnlyByte = false;
  readonly remoteIp: string;
  readonly remotePort: number;
  authIds: Id[];
  readonly out = new JuteWriter(16 * 1024);
  private pending: Buffer | null = null;
  /** Frames that arrived while the session was being created, replayed after. */
  private held: Buffer[] = [];
  /** Requests of this session still in the pipeline, in order (per-session FIFO). */
  readonly queue: QueuedRequest[] = [];
  // Statistics for cons/stat.
  readonly established = Date.now();
  packetsReceived = 0;
  packetsSent = 0;
  lastOp = 'NA';
  lastCxid = -1;
  lastZxid = -1;
  lastResponseTime = 0;
  lastLatency = 0;
  minLatency = Number.MAX_SAFE_INTEGER;
  maxLatency = 0;
  totalLatency = 0;
  latencyCount = 0;
  paused = false;

  recordLatency(op: number, ms: number, zxid: number): void {
    this.lastOp = OP_NAMES.get(op) ?? 'NA';
    this.lastZxid = zxid;
    this.lastLatency = ms;
    this.lastResponseTime = Date.now();
    if (ms < this.minLatency) this.minLatency = ms;
    if (ms > this.maxLatency) this.maxLatency = ms;
    this.totalLatency += ms;
    this.latencyCount++;
  }

  resetStats(): void {
    this.packetsReceived = 0;
    this.packetsSent = 0;
    this.minLatency = Number.MAX_SAFE_INTEGER;
    this.maxLatency = 0;
    this.totalLatency = 0;
    this.latencyCount = 0;
    this.lastLatency = 0;
    this.lastOp = 'NA';
    this.lastCxid = -1;
    this.lastZxid = -1;
    this.lastResponseTime = 0;
  }

  constructor(
    readonly socket: ClientSocket,
    private readonly host: ConnectionHost,
  ) {
    this.remoteIp = normaliseIp(socket.remoteAddress);
    this.remotePort = socket.remotePort ?? 0;
    this.authIds = [{ scheme: 'ip', id: this.remoteIp }];
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
  }

  get label(): string {
    return `${this.remoteIp}:${this.remotePort}`;
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    let buf = chunk;
    if (this.pending !== null) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    let pos = 0;
    try {
      if (this.state === 'handshake' && pos + 4 <= buf.length) {
        const word = FLW.get(buf.readInt32BE(0));
        if (word !== undefined) {
          this.host.onFourLetterWord(this, word, buf.subarray(pos + 4));
          return;
        }
      }
      while (pos + 4 <= buf.length && (this.state as ConnState) !== 'closed') {
        const len = getI32(buf, pos);
        if (len < 0 || len > this.host.maxFrame) {
          this.fail(`frame length ${len} out of range (jute.maxbuffer=${this.host.maxFrame})`);
          return;
        }
        if (pos + 4 + len > buf.length) break;
        const frame = new JuteReader(buf, pos + 4, pos + 4 + len);
        pos += 4 + len;
        this.packetsReceived++;
        if (this.state === 'handshake') {
          this.state = 'connecting';
          this.host.onConnect(this, frame);
        } else if (this.state === 'connecting') {
          // The handshake is waiting for its createSession txn; keep order.
          this.held.push(Buffer.from(buf.subarray(frame.pos, frame.end)));
        } else {
          this.host.onRequest(this, frame);
        }
      }
    } catch (e) {
      this.fail(e instanceof JuteError ? `malformed frame: ${e.message}` : `error: ${(e as Error).stack}`);
      return;
    }
    if (pos < buf.length && (this.state as ConnState) !== 'closed') this.pending = Buffer.from(buf.subarray(pos));
  }

  /** The handshake finished: process frames that arrived meanwhile. */
  connected(): void {
    this.state = 'connected';
    const held = this.held;
    this.held = [];
    try {
      for (const f of held) {
        if (this.state !== 'connected') break;
        this.host.onRequest(this, new JuteReader(f));
      }
    } catch (e) {
      this.fail(e instanceof JuteError ? `malformed frame: ${e.message}` : `error: ${(e as Error).stack}`);
    }
  }

  /** Closes with one log line. */
  fail(reason: string): void {
    if (this.state === 'closed') return;
    this.host.warn(`closing connection from ${this.label}${this.sessionId !== 0n ? ` session 0x${hex(this.sessionId)}` : ''}: ${reason}`);
    this.close();
  }

  /** Starts a reply frame; finish it with endReply. */
  beginReply(xid: number, zxid: number, err: number): number {
    const at = this.out.beginFrame();
    this.out.int(xid).longNum(zxid).int(err);
    return at;
  }

  endReply(at: number): void {
    this.out.endFrame(at);
    this.packetsSent++;
    this.host.markDirty(this);
  }

  deliver(e: WatchEvent): void {
    if (this.state !== 'connected') return;
    const at = this.beginReply(Xid.notification, e.zxid, 0);
    this.out.int(e.type).int(3 /* SyncConnected */).ustring(e.path);
    this.endReply(at);
  }

  /** Writes what this turn produced, in one system call. */
  flush(): void {
    const out = this.out;
    if (out.pos === 0) return;
    if (this.state !== 'closed' && !this.socket.destroyed) {
      // Small turns are copied into Node's buffer pool; a large one (big getData replies)
      // hands its buffer to the socket and the writer starts a fresh one: no second copy.
      if (out.pos < 64 * 1024) this.socket.write(out.toBuffer());
      else this.socket.write(out.detach());
    }
    out.reset();
  }

  /** Sends what is buffered, then closes (closeSession, failed handshakes, 4lw). */
  closeAfterFlush(): void {
    this.flush();
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.socket.end();
    this.host.onClose(this);
  }

  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.socket.destroy();
    this.host.onClose(this);
  }

  pause(): void {
    if (!this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  resume(): void {
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }
}

/** A request waiting in its session's queue. `done` is set for writes once applied. */
export interface QueuedRequest {
  xid: number;
  op: number;
  frame: JuteReader | null;
  body: unknown;
  write: boolean;
  received: number;
  /** For writes: set when the txn has been applied. */
  result?: unknown;
  done: boolean;
}

export function hex(id: bigint): string {
  return BigInt.asUintN(64, id).toString(16);
}

export const isPing = (op: number): boolean => op === OpCode.ping;
