/** @module main — the entry: reads argv and env and builds the commands (src/assembly/ builds `berth serve`, one module per mode); nothing else reads process state. */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import type { ServeFlags } from './config/load.js';
import type { NodeConfigOptions } from './cli/node-config.js';
import { registerQueue } from './cli/queue.js';
import { DEFAULT_SERVER, SERVER_DAYS } from './cli/help-defaults.js';
import { EXIT, UsageError, type ExitCode } from './oci/errors.js';

/*
 * Each command's code is imported inside its action, never here: `berth version` and `--help`
 * then load commander and nothing else, and `serve` does not load the store tools, node-forge or
 * the warm-up progress bars (docs/design.md §11: main picks the command). main.test checks it.
 */

/** The soft limit on open files (node raises it to the hard limit at start), from /proc on Linux. */
function openFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m?.[1] === undefined ? undefined : m[1] === 'unlimited' ? Infinity : Number(m[1]);
  } catch {
    return undefined;
  }
}

function readIfThere(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** What the entry (bin/berth.js) learns from a command. */
export interface MainHooks {
  /** `serve` listens. */
  readonly ready?: () => void;
  /** `serve`'s first requests are over: what starting and serving them compiled has been compiled (bin/berth.js then writes the code cache). */
  readonly startupWork?: () => void;
}

export async function main(argv: string[], env: Record<string, string | undefined>, hooks: MainHooks = {}): Promise<number> {
  let exitCode = 0;
  const cwd = process.cwd();
  const program = new Command('berth')
    .description('An edge cache for container images: an OCI registry that fetches each image from the central registry once.')
    .exitOverride()
    .showHelpAfterError();

  program
    .command('serve')
    .description('run the cache (with no config and no flags: listen on :5000, store in ./berth-data, mirror Docker Hub)')
    .option('-c, --config <file>', 'distribution-style config.yml')
    .option('--listen <addr>', 'address to listen on, e.g. :5000 or 127.0.0.1:5000')
    .option('--root <dir>', 'storage root directory')
    .option('--upstream <url>', 'central registry to mirror ("none" for a plain registry)')
    .option('--username <user>', 'upstream username')
    .option('--password-file <file>', 'file holding the upstream password')
    .option(
      '--workers <n>',
      'serving processes sharing the store and the listening addresses: auto (one per core from three cores up, one process on two) or a count',
    )
    .action(async (opts: { config?: string } & ServeFlags) => {
      const [{ loadConfig }, { serve }, { COUNT_ENV, SLOT_ENV }, { readCgroupLimits }] = await Promise.all([
        import('./config/load.js'),
        import('./cli/serve.js'),
        import('./workers/worker-protocol.js'),
        import('./workers/worker-count.js'),
      ]);
      const { config, warnings } = loadConfig({ file: opts.config ?? env['BERTH_CONFIG'], env, flags: opts, cwd, fdLimit: openFileLimit() });
      // A serving worker started by the primary (http.workers above 1) knows its slot from the environment.
      const port = {
        // With a callback a send to a primary that is gone fails quietly (this worker exits with it).
        send: (m: unknown) => process.connected && process.send?.(m, undefined, undefined, () => undefined),
        on: (e: 'message', l: (m: unknown) => void) => process.on(e, l),
        off: (e: 'message', l: (m: unknown) => void) => process.off(e, l),
      };
      // node:cluster (with child_process, about 20 ms of CPU) is loaded by a worker and by a primary
      // starting workers. The primary gives each worker its slot in the environment (node removes
      // its own NODE_UNIQUE_ID before this runs); cluster.isWorker still decides.
      const loadCluster = async () => (await import('node:cluster')).default;
      const cluster = env[SLOT_ENV] !== undefined ? await loadCluster() : undefined;
      const worker = cluster?.isWorker ? { slot: Number(env[SLOT_ENV] ?? 0), count: Number(env[COUNT_ENV] ?? 1), port } : undefined;
      exitCode = await serve(config, warnings, {
        signals: process,
        faults: process,
        cluster: loadCluster,
        node: { execArgv: process.execArgv, options: env['NODE_OPTIONS'] },
        cgroup: readCgroupLimits(readIfThere),
        ...(worker ? { worker } : {}),
        ...(hooks.ready ? { ready: hooks.ready } : {}),
        ...(hooks.startupWork ? { startupWork: hooks.startupWork } : {}),
      });
      // The IPC channel would keep a drained worker alive: let go of it, and the process ends.
      cluster?.worker?.disconnect();
    });

  const configCmd = program.command('config').description('configuration tools');
  configCmd
    .command('check')
    .description('validate a config file offline and print the effective configuration')
    .argument('<file>', 'config file')
    .action(async (file: string) => {
      const [{ loadConfig }, { describeConfig }, { stringify }] = await Promise.all([
        import('./config/load.js'),
        import('./config/describe.js'),
        import('yaml'),
      ]);
      const { config, warnings } = loadConfig({ file, env, cwd });
      for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
      process.stdout.write(stringify(describeConfig(config)));
    });

  registerQueue(program, {
    env,
    cwd,
    now: Date.now,
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    setExit: (code) => {
      exitCode = code;
    },
  });
  program
    .command('node-config')
    .description("print (or --write) the files that point a node's containerd, Docker, CRI-O/podman or /etc/hosts at berth")
    .requiredOption('--mirror <url>', 'berth as the nodes reach it, e.g. http://10.0.0.5:5000')
    .requiredOption('--registry <name...>', "registries to pull through berth, e.g. harbor.xing.com docker.io; NAME=PREFIX for berth's path prefix")
    .option('--ca <file>', "CA certificate of berth's TLS certificate, copied beside the files that need it")
    .option('--only <kinds>', 'comma-separated: containerd,docker,registries,hosts (default: all; --write leaves hosts out unless named)')
    .option('--no-fallback', 'containerd: fail a pull when berth cannot answer instead of going to the registry itself')
    .option('--write', 'write the files (merging into daemon.json and /etc/hosts) instead of printing them')
    .option('--dir <dir>', "root the node's paths are printed and, with --write, written under (default /)")
    .action(async (opts: NodeConfigOptions) => {
      const { nodeConfig } = await import('./cli/node-config.js');
      exitCode = await nodeConfig(opts, { cwd, stdout: process.stdout, stderr: process.stderr });
    });

  program
    .command('warm')
    .description('pre-load images into a running berth through its admin API; exit 0 when every image is fully cached, 1 otherwise')
    .argument('<image...>', 'images as [registry/]repository[:tag|@digest]; a registry part routes as pulls do')
    .option('--server <url>', `the berth to warm (default: $BERTH_SERVER, else ${DEFAULT_SERVER})`)
    .option('--platform <list>', 'os/arch[/variant],... to fetch from multi-platform images (default: linux/amd64)')
    .option('--all-platforms', 'fetch every platform of multi-platform images')
    .option('--pin', 'pin the images: eviction never removes them')
    .option('--username <user>', 'admin API username (default: $BERTH_ADMIN_USERNAME)')
    .option('--password-file <file>', 'file holding the admin API password (default: $BERTH_ADMIN_PASSWORD)')
    .action(
      async (
        images: string[],
        opts: { server?: string; platform?: string; allPlatforms?: boolean; pin?: boolean; username?: string; passwordFile?: string },
      ) => {
        let password = env['BERTH_ADMIN_PASSWORD'];
        if (opts.passwordFile !== undefined) {
          try {
            password = readFileSync(opts.passwordFile, 'utf8').replace(/[\r\n]+$/, '');
          } catch (err) {
            throw new UsageError(`cannot read --password-file ${opts.passwordFile}: ${(err as Error).message}`, 'berth warm');
          }
        }
        const username = opts.username ?? env['BERTH_ADMIN_USERNAME'];
        const { warmCommand } = await import('./cli/warm.js');
        exitCode = await warmCommand(
          images,
          {
            server: opts.server ?? env['BERTH_SERVER'] ?? DEFAULT_SERVER,
            platform: opts.platform,
            allPlatforms: opts.allPlatforms,
            pin: opts.pin,
            ...(username !== undefined ? { username, password } : {}),
          },
          { stdout: process.stdout, stderr: process.stderr, tty: Boolean(process.stderr.isTTY), now: Date.now },
        );
      },
    );

  const storeIo = { out: (line: string) => process.stdout.write(`${line}\n`), now: Date.now };
  const storeConfig = async (file: string | undefined) => (await import('./config/load.js')).loadConfig({ file: file ?? env['BERTH_CONFIG'], env, cwd }).config;
  const store = () => import('./cli/store.js');
  program
    .command('fsck')
    .description('re-verify the digest of every stored blob; with --repair, remove those that do not match')
    .option('-c, --config <file>', 'config naming the store')
    .option('--repair', 'remove corrupt blobs (they are fetched again on the next pull)')
    .action(async (opts: { config?: string; repair?: boolean }) => {
      exitCode = await (await store()).runFsck(await storeConfig(opts.config), opts.repair ?? false, storeIo);
    });
  program
    .command('gc')
    .description('run one eviction pass (proxy.ttl, storage.maxsize) and report what it freed')
    .option('-c, --config <file>', 'config naming the store')
    .action(async (opts: { config?: string }) => {
      exitCode = await (await store()).runGc(await storeConfig(opts.config), storeIo);
    });
  program
    .command('ls')
    .description('list cached repositories, tags, sizes and last pull')
    .option('-c, --config <file>', 'config naming the store')
    .option('--json', "print the images and every stored blob's digest as JSON (a site's state for berth export --since)")
    .action(async (opts: { config?: string; json?: boolean }) => {
      exitCode = await (await store()).runLs(await storeConfig(opts.config), storeIo, opts.json ?? false);
    });

  const readPassword = (file: string | undefined, command: string) => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file, 'utf8').replace(/[\r\n]+$/, '');
    } catch (err) {
      throw new UsageError(`cannot read --password-file ${file}: ${(err as Error).message}`, command);
    }
  };
  const bundleIo = {
    out: (line: string) => process.stdout.write(`${line}\n`),
    err: (line: string) => process.stderr.write(`${line}\n`),
    stderr: process.stderr,
    tty: Boolean(process.stderr.isTTY),
    now: Date.now,
  };
  program
    .command('export')
    .description(
      'write images (with their signatures and referrers) as an OCI image layout for a site without a link; exit 1 naming what could not be exported',
    )
    .argument('<image...>', 'images as [registry/]repository[:tag|@digest], named so in the bundle')
    .requiredOption('-o, --output <path>', 'the bundle: a directory, or one tar file when the path ends in .tar')
    .option('-c, --config <file>', "read the store this config names (berth stopped or running); with --from-registry, take its upstream's credentials")
    .option('--server <url>', 'read through a running berth, e.g. http://127.0.0.1:5000')
    .option('--from-registry <url>', 'read from a registry, e.g. https://harbor.xing.com')
    .option('--platform <list>', 'os/arch[/variant],... to take from multi-platform images (default: linux/amd64)')
    .option('--all-platforms', 'take every platform of multi-platform images')
    .option(
      '--since <bundle>',
      'leave out blobs an earlier bundle, a `berth ls --json` state file, or site:NAME (what the site last told the hub given as --server) holds',
    )
    .option('--username <user>', 'registry username for --server or --from-registry (default with --config: the credentials of its upstream at that URL)')
    .option('--password-file <file>', 'file holding the password for --username')
    .option('-q, --quiet', 'no progress bar')
    .action(
      async (
        images: string[],
        opts: {
          output: string;
          config?: string;
          server?: string;
          fromRegistry?: string;
          platform?: string;
          allPlatforms?: boolean;
          since?: string;
          username?: string;
          passwordFile?: string;
          quiet?: boolean;
        },
      ) => {
        // --config beside --from-registry lends the credentials of the config's upstream at that URL.
        const sources = [opts.fromRegistry === undefined ? opts.config : undefined, opts.server, opts.fromRegistry].filter((s) => s !== undefined);
        if (sources.length > 1) throw new UsageError('give one of --config, --server and --from-registry', 'berth export');
        if (opts.platform && opts.allPlatforms) throw new UsageError('--platform and --all-platforms are both given; use one', 'berth export');
        if (opts.since?.startsWith('site:') && opts.server === undefined)
          throw new UsageError(
            '--since site:NAME reads the list of the fleet hub: give the hub as --server URL (with --username and --password-file)',
            'berth export',
          );
        const [{ exportBundle }, { storeSource, httpSource, upstreamCredentials, hubHeld }, { parsePlatform, DEFAULT_PLATFORMS }] = await Promise.all([
          import('./cli/bundle-export.js'),
          import('./cli/bundle-sources.js'),
          import('./oci/platform.js'),
        ]);
        let platforms;
        try {
          const listed = (opts.platform ?? '').split(',').filter((p) => p.trim() !== '');
          platforms = opts.allPlatforms ? ('all' as const) : listed.length > 0 ? listed.map((p) => parsePlatform(p.trim())) : DEFAULT_PLATFORMS;
        } catch (err) {
          throw new UsageError((err as Error).message, 'berth export');
        }
        const password = readPassword(opts.passwordFile, 'berth export') ?? env['BERTH_REGISTRY_PASSWORD'];
        let creds: { username?: string; password?: string } = opts.username !== undefined ? { username: opts.username, password } : {};
        const remote = opts.fromRegistry ?? (opts.config === undefined ? (opts.server ?? env['BERTH_SERVER']) : undefined);
        let source;
        try {
          if (opts.fromRegistry !== undefined && opts.config !== undefined && opts.username === undefined)
            creds = upstreamCredentials((await storeConfig(opts.config)).upstreams, opts.fromRegistry) ?? {};
          source = remote
            ? httpSource(remote, { berth: opts.fromRegistry === undefined, ...creds })
            : await storeSource(await storeConfig(opts.config), Date.now);
        } catch (err) {
          bundleIo.err(`berth export: ${(err as Error).message}`);
          exitCode = 1;
          return;
        }
        try {
          const siteHeld = (site: string) => hubHeld(remote!, creds, site);
          exitCode = await exportBundle(source, images, { output: opts.output, platforms, since: opts.since, siteHeld, quiet: Boolean(opts.quiet) }, bundleIo);
        } catch (err) {
          bundleIo.err(`berth export: ${(err as Error).message}`);
          exitCode = 1;
        } finally {
          await source.close();
        }
      },
    );
  program
    .command('import')
    .description(
      'load an OCI image layout (directory or .tar) into a stopped store (--config) or a running berth (--server), verifying every blob; images are pinned and served by their names',
    )
    .argument('<path>', 'the bundle: a layout directory or tar, as berth export or skopeo copy ... oci:DIR:NAME writes it')
    .option('-c, --config <file>', 'config naming the store (berth must be stopped)')
    .option('--server <url>', `import through a running berth's admin API, e.g. ${DEFAULT_SERVER}`)
    .option('--username <user>', 'admin API username for --server (default: $BERTH_ADMIN_USERNAME)')
    .option('--password-file <file>', 'file holding the admin API password (default: $BERTH_ADMIN_PASSWORD)')
    .option('--name <image>', "the name of the layout's one unnamed image (skopeo copy ... oci:DIR without :NAME), e.g. harbor.xing.com/xing/app:v1")
    .option('-q, --quiet', 'no progress bar')
    .action(async (path: string, opts: { config?: string; server?: string; username?: string; passwordFile?: string; name?: string; quiet?: boolean }) => {
      if (opts.config !== undefined && opts.server !== undefined) throw new UsageError('give one of --config and --server', 'berth import');
      if (opts.name !== undefined) {
        const { parseImageReference } = await import('./oci/image-ref.js');
        try {
          parseImageReference(opts.name);
        } catch (err) {
          throw new UsageError(`--name: ${(err as Error).message}`, 'berth import');
        }
      }
      const common = { quiet: Boolean(opts.quiet), ...(opts.name !== undefined ? { name: opts.name } : {}) };
      if (opts.server !== undefined) {
        const password = readPassword(opts.passwordFile, 'berth import') ?? env['BERTH_ADMIN_PASSWORD'];
        const username = opts.username ?? env['BERTH_ADMIN_USERNAME'];
        const { importToServer } = await import('./cli/bundle-import-server.js');
        exitCode = await importToServer(path, { ...common, server: opts.server, ...(username !== undefined ? { username, password } : {}) }, bundleIo);
        return;
      }
      const { importBundle } = await import('./cli/bundle-import.js');
      exitCode = await importBundle(await storeConfig(opts.config), path, common, bundleIo);
    });

  program
    .command('doctor')
    .description(
      'check every upstream from this host (DNS, connect, TLS trust, loop, credentials, token realm) and print each problem with its fix; exit 1 on any',
    )
    .option('-c, --config <file>', 'config naming the upstreams')
    .action(async (opts: { config?: string }) => {
      const { runDoctor } = await import('./cli/doctor.js');
      exitCode = await runDoctor(await storeConfig(opts.config), storeIo);
    });

  const certCmd = program.command('cert').description('TLS certificates for serving berth');
  certCmd
    .command('generate')
    .description('write a CA and a server certificate naming every --host and --ip, and print how nodes trust the CA')
    .option('--host <name...>', 'DNS name nodes use to reach berth (repeatable)')
    .option('--ip <address...>', 'IP address nodes use to reach berth (repeatable)')
    .option('--out <dir>', 'directory to write ca.crt, ca.key, tls.crt, tls.key (an existing CA there is reused)', 'berth-tls')
    .option('--days <n>', 'validity of the server certificate in days', String(SERVER_DAYS))
    .option('--port <n>', "port nodes reach berth on, used in the printed instructions (443: Docker's directory has no :port)", '5000')
    .action(async (opts: { host?: string[]; ip?: string[]; out: string; days: string; port: string }) => {
      const { generateCertificates } = await import('./cli/cert.js');
      process.stdout.write(
        generateCertificates({ hosts: opts.host ?? [], ips: opts.ip ?? [], out: opts.out, days: Number(opts.days), port: Number(opts.port) }),
      );
    });

  program
    .command('version')
    .description('print the berth version')
    .action(() => {
      process.stdout.write(`berth ${version()}\n`);
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (err) {
    return failureExit(err, (text) => process.stderr.write(text));
  }
}

/** The exit status for a command's failure, chosen by the error's type; anything unexpected is rethrown. */
export function failureExit(err: unknown, write: (text: string) => void): ExitCode {
  if (err instanceof UsageError) {
    write(`${err.report()}\n`);
    return err.exitCode;
  }
  // Commander has printed the problem (or the help) already.
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  throw err;
}
