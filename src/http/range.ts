/** @module http/range — parsing a `Range: bytes=…` header (one range or several) against a blob size, and an upload chunk's Content-Range. */

export type RangeResult = { kind: 'none' } | { kind: 'range'; start: number; end: number } | { kind: 'unsatisfiable' };

/**
 * Only single byte ranges are honoured (parseRanges takes several); anything else is ignored
 * (served whole), as RFC 9110 allows. Ranges running past the end are clamped; a start beyond the
 * end is unsatisfiable.
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (!header || header.includes(',')) return { kind: 'none' };
  const spec = splitSpecs(header)?.[0];
  if (!spec) return { kind: 'none' };
  const range = resolve(spec.a, spec.b, size);
  return range ? { kind: 'range', ...range } : { kind: 'unsatisfiable' };
}

/** Bytes [start, end], inclusive. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/** More ranges than this in one request, and it is answered whole (docs/lazy-pulling.md). */
export const MAX_RANGES = 1024;

export type RangesResult = { kind: 'none' } | { kind: 'ranges'; ranges: ByteRange[] } | { kind: 'unsatisfiable' };

/**
 * A `Range` header with one range or several (RFC 9110 §14.1.2), against a blob of `size`
 * bytes: ranges sorted and coalesced where they overlap or touch. Answered whole (`none`) when
 * the header is not a byte-range set, names more than MAX_RANGES ranges, or its satisfiable
 * ranges add up to more than the blob (a request that would cost more than the blob itself);
 * `unsatisfiable` when no range lies in the blob. One range gives what parseRange gives.
 */
export function parseRanges(header: string | undefined, size: number): RangesResult {
  if (!header) return { kind: 'none' };
  const specs = splitSpecs(header);
  if (!specs) return { kind: 'none' };
  if (specs.length > MAX_RANGES) return { kind: 'none' };
  const wanted: ByteRange[] = [];
  let total = 0;
  for (const { a, b } of specs) {
    const range = resolve(a, b, size);
    if (!range) continue;
    wanted.push(range);
    total += range.end - range.start + 1;
  }
  if (wanted.length === 0) return { kind: 'unsatisfiable' };
  if (total > size) return { kind: 'none' };
  wanted.sort((x, y) => x.start - y.start || x.end - y.end);
  const ranges: ByteRange[] = [];
  for (const r of wanted) {
    const last = ranges[ranges.length - 1];
    if (last && r.start <= last.end + 1) ranges[ranges.length - 1] = { start: last.start, end: Math.max(last.end, r.end) };
    else ranges.push(r);
  }
  return { kind: 'ranges', ranges };
}

/** One range-spec against the size; undefined when it is not satisfiable (or not valid: last before first). */
function resolve(a: string, b: string, size: number): ByteRange | undefined {
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0 || size === 0) return undefined;
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(a);
  if (start >= size || (b !== '' && Number(b) < start)) return undefined;
  return { start, end: b === '' ? size - 1 : Math.min(Number(b), size - 1) };
}

/**
 * `bytes = spec *( , spec )`, each spec `<digits> - <digits>` (either may be empty, not both),
 * empty list elements allowed (RFC 9110 §5.6.1); scanned once, left to right. Stops counting
 * past MAX_RANGES + 1 specs: that many answer whole anyway.
 */
function splitSpecs(header: string): Array<{ a: string; b: string }> | undefined {
  let i = 0;
  const n = header.length;
  const spaces = () => {
    while (i < n && isSpace(header.charCodeAt(i))) i++;
  };
  const digits = (): string => {
    const from = i;
    while (i < n && header.charCodeAt(i) >= 48 && header.charCodeAt(i) <= 57) i++;
    return header.slice(from, i);
  };
  spaces();
  if (header.slice(i, i + 5).toLowerCase() !== 'bytes') return undefined;
  i += 5;
  spaces();
  if (header[i] !== '=') return undefined;
  i++;
  const specs: Array<{ a: string; b: string }> = [];
  for (;;) {
    spaces();
    if (header[i] === ',') {
      i++;
      continue;
    }
    if (i === n) break;
    const a = digits();
    spaces();
    if (header[i] !== '-') return undefined;
    i++;
    spaces();
    const b = digits();
    if (a === '' && b === '') return undefined;
    if (specs.length <= MAX_RANGES) specs.push({ a, b });
    spaces();
    if (i === n) break;
    if (header[i] !== ',') return undefined;
  }
  return specs.length > 0 ? specs : undefined;
}

/** The characters `\s` matched in the expression this replaces that can occur in a header value. */
function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 11 || c === 12 || c === 0xa0 || c === 0xfeff;
}

/**
 * An upload chunk's `Content-Range: <start>-<end>` (distribution's form; `bytes ` or `bytes=`
 * prefix and a `/total` or `/*` suffix accepted). Undefined when it is not that shape.
 */
export function parseContentRange(raw: string): { start: number; end: number } | undefined {
  // Anchored, no nested or adjacent optional runs: linear on any input.
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/\d+|\/\*)?$/.exec(raw.trim());
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = Number(m[2]);
  return Number.isSafeInteger(start) && Number.isSafeInteger(end) ? { start, end } : undefined;
}
