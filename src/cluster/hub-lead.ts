/**
 * @module cluster/hub-lead — which of the hubs sharing one Redis leads: a lease (SET NX PX) renewed
 * while the lead lives, its value naming the lead's advertised address; the others forward to it.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { HubFence } from './redis-hub-state.js';
import { DEFAULT_HUB_LEASE_TTL_MS } from '../config/fleet.js';

export interface HubLeadDeps {
  readonly redis: Redis;
  /** This hub's `hub.advertise`. */
  readonly advertise: string;
  readonly key: string;
  readonly logger: Logger;
  readonly now: () => number;
  /** Called once this hub holds the lease: it loads the state and starts answering. */
  readonly onLead: () => Promise<void>;
  /** Called once this hub lost it (or cannot renew it in time): it stops answering. */
  readonly onLost: () => Promise<void>;
  readonly ttlMs?: number;
  readonly renewMs?: number;
}

const TTL_MS = DEFAULT_HUB_LEASE_TTL_MS;
const RENEW_MS = TTL_MS / 5;

// Renewed (or released) only by the holder it names.
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

export class HubLead {
  /** The lease's value while this hub holds it: its address and a token no other run shares. */
  private readonly mine: string;
  private leading = false;
  /** Until when the lease is surely this hub's (its own clock, counted from before the renewal was sent). */
  private heldUntil = 0;
  private known: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private turn: Promise<void> = Promise.resolve();
  private readonly ttl: number;

  constructor(private readonly d: HubLeadDeps) {
    this.mine = `${d.advertise} ${randomUUID()}`;
    this.ttl = d.ttlMs ?? TTL_MS;
  }

  start(): void {
    const tick = () => {
      this.turn = this.turn.then(() => this.tick()).catch((err: unknown) => this.d.logger.warn({ err }, 'hub lead check failed'));
    };
    tick();
    this.timer = setInterval(tick, this.d.renewMs ?? RENEW_MS);
    this.timer.unref();
  }

  /** Leading: writes carry this fence, so a hub that lost the lease writes nothing more. */
  fence(): HubFence {
    return { key: this.d.key, value: this.mine };
  }

  isLeading(): boolean {
    return this.leading;
  }

  /** The lead's advertised address when another hub leads; undefined when this one does or none is known. */
  lead(): string | undefined {
    return this.leading ? undefined : this.known;
  }

  /** Gives the lease up (a hub stopping), so another takes over at once rather than after its TTL. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.turn;
    if (!this.leading) return;
    this.leading = false;
    await this.d.onLost();
    await this.d.redis.eval(RELEASE, 1, this.d.key, this.mine).catch(() => undefined);
  }

  private async tick(): Promise<void> {
    const sent = this.d.now();
    if (this.leading) {
      const renewed = await this.d.redis.eval(RENEW, 1, this.d.key, this.mine, String(this.ttl)).catch(() => undefined);
      if (Number(renewed) === 1) {
        this.heldUntil = sent + this.ttl;
        return;
      }
      // Taken by another, or Redis silent for so long the lease may have lapsed: stop answering.
      if (renewed === undefined && this.d.now() < this.heldUntil - (this.d.renewMs ?? RENEW_MS)) return;
      this.leading = false;
      this.d.logger.warn('this hub lost the lead; forwarding to the hub that holds it');
      await this.d.onLost();
    }
    const taken = await this.d.redis.set(this.d.key, this.mine, 'PX', this.ttl, 'NX');
    if (taken === 'OK') {
      this.heldUntil = sent + this.ttl;
      this.leading = true;
      this.known = this.d.advertise;
      this.d.logger.info({ advertise: this.d.advertise }, 'this hub leads; loading the hub state from Redis');
      try {
        await this.d.onLead();
      } catch (err) {
        this.leading = false;
        await this.d.redis.eval(RELEASE, 1, this.d.key, this.mine).catch(() => undefined);
        throw err;
      }
      return;
    }
    const holder = await this.d.redis.get(this.d.key);
    const lead = holder?.split(' ')[0];
    if (lead !== this.known) this.d.logger.info({ lead }, 'the hub lead changed');
    this.known = lead;
  }
}
