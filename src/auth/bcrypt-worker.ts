/** @module auth/bcrypt-worker — runs bcrypt comparisons on a worker thread, so the event loop keeps serving meanwhile. */
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import bcrypt from 'bcryptjs';

// On Linux this nices only the calling thread, this worker: under load, serving pulls comes
// before checking passwords; on an idle machine checks run at full speed all the same.
try {
  setPriority(19);
} catch {
  // Not permitted or not supported: checks still run off the event loop.
}

interface Job {
  readonly id: number;
  readonly password: string;
  readonly hash: string;
}

parentPort?.on('message', (job: Job) => {
  let ok = false;
  try {
    ok = bcrypt.compareSync(job.password, job.hash);
  } catch {
    ok = false;
  }
  parentPort?.postMessage({ id: job.id, ok });
});
