/** @module cli/doctor — `berth doctor`: the start-up checks of every upstream, run from the cache host, each problem printed with its fix. */
import { pino } from 'pino';
import type { KeyObject } from 'node:crypto';
import type { BerthConfig } from '../config/types.js';
import { RegistryClient } from '../upstream/client.js';
import { instanceId } from '../upstream/loop.js';

export interface DoctorIo {
  readonly out: (line: string) => void;
  readonly now: () => number;
}

/** 0 when every check passed, 1 when any failed. */
export async function runDoctor(config: BerthConfig, io: DoctorIo): Promise<number> {
  // The keys were read and checked when the config loaded (a bad one stops that, naming its file): say which.
  for (const v of config.verify) {
    io.out(`verify ${v.repositories.join(', ')} (${v.mode})`);
    for (const k of v.keys) io.out(`  ok   key         ${k.file} (${describeKey(k.key)})`);
    if (v.keyless) {
      const m = v.keyless.material;
      io.out(
        `  ok   trustedroot ${v.keyless.file} (${m.certificateAuthorities.length} CAs, ${m.tlogs.length} tlogs, ${m.ctlogs.length} CT logs, ${m.timestampAuthorities.length} TSAs; timestamps ${v.keyless.timestamps}; identities ${v.keyless.identities.map((i) => i.subject).join(', ')})`,
      );
    }
  }
  if (config.upstreams.length === 0) {
    io.out('no upstreams configured: berth is a plain registry, nothing to check');
    return 0;
  }
  // The id of the store berth serves from, so a loop back to a running berth is recognised; never created here.
  const instance = await instanceId(config.storage.rootdirectory, false);
  const logger = pino({ level: 'silent' });
  let failed = 0;
  for (const u of config.upstreams) {
    const client = new RegistryClient(u, config.upstreamTimeouts, logger, io.now, undefined, instance);
    try {
      io.out(`upstream ${u.name} (${u.remoteurl})`);
      // Berth's own addresses let the loop be found while berth is stopped (nothing answers there then).
      for (const r of await client.check([{ host: config.http.host, port: config.http.port }, ...config.http.listeners])) {
        io.out(`  ${r.ok ? 'ok  ' : 'FAIL'} ${r.check.padEnd(11)} ${r.message}`);
        if (!r.ok) {
          failed++;
          io.out(`       fix: ${r.fix ?? ''}`);
        }
      }
    } finally {
      await client.close();
    }
  }
  io.out(failed === 0 ? 'no problems found' : `${failed} problem${failed === 1 ? '' : 's'} found`);
  return failed === 0 ? 0 : 1;
}

function describeKey(key: KeyObject): string {
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec') return `ECDSA ${d?.namedCurve === 'secp384r1' ? 'P-384' : 'P-256'}`;
  if (key.asymmetricKeyType === 'rsa') return `RSA ${d?.modulusLength ?? ''}`.trim();
  return key.asymmetricKeyType ?? 'unknown';
}
