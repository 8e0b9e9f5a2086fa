// What crosses between the socket thread and the pipeline thread. One message per
// event-loop turn in each direction: the turn's events, and one transferred buffer
// holding all of their bytes.

/** Socket thread -> pipeline thread. */
export type InEvent =
  | { k: 'open'; id: number; addr: string; port: number }
  | { k: 'data'; id: number; off: number; len: number }
  | { k: 'close'; id: number };

/** Pipeline thread -> socket thread. */
export type OutOp =
  | { k: 'write'; id: number; off: number; len: number }
  | { k: 'end'; id: number; off: number; len: number }
  | { k: 'destroy'; id: number }
  | { k: 'pause'; id: number }
  | { k: 'resume'; id: number };

export type ToWorker = { t: 'io'; events: InEvent[]; buf: ArrayBuffer } | { t: 'stop' };
export type FromWorker =
  | { t: 'io'; ops: OutOp[]; buf: ArrayBuffer }
  | { t: 'ready' }
  | { t: 'failed'; message: string }
  | { t: 'stopped' };

/** Collects byte ranges for one message and packs them into one transferable buffer. */
export class BytePacker {
  private parts: Uint8Array[] = [];
  private size = 0;

  add(b: Uint8Array): { off: number; len: number } {
    const off = this.size;
    this.parts.push(b);
    this.size += b.length;
    return { off, len: b.length };
  }

  take(): ArrayBuffer {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    this.parts = [];
    this.size = 0;
    return out.buffer;
  }
}
