/** @module http/range — parsing a single-range `Range: bytes=…` header against a blob size, and an upload chunk's Content-Range. */

export type RangeResult = { kind: 'none' } | { kind: 'range'; start: number; end: number } | { kind: 'unsatisfiable' };

/**
 * Only single byte ranges are honoured; anything else is ignored (served whole), as RFC 9110
 * allows. Ranges running past the end are clamped; a start beyond the end is unsatisfiable.
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (!header) return { kind: 'none' };
  const spec = splitSpec(header);
  if (!spec) return { kind: 'none' };
  const { a, b } = spec;
  if (a === '' && b === '') return { kind: 'none' };
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (start >= size || (b !== '' && Number(b) < start)) return { kind: 'unsatisfiable' };
  return { kind: 'range', start, end };
}

/**
 * `bytes = <digits> - <digits>` with optional whitespace, scanned once left to right: a regular
 * expression with runs of optional whitespace backtracks quadratically on hostile input.
 */
function splitSpec(header: string): { a: string; b: string } | undefined {
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
  spaces();
  const a = digits();
  spaces();
  if (header[i] !== '-') return undefined;
  i++;
  spaces();
  const b = digits();
  spaces();
  return i === n ? { a, b } : undefined;
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
