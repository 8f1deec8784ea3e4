/** @module oci/platform — `os/arch[/variant]` platforms and choosing an index's entries for them. */
import type { Descriptor } from './manifest.js';

export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

/** What nodes most often are when nobody says: documented as the warm-up default. */
export const DEFAULT_PLATFORMS: readonly Platform[] = [{ os: 'linux', architecture: 'amd64' }];

const ARCH_ALIASES: Readonly<Record<string, { architecture: string; variant?: string }>> = {
  x86_64: { architecture: 'amd64' },
  'x86-64': { architecture: 'amd64' },
  aarch64: { architecture: 'arm64' },
  armhf: { architecture: 'arm', variant: 'v7' },
  armel: { architecture: 'arm', variant: 'v6' },
  i386: { architecture: '386' },
};

/** Parses `linux/arm64`, `linux/arm/v7`; throws with what is allowed. */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().toLowerCase().split('/');
  const ok = (parts.length === 2 || parts.length === 3) && parts.every((p) => /^[a-z0-9._-]+$/.test(p));
  if (!ok) throw new Error(`invalid platform "${text.slice(0, 100)}"; allowed: os/arch[/variant], e.g. linux/amd64, linux/arm64, linux/arm/v7`);
  const [os, arch, variant] = parts as [string, string, string | undefined];
  const alias = ARCH_ALIASES[arch];
  const architecture = alias?.architecture ?? arch;
  const v = variant ?? alias?.variant;
  return v ? { os, architecture, variant: v } : { os, architecture };
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** The variant a platform implies when it names none (containerd's normalisation). */
function variantOf(p: { architecture?: string; variant?: string }): string {
  if (p.variant) return p.variant.toLowerCase();
  if (p.architecture === 'arm64') return 'v8';
  if (p.architecture === 'arm') return 'v7';
  return '';
}

/** True when an index entry's platform is the one asked for (a variant is compared only when asked or implied). */
export function platformMatches(wanted: Platform, have: Descriptor['platform']): boolean {
  if (!have?.os || !have.architecture) return false;
  if (have.os.toLowerCase() !== wanted.os || have.architecture.toLowerCase() !== wanted.architecture) return false;
  const implied = wanted.architecture === 'arm64' || wanted.architecture === 'arm';
  return !wanted.variant && !implied ? true : variantOf(wanted) === variantOf({ architecture: have.architecture, variant: have.variant });
}

/** The entries of an index to fetch: all of them, or those matching any wanted platform. */
export function selectManifests(entries: readonly Descriptor[], wanted: readonly Platform[] | 'all'): Descriptor[] {
  if (wanted === 'all') return [...entries];
  return entries.filter((d) => wanted.some((w) => platformMatches(w, d.platform)));
}
