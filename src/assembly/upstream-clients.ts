/** @module assembly/upstream-clients — one registry client per configured upstream, each behind its WAN budget, and their start-up checks. */
import type { Logger } from 'pino';
import type { Upstream } from '../upstream/target.js';
import type { BerthConfig, UpstreamConfig } from '../config/types.js';
import type { Telemetry } from '../ops/telemetry.js';
import { budgetFor, type ByteBudget, type WanBudget, type WorkPriority } from '../upstream/budget.js';
import { RegistryClient } from '../upstream/client.js';

export interface UpstreamDeps {
  readonly logger: Logger;
  readonly now: () => number;
  readonly telemetry: Telemetry;
  /** The store's instance id: sent upstream so berth never waits on itself. */
  readonly instance: string;
  readonly priority: WorkPriority;
  /** The budget an upstream's bytes pass when it has one (`ratelimit`, `backgroundwindow`); default its own. */
  readonly budget?: (u: UpstreamConfig, own: WanBudget) => ByteBudget;
}

export function openUpstreams(config: BerthConfig, d: UpstreamDeps): Upstream[] {
  return config.upstreams.map((u) => {
    const own = budgetFor(u, d.now);
    const budget = own && (d.budget ? d.budget(u, own) : own);
    const metering = budget && { budget, priority: d.priority };
    return {
      config: u,
      client: new RegistryClient(u, config.upstreamTimeouts, d.logger.child({ upstream: u.name }), d.now, d.telemetry, d.instance, metering),
    };
  });
}

/** One log line per check; a failed one at error level with its fix. Never throws: berth serves its cache regardless. */
export async function checkAll(upstreams: readonly Upstream[], logger: Logger): Promise<void> {
  await Promise.all(
    upstreams.map(async (u) => {
      const results = await u.client.check().catch((err: Error) => [{ check: 'connect' as const, ok: false, message: err.message, fix: 'see the message' }]);
      for (const r of results) {
        if (r.ok) logger.info({ upstream: u.config.name, check: r.check }, r.message);
        else logger.error({ upstream: u.config.name, check: r.check, fix: r.fix }, r.message);
      }
    }),
  );
}
