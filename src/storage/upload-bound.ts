/** @module storage/upload-bound — the in-process count of uploads each client address has open: per upload id, so whichever process ends an upload releases it. */
import { MAX_UPLOADS_PER_CLIENT, type UploadBound } from '../ports/upload-sessions.js';

export class LocalUploadBound implements UploadBound {
  private readonly byId = new Map<string, string>();
  private readonly perClient = new Map<string, number>();

  constructor(private readonly max = MAX_UPLOADS_PER_CLIENT) {}

  async open(client: string, id: string): Promise<boolean> {
    return this.openNow(client, id);
  }

  /** open() without the promise, for the primary answering a worker. */
  openNow(client: string, id: string): boolean {
    const n = this.perClient.get(client) ?? 0;
    if (n >= this.max) return false;
    this.perClient.set(client, n + 1);
    this.byId.set(id, client);
    return true;
  }

  close(id: string): void {
    const client = this.byId.get(id);
    if (client === undefined) return;
    this.byId.delete(id);
    const n = (this.perClient.get(client) ?? 1) - 1;
    if (n > 0) this.perClient.set(client, n);
    else this.perClient.delete(client);
  }
}
