/** @module auth/bcrypt-worker — runs bcrypt comparisons on a worker thread, so the event loop keeps serving meanwhile. */
import { parentPort } from 'node:worker_threads';
import bcrypt from 'bcryptjs';

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
