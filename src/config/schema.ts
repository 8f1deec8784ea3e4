/**
 * @module config/schema — the config.yml document: distribution's keys plus berth's, each declared once with its
 * check, default and description (config/key-reference prints them as docs/configuration.md).
 */

import { z } from 'zod';
import {
  configVersion,
  count,
  duration,
  flag,
  HEADER_NAME,
  headerValues,
  httpUrl,
  ignored,
  imageRef,
  ipAddress,
  listenAddr,
  oneOf,
  pathText,
  pathPrefix,
  platform,
  workerCount,
  ratio,
  registryHost,
  size,
  text,
  unsupported,
  upstreamName,
} from './fields.js';
import { budgetKeys, hubSchema, siteSchema } from './fleet.js';
import { clusterSchema, redisSchema } from './cluster.js';
import { verifySchema } from './verify.js';
import * as D from './defaults.js';
import { formatDuration, formatSize } from './units.js';

export const PUSH_MODES = ['readonly', 'local', 'write-through', 'write-behind'] as const;
export const ACCESS_ACTIONS = ['pull', 'push', 'delete', '*'] as const;
export const OUTAGE_MODES = ['lastknown', 'deny'] as const;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

const driver = (name: string) => unsupported(`storage driver "${name}" is not supported; allowed: filesystem (berth stores on local disk only)`);

const storageSchema = z.strictObject({
  filesystem: z
    .strictObject({
      rootdirectory: pathText()
        .optional()
        .meta({
          description: 'Directory holding the store: blobs, the index and push state. Relative to the config file (or, without one, to the working directory).',
          default: `${D.DEFAULT_ROOT} (relative to the working directory)`,
          example: '/var/lib/berth',
        }),
      maxthreads: ignored(),
    })
    .optional()
    .meta({ description: 'The one storage driver berth has: files on a local disk.' }),
  maxsize: size()
    .optional()
    .meta({ description: 'Least-recently-pulled content is evicted once the store holds more than this.', default: '0 (no bound)', example: '50GiB' }),
  lowwatermark: ratio()
    .optional()
    .meta({
      description: 'Eviction frees space down to maxsize times this fraction, so it does not run on every fill.',
      default: String(D.DEFAULT_LOWWATERMARK),
    }),
  reserve: size()
    .optional()
    .meta({
      description:
        'Space held back on the store’s file system so metadata writes go on when the disk fills; at most an eighth of the file system is taken. 0 holds nothing back.',
      default: formatSize(D.DEFAULT_RESERVE_BYTES),
    }),
  delete: z
    .strictObject({
      enabled: flag().optional().meta({ description: 'distribution’s meaning: clients may DELETE manifests and blobs.', default: 'false' }),
    })
    .optional()
    .meta({ description: 'Deleting through the registry API.' }),
  cache: ignored(),
  maintenance: z
    .strictObject({
      uploadpurging: z
        .strictObject({
          enabled: flag().optional().meta({ description: 'Uploads left unfinished are removed.', default: 'true' }),
          age: duration()
            .optional()
            .meta({ description: 'An upload idle this long is abandoned and removed.', default: formatDuration(D.DEFAULT_UPLOAD_AGE_MS) }),
          interval: duration()
            .optional()
            .meta({ description: 'How often abandoned uploads are looked for.', default: formatDuration(D.DEFAULT_UPLOAD_PURGE_INTERVAL_MS) }),
          dryrun: ignored(),
        })
        .optional()
        .meta({ description: 'Removal of uploads that were started and never finished.' }),
      keptranges: z
        .strictObject({
          age: duration()
            .optional()
            .meta({
              description:
                'Bytes fetched for ranges of a blob whose fill never completed are removed once unused this long (they also count toward maxsize and are evicted least recently used first); 0 leaves them to maxsize.',
              default: formatDuration(D.DEFAULT_KEPT_RANGES_AGE_MS),
            }),
        })
        .optional()
        .meta({ description: 'Kept ranges: what lazy clients read of blobs berth does not hold whole (docs/lazy-pulling.md).' }),
      readonly: ignored(),
    })
    .optional()
    .meta({ description: 'Background upkeep of the store.' }),
  redirect: ignored(),
  tag: ignored(),
  inmemory: driver('inmemory'),
  s3: driver('s3'),
  azure: driver('azure'),
  gcs: driver('gcs'),
  swift: driver('swift'),
  oss: driver('oss'),
});

const tlsPair = (what: string) => ({
  certificate: pathText().meta({ description: `PEM certificate (chain) ${what} presents.` }),
  key: pathText().meta({ description: 'PEM private key of the certificate.' }),
});

const httpSchema = z.strictObject({
  addr: listenAddr()
    .optional()
    .meta({ description: 'Address to listen on, host:port; no host means every interface.', default: `:${D.DEFAULT_PORT}`, example: '0.0.0.0:5000' }),
  headers: z
    .record(z.string().regex(HEADER_NAME, 'invalid header name; allowed: an HTTP header name such as X-Content-Type-Options'), headerValues())
    .optional()
    .meta({ description: 'Headers added to every response: a header name and its values.', example: '{ X-Content-Type-Options: [nosniff] }' }),
  tls: z
    .strictObject({
      certificate: tlsPair('the listener').certificate.optional(),
      key: tlsPair('the listener').key.optional(),
      clientcas: ignored(),
      clientauth: ignored(),
      letsencrypt: ignored(),
      minimumtls: ignored(),
      ciphersuites: ignored(),
    })
    .optional()
    .meta({ description: 'TLS on addr: certificate and key together, or neither for plain HTTP.' }),
  listeners: z
    .array(
      z.strictObject({
        addr: listenAddr().meta({ description: 'Address of this listener, host:port.', example: ':5443' }),
        tls: z.strictObject(tlsPair('this listener')).optional().meta({ description: 'TLS for this listener; without it, plain HTTP.' }),
      }),
    )
    .optional()
    .meta({ description: 'More addresses served beside addr, each with its own TLS or none (e.g. TLS on :443 and plain :5000).' }),
  // berth's own bounds against hostile or broken clients.
  headerstimeout: duration()
    .optional()
    .meta({
      description: 'The request line and headers must arrive within this long (slow-header attacks).',
      default: formatDuration(D.DEFAULT_CONNECTION_LIMITS.headersTimeoutMs),
    }),
  idletimeout: duration()
    .optional()
    .meta({
      description: 'A connection on which no byte moved either way for this long is closed; a slow transfer that moves is not idle.',
      default: formatDuration(D.DEFAULT_CONNECTION_LIMITS.idleTimeoutMs),
    }),
  maxconnections: count()
    .optional()
    .meta({
      description: 'Open connections in all; beyond it new ones are answered 503 and closed.',
      default: `${D.DEFAULT_CONNECTION_LIMITS.maxConnections}, less under a low open-file limit`,
    }),
  maxconnectionsperclient: count()
    .optional()
    .meta({
      description: 'Open connections from one client address (counted per listener); beyond it 429.',
      default: String(D.DEFAULT_CONNECTION_LIMITS.maxConnectionsPerClient),
    }),
  workers: workerCount().optional().meta({
    description:
      'Serving processes sharing the store and the listening addresses: auto is one per core from three cores up (one process on two cores or fewer).',
    default: 'auto',
    example: '4',
  }),
  sendfile: flag()
    .optional()
    .meta({ description: 'Stored blobs go to plain-TCP clients by sendfile(2), inside the kernel, where it is available.', default: 'true' }),
  net: ignored(),
  prefix: ignored(),
  host: ignored(),
  secret: ignored(),
  relativeurls: ignored(),
  draintimeout: ignored(),
  debug: ignored(),
  http2: ignored(),
  h2c: ignored(),
});

/** Keys shared by `proxy:` and each `upstreams:` entry. */
const upstreamKeys = {
  remoteurl: httpUrl().meta({
    description: 'Base URL of the central registry. Without a config file it defaults to Docker Hub.',
    example: 'https://harbor.xing.com',
  }),
  username: text().optional().meta({ description: 'Account berth fetches content with.' }),
  password: text().optional().meta({ description: 'Password of username; never logged or printed.', secret: true }),
  passwordfile: pathText().optional().meta({ description: 'File holding the password (trailing newline dropped), instead of password.' }),
  hosts: z.array(registryHost()).optional().meta({
    description: 'Registry names clients use for this upstream (containerd’s ns= parameter, the Host header); requests naming one go here.',
    example: '[harbor.xing.com]',
  }),
  ca: pathText().optional().meta({ description: 'PEM CA bundle trusted for this upstream (a private CA or its self-signed certificate).' }),
  insecure: flag().optional().meta({ description: 'Skip TLS verification of the upstream.', default: 'false' }),
  ttl: duration().optional().meta({ description: 'Content not pulled for this long may be dropped; 0 keeps it.', default: '0s (never)', example: '168h' }),
  tagttl: duration()
    .optional()
    .meta({ description: 'A tag is served from cache this long before the upstream is asked again.', default: formatDuration(D.DEFAULT_TAGTTL_MS) }),
  prefetch: flag().optional().meta({ description: 'A manifest fetched from the upstream starts fetching the blobs it names at once.', default: 'false' }),
  rangefetch: flag().optional().meta({
    description:
      'A Range request for a blob not yet stored is answered at once from an upstream Range request while the whole blob is fetched in the background; false: it waits for the whole blob.',
    default: 'true',
  }),
  rangequiet: duration()
    .optional()
    .meta({
      description:
        'How long the ranges of a blob not yet stored must have been quiet (none running, none ended meanwhile) before the whole-blob fill they started runs; 0 runs it as soon as they end.',
      default: formatDuration(D.DEFAULT_RANGE_QUIET_MS),
    }),
  pushmode: oneOf(PUSH_MODES).optional().meta({
    description:
      'What a push does: readonly refuses it, local keeps it at the site, write-through forwards it before answering, write-behind answers and forwards later.',
    default: 'readonly',
  }),
  dockerconfig: pathText()
    .optional()
    .meta({ description: 'A Docker client config.json to take the credentials from (its auths entry for remoteurl’s host or one of hosts).' }),
  certificate: pathText().optional().meta({ description: 'PEM client certificate presented to the upstream (mutual TLS); needs key.' }),
  key: pathText().optional().meta({ description: 'PEM private key of certificate.', secret: true }),
  tokenrealms: z.array(registryHost()).optional().meta({
    description: 'Token service hosts (host, or host:port) trusted with credentials besides the upstream’s own registrable domain.',
    example: '[login.xing-sso.com]',
  }),
  resolve: ipAddress()
    .optional()
    .meta({ description: 'Address to connect to for remoteurl’s host instead of looking it up; TLS still checks the name.', example: '10.10.102.190' }),
  passthroughauth: flag()
    .optional()
    .meta({ description: 'Clients’ own credentials are checked against the upstream for each repository before the cache serves them.', default: 'false' }),
  passthroughttl: duration()
    .optional()
    .meta({ description: 'How long a pass-through decision is reused; with passthroughauth only.', default: formatDuration(D.DEFAULT_PASSTHROUGH_TTL_MS) }),
  passthroughoutage: oneOf(OUTAGE_MODES).optional().meta({
    description: 'While the upstream is unreachable: lastknown reuses the last decision, deny refuses; with passthroughauth only.',
    default: 'lastknown',
  }),
  ...budgetKeys,
};

export const accessRuleSchema = z.strictObject({
  users: z.array(text()).meta({ description: 'User names; anonymous is a client without credentials, * any authenticated user.' }),
  repositories: z
    .array(text())
    .optional()
    .meta({ description: 'Repository patterns as the upstream names them; * matches any characters, / included.', default: '[*]' }),
  actions: z.array(oneOf(ACCESS_ACTIONS)).meta({ description: 'What the users may do.' }),
  upstream: upstreamName().optional().meta({ description: 'Name of the upstream the rule is about; absent: every upstream and the local registry.' }),
});

const logSchema = z.strictObject({
  level: oneOf(LOG_LEVELS, { warning: 'warn', panic: 'fatal' })
    .optional()
    .meta({ description: 'Least severe log lines written; distribution’s warning and panic are read as warn and fatal.', default: 'info' }),
  fields: z.record(z.string(), text()).optional().meta({ description: 'Fields added to every log line.', example: '{ service: registry }' }),
  accesslog: z
    .strictObject({ disabled: flag().optional().meta({ description: 'No log line per request.', default: 'false' }) })
    .optional()
    .meta({ description: 'One log line per request.' }),
  formatter: ignored(),
  hooks: ignored(),
  reportcaller: ignored(),
});

export const upstreamEntrySchema = z.strictObject({
  name: upstreamName().meta({ description: 'The upstream’s name, in logs, metrics, the admin API and auth.rules.', example: 'harbor' }),
  ...upstreamKeys,
  prefix: pathPrefix().optional().meta({ description: 'Requests for /v2/<prefix>/<repository> go here, the prefix taken off.', example: 'docker.io' }),
  default: flag()
    .optional()
    .meta({ description: 'Requests naming no registry go here (at most one upstream); a lone upstream is the default unless it says false.' }),
});

export const documentSchema = z.strictObject({
  version: configVersion().optional().meta({ description: 'distribution’s config version; only 0.1 exists.', example: '0.1' }),
  log: logSchema.optional().meta({ description: 'What berth logs: one JSON line per event on standard output.' }),
  storage: storageSchema.optional().meta({ description: 'Where and how much berth stores.' }),
  http: httpSchema.optional().meta({ description: 'What berth listens on and the bounds it holds clients to.' }),
  proxy: z
    .strictObject({ ...upstreamKeys, exec: ignored() })
    .optional()
    .meta({ description: 'The one central registry berth mirrors (distribution’s proxy mode); upstreams: lists several instead.' }),
  upstreams: z
    .array(upstreamEntrySchema)
    .optional()
    .meta({ description: 'Several central registries, routed by the ns= parameter, the Host header, a path prefix, else the default one.' }),
  auth: z
    .strictObject({
      htpasswd: z
        .strictObject({
          realm: text().optional().meta({ description: 'Realm named in the Basic challenge.', default: 'berth' }),
          path: pathText().meta({ description: 'htpasswd file of bcrypt entries; changes are picked up while running.' }),
        })
        .optional()
        .meta({ description: 'Clients log in with Basic auth against an htpasswd file.' }),
      rules: z.array(accessRuleSchema).optional().meta({ description: 'When present, only what a rule allows is allowed.' }),
      token: z
        .strictObject({
          service: text()
            .optional()
            .meta({ description: 'Audience of the tokens berth issues, and the service clients name when asking for one.', default: 'berth' }),
          expiration: duration()
            .optional()
            .meta({ description: 'How long a token berth issues stays valid.', default: formatDuration(D.DEFAULT_TOKEN_EXPIRATION_MS) }),
          key: pathText().optional().meta({
            description: 'PEM private key (EC P-256 or RSA) that signs tokens; the same file on every replica of a site.',
            default: 'token.key in the root directory, generated on first start',
          }),
          realm: ignored(),
          issuer: ignored(),
          rootcertbundle: ignored(),
          autoredirect: ignored(),
          jwks: ignored(),
          signingalgorithms: ignored(),
        })
        .optional()
        .meta({
          description:
            'Bearer tokens (distribution’s token protocol): without realm berth issues them itself at /auth/token, so Docker pulls anonymously where authz allows.',
        }),
      silly: ignored(),
    })
    .optional()
    .meta({ description: 'Client authentication and authorisation; without it anyone who reaches berth may pull.' }),
  admin: z
    .strictObject({
      username: text().optional().meta({ description: 'User name for the admin API (/api/v1/), separate from auth:.' }),
      password: text().optional().meta({ description: 'Password of the admin user, at most 72 bytes; never printed.', secret: true }),
      passwordfile: pathText().optional().meta({ description: 'File holding the admin password, instead of password.' }),
      open: flag().optional().meta({ description: 'The admin API is open to anyone who reaches the listen address, on purpose.', default: 'false' }),
      trustloopback: flag().optional().meta({
        description: 'A caller on this host (loopback address and Host, no proxy headers) may use the admin API without credentials.',
        default: 'true only while neither client auth (auth:, passthroughauth) nor admin credentials are set',
      }),
    })
    .optional()
    .meta({ description: 'Who may use the admin API; without it the API is open while no client auth is configured.' }),
  warm: z
    .strictObject({
      interval: duration()
        .optional()
        .meta({ description: 'Time between refreshes of the warm images; 0 warms once at start only.', default: formatDuration(D.DEFAULT_WARM_INTERVAL_MS) }),
      images: z
        .array(imageRef())
        .optional()
        .meta({ description: 'Images kept pinned and refreshed: [registry/]repository[:tag|@digest].', example: '[harbor.xing.com/base/alpine:3.20]' }),
      platforms: z
        .array(platform())
        .optional()
        .meta({ description: 'Platforms fetched, os/arch[/variant].', default: '[linux/amd64]', example: '[linux/amd64, linux/arm64]' }),
      allplatforms: flag().optional().meta({ description: 'Fetch every platform of each image instead of platforms.', default: 'false' }),
    })
    .optional()
    .meta({ description: 'Images fetched ahead of the nodes and kept.' }),
  verify: verifySchema.optional(),
  hub: hubSchema.optional(),
  site: siteSchema.optional(),
  loglevel: ignored(),
  redis: redisSchema.optional(),
  cluster: clusterSchema.optional(),
  notifications: ignored(),
  health: ignored(),
  middleware: ignored(),
  reporting: ignored(),
  compatibility: ignored(),
  validation: ignored(),
  policy: ignored(),
  catalog: ignored(),
});

export type BerthDocument = z.output<typeof documentSchema>;
