// Server-wide counters for stat/srvr/mntr (ServerStats).

export class ServerStats {
  packetsReceived = 0;
  packetsSent = 0;
  minLatency = Number.MAX_SAFE_INTEGER;
  maxLatency = 0;
  totalLatency = 0;
  count = 0;
  /** WebSocket clients dropped for not reading their replies (mntr zk_ws_backpressure_drops; never reset). */
  wsBackpressureDrops = 0;

  recordLatency(ms: number): void {
    this.packetsSent++;
    if (ms < this.minLatency) this.minLatency = ms;
    if (ms > this.maxLatency) this.maxLatency = ms;
    this.totalLatency += ms;
    this.count++;
  }

  get min(): number {
    return this.count === 0 ? 0 : this.minLatency;
  }

  get avg(): number {
    return this.count === 0 ? 0 : this.totalLatency / this.count;
  }

  reset(): void {
    this.packetsReceived = 0;
    this.packetsSent = 0;
    this.minLatency = Number.MAX_SAFE_INTEGER;
    this.maxLatency = 0;
    this.totalLatency = 0;
    this.count = 0;
  }
}
