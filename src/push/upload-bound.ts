/** @module push/upload-bound — how many uploads one client address has open: counted per upload id, so whichever process ends an upload releases it. */

/** Upload sessions one client address may have open at once (a push opens a few at a time). */
export const MAX_UPLOADS_PER_CLIENT = 128;

/** The count behind the per-client bound; with several serving workers the primary keeps it for all. */
export interface UploadBound {
  /** Counts upload `id` for `client`; false (nothing counted) when the client is at the bound. */
  open(client: string, id: string): Promise<boolean>;
  /** The upload ended (finished, cancelled, expired), wherever it was opened; unknown ids are ignored. */
  close(id: string): void;
}

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
