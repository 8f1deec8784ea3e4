/** @module upstream/status — an unexpected upstream answer read for its OCI envelope and mapped by the catalogue's one mapper. */
import { upstreamStatusError, type OciError, type UpstreamAnswer } from '../oci/errors.js';
import type { UpstreamResponse } from './client.js';

/** Error bodies are small; a larger one is cut here so a hostile upstream cannot make berth buffer it. */
const ENVELOPE_BYTES = 16 * 1024;

/**
 * The OCI error for an answer the caller did not expect, pull or push; consumes the body.
 * `notFound` is a pull's own answer for a 404 (it names the blob or manifest asked for).
 */
export async function upstreamError(res: UpstreamResponse, upstream: string, what: string, notFound?: OciError): Promise<OciError> {
  if (res.status === 404 && notFound) {
    await res.body.dump().catch(() => undefined);
    return notFound;
  }
  return upstreamStatusError({ status: res.status, ...(await readEnvelope(res)) }, { upstream, what, notFound });
}

/** The first code and message of an OCI error envelope; nothing for HEAD answers and other bodies. */
async function readEnvelope(res: UpstreamResponse): Promise<Omit<UpstreamAnswer, 'status'>> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res.body) {
      const b = chunk as Buffer;
      total += b.length;
      if (total > ENVELOPE_BYTES) {
        res.body.destroy();
        return {};
      }
      chunks.push(b);
    }
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    const first = body.errors?.[0];
    return {
      code: typeof first?.code === 'string' ? first.code : undefined,
      message: typeof first?.message === 'string' ? first.message : undefined,
    };
  } catch {
    // A cut body or one that is not JSON carries no envelope.
    return {};
  }
}
