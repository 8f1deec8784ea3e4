/** @module bench/curl — clients as separate curl processes, the way real nodes are other machines, not a loop in the bench's own event loop */
import { spawn } from 'node:child_process';
import { ACCEPT_ALL } from '../test/fixtures/http-pull.js';
import type { BuiltImage } from '../test/fixtures/image.js';

export interface Endpoint {
  /** http(s)://127.0.0.1:PORT */
  url: string;
  /** CA file curl must trust for an https url. */
  cacert?: string;
}

export interface CurlResult {
  transfers: number;
  /** Body bytes of transfers that answered 200 with the size expected. */
  bytes: number;
  failed: number;
  /** A few distinct failure descriptions. */
  errors: string[];
}

interface Transfer {
  url: string;
  /** Expected body size; a different size counts as a failure. */
  size?: number;
}

const quote = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/**
 * One curl process running `transfers` in order over kept-alive connections (or all at once
 * with `parallel`, as a node pulls layers). The URL list goes in through a config on stdin.
 */
export function curl(ep: Endpoint, transfers: Transfer[], opts: { parallel?: boolean; headers?: string[]; timeoutS?: number } = {}): Promise<CurlResult> {
  const args = ['-s', '-K', '-', '-w', '%{http_code} %{size_download}\\n', '--max-time', String(opts.timeoutS ?? 300)];
  if (opts.parallel) args.push('-Z', '--parallel-max', '8');
  if (ep.cacert) args.push('--cacert', ep.cacert);
  for (const h of opts.headers ?? []) args.push('-H', h);
  const config = transfers.map((t) => `url = ${quote(ep.url + t.url)}\noutput = "/dev/null"\n`).join('');
  return new Promise((resolve) => {
    const child = spawn('curl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.stdin.end(config);
    const finish = (code: number | null): void => {
      const lines = out.split('\n').filter(Boolean);
      const res: CurlResult = { transfers: transfers.length, bytes: 0, failed: 0, errors: [] };
      // With -Z the write-out lines come in completion order, so sizes are checked as a multiset.
      const expected = transfers
        .map((t) => t.size)
        .filter((s): s is number => s !== undefined)
        .sort((a, b) => a - b);
      const got: number[] = [];
      for (const line of lines) {
        const [status, size] = line.split(' ').map(Number);
        if (status === 200) {
          res.bytes += size ?? 0;
          got.push(size ?? 0);
        } else {
          res.failed++;
          if (res.errors.length < 3) res.errors.push(`HTTP ${status}`);
        }
      }
      res.failed += Math.max(0, transfers.length - lines.length);
      if (expected.length === transfers.length && res.failed === 0 && got.sort((a, b) => a - b).join() !== expected.join()) {
        res.failed++;
        res.errors.push('body sizes differ from the blobs');
      }
      if (code !== 0 && res.errors.length < 3) res.errors.push(`curl exit ${code}${err ? `: ${err.trim().slice(0, 120)}` : ''}`);
      resolve(res);
    };
    child.once('close', finish);
    child.once('error', (e) => {
      err += e.message;
      finish(-1);
    });
  });
}

export function blobTransfers(repository: string, image: BuiltImage): Transfer[] {
  return image.blobs.map((b) => ({ url: `/v2/${repository}/blobs/${b.digest}`, size: b.size }));
}

/** A node's pull: the manifest by tag, then config and layers in parallel. */
export async function nodePull(ep: Endpoint, repository: string, reference: string, image: BuiltImage, timeoutS: number): Promise<CurlResult> {
  const m = await curl(ep, [{ url: `/v2/${repository}/manifests/${reference}`, size: image.manifestBytes.length }], {
    headers: [`Accept: ${ACCEPT_ALL}`],
    timeoutS,
  });
  if (m.failed > 0) return m;
  const b = await curl(ep, blobTransfers(repository, image), { parallel: true, timeoutS });
  return { transfers: m.transfers + b.transfers, bytes: m.bytes + b.bytes, failed: b.failed, errors: b.errors };
}

export function sum(results: CurlResult[]): CurlResult {
  const errors = new Set<string>();
  for (const r of results) for (const e of r.errors) if (errors.size < 4) errors.add(e);
  return {
    transfers: results.reduce((s, r) => s + r.transfers, 0),
    bytes: results.reduce((s, r) => s + r.bytes, 0),
    failed: results.reduce((s, r) => s + r.failed, 0),
    errors: [...errors],
  };
}
