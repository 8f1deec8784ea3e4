/** @module cluster/peer-client — reads a blob from another replica of the site: its stored copy, its fill while it fills, or one range of it. */
import { Agent, request } from '../util/undici.js';
import type { PeerMode } from '../ports/fills.js';
import { PEER_AUTH_SCHEME, PEER_COPY_PATH, PEER_PATH } from '../ports/peers.js';

/** A peer transfer failed (refused, went away, cut short): another source is worth a try. */
export class PeerError extends Error {
  readonly transient = true;
  constructor(message: string) {
    super(message);
    this.name = 'PeerError';
  }
}

/** A copy moves a whole image over the LAN before one answer: its wait is not a first-byte timeout. */
const COPY_ANSWER_MS = 10 * 60_000;

export interface PeerBody {
  readonly body: AsyncIterable<Uint8Array>;
  /** Whole blob size when the peer knows it. */
  readonly size: number | undefined;
}

export class PeerClient {
  private readonly agent: Agent;
  private readonly copyAgent: Agent;

  constructor(
    private readonly secret: string,
    timeouts: { connectMs: number; firstByteMs: number; idleMs: number },
  ) {
    this.agent = new Agent({ connect: { timeout: timeouts.connectMs }, headersTimeout: timeouts.firstByteMs, bodyTimeout: timeouts.idleMs });
    this.copyAgent = new Agent({ connect: { timeout: timeouts.connectMs }, headersTimeout: COPY_ANSWER_MS, bodyTimeout: timeouts.idleMs });
  }

  /** Asks `peer` to copy the items of a push from this replica; resolves once the peer stored (and fsync'd) them all. */
  async copy(peer: string, req: unknown): Promise<void> {
    let res;
    try {
      res = await request(`${peer}${PEER_COPY_PATH}`, {
        method: 'POST',
        dispatcher: this.copyAgent,
        headers: { authorization: `${PEER_AUTH_SCHEME} ${this.secret}`, 'content-type': 'application/json' },
        body: JSON.stringify(req),
      });
    } catch (err) {
      throw new PeerError(`peer ${peer}: ${(err as Error).message}`);
    }
    const text = await res.body.text().catch(() => '');
    if (res.statusCode !== 200) throw new PeerError(`peer ${peer} answered ${res.statusCode}: ${text.slice(0, 300)}`);
  }

  /** GET of `digest` from byte `offset` at `peer` for (upstream, repository): the peer checks the repository may see it. */
  async open(peer: string, upstream: string, repository: string, digest: string, offset: number, mode: PeerMode): Promise<PeerBody> {
    const res = await this.get(peer, { upstream, repository, mode }, digest, offset > 0 ? `bytes=${offset}-` : undefined);
    const want = offset > 0 ? 206 : 200;
    if (res.statusCode !== want) {
      await res.body.dump().catch(() => undefined);
      throw new PeerError(`peer ${peer} answered ${res.statusCode} for ${digest} from ${offset}`);
    }
    if (offset > 0 && !String(res.headers['content-range'] ?? '').startsWith(`bytes ${offset}-`)) {
      await res.body.dump().catch(() => undefined);
      throw new PeerError(`peer ${peer} answered a resume at ${offset} with range ${String(res.headers['content-range'])}`);
    }
    const length = Number(res.headers['content-length']);
    const size = res.headers['content-length'] === undefined || !Number.isSafeInteger(length) ? undefined : length + offset;
    return { body: guarded(res.body, peer), size };
  }

  /**
   * Bytes [start, end] of `digest` at `peer` (mode `range`): from what the peer holds, or fetched
   * there from its upstream (joined with its own clients' fetches), never from a third replica.
   */
  async range(peer: string, upstream: string, repository: string, digest: string, start: number, end: number): Promise<AsyncIterable<Uint8Array>> {
    const res = await this.get(peer, { upstream, repository, mode: 'range' }, digest, `bytes=${start}-${end}`);
    const exact =
      res.statusCode === 206 &&
      String(res.headers['content-range'] ?? '').startsWith(`bytes ${start}-${end}/`) &&
      Number(res.headers['content-length']) === end - start + 1;
    if (!exact) {
      await res.body.dump().catch(() => undefined);
      throw new PeerError(`peer ${peer} answered ${res.statusCode} (${String(res.headers['content-range'])}) for bytes ${start}-${end} of ${digest}`);
    }
    return guarded(res.body, peer);
  }

  /** GET of the peer endpoint for `digest`, with the cluster secret; a failure to get any answer is a PeerError. */
  private async get(peer: string, query: { upstream: string; repository: string; mode: PeerMode }, digest: string, range: string | undefined) {
    const url = `${peer}${PEER_PATH}${digest}?${new URLSearchParams(query).toString()}`;
    try {
      return await request(url, {
        dispatcher: this.agent,
        headers: { authorization: `${PEER_AUTH_SCHEME} ${this.secret}`, ...(range ? { range } : {}) },
      });
    } catch (err) {
      throw new PeerError(`peer ${peer}: ${(err as Error).message}`);
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.agent.close(), this.copyAgent.close()]);
  }
}

/** The peer's body, with every failure a PeerError so the fill moves to another source. */
async function* guarded(body: AsyncIterable<Uint8Array>, peer: string): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of body) yield chunk;
  } catch (err) {
    throw new PeerError(`peer ${peer} stream broke: ${(err as Error).message}`);
  }
}
