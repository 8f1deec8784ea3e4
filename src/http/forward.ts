/** @module http/forward — hands a request on an upload to the replica of the site that holds its bytes, and its answer back. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Agent, request } from '../util/undici.js';

/** Hop-by-hop headers stay on their own connection. */
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'host', 'te', 'trailer', 'proxy-authorization', 'proxy-connection']);

export class UploadForwarder {
  private readonly agent = new Agent({ headersTimeout: 120_000, bodyTimeout: 120_000 });

  /**
   * The owner runs the same checks (authentication, repository, upload state) as for a request
   * of its own: the client's credentials go with the request unchanged.
   */
  async forward(req: IncomingMessage, res: ServerResponse, owner: string): Promise<void> {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP.has(k)) headers[k] = v;
    const method = req.method ?? 'GET';
    const hasBody = method === 'PATCH' || method === 'PUT' || method === 'POST';
    const up = await request(`${owner}${req.url ?? '/'}`, {
      dispatcher: this.agent,
      method: method as 'GET',
      headers,
      // Through a pass-through undici may finish with: destroying `req` itself would reset the client's connection.
      ...(hasBody ? { body: req.pipe(new PassThrough()) } : {}),
    });
    res.statusCode = up.statusCode;
    for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP.has(k)) res.setHeader(k, v);
    await pipeline(up.body, res);
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
