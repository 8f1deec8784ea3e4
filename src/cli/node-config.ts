/** @module cli/node-config — `berth node-config`: prints, or writes with --write, the node files that point runtimes at berth. */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  NODE_CONFIG_KINDS,
  NodeConfigError,
  type NodeConfigKind,
  type NodeFile,
  generateNodeConfig,
  mergeDaemonJson,
  mergeHostsFile,
  parseRegistry,
} from '../nodeconfig/generate.js';

export interface NodeConfigOptions {
  mirror: string;
  registry: string[];
  ca?: string;
  write?: boolean;
  /** Root the node's paths are written under (/ by default; e.g. /host where a pod mounts the node). */
  dir?: string;
  /** Comma-separated kinds. */
  only?: string;
  /** commander's --no-fallback. */
  fallback?: boolean;
}

export interface CliIo {
  readonly cwd: string;
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

/**
 * --write leaves /etc/hosts alone unless --only names `hosts`: that line redirects every program on
 * the node, and needs berth to serve TLS for the registry's name, so it is never a side effect.
 */
const WRITE_DEFAULT: readonly NodeConfigKind[] = ['containerd', 'docker', 'registries'];

function parseKinds(only: string | undefined, write: boolean): NodeConfigKind[] {
  if (only === undefined) return [...(write ? WRITE_DEFAULT : NODE_CONFIG_KINDS)];
  const kinds = only
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
  const bad = kinds.filter((k) => !(NODE_CONFIG_KINDS as readonly string[]).includes(k));
  if (bad.length > 0 || kinds.length === 0) {
    throw new NodeConfigError(`--only ${JSON.stringify(only)}: allowed: a comma-separated list of ${NODE_CONFIG_KINDS.join(', ')}`);
  }
  return kinds as NodeConfigKind[];
}

/** `shown` is where the file goes: under --dir when given (file contents keep the node's own paths). */
function render(file: NodeFile, shown: string): string {
  const head = `# ==> ${shown}  (${file.action === 'replace' ? 'whole file' : file.action === 'merge-json' ? 'add these entries' : 'add this line'})\n`;
  if (file.copyOf) return `${head}# ${file.about}: a copy of ${file.copyOf}\n`;
  // JSON has no comments: say what it does above it. The other formats carry their own comment.
  const about = file.action === 'merge-json' ? [file.about, ...(file.notes ?? [])].map((l) => `# ${l}\n`).join('') : '';
  return `${head}${about}${file.content}`;
}

async function writeAtomic(file: string, content: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.berth-${process.pid}.tmp`;
  await writeFile(tmp, content, { mode: 0o644 });
  await rename(tmp, file);
}

async function readExisting(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function writeNodeFile(root: string, file: NodeFile): Promise<string> {
  const target = path.join(root, file.path);
  if (file.action === 'replace') {
    await writeAtomic(target, file.content);
    return target;
  }
  const existing = await readExisting(target);
  if (file.action === 'merge-json') {
    let doc: unknown = {};
    try {
      doc = existing?.trim() ? JSON.parse(existing) : {};
    } catch {
      throw new NodeConfigError(`${target} is not valid JSON; fix or remove it, then run again (nothing was written to it)`);
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
      throw new NodeConfigError(`${target} does not hold a JSON object; fix it, then run again`);
    const merged = mergeDaemonJson(doc as Record<string, unknown>, JSON.parse(file.content) as Record<string, unknown>);
    await writeAtomic(target, `${JSON.stringify(merged, null, 2)}\n`);
    return target;
  }
  if (file.content.includes('BERTH_IP')) {
    throw new NodeConfigError("the hosts-file line needs berth's IP address: give --mirror with an IP (http(s)://10.0.0.5:5000), or leave hosts out of --only");
  }
  await writeAtomic(target, mergeHostsFile(existing ?? '', file.content));
  return target;
}

/** Runs the command; resolves with the exit status (2 for bad arguments, naming the fix). */
export async function nodeConfig(opts: NodeConfigOptions, io: CliIo): Promise<number> {
  try {
    const write = opts.write ?? false;
    const kinds = parseKinds(opts.only, write);
    const registries = opts.registry.map(parseRegistry);
    let ca: { pem: string; source: string } | undefined;
    if (opts.ca) {
      const source = path.resolve(io.cwd, opts.ca);
      const pem = await readFile(source, 'utf8').catch(() => {
        throw new NodeConfigError(`--ca ${JSON.stringify(opts.ca)}: cannot read ${source}`);
      });
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new NodeConfigError(`--ca ${JSON.stringify(opts.ca)}: ${source} holds no PEM certificate`);
      ca = { pem, source };
    }
    const files = generateNodeConfig({ mirror: opts.mirror, registries, ca, kinds, noFallback: opts.fallback === false });
    const root = path.resolve(io.cwd, opts.dir ?? '/');
    if (!write) {
      io.stdout.write(files.map((f) => render(f, path.join(root, f.path))).join('\n'));
      return 0;
    }
    for (const file of files) {
      if (file.action === 'merge-json' && file.content.trim() === '{}') {
        io.stdout.write(`${path.join(root, file.path)}: ${file.about}\n`);
        continue;
      }
      const target = await writeNodeFile(root, file);
      io.stdout.write(`wrote ${target}: ${file.about}\n`);
    }
    return 0;
  } catch (err) {
    if (!(err instanceof NodeConfigError)) throw err;
    io.stderr.write(`${err.report()}\n`);
    return err.exitCode;
  }
}
