// The Corral client for browsers (bundled to dist/browser/corral-client.js): the WebSocket
// transport only, on the global WebSocket.
import { CorralClient, type ClientOptions } from './client.js';
import { wsTransport } from './ws-transport.js';

export * from './client.js';
export { wsTransport, wsUrl } from './ws-transport.js';

/** Connects over WebSockets to one of the servers in `connectString` (host:port or ws:// URLs). */
export function connect(connectString: string, o: Omit<ClientOptions, 'transport'> = {}): Promise<CorralClient> {
  return CorralClient.connect(connectString, { ...o, transport: wsTransport() });
}
