// Checks that the real parts the tests need are installed; installs them with apt-get when run as root.
import { execFileSync, spawnSync } from 'node:child_process';

const needs = [
  ['docker-registry', 'docker-registry'],
  ['skopeo', 'skopeo'],
  ['containerd', 'containerd'],
  ['ctr', 'containerd'],
  ['dockerd', 'docker.io'],
  ['docker', 'docker.io'],
  ['htpasswd', 'apache2-utils'],
  ['openssl', 'openssl'],
  // e2e/tls.test: dockerd in a network namespace (it never verifies TLS on 127.0.0.0/8).
  ['ip', 'iproute2'],
  ['nsenter', 'util-linux'],
  // Headless browser for the dashboard tests (driven by playwright-core).
  ['chromium', 'chromium'],
  // Several replicas per site: tests start their own redis-server on loopback.
  ['redis-server', 'redis-server'],
  // e2e/podman.test: podman as a node reading node-config's registries.conf.
  ['podman', 'podman'],
  // A site's load balancer in front of its replicas (e2e/cluster-writebehind), and the bench's limit.
  ['nginx', 'nginx-light'],
];
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const missing = [...new Set(needs.filter(([cmd]) => !has(cmd)).map(([, pkg]) => pkg))];
const root = process.getuid?.() === 0;
if (missing.length > 0 && !root) {
  console.error(`berth tests need these Debian packages: ${missing.join(' ')}\n` + `Install them with: sudo apt-get install -y ${missing.join(' ')}`);
  process.exit(1);
}
if (missing.length > 0) {
  console.error(`installing test dependencies: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
}
// The stargz snapshotter (lazy-pull test), cosign (signature tests) and trixie's skopeo (zstd:chunked test) go into the git-ignored
// .tools/; each script returns at once when its tools are there already.
const repo = new URL('..', import.meta.url).pathname;
if (root) for (const script of ['.ci/stargz', '.ci/fetch-cosign', '.ci/fetch-skopeo']) execFileSync(`${repo}${script}`, [], { stdio: 'inherit' });
