/**
 * @module cache/signature-policy — the verify: policy: which manifests (and their blobs) an enforcing repository may
 * serve, decided from cosign signatures found by the `.sig` tag and by referrers, from the cache when the upstream is away.
 */
import type { Logger } from 'pino';
import type { VerifyRule } from '../config/verify.js';
import { OciError } from '../oci/errors.js';
import { signatureDenied } from '../oci/error-catalogue.js';
import { parseManifest, type Descriptor, type ParsedManifest } from '../oci/manifest.js';
import { repositoryPattern } from '../oci/repository-glob.js';
import type { ManifestGraph, ManifestRecords } from '../ports/repository-index.js';
import type { Target } from '../upstream/target.js';
import { getReferrers } from '../upstream/registry-api.js';
import type { BlobHandle } from './blob-cache.js';
import type { CacheObserver } from './cache-observer.js';
import {
  bundleLayers,
  checkSignature,
  isSignatureArtifact,
  MAX_BUNDLE_BYTES,
  MAX_PAYLOAD_BYTES,
  referrersTag,
  SIGNATURE_ANNOTATION,
  signatureLayers,
  signatureTag,
} from './cosign.js';
import { checkBundle } from './sigstore-bundle.js';
import type { ManifestResult } from './manifests.js';
import type { ManifestReference } from '../oci/reference.js';

/** How long a verdict is reused: a pull's manifest and blob requests verify once, a removed signature counts within seconds. */
export const VERDICT_TTL_MS = 10_000;
const MAX_VERDICTS = 4096;
/** Signed manifests whose signatures eviction keeps with them (the oldest forgotten first). */
const MAX_CARRIERS = 65_536;
/** Referrers looked at per manifest: a signature is one of the first few. */
const MAX_REFERRERS = 16;

export interface SignaturePolicyDeps {
  readonly rules: readonly VerifyRule[];
  readonly repos: ManifestRecords;
  readonly graph: Pick<ManifestGraph, 'parents'>;
  /** The cache's own manifest and blob reads (no policy in between): signatures are content like any other. */
  readonly manifest: (target: Target, ref: ManifestReference) => Promise<ManifestResult>;
  readonly blob: (target: Target, digest: string) => Promise<BlobHandle>;
  readonly logger: Logger;
  readonly now: () => number;
  readonly observer?: CacheObserver;
  /**
   * Records that a verified manifest's signature (its `.sig` manifest or referrers index) belongs
   * to it, in the store, so eviction keeps them together also after a restart.
   */
  readonly linkSignature?: (digest: string, signature: string) => Promise<void>;
  /** The signature recorded for a manifest by linkSignature, if any. */
  readonly signatureOf?: (digest: string) => Promise<string | undefined>;
}

interface CompiledRule {
  readonly patterns: readonly RegExp[];
  readonly rule: VerifyRule;
}

/** Whether a digest may be served, and if not, why. */
interface Verdict {
  readonly ok: boolean;
  /** When not ok: what was missing or wrong. */
  readonly why: string;
  readonly at: number;
  /** Not ok because no signature was found at all (rather than one that failed). */
  readonly unsigned?: boolean;
}

/** A manifest's verification state as the admin API reports it. */
export type SignatureState = 'verified' | 'unsigned' | 'invalid' | 'not checked';

export class SignaturePolicy {
  private readonly rules: readonly CompiledRule[];
  /** Recent verdicts by upstream, repository and digest; bounded, reused for VERDICT_TTL_MS. */
  private readonly verdicts = new Map<string, Verdict>();
  /** Digests warn mode has logged, so each is logged once (bounded). */
  private readonly warned = new Set<string>();
  /** The last verdict of each manifest checked, as the dashboard shows it (bounded). */
  private readonly states = new Map<string, SignatureState>();
  /** Signed manifest -> the signature manifest recorded for it: the store is written when this changes. */
  private readonly carriers = new Map<string, string>();

  constructor(private readonly deps: SignaturePolicyDeps) {
    this.rules = deps.rules.map((rule) => ({ rule, patterns: rule.repositories.map(repositoryPattern) }));
  }

  get active(): boolean {
    return this.deps.rules.some((r) => r.mode !== 'off');
  }

  /** The first entry matching the repository; undefined when none or it is off. */
  private ruleFor(target: Target): VerifyRule | undefined {
    const hit = this.rules.find((r) => r.patterns.some((p) => p.test(target.repository)));
    return hit && hit.rule.mode !== 'off' ? hit.rule : undefined;
  }

  /**
   * What the last check of a manifest found, for the admin API; before this process checked it, a
   * signature recorded in the store by an earlier check counts as verified; 'not checked' when no
   * entry applies or nothing is known (no lookup here: a listing fetches nothing).
   */
  async state(upstream: string, repository: string, digest: string): Promise<SignatureState> {
    if (!this.rules.some((r) => r.rule.mode !== 'off' && r.patterns.some((p) => p.test(repository)))) return 'not checked';
    const known = this.states.get(`${upstream}\0${repository}\0${digest}`);
    if (known) return known;
    return (await this.deps.signatureOf?.(digest)) ? 'verified' : 'not checked';
  }

  /** Throws 403 DENIED when an enforcing repository may not serve this manifest; counts and logs in warn mode. */
  async checkManifest(target: Target, m: ManifestResult): Promise<void> {
    const rule = this.ruleFor(target);
    if (!rule) return;
    const parsed = parseManifest(m.body, m.mediaType);
    if (isSignatureArtifact(parsed)) return;
    const verdict = await this.manifestVerdict(target, rule, m.digest, parsed);
    this.settle(target, rule, m.digest, verdict, `manifest ${m.digest}`);
  }

  /**
   * A blob is served through an enforcing repository only when a manifest of that repository
   * that references it may be served: the blobs of a refused image, and blobs no manifest there
   * names, are refused too.
   */
  async checkBlob(target: Target, digest: string): Promise<void> {
    const rule = this.ruleFor(target);
    if (!rule) return;
    const key = `${target.key}\0${target.repository}\0blob\0${digest}`;
    let verdict = this.recent(key);
    if (!verdict) {
      verdict = { ok: false, why: `no manifest of the repository that references it has a valid signature`, at: this.deps.now() };
      for (const parent of await this.parentsHere(target, digest)) {
        const m = await this.deps.manifest(target, { kind: 'digest', digest: parent });
        const parsed = parseManifest(m.body, m.mediaType);
        if (isSignatureArtifact(parsed) || (await this.manifestVerdict(target, rule, parent, parsed)).ok) {
          verdict = { ok: true, why: '', at: this.deps.now() };
          break;
        }
      }
      this.remember(key, verdict);
    }
    this.settle(target, rule, digest, verdict, `blob ${digest}`, false);
  }

  private settle(target: Target, rule: VerifyRule, digest: string, verdict: Verdict, what: string, count = true): void {
    const { observer, logger } = this.deps;
    if (verdict.ok) {
      if (count) observer?.signatureChecked?.('valid');
      return;
    }
    const message = `repository ${target.repository}: ${what} has no valid signature: ${verdict.why}; the verify: entry for ${rule.repositories.join(', ')} is in ${rule.mode} mode (sign the image with cosign sign --key, or see docs/signatures.md)`;
    if (rule.mode === 'enforce') {
      if (count) observer?.signatureChecked?.('denied');
      throw signatureDenied(message, { repository: target.repository, digest });
    }
    if (count) observer?.signatureChecked?.('warned');
    const once = `${target.key}\0${target.repository}\0${digest}`;
    if (this.warned.has(once)) return;
    if (this.warned.size >= MAX_VERDICTS) this.warned.clear();
    this.warned.add(once);
    logger.warn(
      { upstream: target.key, repository: target.repository, digest, reason: verdict.why },
      'serving content without a valid signature (verify: warn)',
    );
  }

  /** A manifest passes with a valid signature of its own, or as a child of an index here that has one. */
  private async manifestVerdict(target: Target, rule: VerifyRule, digest: string, parsed: ParsedManifest): Promise<Verdict> {
    const own = await this.signed(target, rule, digest);
    if (own.ok || parsed.manifests.length > 0) return own;
    for (const parent of await this.parentsHere(target, digest)) {
      if ((await this.signed(target, rule, parent)).ok) return { ok: true, why: '', at: own.at };
    }
    return own;
  }

  /** Manifests of this repository that reference the digest (an index's children, a manifest's blobs). */
  private async parentsHere(target: Target, digest: string): Promise<string[]> {
    const { repos, graph } = this.deps;
    const out: string[] = [];
    for (const p of await graph.parents(digest)) if (await repos.manifest(target.key, target.repository, p)) out.push(p);
    return out;
  }

  /** Whether the digest has a valid signature of its own, reused for VERDICT_TTL_MS. */
  private async signed(target: Target, rule: VerifyRule, digest: string): Promise<Verdict> {
    const key = `${target.key}\0${target.repository}\0${digest}`;
    const recent = this.recent(key);
    if (recent) return recent;
    const verdict = await this.lookUp(target, rule, digest);
    this.remember(key, verdict);
    if (this.states.size >= MAX_CARRIERS) this.states.clear();
    this.states.set(key, verdict.ok ? 'verified' : verdict.unsigned ? 'unsigned' : 'invalid');
    return verdict;
  }

  private recent(key: string): Verdict | undefined {
    const v = this.verdicts.get(key);
    return v && this.deps.now() - v.at < VERDICT_TTL_MS ? v : undefined;
  }

  private remember(key: string, v: Verdict): void {
    if (this.verdicts.size >= MAX_VERDICTS) this.verdicts.clear();
    this.verdicts.set(key, v);
  }

  /**
   * Looks for signatures: the `.sig` tag first, then referrers (berth's own records and the
   * upstream's), then the referrers tag `sha256-<hex>` cosign writes where there is no referrers
   * API. Tags are cached like any other, so the same lookups work with the upstream away.
   */
  private async lookUp(target: Target, rule: VerifyRule, digest: string): Promise<Verdict> {
    const at = this.deps.now();
    const problems: string[] = [];
    const tag = signatureTag(digest);
    const bySig = await this.manifestOrNone(target, { kind: 'tag', tag }, problems, `tag ${tag}`);
    if (bySig && (await this.anyValid(target, rule, digest, bySig.parsed, problems))) return this.proved(digest, bySig.digest, at);
    const fallback = referrersTag(digest);
    const byTag = await this.manifestOrNone(target, { kind: 'tag', tag: fallback }, problems, `referrers tag ${fallback}`);
    const listed = byTag?.parsed.manifests ?? [];
    const seen = new Set<string>();
    for (const d of [...(await this.referrers(target, digest)), ...listed.slice(0, MAX_REFERRERS)]) {
      if (seen.has(d.digest)) continue;
      seen.add(d.digest);
      const m = await this.manifestOrNone(target, { kind: 'digest', digest: d.digest }, problems, `referrer ${d.digest}`);
      if (!m || !(await this.anyValid(target, rule, digest, m.parsed, problems))) continue;
      // The referrers index is what an offline lookup reads first: eviction keeps it (and through it the referrer).
      return this.proved(digest, byTag && listed.some((l) => l.digest === m.digest) ? byTag.digest : m.digest, at);
    }
    const why =
      problems.length > 0
        ? problems.join('; ')
        : `no cosign signature found (no tag ${tag}, no signature or Sigstore bundle among its referrers or under tag ${fallback})`;
    return { ok: false, why, at, unsigned: problems.length === 0 };
  }

  private proved(digest: string, signature: string, at: number): Verdict {
    if (this.carriers.get(digest) !== signature) {
      if (this.carriers.size >= MAX_CARRIERS && !this.carriers.has(digest)) this.carriers.delete(this.carriers.keys().next().value!);
      this.carriers.set(digest, signature);
      this.deps.linkSignature?.(digest, signature).catch((err: Error) => {
        this.carriers.delete(digest);
        this.deps.logger.warn({ digest, signature, err: err.message }, 'could not record the signature of a verified manifest for eviction');
      });
    }
    return { ok: true, why: '', at };
  }

  private async manifestOrNone(
    target: Target,
    ref: ManifestReference,
    problems: string[],
    what: string,
  ): Promise<{ digest: string; parsed: ParsedManifest } | undefined> {
    try {
      const m = await this.deps.manifest(target, ref);
      return { digest: m.digest, parsed: parseManifest(m.body, m.mediaType) };
    } catch (err) {
      if (err instanceof OciError && err.status === 404) return undefined;
      problems.push(`${what} could not be read (${(err as Error).message})`);
      return undefined;
    }
  }

  private async anyValid(target: Target, rule: VerifyRule, digest: string, m: ParsedManifest, problems: string[]): Promise<boolean> {
    for (const layer of bundleLayers(m)) {
      const bytes = await this.payload(target, layer, problems, MAX_BUNDLE_BYTES);
      if (!bytes) continue;
      const v = checkBundle({ bytes, digest, repository: target.repository, keys: rule.keys, keyless: rule.keyless, now: this.deps.now });
      if (v.ok) return true;
      problems.push(v.reason);
    }
    for (const layer of signatureLayers(m)) {
      const payload = await this.payload(target, layer, problems);
      if (!payload) continue;
      const v = checkSignature({ payload, signature: layer.annotations![SIGNATURE_ANNOTATION]!, digest, repository: target.repository, keys: rule.keys });
      if (v.ok) return true;
      problems.push(v.reason);
    }
    return false;
  }

  private async payload(target: Target, layer: Descriptor, problems: string[], max = MAX_PAYLOAD_BYTES): Promise<Buffer | undefined> {
    if (layer.size > max) {
      problems.push(`a signature payload of ${layer.size} bytes is larger than a simple signing payload can be`);
      return undefined;
    }
    let handle: BlobHandle;
    try {
      handle = await this.deps.blob(target, layer.digest);
    } catch (err) {
      problems.push(`signature payload ${layer.digest} could not be read (${(err as Error).message})`);
      return undefined;
    }
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of handle.open()) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    } finally {
      await handle.close();
    }
  }

  private async referrers(target: Target, digest: string): Promise<Descriptor[]> {
    const local = await this.deps.repos.referrers(target.key, target.repository, digest, { limit: MAX_REFERRERS });
    const seen = new Set(local.map((r) => r.digest));
    const out: Descriptor[] = local.map((r) => ({ mediaType: r.mediaType, digest: r.digest, size: r.size }));
    if (target.upstream) {
      const remote = await getReferrers(target.upstream.client, target.repository, digest).catch(() => []);
      for (const d of remote) if (!seen.has(d.digest) && out.length < MAX_REFERRERS) out.push(d);
    }
    return out.slice(0, MAX_REFERRERS);
  }
}
