/** @module ops/schedule — the `warm:` config list: warm and pin at start-up, refresh on an interval. */
import type { Logger } from 'pino';
import type { WarmConfig } from '../config/types.js';
import { DEFAULT_PLATFORMS, parsePlatform } from '../oci/platform.js';
import type { WarmJob, WarmJobs } from '../cache/warm-up.js';

export class WarmSchedule {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<WarmJob> | undefined;

  constructor(
    private readonly config: WarmConfig,
    private readonly jobs: WarmJobs,
    private readonly logger: Logger,
  ) {}

  /** Runs the list once now and then every interval (an interval of 0 runs it once). */
  start(): void {
    if (this.config.images.length === 0 || this.timer) return;
    this.tick();
    if (this.config.intervalMs > 0) {
      this.timer = setInterval(() => this.tick(), this.config.intervalMs);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The run in progress, if any (tests and shutdown wait on it). */
  get current(): Promise<WarmJob> | undefined {
    return this.running;
  }

  private tick(): void {
    // A slow refresh is not stacked on: the next tick after it finishes picks up.
    if (this.running) {
      this.logger.warn({ intervalMs: this.config.intervalMs }, 'scheduled warm-up still running from the last interval; skipping this one');
      return;
    }
    const platforms = this.config.allPlatforms ? 'all' : this.config.platforms.length > 0 ? this.config.platforms.map(parsePlatform) : DEFAULT_PLATFORMS;
    this.running = this.jobs.run({ images: this.config.images, platforms, pin: true, source: 'schedule', replacePinned: true });
    this.running
      .catch((err: Error) => this.logger.warn({ err: err.message }, 'scheduled warm-up failed'))
      .finally(() => {
        this.running = undefined;
      });
  }
}
