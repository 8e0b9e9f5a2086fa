import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';

/**
 * A TCP relay in front of a test server, to cut a client off the way a network
 * partition does: partition() drops every relayed connection (no closeSession reaches
 * the server, the client's pings stop) and refuses new ones until heal().
 */
export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private blocked = false;
  /** Silent partition: connections stay open, bytes wait (as TCP retransmits) until heal(). */
  private silent = false;
  private readonly held: { to: Socket; data: Buffer }[] = [];

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number, targetHost = '127.0.0.1', listenPort = 0): Promise<TcpProxy> {
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
      const relay = (from: Socket, to: Socket) =>
        from.on('data', (d: Buffer) => {
          if (proxy.silent) proxy.held.push({ to, data: d });
          else to.write(d);
        });
      relay(client, upstream);
      relay(upstream, client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listenPort, '127.0.0.1', resolve);
    });
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

  /** Stops relaying without closing anything: neither side notices until it times out. */
  silence(): void {
    this.silent = true;
  }

  heal(): void {
    this.blocked = false;
    this.silent = false;
    for (const h of this.held.splice(0)) if (!h.to.destroyed) h.to.write(h.data);
  }

  async close(): Promise<void> {
    this.partition();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
