// Peer-to-peer transport: one listener (a quorum or election port) and one outgoing
// TCP connection per other member. Each direction of a pair is its own connection, so
// there is no "who keeps which socket" rule to get wrong; a frame's sender is in it.
//
// The Zab core tolerates lost messages (everything that waits resends on tick), so the
// transport never retries on its own: a message sent while a peer is unreachable is
// dropped, and a reconnect is attempted on the next send after a short backoff.

import { createServer, connect, type Server, type Socket } from 'node:net';
import type { Logger } from '../server/log.js';
import { decodePeerMessage, MAX_PEER_FRAME, PeerCodecError } from './codec.js';
import type { PeerMessage } from './messages.js';

export interface PeerAddress {
  host: string;
  port: number;
}

export interface PeerNetOptions {
  name: string;
  selfId: number;
  listen: PeerAddress;
  peers: Map<number, PeerAddress>;
  onMessage: (m: PeerMessage) => void;
  /** A connection from this peer closed. */
  onDisconnect?: (id: number) => void;
  log: Logger;
  /** ms between connection attempts to an unreachable peer. */
  retryMs?: number;
}

/** A peer whose socket buffers more than this is not keeping up: drop, the core resends. */
const MAX_BUFFERED = 256 * 1024 * 1024;

interface Outgoing {
  socket: Socket | null;
  connected: boolean;
  lastAttempt: number;
  pending: Buffer[];
  warned: boolean;
}

export class PeerNet {
  private server: Server | null = null;
  private readonly out = new Map<number, Outgoing>();
  private readonly inbound = new Set<Socket>();
  private closed = false;

  constructor(private readonly opts: PeerNetOptions) {
    for (const id of opts.peers.keys()) {
      if (id !== opts.selfId) this.out.set(id, { socket: null, connected: false, lastAttempt: -Infinity, pending: [], warned: false });
    }
  }

  async start(): Promise<void> {
    const server = createServer({ noDelay: true }, (s) => this.onInbound(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.opts.listen.host, port: this.opts.listen.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (e) => this.opts.log('ERROR', `${this.opts.name} listener: ${e.message}`));
  }

  /** Sends an encoded frame (encodePeerMessage) to a peer, or drops it if unreachable. */
  send(to: number, frame: Buffer): void {
    const o = this.out.get(to);
    if (o === undefined || this.closed) return;
    if (o.connected && o.socket !== null) {
      if (o.socket.writableLength > MAX_BUFFERED) return;
      o.socket.write(frame);
      return;
    }
    if (o.socket === null) {
      const now = Date.now();
      if (now - o.lastAttempt < (this.opts.retryMs ?? 100)) return;
      o.lastAttempt = now;
      this.dial(to, o);
    }
    if (o.pending.length < 1024) o.pending.push(frame);
  }

  private dial(id: number, o: Outgoing): void {
    const addr = this.opts.peers.get(id)!;
    const s = connect({ host: addr.host, port: addr.port, noDelay: true });
    o.socket = s;
    s.on('connect', () => {
      o.connected = true;
      if (o.warned) this.opts.log('INFO', `${this.opts.name}: connected to server ${id} at ${addr.host}:${addr.port}`);
      o.warned = false;
      for (const f of o.pending) s.write(f);
      o.pending = [];
    });
    s.on('data', () => undefined); // nothing is sent back on an outgoing connection
    s.on('error', (e) => {
      if (!o.warned) this.opts.log('WARN', `${this.opts.name}: cannot reach server ${id} at ${addr.host}:${addr.port}: ${e.message}`);
      o.warned = true;
    });
    s.on('close', () => {
      if (o.socket === s) {
        o.socket = null;
        o.connected = false;
        o.pending = [];
      }
    });
  }

  private onInbound(s: Socket): void {
    if (this.closed) {
      s.destroy();
      return;
    }
    this.inbound.add(s);
    let peer: number | undefined;
    // Chunks are kept as they arrive and joined once a whole frame is in: a large frame
    // (a batch of big values, a SNAP) would otherwise be copied again with every chunk.
    let chunks: Buffer[] = [];
    let have = 0;
    let need = -1; // bytes of the frame being read, with its length prefix; -1: not known yet
    s.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      have += chunk.length;
      for (;;) {
        if (need < 0) {
          if (have < 4) return;
          if (chunks[0]!.length < 4) chunks = [Buffer.concat(chunks)];
          const n = chunks[0]!.readUInt32BE(0);
          if (n < 4 || n > MAX_PEER_FRAME) return this.reject(s, `frame length ${n}`);
          need = 4 + n;
        }
        if (have < need) return;
        const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, have);
        const frame = all.subarray(4, need);
        const rest = all.subarray(need);
        chunks = rest.length > 0 ? [rest] : [];
        have = rest.length;
        need = -1;
        let m: PeerMessage;
        try {
          m = decodePeerMessage(frame);
        } catch (e) {
          if (e instanceof PeerCodecError) return this.reject(s, e.message);
          throw e;
        }
        if (!this.opts.peers.has(m.from) || m.from === this.opts.selfId) return this.reject(s, `sender ${String(m.from)} is not a member`);
        if (peer === undefined) peer = m.from;
        else if (peer !== m.from) return this.reject(s, `sender changed from ${peer} to ${m.from}`);
        this.opts.onMessage(m);
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      this.inbound.delete(s);
      if (peer !== undefined && !this.closed) this.opts.onDisconnect?.(peer);
    });
  }

  private reject(s: Socket, why: string): void {
    this.opts.log('WARN', `${this.opts.name}: dropping connection from ${s.remoteAddress}:${s.remotePort}: ${why}`);
    s.destroy();
  }

  /** Cuts every connection to and from a peer (it restarted or was partitioned). */
  reset(id: number): void {
    const o = this.out.get(id);
    o?.socket?.destroy();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const o of this.out.values()) o.socket?.destroy();
    for (const s of this.inbound) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
