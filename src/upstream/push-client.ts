/** @module upstream/push-client — pushing to a central registry: blob existence, cross-repository mount, monolithic upload, manifests, deletes; no disk. */
import { badGateway } from '../oci/error-catalogue.js';
import { UPSTREAM_ACCEPT } from '../oci/mediatypes.js';
import { responseHeader, type RegistryClient } from './client.js';
import { upstreamError } from './status.js';
import { UPLOAD_CHUNK_BYTES, putWithDigest, uploadInChunks, type BlobSource } from './upload.js';

/** HEAD of a blob in the repository, with push scope (the token is then ready for the upload). */
export async function blobExists(client: RegistryClient, repository: string, digest: string): Promise<boolean> {
  const res = await client.send({ method: 'HEAD', repository, path: `blobs/${digest}`, push: true });
  if (res.status === 200 || res.status === 404) {
    await res.body.dump();
    return res.status === 200;
  }
  throw await upstreamError(res, client.name, `blob ${digest} in ${repository}`);
}

/**
 * Puts a blob the upstream does not have into the repository: a mount from `mountFrom` when the
 * upstream can (no bytes cross the link), else the bytes: one monolithic PUT for a blob of at most
 * one chunk, else chunks that resume after a cut (upstream/upload). A failed mount answers 202
 * with an upload URL, which is used as is: no extra round trip.
 */
export async function sendBlob(
  client: RegistryClient,
  repository: string,
  digest: string,
  source: BlobSource,
  mountFrom: readonly string[],
): Promise<'mounted' | 'uploaded'> {
  let location: string | undefined;
  const from = mountFrom.find((r) => r !== repository);
  if (from) {
    const path = `blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(client.upstreamRepository(from))}`;
    const res = await client.send({ method: 'POST', repository, path, push: true, pullFrom: [from] });
    await res.body.dump().catch(() => undefined);
    if (res.status === 201) return 'mounted';
    if (res.status === 202) location = responseHeader(res, 'location');
  }
  const start = async (): Promise<string> => {
    const res = await client.send({ method: 'POST', repository, path: 'blobs/uploads/', push: true });
    if (res.status !== 202) throw await upstreamError(res, client.name, `an upload of blob ${digest} to ${repository}`);
    await res.body.dump();
    const at = responseHeader(res, 'location');
    if (!at) throw badGateway(`upstream ${client.name} started an upload without a Location header`);
    return at;
  };
  location ??= await start();
  if (source.size > UPLOAD_CHUNK_BYTES) {
    await uploadInChunks(client, repository, digest, source, location, start);
    return 'uploaded';
  }
  const res = await putWithDigest(
    client,
    repository,
    location,
    digest,
    { 'content-type': 'application/octet-stream', 'content-length': String(source.size) },
    () => (source.size === 0 ? Buffer.alloc(0) : source.open(0, source.size - 1)),
  );
  if (res.status !== 201 && res.status !== 204) throw await upstreamError(res, client.name, `blob ${digest} (${source.size} bytes) for ${repository}`);
  await res.body.dump();
  return 'uploaded';
}

/** The digest a manifest reference names upstream, or undefined when the upstream has none. */
export async function manifestDigest(client: RegistryClient, repository: string, reference: string): Promise<string | undefined> {
  const res = await client.send({ method: 'HEAD', repository, path: `manifests/${reference}`, push: true, headers: { accept: UPSTREAM_ACCEPT } });
  if (res.status !== 200 && res.status !== 404) throw await upstreamError(res, client.name, `manifest ${repository}:${reference}`);
  await res.body.dump();
  return res.status === 200 ? responseHeader(res, 'docker-content-digest') : undefined;
}

export async function putManifest(client: RegistryClient, repository: string, reference: string, mediaType: string, body: Buffer): Promise<void> {
  const res = await client.send({
    method: 'PUT',
    repository,
    path: `manifests/${reference}`,
    push: true,
    headers: { 'content-type': mediaType, 'content-length': String(body.length) },
    body: () => body,
  });
  if (res.status !== 201 && res.status !== 200 && res.status !== 202)
    throw await upstreamError(res, client.name, `manifest ${repository}${reference.includes(':') ? '@' : ':'}${reference}`);
  await res.body.dump();
}

/** DELETE of `manifests/<ref>` or `blobs/<digest>`; an upstream that no longer has it is fine. */
export async function deleteUpstream(client: RegistryClient, repository: string, path: string): Promise<void> {
  const res = await client.send({ method: 'DELETE', repository, path, push: true });
  if (res.status === 202 || res.status === 200 || res.status === 204 || res.status === 404) {
    await res.body.dump();
    return;
  }
  throw await upstreamError(res, client.name, `DELETE of ${repository}/${path}`);
}
