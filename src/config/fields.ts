/** @module config/fields — zod builders for single config values, written as YAML text. */

import { isIP } from 'node:net';
import { z } from 'zod';
import { DURATION_ALLOWED, SIZE_ALLOWED, parseDuration, parseSize } from './units.js';
import { formatImageReference, parseImageReference } from '../oci/image-ref.js';
import { formatPlatform, parsePlatform } from '../oci/platform.js';

/**
 * Keys whose content is not a single value. `ignored`: a distribution key berth accepts with a
 * warning; `unsupported`: a distribution key berth rejects; both hold free-form content, so an
 * environment override below them creates nested keys. `structured`: a value that may be a list,
 * so an environment override is read as YAML. Entries are added only while the schema is being
 * defined, when its module loads; afterwards this is read-only.
 */
export type KeyKind = 'ignored' | 'unsupported' | 'structured';
export const keyKinds = z.registry<{ readonly kind: KeyKind }>();

/**
 * Labels a value builder with what the configuration reference calls its values (`duration`,
 * `size`, ...), as zod metadata read back by config/key-reference.
 */
export function valueOf<S extends z.ZodType>(valueType: string, schema: S): S {
  return schema.meta({ valueType });
}

/** A key distribution knows and berth accepts, unused, with one warning. */
export function ignored() {
  const s = z.unknown();
  keyKinds.add(s, { kind: 'ignored' });
  return s.optional();
}

/** A key distribution knows that berth cannot honour: its presence is an error. */
export function unsupported(message: string) {
  const s = z.unknown();
  keyKinds.add(s, { kind: 'unsupported' });
  return s
    .transform((_v, ctx) => {
      ctx.issues.push({ code: 'custom', message, input: undefined });
      return z.NEVER;
    })
    .optional();
}

/** Quotes a value for an error message the way the user would recognise it. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'a list';
  if (value !== null && typeof value === 'object') return 'a mapping';
  return String(value);
}

/**
 * A scalar value. YAML is read with every scalar kept as written (see config/yaml), so each
 * field parses its own text, as Go's typed unmarshalling does; plain JS numbers and booleans
 * are accepted too, for documents built in code. `parse` throws an Error whose message names
 * the value and what is allowed.
 */
export function scalar<T>(valueType: string, parse: (v: string | number | boolean) => T) {
  return valueOf(
    valueType,
    z.unknown().transform((v, ctx): T => {
      if (v === undefined) {
        // z.unknown() lets a missing key through; optional fields are wrapped in .optional() so they never get here.
        ctx.issues.push({ code: 'custom', message: 'required key is missing', input: v });
        return z.NEVER;
      }
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
        ctx.issues.push({ code: 'custom', message: `invalid value: ${show(v)}; allowed: a single value`, input: v });
        return z.NEVER;
      }
      try {
        return parse(v);
      } catch (err) {
        ctx.issues.push({ code: 'custom', message: (err as Error).message, input: v });
        return z.NEVER;
      }
    }),
  );
}

function invalid(what: string, v: unknown, allowed: string): never {
  throw new Error(`invalid ${what} ${show(v)}; allowed: ${allowed}`);
}

/** Any text; YAML numbers and booleans keep the text they were written as. */
export function text() {
  return scalar('text', (v) => String(v));
}

/** A file or directory path; relative ones are resolved by config/load. */
export function pathText() {
  return scalar('path', (v) => {
    const s = String(v);
    return s.trim() === '' || s.includes('\0') ? invalid('path', v, 'a file system path') : s;
  });
}

export function flag() {
  return scalar('boolean', (v) => {
    if (typeof v === 'boolean') return v;
    const s = String(v).toLowerCase();
    // yes/no/on/off: distribution reads YAML 1.1, where these are booleans too.
    if (['true', 'yes', 'on'].includes(s)) return true;
    if (['false', 'no', 'off'].includes(s)) return false;
    return invalid('boolean', v, 'true or false');
  });
}

export function size() {
  return scalar('size', (v) => (typeof v === 'boolean' ? invalid('size', v, SIZE_ALLOWED) : parseSize(v)));
}

export function duration() {
  return scalar('duration', (v) => (typeof v === 'boolean' ? invalid('duration', v, DURATION_ALLOWED) : parseDuration(v)));
}

/** A whole number of at least 1 (a count such as a connection limit). */
export function count() {
  return scalar('count', (v) => {
    const n = typeof v === 'boolean' || String(v).trim() === '' ? NaN : Number(v);
    if (!Number.isSafeInteger(n) || n < 1) invalid('count', v, 'a whole number of at least 1, e.g. 256');
    return n;
  });
}

/** `http.workers`: `auto` (one serving process per core) or a count of at least 1. */
export function workerCount() {
  return scalar('auto or count', (v): number | 'auto' => {
    if (String(v).trim().toLowerCase() === 'auto') return 'auto';
    const n = typeof v === 'boolean' || String(v).trim() === '' ? NaN : Number(v);
    if (!Number.isSafeInteger(n) || n < 1) invalid('workers', v, 'auto (one per core) or a whole number of at least 1, e.g. 4');
    return n;
  });
}

/** A fraction strictly between 0 and 1. */
export function ratio() {
  return scalar('fraction', (v) => {
    const n = typeof v === 'boolean' || String(v).trim() === '' ? NaN : Number(v);
    if (!(n > 0 && n < 1)) invalid('value', v, 'a number greater than 0 and less than 1, e.g. 0.8');
    return n;
  });
}

/** One of a fixed set; `aliases` map other accepted spellings to a member. */
export function oneOf<const T extends string>(values: readonly T[], aliases: Readonly<Record<string, T>> = {}) {
  return scalar(`one of ${values.join(', ')}`, (v): T => {
    const s = String(v).toLowerCase();
    const hit = values.find((x) => x === s) ?? aliases[s];
    return hit ?? invalid('value', v, values.join(', '));
  });
}

/** An http(s) URL, returned without trailing slash. Credentials belong in username/password. */
export function httpUrl() {
  return scalar('URL', (v) => {
    const allowed = 'an http:// or https:// URL without user, query or fragment, e.g. https://registry-1.docker.io';
    let u: URL;
    try {
      u = new URL(String(v));
    } catch {
      return invalid('URL', v, allowed);
    }
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password || u.search || u.hash) {
      return invalid('URL', v, allowed);
    }
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
  });
}

export interface ListenAddr {
  readonly host: string;
  readonly port: number;
}

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i;
const IPV6 = /^[0-9a-f:.]+(%[\w.-]+)?$/i;

/**
 * Parses a listen address as Go's net.Listen takes it: `host:port` with the host optional
 * (all interfaces) and IPv6 hosts in brackets. A bare port is accepted too, for `--listen 5000`.
 */
export function parseListenAddr(input: string): ListenAddr {
  const allowed = '[host]:port with port 0-65535, e.g. :5000, 0.0.0.0:5000, [::1]:5000, localhost:5000';
  const s = input.trim();
  const m = /^(?:(\[[^\]]*\]|[^:[\]]*):)?(\d{1,5})$/.exec(s);
  const port = Number(m?.[2]);
  if (!m || port > 65535) return invalid('address', input, allowed);
  let host = m[1] ?? '';
  if (host.startsWith('[')) {
    host = host.slice(1, -1);
    if (!host.includes(':') || !IPV6.test(host)) return invalid('address', input, allowed);
  } else if (host !== '' && !HOSTNAME.test(host)) {
    return invalid('address', input, allowed);
  }
  return { host, port };
}

export function listenAddr() {
  return scalar('address', (v) => parseListenAddr(String(v)));
}

/** A registry host as clients name it (`?ns=`, Host header): lower-cased, optional port. */
export function registryHost() {
  return scalar('host', (v) => {
    const s = String(v).trim().toLowerCase();
    const m = /^(\[[0-9a-f:.]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(s);
    const name = m?.[1] ?? '';
    const ok = m !== null && (name.startsWith('[') || HOSTNAME.test(name)) && Number(m[2] ?? 0) <= 65535;
    return ok ? s : invalid('host', v, 'a registry host name with optional port, e.g. harbor.xing.com or 10.0.0.5:5000');
  });
}

/** An IP address to connect to instead of resolving a name (`resolve:`). */
export function ipAddress() {
  return scalar('IP address', (v) => {
    const s = String(v)
      .trim()
      .replace(/^\[(.*)\]$/, '$1');
    return isIP(s) !== 0 ? s : invalid('address', v, 'an IPv4 or IPv6 address, e.g. 10.10.102.190');
  });
}

export const UPSTREAM_NAME = /^[a-z0-9][a-z0-9._-]*$/;

export function upstreamName() {
  return scalar('name', (v) => {
    const s = String(v);
    return UPSTREAM_NAME.test(s) ? s : invalid('name', v, 'lower-case letters, digits, ".", "_", "-", starting with a letter or digit');
  });
}

/** OCI repository-name components, so a prefix is exactly a leading part of a repository name. */
const PATH_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const PREFIX = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);

export function pathPrefix() {
  return scalar('repository prefix', (v) => {
    const s = String(v).replace(/^\/+|\/+$/g, '');
    return PREFIX.test(s) ? s : invalid('prefix', v, 'lower-case repository path components, e.g. harbor or docker.io');
  });
}

/** distribution's config version; it knows only 0.1. */
export function configVersion() {
  return scalar('version', (v) => (String(v).trim() === '0.1' ? '0.1' : invalid('version', v, '0.1')));
}

/** An HTTP header name (RFC 9110 token). */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/i;

/** A header's values: a list, or one value for convenience. */
export function headerValues() {
  const s = z.unknown();
  keyKinds.add(s, { kind: 'structured' });
  return valueOf(
    'header values',
    s.transform((v, ctx): string[] => {
      const list = Array.isArray(v) ? (v as unknown[]) : [v];
      const out: string[] = [];
      list.forEach((x, i) => {
        if (typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean') {
          out.push(String(x));
        } else {
          const path = Array.isArray(v) ? [i] : [];
          ctx.issues.push({ code: 'custom', message: `invalid value: ${show(x)}; allowed: header values as text`, input: x, path });
        }
      });
      return out;
    }),
  );
}

/** An image reference, `[registry/]repository[:tag|@digest]`, kept in canonical form. */
export function imageRef() {
  return scalar('image reference', (v) => formatImageReference(parseImageReference(String(v))));
}

/** A platform, `os/arch[/variant]`, normalised (aarch64 -> arm64). */
export function platform() {
  return scalar('platform', (v) => formatPlatform(parsePlatform(String(v))));
}
