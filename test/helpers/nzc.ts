// node-zookeeper-client (CommonJS, callbacks) behind small promise wrappers, for tests
// that drive ensembles with a real third-party client.

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const zk: any = require('node-zookeeper-client');

export interface Nzc {
  raw: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  sessionId(): string;
  create(path: string, data?: string, mode?: number): Promise<string>;
  setData(path: string, data: string, version?: number): Promise<number>;
  getData(path: string, watch?: (e: { getName(): string }) => void): Promise<{ data: string; version: number }>;
  exists(path: string): Promise<boolean>;
  getChildren(path: string): Promise<string[]>;
  close(): void;
}

function call<T>(f: (cb: (e: Error | null, ...r: any[]) => void) => void, pick: (...r: any[]) => T): Promise<T> {
  return new Promise((resolve, reject) => f((e, ...r) => (e ? reject(e) : resolve(pick(...r)))));
}

export function nzcCode(e: unknown): number | undefined {
  return (e as { getCode?: () => number }).getCode?.();
}

/** Connects and resolves once a session is established. */
export function connectNzc(connectString: string, sessionTimeout = 6000, timeoutMs = 10000): Promise<Nzc> {
  const c = zk.createClient(connectString, { sessionTimeout, spinDelay: 50, retries: 0 });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      c.close();
      reject(new Error(`no session from ${connectString} within ${timeoutMs} ms`));
    }, timeoutMs);
    c.once('connected', () => {
      clearTimeout(t);
      resolve({
        raw: c,
        sessionId: () => (c.getSessionId() as Buffer).toString('hex'),
        create: (p, d, mode = 0) => call((cb) => c.create(p, d === undefined ? null : Buffer.from(d), mode, cb), (path: string) => path),
        setData: (p, d, v = -1) => call((cb) => c.setData(p, Buffer.from(d), v, cb), (st: { version: number }) => st.version),
        getData: (p, w) =>
          call(
            (cb) => (w ? c.getData(p, w, cb) : c.getData(p, cb)),
            (data: Buffer | null, st: { version: number }) => ({ data: data?.toString() ?? '', version: st.version }),
          ),
        exists: (p) => call((cb) => c.exists(p, cb), (st: unknown) => st !== null && st !== undefined),
        getChildren: (p) => call((cb) => c.getChildren(p, cb), (ch: string[]) => ch),
        close: () => c.close(),
      });
    });
    c.connect();
  });
}
