// The WebSocket + protobuf transport. Browser-safe: it uses the global WebSocket, or the
// constructor it is given (in Node 20, the `ws` package's).
import { decodeFrames, encodeFrames } from '../ws/proto.js';
import type { Transport, TransportConnection, TransportHandlers } from './transport.js';

/** The part of the WHATWG WebSocket API the transport uses (the `ws` package has it too). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketCtor = new (url: string) => WebSocketLike;

/** `host:port` becomes `ws://host:port/`; ws:// and wss:// URLs pass through. */
export function wsUrl(server: string): string {
  if (/^wss?:\/\//.test(server)) return server;
  return `ws://${server}/`;
}

export function wsTransport(o: { WebSocket?: WebSocketCtor } = {}): Transport {
  return {
    name: 'websocket',
    open(server: string, h: TransportHandlers): Promise<TransportConnection> {
      const Ctor = o.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
      if (Ctor === undefined) return Promise.reject(new Error('no WebSocket: pass one (e.g. the ws package) as the WebSocket option'));
      return new Promise((resolve, reject) => {
        let opened = false;
        let closed = false;
        const ws = new Ctor(wsUrl(server));
        ws.binaryType = 'arraybuffer';
        const conn: TransportConnection = {
          send(frames) {
            if (!closed && ws.readyState === 1) ws.send(encodeFrames(frames));
          },
          close() {
            if (closed) return;
            try {
              ws.close(1000, 'client closing');
            } catch {
              /* already closing */
            }
          },
        };
        ws.onopen = () => {
          opened = true;
          resolve(conn);
        };
        ws.onmessage = (ev) => {
          const d = ev.data;
          if (!(d instanceof ArrayBuffer) && !ArrayBuffer.isView(d)) return;
          let frames;
          try {
            frames = decodeFrames(d instanceof ArrayBuffer ? new Uint8Array(d) : new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
          } catch {
            conn.close();
            return;
          }
          for (const f of frames) {
            if (closed) return;
            if (f.connected) h.onConnected(f.connected);
            else if (f.response) h.onResponse(f.response);
            else if (f.event) h.onEvent(f.event);
            else if (f.error) h.onError(f.error);
          }
        };
        ws.onerror = () => {
          if (!opened) {
            closed = true;
            reject(new Error(`websocket ${wsUrl(server)}: connection failed`));
          }
        };
        ws.onclose = (ev) => {
          if (!opened) {
            if (!closed) reject(new Error(`websocket ${wsUrl(server)}: closed (${ev.code}) before opening`));
            closed = true;
            return;
          }
          if (closed) return;
          closed = true;
          h.onClose(`websocket closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`);
        };
      });
    },
  };
}
