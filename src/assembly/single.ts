/** @module assembly/single — berth as one process over its local stores: the shared assembly with nothing added. */
import type { BerthConfig } from '../config/types.js';
import { assemble, type App, type AppDeps } from './app.js';

export function createSingle(config: BerthConfig, deps: AppDeps): Promise<App> {
  return assemble(config, deps, {});
}
