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
