/**
 * @module e2e/deploy.test — deploy/: the Kubernetes manifests and the Helm chart parse, agree with each other and with what
 * berth serves (config check, routes, port); the DaemonSet's script runs for real and containerd pulls through what it wrote;
 * the Dockerfile builds what `npm run build` makes and runs berth as non-root.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { BERTH_BIN, type Berth, startBerth } from '../fixtures/berth.js';
import { type Containerd, startContainerd } from '../fixtures/clients.js';
import { renderChart } from '../fixtures/helm.js';
import { type BuiltImage, buildImage, pushImage } from '../fixtures/image.js';
import { makeTempDir, removeDir, run, waitFor } from '../fixtures/proc.js';
import { type Registry, startRegistry } from '../fixtures/registry.js';

/** The checkout root, from dist/test/e2e. */
const ROOT = path.resolve(path.dirname(BERTH_BIN), '..');
const K8S = path.join(ROOT, 'deploy/kubernetes');
const CHART = path.join(ROOT, 'deploy/helm/berth');

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- manifests are untyped YAML

function docsOf(text: string, where: string): Obj[] {
  return parseAllDocuments(text).flatMap((d) => {
    assert.deepEqual(d.errors.map(String), [], `${where} parses`);
    const v = d.toJS() as Obj | null;
    return v ? [v] : [];
  });
}

async function plainManifests(): Promise<Obj[]> {
  const files = (await readdir(K8S)).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort();
  const docs: Obj[] = [];
  for (const f of files) docs.push(...docsOf(await readFile(path.join(K8S, f), 'utf8'), f));
  return docs;
}

const find = (docs: Obj[], kind: string): Obj => {
  const d = docs.find((x) => x['kind'] === kind);
  assert.ok(d, `a ${kind}`);
  return d;
};
const container = (workload: Obj): Obj => workload['spec']['template']['spec']['containers'][0];
const envOf = (c: Obj): Record<string, Obj> => Object.fromEntries((c['env'] as Obj[]).map((e) => [e['name'], e]));

/** Drops what legitimately differs between plain manifests and a Helm release (labels, annotations, comments). */
function normalise(doc: Obj): Obj {
  const copy = structuredClone(doc);
  const strip = (o: unknown): void => {
    if (Array.isArray(o)) o.forEach(strip);
    else if (o && typeof o === 'object') {
      const r = o as Obj;
      delete r['labels'];
      delete r['annotations'];
      delete r['matchLabels'];
      if (r['kind'] === 'Service' || (r['ports'] && r['selector'] && !r['template'])) delete r['selector'];
      Object.values(r).forEach(strip);
    }
  };
  strip(copy);
  if (copy['kind'] === 'ConfigMap') copy['data'] = { 'config.yml': parse(copy['data']['config.yml']) };
  return copy;
}

/** Checks the wiring inside one set of objects (plain or rendered), whatever their names. */
async function checkWiring(docs: Obj[], where: string): Promise<void> {
  const sts = find(docs, 'StatefulSet');
  const svc = find(docs, 'Service');
  const cm = find(docs, 'ConfigMap');
  const ds = find(docs, 'DaemonSet');
  const c = container(sts);
  const podLabels = sts['spec']['template']['metadata']['labels'] as Obj;
  for (const [k, v] of Object.entries(sts['spec']['selector']['matchLabels'] as Obj)) assert.equal(podLabels[k], v, `${where}: StatefulSet selector ${k}`);
  for (const [k, v] of Object.entries(svc['spec']['selector'] as Obj)) assert.equal(podLabels[k], v, `${where}: Service selector ${k}`);
  const dsLabels = ds['spec']['template']['metadata']['labels'] as Obj;
  for (const [k, v] of Object.entries(ds['spec']['selector']['matchLabels'] as Obj)) assert.equal(dsLabels[k], v, `${where}: DaemonSet selector ${k}`);
  assert.notEqual(
    svc['spec']['selector']['app.kubernetes.io/component'],
    dsLabels['app.kubernetes.io/component'],
    `${where}: the Service selects berth, not the DaemonSet`,
  );

  // The config berth is started with is the ConfigMap's, and it passes `berth config check`.
  assert.deepEqual(c['args'], ['serve', '--config', '/etc/berth/config.yml']);
  const configMount = (c['volumeMounts'] as Obj[]).find((m) => m['mountPath'] === '/etc/berth');
  const configVolume = (sts['spec']['template']['spec']['volumes'] as Obj[]).find((v) => v['name'] === configMount?.['name']);
  assert.equal(configVolume?.['configMap']?.['name'], cm['metadata']['name'], `${where}: /etc/berth is the ConfigMap`);
  const effective = await configCheck(cm['data']['config.yml'], docs);
  const port = listenPort(effective);
  assert.equal(
    (c['volumeMounts'] as Obj[]).find((m) => m['name'] === 'data')?.['mountPath'],
    effective['storage']['filesystem']['rootdirectory'],
    `${where}: the volume is the store`,
  );
  assert.ok((sts['spec']['volumeClaimTemplates'] as Obj[]).some((t) => t['metadata']['name'] === 'data'));

  // Ports and probes name what berth listens on and serves.
  const ports = c['ports'] as Obj[];
  assert.deepEqual(
    ports.map((p) => [p['name'], p['containerPort']]),
    [['registry', port]],
    `${where}: containerPort is config's http.addr port`,
  );
  assert.equal(c['livenessProbe']['httpGet']['path'], '/healthz');
  assert.equal(c['startupProbe']['httpGet']['path'], '/healthz');
  assert.equal(c['readinessProbe']['httpGet']['path'], '/readyz');
  for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) assert.equal(c[probe]['httpGet']['port'], 'registry', `${where}: ${probe} port`);
  assert.ok(c['resources']['requests']['cpu'] && c['resources']['requests']['memory'], `${where}: resource requests`);
  assert.equal(svc['spec']['ports'][0]['targetPort'], 'registry');
  assert.equal(sts['spec']['template']['spec']['securityContext']['runAsNonRoot'], true);

  // The DaemonSet writes hosts.toml for the registries berth mirrors, pointing at this Service.
  const dsEnv = envOf(container(ds));
  assert.equal(dsEnv['BERTH_SERVICE']?.['value'], `${svc['metadata']['name']}.${svc['metadata']['namespace']}.svc`);
  assert.equal(Number(dsEnv['BERTH_PORT']?.['value']), svc['spec']['ports'][0]['port']);
  // config check prints a single upstream as distribution's proxy: section.
  const mirrored = (effective['upstreams'] ?? [effective['proxy']]).flatMap((u: Obj) => u['hosts'] ?? []) as string[];
  for (const r of String(dsEnv['REGISTRIES']?.['value']).split(/\s+/)) assert.ok(mirrored.includes(r), `${where}: berth mirrors ${r} (proxy.hosts)`);
  const hostPath = ds['spec']['template']['spec']['volumes'][0]['hostPath']['path'] as string;
  assert.equal(container(ds)['volumeMounts'][0]['mountPath'], `${dsEnv['HOST_ROOT']?.['value']}${hostPath}`, `${where}: the node's certs.d is under HOST_ROOT`);
  assert.equal(hostPath, '/etc/containerd/certs.d');
}

/** `berth config check` on the ConfigMap's config.yml, with the Secret's values as the StatefulSet passes them. */
/** The port of `http.addr` as `berth config check` prints it (`:5000`, `[::1]:5000`). */
function listenPort(effective: Obj): number {
  return Number(String(effective['http']['addr']).split(':').pop());
}

async function configCheck(configYml: string, docs: Obj[]): Promise<Obj> {
  const dir = await makeTempDir('berth-cfgcheck');
  try {
    const file = path.join(dir, 'config.yml');
    await writeFile(file, configYml);
    const secret = docs.find((d) => d['kind'] === 'Secret');
    const env: Record<string, string> = {};
    for (const [name, e] of Object.entries(envOf(container(find(docs, 'StatefulSet'))))) {
      const ref = e['valueFrom']?.['secretKeyRef'];
      if (ref && secret && secret['metadata']['name'] === ref['name']) env[name] = secret['stringData'][ref['key']];
    }
    const { stdout } = await run(process.execPath, [BERTH_BIN, 'config', 'check', file], { env });
    return parse(stdout) as Obj;
  } finally {
    await removeDir(dir);
  }
}

describe('deploy/: Kubernetes manifests, Helm chart, Dockerfile', { timeout: 180_000 }, () => {
  let plain: Obj[];
  before(async () => {
    plain = await plainManifests();
  });

  it('the plain manifests parse, are all listed in kustomization.yaml, and hold only placeholder secrets', async () => {
    assert.deepEqual(plain.map((d) => d['kind']).sort(), ['ConfigMap', 'DaemonSet', 'Namespace', 'Secret', 'Service', 'StatefulSet']);
    for (const d of plain) {
      assert.ok(d['apiVersion'] && d['metadata']?.['name'], `${d['kind']} has apiVersion and name`);
      if (d['kind'] !== 'Namespace') assert.equal(d['metadata']['namespace'], 'berth', `${d['kind']} namespace`);
    }
    const kustomization = parse(await readFile(path.join(K8S, 'kustomization.yaml'), 'utf8')) as Obj;
    const files = (await readdir(K8S)).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort();
    assert.deepEqual([...kustomization['resources']].sort(), files);
    for (const v of Object.values(find(plain, 'Secret')['stringData'] as Obj)) assert.equal(v, 'change-me');
  });

  it("the plain manifests are wired together and match berth's config, port and probe paths", async () => {
    await checkWiring(plain, 'deploy/kubernetes');
  });

  it('the Helm chart renders the same objects as the plain manifests, and its options work', async (t) => {
    const rendered = await renderChart(CHART, { release: 'berth', namespace: 'berth' });
    const docs = [...rendered.files].filter(([f]) => f.endsWith('.yaml')).flatMap(([f, t]) => docsOf(t, `${rendered.engine}: ${f}`));
    assert.ok(rendered.files.get('NOTES.txt')?.includes('port-forward svc/berth 5000'), 'NOTES.txt renders');
    await checkWiring(docs, `helm (${rendered.engine})`);
    // Same objects as deploy/kubernetes (the Namespace comes from `helm install --create-namespace`).
    for (const want of plain.filter((d) => d['kind'] !== 'Namespace')) {
      const got = docs.find((d) => d['kind'] === want['kind']);
      assert.deepEqual(normalise(got ?? {}), normalise(want), `helm ${want['kind']} equals deploy/kubernetes`);
    }

    const custom = await renderChart(CHART, {
      release: 'edge',
      namespace: 'site-7',
      values: {
        nodeConfig: { enabled: false },
        credentials: { existingSecret: 'harbor-creds' },
        persistence: { size: '200Gi', storageClassName: 'local-ssd' },
        hostAliases: [{ ip: '10.10.102.190', hostnames: ['harbor.xing.com'] }],
      },
    });
    const customDocs = [...custom.files].filter(([f]) => f.endsWith('.yaml')).flatMap(([f, t]) => docsOf(t, f));
    assert.deepEqual(customDocs.map((d) => d['kind']).sort(), ['ConfigMap', 'Service', 'StatefulSet']);
    const sts = find(customDocs, 'StatefulSet');
    assert.equal(sts['metadata']['namespace'], 'site-7');
    assert.equal(envOf(container(sts))['REGISTRY_PROXY_PASSWORD']?.['valueFrom']['secretKeyRef']['name'], 'harbor-creds');
    assert.equal(sts['spec']['volumeClaimTemplates'][0]['spec']['storageClassName'], 'local-ssd');
    assert.equal(sts['spec']['volumeClaimTemplates'][0]['spec']['resources']['requests']['storage'], '200Gi');
    assert.deepEqual(sts['spec']['template']['spec']['hostAliases'], [{ ip: '10.10.102.190', hostnames: ['harbor.xing.com'] }], 'hostAliases reach the pod');
    t.diagnostic(`helm chart rendered with: ${rendered.engine === 'helm' ? 'helm template' : 'the built-in Go-template subset renderer (helm not installed)'}`);
  });

  it('the Dockerfile is multi-stage on node 20, copies what the build makes, and runs berth serve as non-root', async () => {
    const text = await readFile(path.join(ROOT, 'Dockerfile'), 'utf8');
    const lines = text.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
    const stages = lines.filter((l) => /^FROM\s/.test(l));
    assert.ok(stages.length >= 2, 'multi-stage');
    for (const s of stages) assert.match(s, /^FROM node:\$\{NODE_VERSION\}-[a-z]+-slim/);
    assert.match(text, /^ARG NODE_VERSION=20$/m);
    assert.doesNotMatch(lines.join('\n'), /--platform=|amd64|x86_64|aarch64|arm64/i, 'no instruction pinned to one architecture');
    const final = text.slice(text.lastIndexOf('\nFROM '));
    const user = /^USER\s+(\S+)/m.exec(final)?.[1] ?? '';
    assert.ok(/^[1-9]\d*(:\d+)?$/.test(user), `runs as a numeric non-root user, got ${user}`);
    const entry = JSON.parse(/^ENTRYPOINT\s+(.+)$/m.exec(final)?.[1] ?? '[]') as string[];
    const cmd = JSON.parse(/^CMD\s+(.+)$/m.exec(final)?.[1] ?? '[]') as string[];
    assert.deepEqual([...entry, ...cmd], ['berth', 'serve', '--config', '/etc/berth/config.yml']);
    const effective = await configCheck(await readFile(path.join(ROOT, 'deploy/docker/config.yml'), 'utf8'), plain);
    assert.equal(/^EXPOSE\s+(\d+)/m.exec(final)?.[1], String(listenPort(effective)));
    assert.match(final, /^VOLUME \["\/var\/lib\/berth"\]$/m);
    assert.equal(effective['storage']['filesystem']['rootdirectory'], '/var/lib/berth');
    // Every file the final stage copies out of the build stage is something `npm run build` made here.
    for (const m of final.matchAll(/^COPY --from=build (.+) \S+$/gm)) {
      for (const src of m[1]!.split(/\s+/)) assert.ok(existsSync(path.join(ROOT, src.replace(/^\/app\//, ''))), `${src} exists after the build`);
    }
    const ignore = (await readFile(path.join(ROOT, '.dockerignore'), 'utf8')).split('\n');
    assert.equal(
      ignore.find((l) => l && !l.startsWith('#')),
      '*',
      '.dockerignore sends only what it allows',
    );
    for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'bin/', 'scripts/', 'src/', 'ui/', 'deploy/docker/config.yml']) {
      assert.ok(ignore.includes(`!${needed}`), `.dockerignore lets ${needed} in`);
    }
  });

  describe('with a running berth', () => {
    let reg: Registry;
    let image: BuiltImage;
    let berth: Berth;
    let ctd: Containerd;
    let work: string;

    before(async () => {
      reg = await startRegistry();
      image = await buildImage({ layers: 1, layerSize: 512 * 1024, tag: 'v1' });
      await pushImage(image, reg.url, 'xing/app:v1');
      // The ConfigMap's config as is, except where this machine differs: address, store, central registry.
      const config = parse(find(plain, 'ConfigMap')['data']['config.yml']) as Obj;
      delete config['http']['addr'];
      delete config['storage']['filesystem'];
      config['proxy']['remoteurl'] = reg.url;
      berth = await startBerth({ config });
      ctd = await startContainerd();
      work = await makeTempDir('berth-deploy');
    });

    after(async () => {
      await ctd?.stop();
      await berth?.stop();
      await reg?.stop();
      await image?.remove();
      if (work) await removeDir(work);
    });

    it('berth answers the probe paths and serves the dashboard', async () => {
      for (const p of ['/healthz', '/readyz', '/v2/']) assert.equal((await fetch(`${berth.url}${p}`)).status, 200, p);
      const ui = await fetch(`${berth.url}/ui/`);
      assert.equal(ui.status, 200);
      assert.match(ui.headers.get('content-type') ?? '', /^text\/html/);
    });

    it("the DaemonSet's script writes hosts.toml for the Service, and containerd pulls through berth with it", async () => {
      const ds = find(plain, 'DaemonSet');
      const c = container(ds);
      const bin = path.join(work, 'bin');
      const hostRoot = path.join(work, 'host');
      await mkdir(bin);
      // In the image `berth` is on PATH; here it is this checkout's.
      await symlink(BERTH_BIN, path.join(bin, 'berth'));
      const env: Record<string, string> = Object.fromEntries((c['env'] as Obj[]).map((e) => [e['name'], String(e['value'])]));
      // The Service's name resolves to its ClusterIP in the pod; here berth's address plays that part.
      Object.assign(env, { BERTH_SERVICE: '127.0.0.1', BERTH_PORT: String(berth.port), HOST_ROOT: hostRoot, PATH: `${bin}:${process.env['PATH']}` });
      const child = spawn(c['command'][0], [...c['command'].slice(1), ...c['args']], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (b: Buffer) => (output += b.toString()));
      child.stderr.on('data', (b: Buffer) => (output += b.toString()));
      const certsDir = path.join(hostRoot, ds['spec']['template']['spec']['volumes'][0]['hostPath']['path']);
      const hostsToml = path.join(certsDir, 'harbor.example.com', 'hosts.toml');
      try {
        await waitFor(() => existsSync(hostsToml) && output.includes('wrote'), 30_000, { what: `the DaemonSet script to write ${hostsToml}` });
      } finally {
        process.kill(-child.pid!, 'SIGKILL');
      }
      assert.match(await readFile(hostsToml, 'utf8'), new RegExp(`^\\[host\\."http://127\\.0\\.0\\.1:${berth.port}"\\]$`, 'm'));

      await ctd.pull('harbor.example.com/xing/app:v1', { hostsDir: certsDir });
      assert.equal((await ctd.images()).find((i) => i.ref === 'harbor.example.com/xing/app:v1')?.digest, image.manifestDigest);
      const layerGets = (await reg.requests()).filter((r) => r.method === 'GET' && r.uri.includes(image.layers[0]!.digest));
      assert.equal(layerGets.length, 1, 'the layer crossed from the central registry once, to berth');
    });
  });
});
