import { EventEmitter } from 'node:events';
import { Buffer } from 'node:buffer';
import { Err } from '../protocol/constants.js';
import { JuteReader, JuteWriter } from '../protocol/jute.js';
import type { ClientSocket } from '../server/connection.js';
import { CloseCode, type PFrame, decodeFrames, encodeFrames } from './proto.js';
import { JuteTranslator, TranslateError, readConnectResponse, writeConnect } from './translate.js';

/** What a bridge needs of its WebSocket (a uWS one in the listener, anything in tests). */
export interface WsPeer {
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Sends one binary message; returns false once the peer is gone. */
  send(b: Uint8Array): boolean;
  close(code: number, reason: string): void;
}

type State = 'init' | 'connecting' | 'open' | 'closed';

/**
 * A WebSocket client as the server core sees it: a ClientSocket stand-in. Protobuf request
 * frames become jute frames fed to the connection as 'data' (the ConnectRequest first), and
 * the jute the connection writes (the ConnectResponse, replies, notifications) goes back as
 * protobuf frames, one WebSocket message per write (the core writes once per event-loop turn).
 */
export class WsBridgeSocket extends EventEmitter implements ClientSocket {
  destroyed = false;
  private state: State = 'init';
  private readonly tr = new JuteTranslator();
  private readonly w = new JuteWriter(4096);
  private pending: Buffer | null = null;
  private paused = false;
  private queued: Uint8Array[] = [];
  private queuedBytes = 0;

  constructor(
    private readonly peer: WsPeer,
    private readonly maxQueued: number,
    private readonly warn: (msg: string) => void,
  ) {
    super();
  }

  get remoteAddress(): string {
    return this.peer.remoteAddress;
  }

  get remotePort(): number {
    return this.peer.remotePort;
  }

  setNoDelay(): this {
    return this;
  }

  /** A binary message from the client. */
  onMessage(msg: Uint8Array): void {
    if (this.destroyed) return;
    if (this.paused) {
      // The core is throttling this connection: hold messages (bounded) until it resumes.
      this.queuedBytes += msg.length;
      if (this.queuedBytes > this.maxQueued) {
        this.protocolError(Err.THROTTLEDOP, CloseCode.policy, `more than ${this.maxQueued} bytes sent while throttled`);
        return;
      }
      this.queued.push(Uint8Array.from(msg));
      return;
    }
    let frames: PFrame[];
    try {
      frames = decodeFrames(msg);
    } catch (e) {
      this.protocolError(Err.MARSHALLINGERROR, CloseCode.invalidPayload, `undecodable message: ${(e as Error).message}`);
      return;
    }
    const w = this.w;
    w.reset();
    for (const f of frames) {
      if (f.connect) {
        if (this.state !== 'init') return this.protocolError(Err.MARSHALLINGERROR, CloseCode.protocolError, 'a second connect');
        try {
          writeConnect(w, f.connect);
        } catch (e) {
          // e.g. a session id that is not 8 bytes
          return this.protocolError(Err.MARSHALLINGERROR, CloseCode.invalidPayload, `bad connect: ${(e as Error).message}`);
        }
        this.state = 'connecting';
      } else if (f.request) {
        if (this.state === 'init') return this.protocolError(Err.MARSHALLINGERROR, CloseCode.protocolError, 'request before connect');
        try {
          this.tr.writeRequest(w, f.request);
        } catch (e) {
          const why = e instanceof TranslateError ? e.message : `bad request: ${(e as Error).message}`;
          return this.protocolError(Err.MARSHALLINGERROR, CloseCode.invalidPayload, why);
        }
      } else {
        return this.protocolError(Err.MARSHALLINGERROR, CloseCode.protocolError, 'only connect and request frames go to the server');
      }
    }
    // The connection parses and checks the jute itself (frame sizes, paths, ...).
    if (w.pos > 0) this.emit('data', w.toBuffer());
  }

  /** Sends an error frame, then closes with `closeCode`. */
  protocolError(code: number, closeCode: number, message: string): void {
    if (this.destroyed) return;
    this.warn(`websocket ${this.peer.remoteAddress}:${this.peer.remotePort}: ${message}; closing (${closeCode})`);
    this.peer.send(encodeFrames([{ error: { code, message, closeCode } }]));
    this.closeWith(closeCode, message);
  }

  /** The WebSocket closed under us (client went away, or the listener closed it). */
  onPeerClosed(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.destroyed = true;
    this.emit('close');
  }

  private closeWith(code: number, reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.destroyed = true;
    this.peer.close(code, reason.slice(0, 120));
    this.emit('close');
  }

  write(b: Buffer): boolean {
    if (this.destroyed) return false;
    let buf = b;
    if (this.pending !== null) {
      buf = Buffer.concat([this.pending, b]);
      this.pending = null;
    }
    const out: PFrame[] = [];
    let pos = 0;
    try {
      while (pos + 4 <= buf.length) {
        const len = buf.readInt32BE(pos);
        if (pos + 4 + len > buf.length) break;
        const r = new JuteReader(buf, pos + 4, pos + 4 + len);
        pos += 4 + len;
        if (this.state === 'connecting') {
          out.push({ connected: readConnectResponse(r) });
          this.state = 'open';
          continue;
        }
        const m = this.tr.readReply(r);
        if (m !== undefined) out.push(m);
      }
    } catch (e) {
      // Our own server's output failed to parse: a bug, but the client gets an error, not a hang.
      this.warn(`websocket bridge: cannot translate a reply: ${(e as Error).message}`);
      this.protocolError(Err.SYSTEMERROR, 1011, 'internal error translating a reply');
      return false;
    }
    if (pos < buf.length) this.pending = Buffer.from(buf.subarray(pos));
    if (out.length > 0) return this.peer.send(encodeFrames(out));
    return true;
  }

  /** The core is done with the connection after this output (closeSession, failed handshake). */
  end(): this {
    this.closeWith(CloseCode.normal, 'session closed');
    return this;
  }

  destroy(): this {
    this.closeWith(CloseCode.normal, 'connection closed by server');
    return this;
  }

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    if (!this.paused) return this;
    this.paused = false;
    const q = this.queued;
    this.queued = [];
    this.queuedBytes = 0;
    for (const m of q) {
      if (this.paused || this.destroyed) {
        this.queued.push(m);
        this.queuedBytes += m.length;
      } else this.onMessage(m);
    }
    return this;
  }
}
