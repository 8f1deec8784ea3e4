/** @module util/intervals — a presence map: which byte spans of a blob are held, as sorted, disjoint, non-touching [start, end) intervals. */

/** [start, end): end exclusive. */
export type Interval = readonly [number, number];

/** `list` with [start, end) added, merged with every interval it overlaps or touches; `list` is not changed. */
export function addInterval(list: readonly Interval[], start: number, end: number): Interval[] {
  if (end <= start) return [...list];
  const out: Interval[] = [];
  let s = start;
  let e = end;
  let placed = false;
  for (const iv of list) {
    if (iv[1] < s) out.push(iv);
    else if (iv[0] > e) {
      if (!placed) out.push([s, e]);
      placed = true;
      out.push(iv);
    } else {
      s = Math.min(s, iv[0]);
      e = Math.max(e, iv[1]);
    }
  }
  if (!placed) out.push([s, e]);
  return out;
}

/** The end of the held interval that contains `pos`, or undefined when `pos` is not held. */
export function presentEnd(list: readonly Interval[], pos: number): number | undefined {
  for (const [s, e] of list) {
    if (s > pos) return undefined;
    if (pos < e) return e;
  }
  return undefined;
}

/** The start of the first held interval after `pos` (which is not held), or undefined when none follows. */
export function nextStart(list: readonly Interval[], pos: number): number | undefined {
  for (const [s] of list) if (s > pos) return s;
  return undefined;
}

/** The spans of [start, end) that are not held, in order. */
export function gaps(list: readonly Interval[], start: number, end: number): Interval[] {
  const out: Interval[] = [];
  let pos = start;
  for (const [s, e] of list) {
    if (e <= pos) continue;
    if (s >= end) break;
    if (s > pos) out.push([pos, s]);
    pos = Math.max(pos, e);
  }
  if (pos < end) out.push([pos, end]);
  return out;
}

/** Bytes held in all. */
export function heldBytes(list: readonly Interval[]): number {
  return list.reduce((n, [s, e]) => n + e - s, 0);
}

/** Whether `value` is a well-formed presence map within [0, size]: sorted, disjoint, non-touching, non-empty intervals. */
export function isPresenceMap(value: unknown, size: number): value is Interval[] {
  if (!Array.isArray(value)) return false;
  let last = -1;
  for (const iv of value) {
    if (!Array.isArray(iv) || iv.length !== 2) return false;
    const [s, e] = iv as unknown[];
    if (!Number.isSafeInteger(s) || !Number.isSafeInteger(e)) return false;
    if ((s as number) <= last || (e as number) <= (s as number) || (e as number) > size) return false;
    last = e as number;
  }
  return true;
}
