/** @module storage/local.test — the local implementations of every shared-state port, run through the ports' contract suites. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blobIndexContract, repositoryIndexContract } from '../ports/contract/index-ports.js';
import { heldTagsContract, replicationQueueContract, uploadSessionsContract } from '../ports/contract/push-ports.js';
import { fillCoordinatorContract } from '../ports/contract/fills-contract.js';
import { LocalFills } from '../cache/local-fills.js';
import { openLocalIndex, openLocalPush } from './local.js';

function clock() {
  let t = 1_700_000_000_000;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

async function localIndex() {
  const root = mkdtempSync(join(tmpdir(), 'berth-ports-'));
  const { now, advance } = clock();
  const ports = openLocalIndex(root, now);
  return {
    ...ports,
    advance,
    close: async () => {
      ports.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

async function localPush() {
  const root = mkdtempSync(join(tmpdir(), 'berth-ports-'));
  const { now, advance } = clock();
  const ports = openLocalPush(root, now);
  return {
    ...ports,
    advance,
    close: async () => {
      ports.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

blobIndexContract('local', localIndex);
repositoryIndexContract('local', localIndex);
replicationQueueContract('local', localPush);
heldTagsContract('local', localPush);
uploadSessionsContract('local', localPush);
fillCoordinatorContract('local', () => new LocalFills());
