/**
 * @module e2e/fleet-scale.test — the scale harness of `npm run fleet-scale`, small: 20 simulated
 * sites, a burst of 3 Harbor pre-heats, two hubs on one redis-server with the lead SIGKILLed mid-burst,
 * and one hub on hub.db SIGKILLed and restarted: every job SUCCESS, no part failed, and with two hubs
 * no poll refused (503) over their start and the change of lead.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeFleetScale, runFleetScale } from '../../bench/fleet-scale.js';

after(() => closeFleetScale());

const small = { sites: 20, intervalMs: 500, jobs: 3, timeoutMs: 60_000 };

test('two hubs on Redis, the lead killed mid-burst: every job SUCCESS, 0 false failures', async () => {
  const out = await runFleetScale({ ...small, restart: false, replicas: 2, killReplica: true });
  assert.deepEqual(out['jobStates'], { SUCCESS: 3 }, JSON.stringify(out));
  assert.equal(out['failedParts'], 0, JSON.stringify(out));
  // Neither the hubs' start nor the change of lead refuses a site's poll: one with no results gets
  // no tasks from the hub that does not lead, one with results waits for the next lead.
  assert.equal(out['poll503'], 0, JSON.stringify(out));
});

test('one hub on hub.db, killed and restarted mid-burst: every job SUCCESS, 0 false failures', async () => {
  const out = await runFleetScale({ ...small, restart: true, replicas: 1, killReplica: false });
  assert.deepEqual(out['jobStates'], { SUCCESS: 3 }, JSON.stringify(out));
  assert.equal(out['failedParts'], 0, JSON.stringify(out));
});
