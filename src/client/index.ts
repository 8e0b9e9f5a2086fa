// The Corral client (Node entry): both transports. Browsers use src/client/browser.ts,
// which leaves out the TCP transport (node:net).
import { CorralClient, type ClientOptions } from './client.js';
import { tcpTransport } from './tcp-transport.js';
import { type WebSocketCtor, wsTransport } from './ws-transport.js';

export * from './client.js';
export type { Transport, TransportConnection, TransportHandlers } from './transport.js';
export { tcpTransport } from './tcp-transport.js';
export { wsTransport, wsUrl, type WebSocketCtor, type WebSocketLike } from './ws-transport.js';

export interface ConnectOptions extends Omit<ClientOptions, 'transport'> {
  /** 'tcp' (jute, default) or 'ws' (protobuf over WebSocket), or a transport of your own. */
  transport?: 'tcp' | 'ws' | ClientOptions['transport'];
  /** For 'ws' where there is no global WebSocket (Node 20): e.g. the `ws` package's. */
  WebSocket?: WebSocketCtor;
}

/** Connects to one of the servers in `connectString` ("host:port,host:port"). */
export function connect(connectString: string, o: ConnectOptions = {}): Promise<CorralClient> {
  const t = o.transport ?? 'tcp';
  const transport = t === 'tcp' ? tcpTransport() : t === 'ws' ? wsTransport({ WebSocket: o.WebSocket }) : t;
  return CorralClient.connect(connectString, { ...o, transport });
}
