/** @module upstream/challenge — parsing WWW-Authenticate challenges and deciding which token realms may see credentials. */
import { isIP } from 'node:net';

export interface Challenge {
  /** Lower-cased scheme: `bearer` and `basic` are the ones berth answers. */
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/** Parses `Bearer realm="...",service="...",scope="..."` (quoted or token values). */
export function parseChallenge(header: string | string[] | undefined): Challenge | undefined {
  const raw = Array.isArray(header) ? header[0] : header;
  if (!raw) return undefined;
  const m = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(raw);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2] ?? '')) !== null) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

/**
 * The registrable domain of a host, approximated as its last two labels (three when the
 * second-level label is a short public suffix such as co.uk). IP addresses stand for themselves.
 */
export function registrableDomain(host: string): string {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (isIP(h) || !h.includes('.')) return h;
  const labels = h.split('.');
  const take = labels.length >= 3 && labels[labels.length - 1]!.length === 2 && labels[labels.length - 2]!.length <= 3 ? 3 : 2;
  return labels.slice(-take).join('.');
}

/**
 * Credentials go only to a realm on the upstream's own registrable domain or one listed
 * explicitly: a registry answering with a foreign realm must not harvest them.
 */
export function realmAllowed(upstreamUrl: string, realmUrl: string, allowed: readonly string[] = []): boolean {
  let realm: URL;
  try {
    realm = new URL(realmUrl);
  } catch {
    return false;
  }
  if (realm.protocol !== 'https:' && realm.protocol !== 'http:') return false;
  const upstream = new URL(upstreamUrl);
  // An entry with a port names that port only; without one, any port of the host.
  const listed = allowed.some((a) => {
    const entry = a.toLowerCase();
    return entry === realm.hostname.toLowerCase() || entry === realm.host.toLowerCase();
  });
  if (listed) return true;
  return registrableDomain(realm.hostname) === registrableDomain(upstream.hostname);
}
