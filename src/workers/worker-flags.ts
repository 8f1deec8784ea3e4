/** @module workers/worker-flags — the Node.js flags a serving worker starts with: the operator's own, plus a small young generation unless they chose one. */

/**
 * V8's young generation, per semi-space, in MiB. Node's default (16) lets tens of MiB of
 * short-lived request and fill objects sit uncollected; a serving process allocates little
 * JavaScript per byte, so a small one costs no measurable CPU and keeps resident memory down
 * (docs/performance.md).
 */
export const SEMI_SPACE_MIB = 2;

const SEMI_SPACE_FLAG = /--max-semi-space-size\b|--max-heap-size\b/;

/** The worker's execArgv: the primary's own flags, with the young-generation size added when neither they nor NODE_OPTIONS set it. */
export function workerExecArgv(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const chosen = execArgv.some((a) => SEMI_SPACE_FLAG.test(a)) || SEMI_SPACE_FLAG.test(nodeOptions ?? '');
  return chosen ? [...execArgv] : [...execArgv, `--max-semi-space-size=${SEMI_SPACE_MIB}`];
}
