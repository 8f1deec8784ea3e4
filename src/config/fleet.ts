/** @module config/fleet — the `hub:` and `site:` sections and the WAN budget keys (`ratelimit`, `backgroundwindow`). */

import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { count, duration, httpUrl, pathText, scalar, show, text } from './fields.js';
import { formatDuration } from './units.js';
import { SIZE_ALLOWED, parseSize } from './units.js';
import type { Tree } from './yaml.js';
import type { RedisConfig } from './cluster.js';
import { isMapping } from './yaml.js';

const RATE_ALLOWED = `a rate: a size per second such as 4MB/s or 500KiB/s (size: ${SIZE_ALLOWED})`;
const WINDOW_ALLOWED = 'a daily window HH:MM-HH:MM in local time, e.g. 01:00-05:00 (it may cross midnight: 22:00-06:00)';
const SITE_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Parses `4MB/s` into bytes per second. */
export function parseRate(input: string | number): number {
  const s = String(input).trim();
  const m = /^(.+?)\s*\/\s*s(ec)?$/i.exec(s);
  let bytes: number;
  try {
    bytes = parseSize(m ? m[1]! : s);
  } catch {
    throw new Error(`invalid rate ${show(input)}; allowed: ${RATE_ALLOWED}`);
  }
  if (!m || bytes <= 0) throw new Error(`invalid rate ${show(input)}; allowed: ${RATE_ALLOWED}`);
  return bytes;
}

/** A daily window as minutes after local midnight; start == end is refused (say nothing for always). */
export interface DailyWindow {
  readonly startMin: number;
  readonly endMin: number;
  readonly text: string;
}

export function parseWindow(input: string): DailyWindow {
  const m = /^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$/.exec(input.trim());
  const mins = m ? [Number(m[1]) * 60 + Number(m[2]), Number(m[3]) * 60 + Number(m[4])] : [];
  const ok =
    m && Number(m[1]) <= 24 && Number(m[3]) <= 24 && Number(m[2]) < 60 && Number(m[4]) < 60 && mins[0]! <= 1440 && mins[1]! <= 1440 && mins[0] !== mins[1];
  if (!ok) throw new Error(`invalid window ${show(input)}; allowed: ${WINDOW_ALLOWED}`);
  return { startMin: mins[0]!, endMin: mins[1]!, text: input.trim() };
}

/** A scalar read from its text; a boolean is not one of these values. */
function scalarOf<T>(valueType: string, parse: (v: string) => T) {
  return scalar(valueType, (v) => {
    if (typeof v === 'boolean') throw new Error(`invalid value: ${show(v)}; allowed: a single value`);
    return parse(String(v));
  });
}

export const rate = () => scalarOf('rate', parseRate);
export const dailyWindow = () => scalarOf('daily window', parseWindow);
const siteName = () =>
  scalarOf('name', (s) => {
    if (!SITE_NAME.test(s))
      throw new Error(`invalid name ${show(s)}; allowed: lower-case letters, digits, ".", "_", "-" (at most 63), starting with a letter or digit`);
    return s;
  });

/** Keys added to `proxy:` and each `upstreams:` entry. */
export const budgetKeys = {
  ratelimit: rate()
    .optional()
    .meta({ description: 'Cap on everything berth draws from (and sends to) this upstream, per second; node pulls go first.', example: '4MB/s' }),
  backgroundwindow: dailyWindow()
    .optional()
    .meta({ description: 'Warm-up, pre-heat and write-behind run only inside this daily window, local time; it may cross midnight.', example: '01:00-05:00' }),
};

export const DEFAULT_SITE_INTERVAL_MS = 30_000;
/** Hub admission control (fleet/admission.ts) and the lead lease (cluster/hub-lead.ts) unless configured. */
export const DEFAULT_HUB_INFLIGHT = 256;
export const DEFAULT_HUB_LOOP_DELAY_MS = 100;
export const DEFAULT_HUB_LEASE_TTL_MS = 5_000;
/** The lead renews its lease every fifth of the TTL: a shorter TTL would renew too often to be worth it. */
export const MIN_HUB_LEASE_TTL_MS = 1_000;

const token = (who: string) => ({
  token: text()
    .optional()
    .meta({ description: `Shared secret ${who}; or tokenfile.`, secret: true }),
  tokenfile: pathText().optional().meta({ description: 'File holding the token, instead of token.' }),
});

export const hubSchema = z
  .strictObject({
    ...token('that sites, Harbor and event senders present to the hub'),
    advertise: httpUrl().optional().meta({
      description: 'With redis: how the other hubs on the same Redis reach this one (they forward to the hub holding the lead); unique per hub.',
      example: 'http://10.0.0.7:5000',
    }),
    admission: z
      .strictObject({
        inflight: count()
          .optional()
          .meta({
            description: 'Polls answered at once above which the hub asks sites to wait longer before their next poll.',
            default: String(DEFAULT_HUB_INFLIGHT),
          }),
        loopdelay: duration()
          .optional()
          .meta({
            description: 'Event-loop delay (p99 over the last second) above which the hub asks sites to wait longer before their next poll.',
            default: formatDuration(DEFAULT_HUB_LOOP_DELAY_MS),
          }),
      })
      .optional()
      .meta({ description: 'When a loaded hub slows its sites down (at most twice their interval; docs/fleet.md).' }),
    leasettl: duration()
      .optional()
      .meta({
        description: 'With redis: how long the lead hub’s lease lasts unrenewed (renewed every fifth of it): how soon another hub takes over from a dead lead.',
        default: formatDuration(DEFAULT_HUB_LEASE_TTL_MS),
      }),
  })
  .meta({ description: 'This berth is a fleet’s hub: sites report to it and take work from it.' });
export const siteSchema = z
  .strictObject({
    name: siteName().meta({ description: 'The site’s name at the hub.', example: 'factory-12' }),
    hub: httpUrl().meta({ description: 'Base URL of the hub.', example: 'https://berth-hub.xing.com' }),
    ...token('this site presents to the hub'),
    interval: duration()
      .optional()
      .meta({ description: 'How often the site polls the hub for work and reports.', default: formatDuration(DEFAULT_SITE_INTERVAL_MS) }),
  })
  .meta({ description: 'This berth is a site reporting to a fleet hub.' });

export interface HubConfig {
  readonly token: string;
  /** With `redis:`: the hub's state lives in Redis and hubs sharing it elect one lead. */
  readonly redis?: RedisConfig;
  /** `hub.advertise`, without trailing slash: where the other hubs forward to while this one leads. */
  readonly advertise?: string;
  /** Admission control: polls in flight and event-loop delay (ms) above which sites are slowed. */
  readonly admission: { readonly maxInFlight: number; readonly maxLoopDelayMs: number };
  /** `hub.leasettl` in ms (used with `redis:`). */
  readonly leaseTtlMs: number;
}

export interface SiteConfig {
  readonly name: string;
  /** The hub's base URL, without trailing slash. */
  readonly hub: string;
  readonly token: string;
  readonly intervalMs: number;
}

type Add = (path: readonly PropertyKey[], message: string) => void;

/** Cross-key rules for the raw document: exactly one of token and tokenfile. */
export function checkFleet(doc: Tree, add: Add): void {
  if (!isMapping(doc)) return;
  for (const key of ['hub', 'site'] as const) {
    const s = doc[key];
    if (!isMapping(s)) continue;
    if (s.token !== undefined && s.tokenfile !== undefined) add([key, 'tokenfile'], 'token and tokenfile are both set; allowed: one of them');
    if (s.token === undefined && s.tokenfile === undefined) add([key, 'token'], `required when ${key} is set; allowed: token or tokenfile`);
  }
  const hub = doc['hub'];
  if (isMapping(hub) && hub.leasettl !== undefined && doc['redis'] === undefined)
    add(['hub', 'leasettl'], 'set without redis:; allowed: only with redis: (the lease decides which hub on it leads)');
  const site = doc['site'];
  if (isMapping(site) && typeof site.interval === 'string' && /^0+(\.0*)?[a-z]*$/i.test(site.interval.trim())) {
    add(['site', 'interval'], `invalid duration ${show(site.interval)}: must be more than 0; allowed: a duration such as 30s`);
  }
}

type Where = (path: readonly (string | number)[], p: string) => string;

function tokenOf(section: string, s: { token?: string; tokenfile?: string }, where: Where, problems: string[]): string {
  if (s.tokenfile === undefined) {
    if (s.token === '') problems.push(`${section}.token: empty; allowed: a non-empty token (or a tokenfile holding one)`);
    return s.token ?? '';
  }
  let t = '';
  try {
    t = readFileSync(where([section, 'tokenfile'], s.tokenfile), 'utf8').trim();
  } catch (err) {
    problems.push(
      `${section}.tokenfile: cannot read file ${JSON.stringify(s.tokenfile)}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
    return '';
  }
  if (t === '') problems.push(`${section}.tokenfile: file ${JSON.stringify(s.tokenfile)} is empty; allowed: a file holding the token`);
  return t;
}

/** The typed `hub` and `site` entries of the config. */
export function buildFleet(
  doc: { hub?: z.output<typeof hubSchema>; site?: z.output<typeof siteSchema> },
  where: Where,
  problems: string[],
): { hub?: HubConfig; site?: SiteConfig } {
  const out: { hub?: HubConfig; site?: SiteConfig } = {};
  if (doc.hub) {
    const loopDelay = doc.hub.admission?.loopdelay ?? DEFAULT_HUB_LOOP_DELAY_MS;
    if (loopDelay <= 0) problems.push(`hub.admission.loopdelay: must be more than 0; allowed: a duration such as ${formatDuration(DEFAULT_HUB_LOOP_DELAY_MS)}`);
    const leaseTtl = doc.hub.leasettl ?? DEFAULT_HUB_LEASE_TTL_MS;
    if (leaseTtl < MIN_HUB_LEASE_TTL_MS)
      problems.push(
        `hub.leasettl: ${formatDuration(leaseTtl)} is too short; allowed: a duration of at least ${formatDuration(MIN_HUB_LEASE_TTL_MS)} (the lead renews its lease every fifth of it), e.g. 5s`,
      );
    out.hub = {
      token: tokenOf('hub', doc.hub, where, problems),
      ...(doc.hub.advertise !== undefined ? { advertise: doc.hub.advertise.replace(/\/+$/, '') } : {}),
      admission: { maxInFlight: doc.hub.admission?.inflight ?? DEFAULT_HUB_INFLIGHT, maxLoopDelayMs: loopDelay },
      leaseTtlMs: leaseTtl,
    };
  }
  if (doc.site) {
    out.site = {
      name: doc.site.name,
      hub: doc.site.hub,
      token: tokenOf('site', doc.site, where, problems),
      intervalMs: doc.site.interval ?? DEFAULT_SITE_INTERVAL_MS,
    };
  }
  return out;
}
