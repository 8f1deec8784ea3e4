/** @module nodeconfig/generate — the files that point a node's containerd, Docker, CRI-O/podman or /etc/hosts at berth (pure). */
import { isIP } from 'node:net';
import { UsageError } from '../oci/errors.js';

export type NodeConfigKind = 'containerd' | 'docker' | 'registries' | 'hosts';
export const NODE_CONFIG_KINDS: readonly NodeConfigKind[] = ['containerd', 'docker', 'registries', 'hosts'];

/** A registry the node pulls from, and berth's path prefix for it when berth routes by prefix. */
export interface RegistrySpec {
  name: string;
  prefix?: string;
}

export interface NodeConfigInput {
  /** berth as the nodes reach it: http(s)://host[:port]. */
  mirror: string;
  registries: readonly RegistrySpec[];
  /** CA certificate berth's TLS certificate is signed by (PEM), and where it was read from. */
  ca?: { pem: string; source: string };
  kinds: readonly NodeConfigKind[];
  /** containerd: never go around berth to the registry itself. */
  noFallback?: boolean;
}

/**
 * How a file is written: `replace` owns the whole file; `merge-json` adds its array entries to an
 * existing JSON file; `hosts-lines` replaces the lines it added earlier (marked) in an existing file.
 */
export type WriteAction = 'replace' | 'merge-json' | 'hosts-lines';

export interface NodeFile {
  kind: NodeConfigKind;
  /** Absolute path on the node. */
  path: string;
  /** One line: what the file does. */
  about: string;
  action: WriteAction;
  content: string;
  /** Set for copies of the CA file: printing shows the source instead of the PEM. */
  copyOf?: string;
  /** For formats without comments (JSON): what each entry does, printed above the content. */
  notes?: string[];
}

/** `berth node-config` asked for files it cannot write: exit 2. */
export class NodeConfigError extends UsageError {
  constructor(message: string) {
    super(message, 'berth node-config');
    this.name = 'NodeConfigError';
  }
}

/** Marks the /etc/hosts lines node-config owns, so a rerun replaces them instead of adding more. */
export const HOSTS_MARKER = '# berth node-config';
const DOCKER_HUB = 'docker.io';
/** The CA copy beside each containerd hosts.toml. */
const CA_FILE = 'berth-ca.crt';
/** A closed port on the node itself: a failing mirror then fails the pull instead of bypassing berth. */
export const NO_FALLBACK_SERVER = 'http://127.0.0.1:1';

const HOST_PORT = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::\d{1,5})?$/;
const PREFIX = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;

export interface Mirror {
  url: string;
  https: boolean;
  /** host[:port] as registries name it (Docker's and containers' certs.d directories, insecure lists). */
  hostPort: string;
  hostname: string;
}

export function parseMirror(value: string): Mirror {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new NodeConfigError(`--mirror ${JSON.stringify(value)} is not a URL; give berth's address as http://HOST:PORT or https://HOST:PORT`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new NodeConfigError(`--mirror ${JSON.stringify(value)}: the scheme must be http or https`);
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username || url.password) {
    throw new NodeConfigError(`--mirror ${JSON.stringify(value)}: give only scheme, host and port (no path, query or credentials)`);
  }
  return { url: `${url.protocol}//${url.host}`, https: url.protocol === 'https:', hostPort: url.host, hostname: url.hostname.replace(/^\[|\]$/g, '') };
}

/** Parses `NAME` or `NAME=PREFIX`, e.g. `harbor.xing.com=harbor`. */
export function parseRegistry(value: string): RegistrySpec {
  const [name = '', prefix, ...rest] = value.split('=');
  if (rest.length > 0 || !HOST_PORT.test(name) || name.includes('/')) {
    throw new NodeConfigError(
      `--registry ${JSON.stringify(value)}: give the registry's host name as images name it (e.g. harbor.xing.com or docker.io), optionally =PREFIX`,
    );
  }
  if (prefix !== undefined && !PREFIX.test(prefix)) {
    throw new NodeConfigError(`--registry ${JSON.stringify(value)}: the prefix after = must be a path such as "harbor" (berth's upstreams[].prefix)`);
  }
  return prefix === undefined ? { name: name.toLowerCase() } : { name: name.toLowerCase(), prefix };
}

/** Where a registry name really lives: Docker Hub's images are named docker.io but served elsewhere. */
function registryServer(name: string): string {
  return name === DOCKER_HUB ? 'https://registry-1.docker.io' : `https://${name}`;
}

const q = JSON.stringify;

function containerdFiles(input: NodeConfigInput, mirror: Mirror): NodeFile[] {
  return input.registries.flatMap((r): NodeFile[] => {
    const dir = `/etc/containerd/certs.d/${r.name}`;
    const caPath = `${dir}/${CA_FILE}`;
    const about = `containerd: pull ${r.name} images through berth at ${mirror.url}`;
    const lines = [
      `# ${about}.`,
      `# containerd adds ?ns=${r.name} to each request, which tells berth which registry is meant.`,
      "# Read on every pull (containerd's config_path must name /etc/containerd/certs.d): no restart needed.",
      input.noFallback
        ? '# server is a closed local port: when berth cannot answer, the pull fails instead of going around it.'
        : `# When berth cannot answer, containerd falls back to ${registryServer(r.name)} itself.`,
      `server = ${q(input.noFallback ? NO_FALLBACK_SERVER : registryServer(r.name))}`,
      '',
      `[host.${q(mirror.url)}]`,
      '  capabilities = ["pull", "resolve"]',
    ];
    // Relative to the hosts.toml's own directory, so the pair works wherever certs.d is.
    if (input.ca) lines.push(`  ca = ${q(CA_FILE)}`);
    return [
      { kind: 'containerd', path: `${dir}/hosts.toml`, about, action: 'replace', content: `${lines.join('\n')}\n` },
      ...caFiles(input, 'containerd', caPath, `containerd: trust the CA of berth's certificate for ${r.name}`),
    ];
  });
}

function dockerFiles(input: NodeConfigInput, mirror: Mirror): NodeFile[] {
  const additions: Record<string, string[]> = {};
  const hub = input.registries.some((r) => r.name === DOCKER_HUB);
  if (hub) additions['registry-mirrors'] = [mirror.url];
  if (!mirror.https) additions['insecure-registries'] = [mirror.hostPort];
  const others = input.registries.filter((r) => r.name !== DOCKER_HUB);
  const notes = [
    hub ? `registry-mirrors: Docker Hub pulls go to berth first (berth must route requests without a prefix to its Docker Hub upstream).` : '',
    !mirror.https ? `insecure-registries: lets dockerd talk plain HTTP to berth at ${mirror.hostPort}.` : '',
    ...others.map(
      (r) =>
        `${r.name}: Docker mirrors only Docker Hub; pull ${r.name} images by berth's address instead: docker pull ${mirror.hostPort}/${r.prefix ? `${r.prefix}/` : ''}REPOSITORY:TAG.`,
    ),
  ].filter(Boolean);
  const empty = Object.keys(additions).length === 0;
  if (!empty) notes.push('Reload dockerd afterwards (systemctl reload docker).');
  const files: NodeFile[] = [
    {
      kind: 'docker',
      path: '/etc/docker/daemon.json',
      action: 'merge-json',
      notes,
      about: empty ? 'Docker: nothing to add to daemon.json' : 'Docker: entries to add to daemon.json',
      content: `${JSON.stringify(additions, null, 2)}\n`,
    },
  ];
  return [
    ...files,
    ...caFiles(
      input,
      'docker',
      `/etc/docker/certs.d/${mirror.hostPort}/ca.crt`,
      `Docker: trust the CA of berth's certificate when talking to ${mirror.hostPort}`,
    ),
  ];
}

function registriesFiles(input: NodeConfigInput, mirror: Mirror): NodeFile[] {
  const about = `CRI-O and podman: pull these registries' images through berth at ${mirror.hostPort} first`;
  const lines = [
    `# ${about}; when berth cannot answer they fall back to the registry itself.`,
    '# A drop-in read by containers-registries.conf(5) tools; CRI-O needs a reload (systemctl reload crio), podman reads it on each pull.',
  ];
  for (const r of registryForms(input.registries, mirror)) {
    lines.push('', '[[registry]]', `prefix = ${q(r.name)}`, `location = ${q(r.name)}`, '', '[[registry.mirror]]');
    if (!r.prefix && input.registries.length > 1) {
      lines.push(`# No prefix: berth sends ${r.name} requests to its default upstream; use --registry ${r.name}=PREFIX if it has a prefix.`);
    }
    lines.push(`location = ${q(r.prefix ? `${mirror.hostPort}/${r.prefix}` : mirror.hostPort)}`);
    if (!mirror.https) lines.push('insecure = true');
  }
  const files: NodeFile[] = [
    { kind: 'registries', path: '/etc/containers/registries.conf.d/50-berth.conf', about, action: 'replace', content: `${lines.join('\n')}\n` },
  ];
  return [
    ...files,
    ...caFiles(
      input,
      'registries',
      `/etc/containers/certs.d/${mirror.hostPort}/ca.crt`,
      `CRI-O and podman: trust the CA of berth's certificate for ${mirror.hostPort}`,
    ),
  ];
}

/** The copy of berth's CA a runtime reads at `path`; none without --ca. */
function caFiles(input: NodeConfigInput, kind: NodeConfigKind, path: string, about: string): NodeFile[] {
  return input.ca ? [{ kind, path, about, action: 'replace', content: input.ca.pem, copyOf: input.ca.source }] : [];
}

/**
 * containers/image lets a prefix without a port also match `name:port/...`, then rewrites that
 * reference into an invalid one. So each bare name gets an entry for its `name:PORT` form too
 * (PORT = berth's port, what hosts-file nodes write), and the longer prefix wins there.
 */
function registryForms(registries: readonly RegistrySpec[], mirror: Mirror): RegistrySpec[] {
  const port = new URL(mirror.url).port;
  const names = new Set(registries.map((r) => r.name));
  const out: RegistrySpec[] = [];
  for (const r of registries) {
    out.push(r);
    const withPort = `${r.name}:${port}`;
    if (port && r.name !== DOCKER_HUB && !/:\d+$/.test(r.name) && !names.has(withPort)) out.push({ ...r, name: withPort });
  }
  return out;
}

function hostsFiles(input: NodeConfigInput, mirror: Mirror): NodeFile[] {
  // Docker Hub's images are named docker.io but its API is at registry-1.docker.io.
  const names = [...new Set(input.registries.flatMap((r) => (r.name === DOCKER_HUB ? [DOCKER_HUB, 'registry-1.docker.io'] : [r.name.replace(/:\d+$/, '')])))];
  const ip = isIP(mirror.hostname) ? mirror.hostname : undefined;
  const about = "hosts-file approach: resolve the registries' names to berth, so images keep their names with no other node setup";
  const lines = [
    `# ${about}.`,
    '# Use it instead of the mirror files, not with them. berth must serve TLS for these names on the port',
    '# clients use (443: http.addr :443 and http.tls), with a certificate the nodes trust.',
  ];
  if (!ip) lines.push(`# ${mirror.hostname} is not an IP address: replace BERTH_IP with berth's address.`);
  lines.push(`${ip ?? 'BERTH_IP'} ${names.join(' ')} ${HOSTS_MARKER}`);
  return [{ kind: 'hosts', path: '/etc/hosts', about, action: 'hosts-lines', content: `${lines.join('\n')}\n` }];
}

/** Every file for the kinds asked for, in a fixed order. */
export function generateNodeConfig(input: NodeConfigInput): NodeFile[] {
  if (input.registries.length === 0) throw new NodeConfigError('name at least one registry with --registry NAME (e.g. --registry harbor.xing.com)');
  const mirror = parseMirror(input.mirror);
  if (input.ca && !mirror.https)
    throw new NodeConfigError(`--ca applies to a berth served over TLS: give --mirror as https://${mirror.hostPort}, or leave out --ca`);
  const out: NodeFile[] = [];
  if (input.kinds.includes('containerd')) out.push(...containerdFiles(input, mirror));
  if (input.kinds.includes('docker')) out.push(...dockerFiles(input, mirror));
  if (input.kinds.includes('registries')) out.push(...registriesFiles(input, mirror));
  if (input.kinds.includes('hosts')) out.push(...hostsFiles(input, mirror));
  return out;
}

/** Adds each array entry of `additions` to `existing` (a daemon.json document) once. */
export function mergeDaemonJson(existing: Record<string, unknown>, additions: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...existing };
  for (const [key, value] of Object.entries(additions)) {
    const have = Array.isArray(out[key]) ? (out[key] as unknown[]) : [];
    out[key] = [...have, ...(Array.isArray(value) ? value : [value]).filter((v) => !have.includes(v))];
  }
  return out;
}

/** Replaces the lines an earlier run added (marked) with `block`, keeping every other line. */
export function mergeHostsFile(existing: string, block: string): string {
  const kept = existing.split('\n').filter((l) => !l.includes(HOSTS_MARKER));
  while (kept.length > 0 && kept[kept.length - 1] === '') kept.pop();
  const entries = block.split('\n').filter((l) => l.includes(HOSTS_MARKER));
  return `${[...kept, ...entries].join('\n')}\n`;
}
