import { EventEmitter } from 'node:events';
import type { ClientSocket } from '../connection.js';
import type { BytePacker, OutOp } from './messages.js';

/**
 * The pipeline thread's stand-in for a client socket that lives on the socket thread:
 * writes and control calls become ops in the next outgoing message.
 */
export class VirtualSocket extends EventEmitter implements ClientSocket {
  destroyed = false;

  constructor(
    readonly id: number,
    readonly remoteAddress: string,
    readonly remotePort: number,
    private readonly out: { ops: OutOp[]; bytes: BytePacker; schedule(): void },
  ) {
    super();
  }

  setNoDelay(): this {
    return this; // the real socket already has it
  }

  write(b: Buffer): boolean {
    if (this.destroyed) return false;
    this.out.ops.push({ k: 'write', id: this.id, ...this.out.bytes.add(b) });
    this.out.schedule();
    return true;
  }

  end(text?: string): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    const b = Buffer.from(text ?? '');
    this.out.ops.push({ k: 'end', id: this.id, ...this.out.bytes.add(b) });
    this.out.schedule();
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.out.ops.push({ k: 'destroy', id: this.id });
    this.out.schedule();
    this.emit('close');
    return this;
  }

  pause(): this {
    this.out.ops.push({ k: 'pause', id: this.id });
    this.out.schedule();
    return this;
  }

  resume(): this {
    this.out.ops.push({ k: 'resume', id: this.id });
    this.out.schedule();
    return this;
  }
}
