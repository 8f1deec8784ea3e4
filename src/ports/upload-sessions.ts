/** @module ports/upload-sessions — the port for client uploads in progress (their rows; the bytes are temp files). */

export interface UploadRow {
  readonly id: string;
  readonly upstream: string;
  readonly repository: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** Called once per request on an upload (never per chunk written). */
export interface UploadSessions {
  insert(id: string, upstream: string, repository: string): Promise<void>;
  get(id: string): Promise<UploadRow | undefined>;
  touch(id: string): Promise<void>;
  delete(id: string): Promise<void>;
  all(): Promise<UploadRow[]>;
}

/** Upload sessions one client address may have open at once (a push opens a few at a time). */
export const MAX_UPLOADS_PER_CLIENT = 128;

/** The count behind the per-client bound; with several serving workers the primary keeps it for all. */
export interface UploadBound {
  /** Counts upload `id` for `client`; false (nothing counted) when the client is at the bound. */
  open(client: string, id: string): Promise<boolean>;
  /** The upload ended (finished, cancelled, expired), wherever it was opened; unknown ids are ignored. */
  close(id: string): void;
}
