/** @module e2e/soak.test — the short soak: 90 s of mixed traffic, outages and restarts against real parts, with no failed pull. */
/** @serial 90 s of mixed traffic with outages timed against each other. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULTS, defaultCycleMs, runSoak } from '../../soak/harness.js';
import { formatReport } from '../../soak/report.js';

test('90 s soak: no failed pull, flat memory and descriptors, every push replicated, fsck clean', { timeout: 15 * 60_000 }, async () => {
  const durationMs = 90_000;
  const report = await runSoak({ ...DEFAULTS, durationMs, cycleMs: defaultCycleMs(durationMs), log: (m) => console.log(m) });
  const text = formatReport(report);
  console.log(text);
  assert.deepEqual(report.problems, [], text);
  assert.ok(report.pulls >= 50, `enough traffic (${report.pulls} pulls)`);
  assert.ok(report.pushes >= 3, `pushes ran (${report.pushes})`);
  assert.equal(report.restarts, 2);
  assert.equal(report.outages, 1);
  assert.ok(report.fsck.checked > 0);
});
