// A trivial ZooKeeper-protocol server for measuring the load generator's own floor:
// it keeps no tree, does no I/O but the socket, and answers every request at once
// (in the same 'data' callback, one write per chunk) with a canned reply of the right
// shape: getData -> 100-byte-ish data + Stat, setData/exists -> Stat, create -> the path
// it was given, delete/closeSession -> header only, ping -> xid -2. 4lw commands get
// a one-line answer. Nothing here is used by the server.
//
//   node dist/bench/floor-server.js [port] [--value-size N]
//
// Then: node dist/bench/run.js --target 127.0.0.1:PORT --workloads read --rates ...
// What the load generator measures against it is the floor that the client, the
// kernel's loopback and the scheduler put under any server's figures.

import { createServer, type Socket } from 'node:net';

const args = process.argv.slice(2);
const port = Number(args.find((a) => /^\d+$/.test(a)) ?? 12199);
const vsIdx = args.indexOf('--value-size');
const valueSize = vsIdx >= 0 ? Number(args[vsIdx + 1]) : 100;

const STAT_LEN = 68;
const stat = Buffer.alloc(STAT_LEN);
stat.writeInt32BE(valueSize, 60); // dataLength
const value = Buffer.alloc(valueSize, 0x61);

function serve(sock: Socket): void {
  sock.setNoDelay(true);
  let pending: Buffer | null = null;
  let handshaken = false;
  let zxid = 1n;
  sock.on('data', (chunk: Buffer) => {
    const buf = pending === null ? chunk : Buffer.concat([pending, chunk]);
    pending = null;
    if (!handshaken && buf.length >= 4 && buf.readInt32BE(0) > 0x20000000) {
      // A four-letter word: answer and close.
      const word = buf.toString('latin1', 0, 4);
      sock.end(word === 'ruok' ? 'imok' : 'This ZooKeeper instance is the load generator\'s floor server.\n');
      return;
    }
    const out: Buffer[] = [];
    let pos = 0;
    while (pos + 4 <= buf.length) {
      const len = buf.readInt32BE(pos);
      if (pos + 4 + len > buf.length) break;
      const s = pos + 4;
      pos = s + len;
      if (!handshaken) {
        handshaken = true;
        const timeout = buf.readInt32BE(s + 12);
        const r = Buffer.alloc(4 + 4 + 4 + 8 + 4 + 16 + 1);
        r.writeInt32BE(r.length - 4, 0);
        r.writeInt32BE(0, 4);
        r.writeInt32BE(timeout, 8);
        r.writeBigInt64BE(BigInt(Date.now()), 12);
        r.writeInt32BE(16, 20);
        out.push(r);
        continue;
      }
      const xid = buf.readInt32BE(s);
      const type = buf.readInt32BE(s + 4);
      let body: Buffer[] = [];
      if (type === 4) {
        const v = Buffer.alloc(4);
        v.writeInt32BE(valueSize, 0);
        body = [v, value, stat];
      } else if (type === 5 || type === 3) body = [stat];
      else if (type === 1 || type === 15) {
        const plen = buf.readInt32BE(s + 8);
        body = [buf.subarray(s + 8, s + 12 + plen)];
      }
      const bodyLen = body.reduce((a, b) => a + b.length, 0);
      const h = Buffer.alloc(4 + 16);
      h.writeInt32BE(16 + bodyLen, 0);
      h.writeInt32BE(type === 11 ? -2 : xid, 4);
      h.writeBigInt64BE(type === 11 ? 0n : zxid++, 8);
      h.writeInt32BE(0, 16);
      out.push(h, ...body);
      if (type === -11) {
        sock.end(Buffer.concat(out));
        return;
      }
    }
    if (pos < buf.length) pending = Buffer.from(buf.subarray(pos));
    if (out.length > 0) sock.write(Buffer.concat(out));
  });
  sock.on('error', () => {});
}

createServer(serve).listen(port, '127.0.0.1', () => {
  process.stdout.write(`floor server on 127.0.0.1:${port} (pid ${process.pid})\n`);
});
