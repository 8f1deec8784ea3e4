/** @module cluster/local-site — the in-process implementation of every role of the site ports: a replica alone, or replicas sharing one backend object in tests. */
import type { FillLease, Member, SharedTag, SiteCoordination } from '../ports/site.js';

/** What the replicas of one in-process site share. */
export class LocalSiteBackend {
  readonly members = new Map<string, number>();
  readonly leases = new Map<string, { owner: string; token: number; until: number }>();
  readonly holders = new Map<string, Set<string>>();
  readonly tags = new Map<string, SharedTag>();
  readonly checks = new Map<string, number>();
  readonly uploads = new Map<string, { owner: string; until: number }>();
  token = 0;
}

const tagKey = (u: string, r: string, t: string) => JSON.stringify([u, r, t]);

/** Membership, fill leases, holders, tag records and upload owners in one object. */
export class LocalSite implements SiteCoordination {
  constructor(
    readonly self: string,
    private readonly now: () => number,
    private readonly b: LocalSiteBackend = new LocalSiteBackend(),
  ) {}

  async heartbeat(ttlMs: number): Promise<void> {
    this.b.members.set(this.self, this.now() + ttlMs);
  }
  async leave(): Promise<void> {
    this.b.members.delete(this.self);
  }
  async members(): Promise<Member[]> {
    const now = this.now();
    return [...this.b.members].filter(([, until]) => until > now).map(([url, until]) => ({ url, until }));
  }

  private live(digest: string) {
    const l = this.b.leases.get(digest);
    return l && l.until > this.now() ? l : undefined;
  }
  private grant(digest: string, ttlMs: number): FillLease {
    const token = ++this.b.token;
    this.b.leases.set(digest, { owner: this.self, token, until: this.now() + ttlMs });
    return { digest, owner: this.self, token };
  }
  async acquireFill(digest: string, ttlMs: number): Promise<{ lease: FillLease } | { owner: string }> {
    const l = this.live(digest);
    return l ? { owner: l.owner } : { lease: this.grant(digest, ttlMs) };
  }
  async takeOverFill(digest: string, owner: string, ttlMs: number): Promise<FillLease | undefined> {
    const l = this.live(digest);
    return !l || l.owner === owner ? this.grant(digest, ttlMs) : undefined;
  }
  async renewFill(lease: FillLease, ttlMs: number): Promise<boolean> {
    const l = this.live(lease.digest);
    if (!l || l.token !== lease.token) return false;
    l.until = this.now() + ttlMs;
    return true;
  }
  async releaseFill(lease: FillLease): Promise<void> {
    if (this.b.leases.get(lease.digest)?.token === lease.token) this.b.leases.delete(lease.digest);
  }
  async fillOwner(digest: string): Promise<string | undefined> {
    return this.live(digest)?.owner;
  }

  async addHolder(digest: string): Promise<void> {
    const set = this.b.holders.get(digest) ?? new Set<string>();
    set.add(this.self);
    this.b.holders.set(digest, set);
  }
  async addHolders(digests: readonly string[]): Promise<void> {
    for (const d of digests) await this.addHolder(d);
  }
  async removeHolder(digest: string): Promise<void> {
    const set = this.b.holders.get(digest);
    set?.delete(this.self);
    if (set?.size === 0) this.b.holders.delete(digest);
  }
  async holders(digest: string): Promise<string[]> {
    return [...(this.b.holders.get(digest) ?? [])];
  }

  async tag(u: string, r: string, t: string): Promise<SharedTag | undefined> {
    return this.b.tags.get(tagKey(u, r, t));
  }
  async putTag(u: string, r: string, t: string, record: SharedTag): Promise<void> {
    this.b.tags.set(tagKey(u, r, t), { digest: record.digest, checkedAt: record.checkedAt });
  }
  async claimTagCheck(u: string, r: string, t: string, ttlMs: number): Promise<boolean> {
    const key = tagKey(u, r, t);
    const now = this.now();
    if ((this.b.checks.get(key) ?? 0) > now) return false;
    this.b.checks.set(key, now + ttlMs);
    return true;
  }

  async recordUpload(id: string, ttlMs: number): Promise<void> {
    this.b.uploads.set(id, { owner: this.self, until: this.now() + ttlMs });
  }
  async forgetUpload(id: string): Promise<void> {
    if (this.b.uploads.get(id)?.owner === this.self) this.b.uploads.delete(id);
  }
  async uploadOwner(id: string): Promise<string | undefined> {
    const u = this.b.uploads.get(id);
    return u && u.until > this.now() ? u.owner : undefined;
  }

  async close(): Promise<void> {}
}
