// What the client needs of a transport: open a connection to one server, send protobuf-shaped
// frames (a ConnectRequest, then requests), and report what comes back. The WebSocket
// transport sends the frames as they are; the TCP transport translates them to jute.
import type { PConnectResponse, PErrorFrame, PFrame, PResponse, PWatchEvent } from '../ws/proto.js';

export interface TransportHandlers {
  onConnected(c: PConnectResponse): void;
  onResponse(r: PResponse): void;
  onEvent(e: PWatchEvent): void;
  /** The server reported a protocol error; a close follows. */
  onError(e: PErrorFrame): void;
  /** The connection is gone (called once, also when the open fails after resolving). */
  onClose(reason: string): void;
}

export interface TransportConnection {
  /** Sends connect/request frames, in order, as one message or write. */
  send(frames: PFrame[]): void;
  close(): void;
}

/** Opens a connection to `server` (a host:port or a URL from the connection string). */
export type Transport = {
  readonly name: string;
  open(server: string, h: TransportHandlers): Promise<TransportConnection>;
};
