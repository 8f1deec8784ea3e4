/** @module upstream/loop — recognising an upstream that is this berth itself (the hosts-file trick applied on the cache host too). */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { UpstreamConfig } from '../config/types.js';
import { loopProblem, problemLine } from './trust.js';

/** On every response berth sends: which berth answered. */
export const INSTANCE_HEADER = 'berth-instance';
/** On every request berth sends upstream: which berth asked. */
export const VIA_HEADER = 'berth-via';
const ID_FILE = 'instance-id';

/** The store's instance id, created on first start; `berth doctor` reads the same one. */
export async function instanceId(root: string, create = true): Promise<string | undefined> {
  const file = join(root, ID_FILE);
  const existing = await readFile(file, 'utf8').then(
    (t) => t.trim(),
    () => '',
  );
  if (/^[0-9a-f-]{36}$/.test(existing)) return existing;
  if (!create) return undefined;
  const id = randomUUID();
  await mkdir(root, { recursive: true });
  await writeFile(file, `${id}\n`);
  return id;
}

/** The loop as one line for a client's error: the cause, then its fix. */
export function loopMessage(config: UpstreamConfig): string {
  return problemLine(config, loopProblem(config));
}

/** A request that this berth sent upstream and that came back to it. */
export function isOwnRequest(via: string | string[] | undefined, instance: string): boolean {
  const values = Array.isArray(via) ? via : via === undefined ? [] : [via];
  return values.some((v) => v.split(',').some((x) => x.trim() === instance));
}
