/** @module http/ui — serves the built dashboard (dist/ui) under /ui/: static files only, no path can leave the folder. */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where `npm run build` puts the dashboard, found from this compiled file (dist/src/http/ui.js). */
export const DEFAULT_UI_ROOT = fileURLToPath(new URL('../../ui/', import.meta.url));

export const UI_PREFIX = '/ui/';

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

/** Everything the page needs comes from berth itself; the API is on the same origin. */
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; connect-src 'self'; " + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function isUiPath(pathname: string): boolean {
  return pathname === '/ui' || pathname.startsWith(UI_PREFIX);
}

function sendText(res: ServerResponse, status: number, text: string, head: boolean, headers: Record<string, string> = {}): void {
  res.statusCode = status;
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(head ? undefined : text);
}

/**
 * Maps a /ui/... path to a file under root, or undefined when it cannot name one: dot segments,
 * backslashes and NUL bytes are refused outright rather than normalised, so no request can
 * address anything outside root.
 */
export function resolveUiFile(root: string, pathname: string): string | undefined {
  if (!pathname.startsWith(UI_PREFIX)) return undefined;
  let rel: string;
  try {
    rel = decodeURIComponent(pathname.slice(UI_PREFIX.length));
  } catch {
    return undefined;
  }
  if (rel === '') rel = 'index.html';
  if (rel.includes('\\') || rel.includes('\0')) return undefined;
  const parts = rel.split('/');
  if (parts.some((p) => p === '' || p.startsWith('.'))) return undefined;
  const base = path.resolve(root);
  const file = path.resolve(base, ...parts);
  return file.startsWith(base + path.sep) ? file : undefined;
}

/** Handles GET/HEAD under /ui; `/ui` redirects to `/ui/` so the page's relative asset paths resolve. */
export async function serveUi(req: IncomingMessage, res: ServerResponse, pathname: string, root = DEFAULT_UI_ROOT): Promise<void> {
  const head = req.method === 'HEAD';
  if (req.method !== 'GET' && !head) return sendText(res, 405, 'the dashboard is read-only: use GET\n', head, { Allow: 'GET, HEAD' });
  if (pathname === '/ui') return sendText(res, 308, 'see /ui/\n', head, { Location: UI_PREFIX });
  const file = resolveUiFile(root, pathname);
  const info = file ? await stat(file).catch(() => undefined) : undefined;
  if (!file || !info?.isFile()) {
    const built = await stat(path.join(root, 'index.html')).then(
      () => true,
      () => false,
    );
    return sendText(res, 404, built ? 'no such dashboard file\n' : 'the dashboard is not built: run `npm run build`\n', head);
  }
  const ext = path.extname(file);
  res.statusCode = 200;
  res.setHeader('Content-Type', TYPES[ext] ?? 'application/octet-stream');
  res.setHeader('Content-Length', info.size);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  // Bundles carry a content hash in their names; index.html names the current ones, so it is revalidated.
  const hashed = pathname.startsWith(`${UI_PREFIX}assets/`);
  res.setHeader('Cache-Control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache');
  const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
  res.setHeader('ETag', etag);
  if (ext === '.html') {
    res.setHeader('Content-Security-Policy', CSP);
    res.setHeader('X-Frame-Options', 'DENY');
  }
  if (req.headers['if-none-match'] === etag) {
    res.statusCode = 304;
    res.removeHeader('Content-Length');
    res.end();
    return;
  }
  if (head) {
    res.end();
    return;
  }
  await new Promise<void>((resolve) => {
    const stream = createReadStream(file);
    stream.once('error', (err) => {
      res.destroy(err);
      resolve();
    });
    res.once('close', () => {
      stream.destroy();
      resolve();
    });
    stream.pipe(res);
  });
}
