/** @module workers/worker-count.test — `auto` is one worker per core from three cores up, one process on two, held by a CPU quota or a memory limit, read from cgroup v2 or v1 files. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PRIMARY_MEMORY, WORKER_MEMORY, autoWorkerCount, autoWorkerReason, readCgroupLimits } from './worker-count.js';

const GiB = 1024 ** 3;

test('one per core unless a CPU quota or a memory limit allows fewer; never none', () => {
  assert.deepEqual(autoWorkerCount(8, {}), { count: 8 });
  assert.deepEqual(autoWorkerCount(3, {}), { count: 3 });
  assert.deepEqual(autoWorkerCount(32, { cpus: 3 }), { count: 3, limitedBy: 'cpu quota' });
  assert.deepEqual(autoWorkerCount(32, { cpus: 1.5 }), { count: 1, limitedBy: 'cpu quota' });
  assert.deepEqual(autoWorkerCount(32, { memoryBytes: GiB }), { count: 3, limitedBy: 'memory limit' });
  assert.deepEqual(autoWorkerCount(4, { cpus: 4, memoryBytes: 8 * GiB }), { count: 4 });
  assert.deepEqual(autoWorkerCount(16, { memoryBytes: 64 * 1024 * 1024 }), { count: 1, limitedBy: 'memory limit' });
  assert.equal(autoWorkerCount(0, {}).count, 1);
  assert.ok(PRIMARY_MEMORY + 3 * WORKER_MEMORY <= GiB, 'the Helm chart limit (1 GiB) holds three workers');
});

test('two cores or fewer: one process, and the start-up log says why', () => {
  assert.deepEqual(autoWorkerCount(2, {}), { count: 1, limitedBy: 'few cores' });
  assert.deepEqual(autoWorkerCount(2, { cpus: 4, memoryBytes: 8 * GiB }), { count: 1, limitedBy: 'few cores' });
  assert.deepEqual(autoWorkerCount(1, {}), { count: 1 });
  assert.equal(
    autoWorkerReason(1, 2, {}, 'few cores'),
    'http.workers: auto → 1 process: 2 cores; a second worker does not pay here (set http.workers to a count to choose)',
  );
  assert.equal(
    autoWorkerReason(1, 32, { cpus: 1.5 }, 'cpu quota'),
    "http.workers: auto → 1 process: 1.5 CPUs (the container's CPU quota); a second worker does not pay here (set http.workers to a count to choose)",
  );
  assert.equal(autoWorkerReason(3, 32, { memoryBytes: GiB }, 'memory limit'), "http.workers auto: 3 of 32 cores, held by the container's memory limit");
  assert.equal(autoWorkerReason(8, 8, {}, undefined), undefined);
});

const files = (map: Record<string, string>) => (path: string) => map[path];

test('reads cgroup v2 (cpu.max, memory.max) and v1 (cfs quota, limit_in_bytes), in a namespace or a named group', () => {
  assert.deepEqual(
    readCgroupLimits(files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': '150000 100000\n', '/sys/fs/cgroup/memory.max': '1073741824\n' })),
    {
      cpus: 1.5,
      memoryBytes: GiB,
    },
  );
  assert.deepEqual(
    readCgroupLimits(files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': 'max 100000\n', '/sys/fs/cgroup/memory.max': 'max\n' })),
    {},
  );
  assert.deepEqual(
    readCgroupLimits(
      files({
        '/proc/self/cgroup': '0::/kubepods/pod1/c1\n',
        '/sys/fs/cgroup/kubepods/pod1/c1/cpu.max': '200000 100000',
        '/sys/fs/cgroup/kubepods/pod1/c1/memory.max': '536870912',
      }),
    ),
    { cpus: 2, memoryBytes: GiB / 2 },
  );
  // cgroup v1 (with the hybrid unified line), the limits in named groups; "unlimited" is a huge number.
  const v1 = {
    '/proc/self/cgroup': '4:memory:/docker/abc\n1:cpu,cpuacct:/docker/abc\n0::/\n',
    '/sys/fs/cgroup/cpu/docker/abc/cpu.cfs_quota_us': '50000',
    '/sys/fs/cgroup/cpu/docker/abc/cpu.cfs_period_us': '100000',
    '/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes': '2147483648',
  };
  assert.deepEqual(readCgroupLimits(files(v1)), { cpus: 0.5, memoryBytes: 2 * GiB });
  assert.deepEqual(
    readCgroupLimits(
      files({
        '/proc/self/cgroup': '4:memory:/\n1:cpu:/\n',
        '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1',
        '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000',
        '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712',
      }),
    ),
    {},
  );
  assert.deepEqual(
    readCgroupLimits(() => undefined),
    {},
    'nothing readable: no limits',
  );
});
