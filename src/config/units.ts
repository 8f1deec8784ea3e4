/** @module config/units — human-written sizes and Go-style durations: parsed from config.yml, formatted back for it. */

/** What parseSize accepts, phrased for error messages. */
export const SIZE_ALLOWED = 'a byte count or a number with a unit B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), e.g. 50GiB';

/** What parseDuration accepts, phrased for error messages. */
export const DURATION_ALLOWED = 'a duration: numbers with units ns, us, ms, s, m, h, combinable as in 1h30m, e.g. 90s, 15m, 168h';

const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  pb: 1e15,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
  pib: 2 ** 50,
};

/**
 * Parses a size into bytes. Numbers are byte counts; strings are a decimal number with an
 * optional, case-insensitive unit. Fractions are allowed with a unit (`1.5GiB`) and rounded
 * to whole bytes.
 */
export function parseSize(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) {
      throw new Error(`invalid size ${String(input)}; allowed: ${SIZE_ALLOWED}`);
    }
    return input;
  }
  const m = /^(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)$/i.exec(input.trim());
  const unit = m?.[2]?.toLowerCase() ?? '';
  const mult = m ? SIZE_UNITS[unit] : undefined;
  if (!m || mult === undefined) {
    throw new Error(`invalid size ${JSON.stringify(input)}; allowed: ${SIZE_ALLOWED}`);
  }
  const bytes = Math.round(Number(m[1]) * mult);
  if (!Number.isSafeInteger(bytes)) {
    throw new Error(`invalid size ${JSON.stringify(input)}: too large; allowed: ${SIZE_ALLOWED}`);
  }
  return bytes;
}

/** Unit lengths in milliseconds, as Go's time.ParseDuration names them. */
const DURATION_UNITS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3, // U+00B5 micro sign, accepted by Go
  μs: 1e-3, // U+03BC Greek mu, accepted by Go
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a duration into milliseconds. Strings follow Go's time.ParseDuration (`90s`, `1h30m`,
 * `250ms`, `1.5h`; a bare `0` is allowed, other unit-less numbers are not, because a forgotten
 * unit is far likelier than a meant nanosecond count). A number is a nanosecond count, which is
 * what a bare YAML integer means to distribution for its time.Duration fields.
 * Negative durations are rejected: no berth setting has a use for one.
 */
export function parseDuration(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) {
      throw new Error(`invalid duration ${String(input)}; allowed: ${DURATION_ALLOWED}`);
    }
    return input / 1e6;
  }
  const fail = (why: string): never => {
    throw new Error(`invalid duration ${JSON.stringify(input)}${why}; allowed: ${DURATION_ALLOWED}`);
  };
  let s = input.trim();
  if (s.startsWith('+')) s = s.slice(1);
  if (s.startsWith('-')) {
    if (/^-0*(\.0*)?$/.test(s)) return 0;
    fail(': must not be negative');
  }
  if (s === '0') return 0;
  if (s === '') fail('');
  let ms = 0;
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)?/y;
  while (part.lastIndex < s.length) {
    const at = part.lastIndex;
    const m = part.exec(s);
    if (!m || m.index !== at) return fail('');
    if (m[2] === undefined) return fail(part.lastIndex === s.length ? ': missing unit' : '');
    ms += Number(m[1]) * (DURATION_UNITS[m[2]] ?? NaN);
  }
  if (!Number.isFinite(ms)) fail(': too large');
  return ms;
}

/** `90s`, `15m`, `168h`: the largest unit that divides the value, as config.yml accepts it. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** `50GiB`, `500MiB`: exact binary units, else bytes. */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [
    ['TiB', 2 ** 40],
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
    ['KiB', 2 ** 10],
  ] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}
