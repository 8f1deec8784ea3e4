/**
 * @module fleet/held — the blobs a site holds, as it tells its hub (docs/design.md §12, held blobs):
 * a hash of the list with every poll, the list itself only when the hub's copy has another hash.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { bodyTooLarge, badRequest } from '../oci/error-catalogue.js';
import type { HeldSet } from '../ports/hub-state.js';

/** Digests kept per site: 32 bytes each, so 8 MiB at most per site. Beyond it the bundle carries a little more than it needs. */
export const MAX_HELD = 250_000;
const SHA256 = /^sha256:[0-9a-f]{64}$/;
/** One line per digest: `sha256:` + 64 hex + newline. */
const LINE = 72;

/** What the site sends (sorted, sha256 only, at most MAX_HELD) and its hash. */
export function heldList(digests: readonly string[]): { body: string; hash: string; count: number } {
  const list = [...new Set(digests.filter((d) => SHA256.test(d)))].sort().slice(0, MAX_HELD);
  const body = list.length === 0 ? '' : `${list.join('\n')}\n`;
  return { body, hash: hashOf(body), count: list.length };
}

function hashOf(body: string | Buffer): string {
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}

/** Reads a site's list (text/plain, one sha256 digest a line), bounded by MAX_HELD, into its stored form. */
export async function readHeld(req: IncomingMessage, at: number): Promise<HeldSet> {
  const limit = MAX_HELD * LINE;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw bodyTooLarge(`a held list is at most ${MAX_HELD} digests (${limit} bytes)`);
    chunks.push(chunk as Buffer);
  }
  const body = Buffer.concat(chunks);
  const text = body.toString('latin1');
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const digests = Buffer.alloc(lines.length * 32);
  lines.forEach((line, i) => {
    if (!SHA256.test(line)) throw badRequest(`line ${i + 1} of the held list is not a sha256 digest: "${line.slice(0, 80)}"`);
    digests.write(line.slice(7), i * 32, 'hex');
  });
  return { hash: hashOf(body), at, count: lines.length, digests };
}

/** The digests of a stored set. */
export function heldDigests(set: HeldSet): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i + 32 <= set.digests.length; i += 32) out.add(`sha256:${set.digests.subarray(i, i + 32).toString('hex')}`);
  return out;
}
