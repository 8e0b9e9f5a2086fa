// The TCP + jute transport (Node): the ZooKeeper wire protocol, so the same client talks
// to Corral or to Apache ZooKeeper. Frames are translated with src/ws/translate.ts.
import { connect as netConnect } from 'node:net';
import { Buffer } from 'node:buffer';
import { JuteReader, JuteWriter } from '../protocol/jute.js';
import { JuteTranslator, readConnectResponse, writeConnect } from '../ws/translate.js';
import type { Transport, TransportConnection, TransportHandlers } from './transport.js';

function hostPort(server: string): [string, number] {
  const s = server.replace(/^tcp:\/\//, '').replace(/\/.*$/, '');
  const i = s.lastIndexOf(':');
  if (i < 0) return [s, 2181];
  return [s.slice(0, i).replace(/^\[|\]$/g, ''), Number(s.slice(i + 1))];
}

export function tcpTransport(): Transport {
  return {
    name: 'tcp',
    open(server: string, h: TransportHandlers): Promise<TransportConnection> {
      const [host, port] = hostPort(server);
      return new Promise((resolve, reject) => {
        const sock = netConnect(port, host);
        sock.setNoDelay(true);
        const tr = new JuteTranslator();
        const w = new JuteWriter(4096);
        let handshake = true;
        let opened = false;
        let closed = false;
        let buf: Buffer = Buffer.alloc(0);
        const conn: TransportConnection = {
          send(frames) {
            if (closed) return;
            w.reset();
            for (const f of frames) {
              if (f.connect) writeConnect(w, f.connect);
              else if (f.request) tr.writeRequest(w, f.request);
            }
            sock.write(w.toBuffer());
          },
          close() {
            sock.destroy();
          },
        };
        sock.once('connect', () => {
          opened = true;
          resolve(conn);
        });
        sock.on('error', (e) => {
          if (!opened) reject(new Error(`tcp ${host}:${port}: ${e.message}`));
        });
        sock.on('close', () => {
          if (!opened || closed) return;
          closed = true;
          h.onClose('tcp connection closed');
        });
        sock.on('data', (chunk: Buffer) => {
          buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
          let pos = 0;
          try {
            while (pos + 4 <= buf.length && !closed) {
              const len = buf.readInt32BE(pos);
              if (pos + 4 + len > buf.length) break;
              const r = new JuteReader(buf, pos + 4, pos + 4 + len);
              pos += 4 + len;
              if (handshake) {
                handshake = false;
                h.onConnected(readConnectResponse(r));
                continue;
              }
              const m = tr.readReply(r);
              if (m === undefined) continue;
              if ('event' in m) h.onEvent(m.event);
              else h.onResponse(m.response);
            }
          } catch (e) {
            sock.destroy();
            return;
          }
          buf = pos === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(pos));
        });
      });
    },
  };
}
