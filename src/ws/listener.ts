import { Buffer } from 'node:buffer';
import type { ClientSocket } from '../server/connection.js';
import type { Logger } from '../server/log.js';
import { Err } from '../protocol/constants.js';
import { WsBridgeSocket } from './bridge.js';
import { CloseCode } from './proto.js';
import { type UWS, loadUws } from './uws.js';

// The WebSocket listener (wsPort/wsPortAddress): uWebSockets.js on the server's own thread.
// Each WebSocket becomes a WsBridgeSocket accepted by the server like a TCP socket, so it
// enters the same pipeline: sessions, ordering, ACLs, limits.

export interface WsListenerOptions {
  port: number;
  host: string;
  /** Largest incoming message; the server's jute.maxbuffer. */
  maxMessage: number;
  /** Drop a client once this many bytes wait to be sent to it (default max(8 MiB, 4 x maxMessage)). */
  maxBuffered?: number;
}

interface UserData {
  bridge?: WsBridgeSocket;
  closed?: boolean;
}

export class WsListener {
  /** Clients dropped because they fell too far behind reading (backpressure). */
  backpressureDrops = 0;
  readonly port: number;
  private readonly sockets = new Set<UWS.WebSocket<UserData>>();

  private constructor(
    private readonly uws: typeof UWS,
    private listenSocket: UWS.us_listen_socket | null,
    port: number,
  ) {
    this.port = port;
  }

  /**
   * `host.accept` takes each new connection's stand-in socket: CorralServer.accept, or (not
   * wired yet) serverThreads=2's socket thread, which forwards sockets' bytes to the pipeline.
   */
  static async start(
    host: { accept(s: ClientSocket): void; log: Logger; stats?: { wsBackpressureDrops: number } },
    o: WsListenerOptions,
  ): Promise<WsListener> {
    const server = host;
    const uws = loadUws();
    const maxBuffered = o.maxBuffered ?? Math.max(8 * 1024 * 1024, 4 * o.maxMessage);
    // A Frames message holding one maximal jute request carries a few bytes of protobuf framing more.
    // Up to twice that, the bridge answers an oversized message with an error frame and 1009;
    // beyond, uWS itself cuts the connection without reading the message.
    const maxPayload = o.maxMessage + 1024;
    let listener: WsListener | undefined;
    const app = uws.App().ws<UserData>('/*', {
      maxPayloadLength: 2 * maxPayload,
      idleTimeout: 0, // sessions have their own timeouts, kept alive by pings
      maxBackpressure: maxBuffered * 2, // we drop the client ourselves before uWS would skip sends
      closeOnBackpressureLimit: 0,
      sendPingsAutomatically: false,
      open: (ws) => {
        const ud = ws.getUserData();
        listener!.sockets.add(ws);
        const addr = Buffer.from(ws.getRemoteAddressAsText()).toString();
        const peer = {
          remoteAddress: addr,
          remotePort: 0,
          send: (b: Uint8Array): boolean => {
            if (ud.closed) return false;
            ws.cork(() => ws.send(b, true, false));
            if (ws.getBufferedAmount() > maxBuffered) {
              listener!.backpressureDrops++;
              if (host.stats !== undefined) host.stats.wsBackpressureDrops++;
              server.log('WARN', `websocket ${addr}: dropping client: ${ws.getBufferedAmount()} bytes unread (limit ${maxBuffered}); ` +
                `backpressure drops so far: ${listener!.backpressureDrops}`);
              ud.bridge?.onPeerClosed();
              ud.closed = true;
              // Cut it now: a close frame would queue behind what the client is not reading.
              ws.close();
              return false;
            }
            return true;
          },
          close: (code: number, reason: string) => {
            if (ud.closed) return;
            ud.closed = true;
            ws.cork(() => ws.end(code, reason));
          },
        };
        ud.bridge = new WsBridgeSocket(peer, 4 * o.maxMessage + 1024 * 1024, (m) => server.log('WARN', m));
        server.accept(ud.bridge);
      },
      message: (ws, message, isBinary) => {
        const ud = ws.getUserData();
        if (ud.closed || ud.bridge === undefined) return;
        if (!isBinary) {
          ud.bridge.protocolError(Err.MARSHALLINGERROR, CloseCode.unsupportedData, 'text messages are not part of the protocol');
          return;
        }
        if (message.byteLength > maxPayload) {
          ud.bridge.protocolError(Err.MARSHALLINGERROR, CloseCode.tooBig, `message of ${message.byteLength} bytes exceeds jute.maxbuffer (${o.maxMessage}) + 1024`);
          return;
        }
        // The ArrayBuffer is only valid during this callback: the bridge translates synchronously.
        try {
          ws.cork(() => ud.bridge!.onMessage(new Uint8Array(message)));
        } catch (e) {
          // Never let a client's message throw through uWS (it would take the process down).
          server.log('ERROR', `websocket ${ud.bridge.remoteAddress}: ${(e as Error).stack}`);
          ud.bridge.protocolError(Err.SYSTEMERROR, 1011, 'internal error');
        }
      },
      close: (ws) => {
        const ud = ws.getUserData();
        ud.closed = true;
        listener?.sockets.delete(ws);
        ud.bridge?.onPeerClosed();
      },
    });
    const ls = await new Promise<UWS.us_listen_socket>((resolve, reject) =>
      app.listen(o.host, o.port, (s) => (s ? resolve(s) : reject(new Error(`websocket listener: cannot listen on ${o.host}:${o.port}`)))),
    );
    listener = new WsListener(uws, ls, uws.us_socket_local_port(ls as unknown as UWS.us_socket));
    return listener;
  }

  /** Stops listening and closes every WebSocket (an open uWS listener must not outlive its thread). */
  close(): void {
    if (this.listenSocket !== null) {
      this.uws.us_listen_socket_close(this.listenSocket);
      this.listenSocket = null;
    }
    for (const ws of [...this.sockets]) {
      const ud = ws.getUserData();
      if (!ud.closed) {
        ud.closed = true;
        ws.end(CloseCode.goingAway, 'server stopping');
      }
    }
    this.sockets.clear();
  }
}
