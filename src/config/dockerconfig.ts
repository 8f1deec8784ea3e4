/** @module config/dockerconfig — upstream credentials read from a Docker client config.json (`auths` entries). */

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

const DOCKER_HUB = ['docker.io', 'index.docker.io', 'registry-1.docker.io'];

/** `https://index.docker.io/v1/` -> `index.docker.io`, as the Docker client folds its keys. */
export function registryKey(key: string): string {
  return (
    key
      .trim()
      .toLowerCase()
      .replace(/^[a-z][a-z0-9+.-]*:\/\//, '')
      .split('/')[0] ?? ''
  );
}

/**
 * The registry hosts whose `auths` entry holds an upstream's credentials, in the order they are
 * tried: the remoteurl's host, then the names clients use for it, with Docker Hub's aliases.
 */
export function candidateHosts(remoteurl: string, hosts: readonly string[]): string[] {
  const out = [new URL(remoteurl).host.toLowerCase(), ...hosts.map((h) => h.toLowerCase())];
  if (out.some((h) => DOCKER_HUB.includes(h))) out.push(...DOCKER_HUB);
  return [...new Set(out)];
}

/**
 * Finds the credentials for the first of `hosts` that the document lists. Throws an Error whose
 * message says what is wrong with the file and how to fix it; never includes a secret.
 */
export function dockerConfigCredentials(text: string, hosts: readonly string[]): Credentials {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error('is not valid JSON; allowed: a Docker client config.json such as `docker login` writes');
  }
  const root = isObject(doc) ? doc : {};
  const auths = isObject(root['auths']) ? root['auths'] : {};
  const entries = new Map<string, Record<string, unknown>>();
  for (const [key, value] of Object.entries(auths)) {
    if (isObject(value) && !entries.has(registryKey(key))) entries.set(registryKey(key), value);
  }
  for (const host of hosts) {
    const entry = entries.get(host);
    if (!entry) continue;
    const creds = fromEntry(entry);
    if (typeof creds === 'string') throw new Error(`entry for ${host}: ${creds}`);
    return creds;
  }
  const helper = isObject(root['credHelpers']) && hosts.some((h) => typeof (root['credHelpers'] as Record<string, unknown>)[h] === 'string');
  const why =
    helper || typeof root['credsStore'] === 'string'
      ? 'credentials kept by a credential helper (credHelpers, credsStore) cannot be read; put them under auths (docker login with no helper configured does this)'
      : 'add an auths entry for one of them (docker login <host> writes it)';
  throw new Error(`has no auths entry for ${hosts.join(', ')}; ${why}`);
}

function fromEntry(entry: Record<string, unknown>): Credentials | string {
  const auth = entry['auth'];
  if (typeof auth === 'string' && auth !== '') {
    const decoded = Buffer.from(auth, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i <= 0) return 'auth is not base64 of "username:password"';
    return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
  }
  const { username, password } = entry;
  if (typeof username === 'string' && username !== '' && typeof password === 'string') return { username, password };
  if (typeof entry['identitytoken'] === 'string') return 'holds only an identitytoken, which berth cannot use; allowed: auth, or username and password';
  return 'has neither auth nor username and password';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
