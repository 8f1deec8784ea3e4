/** @module auth/htpasswd — users and bcrypt password hashes from an Apache htpasswd file, as distribution reads it. */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { BcryptPool } from './bcrypt-pool.js';
import { FailureLimiter } from './failures.js';

/** A verified password is remembered this long, so a pull of many blobs costs one bcrypt. */
const VERIFIED_TTL_MS = 5 * 60_000;
const MAX_VERIFIED = 10_000;
/**
 * Salt and hash of the hash compared against for unknown users; its cost is that of the costliest
 * entry, so an unknown user's check takes as long as the slowest known one's and timing does not
 * tell which users exist. Nothing hashes to it (it was never computed from a password).
 */
const DUMMY_TAIL = 'W27Z0FkK9lak6UYKODqM8ehqWWSmhv3W1fb4WxAlG/l2ckZoWDVJe';
/** htpasswd -B's default; the dummy's cost while the file holds no user. */
const DEFAULT_COST = 5;
const BCRYPT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
/** Bytes of a password bcrypt reads; a longer one is refused rather than cut, as Go's bcrypt does (ErrPasswordTooLong). */
export const MAX_PASSWORD_BYTES = 72;

/** Whether a password matches a bcrypt hash; off the event loop in production, counted in tests. */
export type BcryptCompare = (password: string, hash: string) => Promise<boolean>;

export function dummyHash(cost: number): string {
  return `$2b$${String(cost).padStart(2, '0')}$${DUMMY_TAIL}`;
}

export class Htpasswd {
  private users = new Map<string, string>();
  private dummy = dummyHash(DEFAULT_COST);
  private readonly verified = new Map<string, number>();
  private readonly salt = randomBytes(16);
  /** bcrypt runs on worker threads: a flood of wrong passwords must not starve the pulls. */
  private readonly pool: BcryptPool | undefined;
  private readonly compare: BcryptCompare;
  readonly failures: FailureLimiter;

  constructor(
    readonly path: string,
    private readonly logger: Logger,
    private readonly now: () => number,
    compare?: BcryptCompare,
  ) {
    this.failures = new FailureLimiter(now);
    if (compare) this.compare = compare;
    else {
      const pool = new BcryptPool();
      this.pool = pool;
      this.compare = (password, hash) => pool.compare(password, hash);
    }
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }

  /** The bcrypt cost an unknown user's check runs at: the costliest entry's. */
  get dummyCost(): number {
    return Number(this.dummy.slice(4, 6));
  }

  /** Reads the file; throws when it cannot be read (at start-up that stops berth). */
  load(): number {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      throw new Error(`auth.htpasswd.path: cannot read ${JSON.stringify(this.path)}: ${(err as Error).message}`);
    }
    const users = new Map<string, string>();
    let cost = 0;
    text.split(/\r?\n/).forEach((line, i) => {
      if (line.trim() === '' || line.startsWith('#')) return;
      const at = line.indexOf(':');
      const user = line.slice(0, at);
      const hash = line.slice(at + 1).trim();
      if (at <= 0 || !BCRYPT.test(hash)) {
        this.logger.warn(
          { file: this.path, line: i + 1, user: at > 0 ? user : undefined },
          'htpasswd entry ignored: only bcrypt hashes are supported (htpasswd -B)',
        );
        return;
      }
      users.set(user, hash);
      cost = Math.max(cost, Number(BCRYPT.exec(hash)![1]));
    });
    this.users = users;
    this.dummy = dummyHash(cost || DEFAULT_COST);
    this.verified.clear();
    return users.size;
  }

  /** Re-reads the file after a change; on failure keeps the users it had. */
  reload(): void {
    try {
      const n = this.load();
      this.logger.info({ file: this.path, users: n, unknownUserCost: this.dummyCost }, 'htpasswd reloaded');
    } catch (err) {
      this.logger.error({ file: this.path, err: (err as Error).message }, 'htpasswd reload failed; keeping the users loaded before');
    }
  }

  /**
   * A password verified recently is accepted without bcrypt, whatever else is going on (a
   * flood does not touch sessions already verified). Otherwise the client address must not be
   * in backoff for failed logins (429 if it is), and the check runs off the event loop. A
   * password over 72 bytes fails without a check: bcrypt would read only its first 72.
   */
  async verify(username: string, password: string, client = ''): Promise<boolean> {
    const key = createHash('sha256').update(this.salt).update(username).update('\0').update(password).digest('hex');
    const at = this.verified.get(key);
    if (at !== undefined && this.now() - at < VERIFIED_TTL_MS) return true;
    this.failures.check(client, username);
    const leave = this.failures.enter(client);
    const hash = this.users.get(username);
    const tooLong = Buffer.byteLength(password) > MAX_PASSWORD_BYTES;
    let ok = false;
    try {
      if (!tooLong) ok = await this.compare(password, hash ?? this.dummy);
    } finally {
      leave();
    }
    if (!ok || hash === undefined) {
      this.failures.fail(client, username);
      return false;
    }
    this.failures.succeed(client, username);
    this.verified.delete(key);
    this.verified.set(key, this.now());
    if (this.verified.size > MAX_VERIFIED) this.verified.delete(this.verified.keys().next().value as string);
    return true;
  }
}
