import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';

/**
 * A TCP relay in front of a test server, to cut a client off the way a network
 * partition does: partition() drops every relayed connection (no closeSession reaches
 * the server, the client's pings stop) and refuses new ones until heal().
 */
export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private blocked = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    let proxy!: TcpProxy;
    const server = createServer((client) => {
      client.on('error', () => {});
      if (proxy.blocked) {
        client.destroy();
        return;
      }
      const upstream = netConnect(targetPort, targetHost);
      upstream.on('error', () => {});
      for (const s of [client, upstream]) {
        proxy.sockets.add(s);
        s.on('close', () => {
          proxy.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    proxy = new TcpProxy(server, typeof addr === 'object' && addr !== null ? addr.port : 0);
    return proxy;
  }

  get connect(): string {
    return `127.0.0.1:${this.port}`;
  }

  partition(): void {
    this.blocked = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  heal(): void {
    this.blocked = false;
  }

  async close(): Promise<void> {
    this.partition();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
