/** @module ui/format — human-readable bytes, ratios, times and digests for the dashboard. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function bytes(n: number | undefined | null): string {
  if (n === undefined || n === null || !Number.isFinite(n)) return '–';
  let v = Math.abs(n);
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  const digits = i === 0 || v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${n < 0 ? '-' : ''}${v.toFixed(digits)} ${UNITS[i]}`;
}

export function percent(ratio: number | undefined | null): string {
  if (ratio === undefined || ratio === null || !Number.isFinite(ratio)) return '–';
  return `${(ratio * 100).toFixed(ratio >= 0.999 || ratio === 0 ? 0 : 1)} %`;
}

/** Times may arrive as epoch seconds, epoch milliseconds or ISO strings. */
export function toDate(v: number | string | null | undefined): Date | undefined {
  if (v === null || v === undefined || v === '') return undefined;
  if (typeof v === 'number') return new Date(v > 1e12 ? v : v * 1000);
  const n = Number(v);
  if (Number.isFinite(n)) return toDate(n);
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export function duration(seconds: number | undefined | null): string {
  if (seconds === undefined || seconds === null || !Number.isFinite(seconds)) return '–';
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function ago(v: number | string | null | undefined, now = Date.now()): string {
  const d = toDate(v);
  if (!d) return '–';
  return `${duration((now - d.getTime()) / 1000)} ago`;
}

export function shortDigest(digest: string | null | undefined): string {
  if (!digest) return '–';
  const [alg, hex = ''] = digest.split(':');
  return `${alg}:${hex.slice(0, 12)}`;
}

export function count(n: number | undefined | null): string {
  return n === undefined || n === null ? '–' : n.toLocaleString('en-US');
}
