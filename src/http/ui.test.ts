/** @module http/ui.test — the dashboard's static file server: types, caching, redirect, and no way out of its folder. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { resolveUiFile, serveUi } from './ui.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Raw request paths: a URL object would normalise the very paths this test sends. */
function get(port: number, rawPath: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: rawPath, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.once('error', reject);
    req.end();
  });
}

describe('dashboard static files', () => {
  let dir: string;
  let root: string;
  let server: http.Server;
  let port: number;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'berth-ui-'));
    root = path.join(dir, 'ui');
    await mkdir(path.join(root, 'assets'), { recursive: true });
    await writeFile(path.join(root, 'index.html'), '<!doctype html><title>berth</title>');
    await writeFile(path.join(root, 'assets', 'main-ABC123.js'), 'console.log(1)');
    await writeFile(path.join(root, 'assets', 'main-ABC123.css'), 'body{}');
    await writeFile(path.join(root, '.hidden'), 'no');
    await writeFile(path.join(dir, 'secret.txt'), 'outside the ui folder');
    // The handler gets the path as server.ts gives it: URL-parsed, so already dot-normalised.
    server = http.createServer((req, res) => {
      const pathname = new URL(req.url ?? '/', 'http://x').pathname;
      serveUi(req, res, pathname, root).catch(() => res.writeHead(500).end());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves index.html at /ui/ with a revalidated cache policy and a same-origin CSP', async () => {
    const r = await get(port, '/ui/');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(r.headers['cache-control'], 'no-cache');
    assert.match(String(r.headers['content-security-policy']), /default-src 'self'/);
    assert.equal(r.body, '<!doctype html><title>berth</title>');
    const again = await get(port, '/ui/', { 'If-None-Match': String(r.headers.etag) });
    assert.equal(again.status, 304);
  });

  it('serves hashed assets with their content type, cached for a year', async () => {
    const js = await get(port, '/ui/assets/main-ABC123.js');
    assert.equal(js.status, 200);
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(js.body, 'console.log(1)');
    const css = await get(port, '/ui/assets/main-ABC123.css', {}, 'HEAD');
    assert.equal(css.status, 200);
    assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
    assert.equal(css.headers['content-length'], '6');
    assert.equal(css.body, '');
  });

  it('redirects /ui to /ui/ and refuses writes', async () => {
    const r = await get(port, '/ui');
    assert.equal(r.status, 308);
    assert.equal(r.headers.location, '/ui/');
    assert.equal((await get(port, '/ui/', {}, 'POST')).status, 405);
  });

  it('answers 404 for missing files, dot files and every escape attempt', async () => {
    for (const p of [
      '/ui/nope.js',
      '/ui/.hidden',
      '/ui/..%2fsecret.txt',
      '/ui/%2e%2e/secret.txt',
      '/ui/assets/..%2f..%2fsecret.txt',
      '/ui/..%5csecret.txt',
      '/ui/assets%2f..%2f..%2fsecret.txt',
      '/ui/%00index.html',
      '/ui/%zz',
    ]) {
      const r = await get(port, p);
      assert.equal(r.status, 404, p);
      assert.doesNotMatch(r.body, /outside the ui folder/, p);
    }
  });

  it('resolveUiFile keeps every path inside the root', () => {
    assert.equal(resolveUiFile('/srv/ui', '/ui/'), path.resolve('/srv/ui/index.html'));
    assert.equal(resolveUiFile('/srv/ui', '/ui/assets/a.js'), path.resolve('/srv/ui/assets/a.js'));
    for (const p of ['/ui/../x', '/ui/a/../../x', '/ui//etc/passwd', '/ui/%2e%2e/x', '/other/x', '/ui/a\\..\\x']) {
      assert.equal(resolveUiFile('/srv/ui', p), undefined, p);
    }
  });

  it('says how to build the dashboard when it is missing', async () => {
    const bare = http.createServer((req, res) => {
      serveUi(req, res, '/ui/', path.join(dir, 'missing')).catch(() => res.writeHead(500).end());
    });
    await new Promise<void>((r) => bare.listen(0, '127.0.0.1', r));
    const r = await get((bare.address() as AddressInfo).port, '/ui/');
    bare.close();
    assert.equal(r.status, 404);
    assert.match(r.body, /npm run build/);
  });
});
