import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../src/client/raw.js';
import { startServer, type TestServer } from './helpers/server.js';

// A real browser: Debian's headless Chromium loads a page that uses the browser bundle
// (dist/browser/corral-client.js, built here from src/client/browser.ts) to create, read,
// watch and delete nodes on a running server over WebSockets.

const CHROMIUM = process.env.CORRAL_CHROMIUM ?? '/usr/bin/chromium';
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BUNDLE = join(ROOT, 'dist/browser/corral-client.js');

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>corral browser test</title></head>
<body>
<script type="module">
import { connect } from './corral-client.js';
const td = new TextDecoder();
let client;
const events = [];
window.step1 = async (server) => {
  client = await connect(server, { sessionTimeout: 10000 });
  const path = await client.create('/browser', 'from the browser');
  const got = await client.getData(path, (e) => events.push(e));
  return { path, data: td.decode(got.data), version: got.stat.version, session: client.sessionId.toString(16), ua: navigator.userAgent };
};
window.step2 = async () => {
  const deadline = Date.now() + 5000;
  while (events.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const got = await client.getData('/browser');
  await client.delete('/browser');
  const gone = await client.exists('/browser');
  let code = 0;
  try { await client.getData('/browser'); } catch (e) { code = e.code; }
  await client.close();
  return { events: events.map((e) => ({ type: e.type, path: e.path })), data: td.decode(got.data), gone, code, state: client.state };
};
window.ready = true;
</script>
</body></html>`;

let srv: TestServer;
let http: Server;
let httpPort = 0;
let browser: Browser | undefined;
let page: Page;

const MISSING = existsSync(CHROMIUM)
  ? undefined
  : `CHROMIUM IS NOT INSTALLED (${CHROMIUM} missing): the browser test cannot run. ` +
    'Install it with: apt-get install -y chromium   (or set CORRAL_CHROMIUM to a Chromium binary)';

beforeAll(async () => {
  // A missing browser fails the test below (loudly), it does not skip it.
  if (MISSING !== undefined) return;
  mkdirSync(dirname(BUNDLE), { recursive: true });
  await build({
    entryPoints: [join(ROOT, 'src/client/browser.ts')], bundle: true, format: 'esm', platform: 'browser',
    target: 'es2020', minify: true, outfile: BUNDLE, logLevel: 'silent',
  });
  srv = await startServer('wsPort=0');
  http = createServer((req, res) => {
    if (req.url?.startsWith('/corral-client.js')) {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(BUNDLE));
    } else res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  httpPort = (http.address() as { port: number }).port;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage();
  page.on('pageerror', (e) => console.error('page error:', e));
  await page.goto(`http://127.0.0.1:${httpPort}/`);
  await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => (http !== undefined ? http.close(r) : r(undefined)));
  await srv?.stop();
});

describe('the browser bundle in headless Chromium', () => {
  it('creates, reads, watches and deletes nodes over WebSockets', async () => {
    if (MISSING !== undefined) {
      console.error(`\n*** ${MISSING} ***\n`);
      throw new Error(MISSING);
    }
    const bundle = readFileSync(BUNDLE, 'utf8');
    expect(bundle).not.toMatch(/from\s*["']node:/); // nothing Node-only in the bundle
    const ws = `127.0.0.1:${srv.wsPort}`;
    const one = await page.evaluate((s) => (window as unknown as { step1(s: string): Promise<Record<string, unknown>> }).step1(s), ws);
    expect(one).toMatchObject({ path: '/browser', data: 'from the browser', version: 0 });
    expect(String(one.ua)).toContain('Chrome');
    // A TCP client sees the browser's node and changes it: the browser's watch fires.
    const tcp = await RawClient.connect('127.0.0.1', srv.port);
    const r = await tcp.getData('/browser');
    expect(r.err).toBe(0);
    expect(r.body.bufferView()!.toString()).toBe('from the browser');
    expect((await tcp.setData('/browser', Buffer.from('from node'))).err).toBe(0);
    const two = await page.evaluate(() => (window as unknown as { step2(): Promise<Record<string, unknown>> }).step2());
    expect(two).toEqual({
      events: [{ type: 3, path: '/browser' }], data: 'from node', gone: null, code: -101, state: 'closed',
    });
    expect((await tcp.exists('/browser')).err).toBe(-101);
    tcp.close();
  });
});
