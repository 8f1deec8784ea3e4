/** @module cli/bundle-import-server — `berth import --server`: a bundle loaded into a running berth through its admin API, sending only the blobs it lacks. */
import { stat } from 'node:fs/promises';
import { request } from '../util/undici.js';
import type { BundleIo } from './bundle-export.js';
import { BundleRefusal, counts, loadBlobs, openBundle, report, type BlobSink, type ImportOptions } from './bundle-import.js';
import { DEFAULT_SERVER } from './help-defaults.js';

export interface ServerImportOptions extends ImportOptions {
  readonly server: string;
  readonly username?: string;
  readonly password?: string;
}

/** Digests asked about in one call (the server takes up to 10,000). */
const ASK_BATCH = 5000;

/** Exit status: 0 when every blob and image was imported, 1 naming what was refused or left out. */
export async function importToServer(path: string, opts: ServerImportOptions, io: BundleIo): Promise<number> {
  let base: string;
  try {
    base = new URL(opts.server).toString().replace(/\/+$/, '');
  } catch {
    io.err(`berth import: --server ${opts.server} is not a URL; expected e.g. ${DEFAULT_SERVER}`);
    return 2;
  }
  const auth: Record<string, string> =
    opts.username !== undefined ? { authorization: `Basic ${Buffer.from(`${opts.username}:${opts.password ?? ''}`).toString('base64')}` } : {};
  const call = async (method: 'POST' | 'PUT', route: string, type: string, body: unknown, length?: number) => {
    try {
      const headers = { ...auth, 'content-type': type, ...(length !== undefined ? { 'content-length': String(length) } : {}) };
      const res = await request(`${base}${route}`, { method, headers, body: body as string });
      const text = await res.body.text();
      let json: unknown = null;
      try {
        json = JSON.parse(text);
      } catch {
        /* not JSON: reported by status */
      }
      return { status: res.statusCode, json, text };
    } catch (err) {
      throw new Error(`cannot reach berth at ${base}: ${(err as Error).message} (is it running? set --server or BERTH_SERVER)`);
    }
  };
  const json = (route: string, body: unknown) => call('POST', route, 'application/json', JSON.stringify(body));

  const reader = await openBundle(path, io);
  if (!reader) return 1;
  try {
    // A directory's blobs, and a tar file's (indexed by its headers), are known up front: one question per batch. A piped tar's come in archive order: asked one by one.
    const missing = new Map<string, boolean>();
    const ask = async (blobs: Array<{ digest: string; size: number }>) => {
      const r = await json('/api/v1/bundles/missing', { blobs });
      if (r.status !== 200) throw new Error(errorText(r));
      const lacking = new Set((r.json as { missing: string[] }).missing);
      for (const b of blobs) missing.set(`${b.digest}/${b.size}`, lacking.has(b.digest));
    };
    const kind = await stat(path);
    if (kind.isDirectory() || kind.isFile()) {
      let batch: Array<{ digest: string; size: number }> = [];
      for await (const b of reader.blobs()) {
        batch.push({ digest: b.digest, size: b.size });
        if (batch.length === ASK_BATCH) {
          await ask(batch);
          batch = [];
        }
      }
      if (batch.length > 0) await ask(batch);
    }
    const sink: BlobSink = {
      async has(digest, size) {
        if (!missing.has(`${digest}/${size}`)) await ask([{ digest, size }]);
        return missing.get(`${digest}/${size}`) === false;
      },
      async put(digest, size, body, onChunk) {
        const counted = async function* () {
          for await (const chunk of body) {
            onChunk(chunk.length);
            yield chunk;
          }
        };
        const r = await call('PUT', `/api/v1/bundles/blobs/${digest}`, 'application/octet-stream', counted(), size);
        if (r.status === 201 || r.status === 200) return;
        const code = firstError(r)?.code;
        if (r.status === 400 && (code === 'DIGEST_INVALID' || code === 'SIZE_INVALID')) throw new BundleRefusal(firstError(r)?.message ?? code);
        throw new Error(errorText(r));
      },
    };
    const loaded = await loadBlobs(reader, sink, path, opts, io);
    const { blobsStored: stored, blobsSkipped: skipped, blobsRefused: refused } = counts(loaded);
    const recorded = await json('/api/v1/bundles', {
      manifests: (await reader.index()).manifests,
      source: path,
      blobs: { stored, skipped, refused },
      ...(opts.name ? { name: opts.name } : {}),
    });
    if (recorded.status !== 200) throw new Error(errorText(recorded));
    const { imported, problems } = recorded.json as { imported: string[]; problems: string[] };
    return report(loaded, imported, problems, io);
  } catch (err) {
    io.err(`berth import: ${(err as Error).message}`);
    return 1;
  }
}

function firstError(r: { json: unknown }): { code?: string; message?: string } | undefined {
  return (r.json as { errors?: Array<{ code?: string; message?: string }> } | null)?.errors?.[0];
}

function errorText(r: { status: number; json: unknown; text: string }): string {
  const first = firstError(r);
  return first ? `berth answered ${r.status} ${first.code ?? ''}: ${first.message ?? ''}` : `berth answered ${r.status}: ${r.text.slice(0, 200)}`;
}
