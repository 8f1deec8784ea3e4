/** @module util/copy-range — the kernel's copy_file_range(2) between two files at given offsets (through koffi's FFI), run off the event loop; bundles copy blob bytes with it. */

/** Moves file bytes inside the kernel (or shares extents where the file system can): no pass through the process. */
export interface CopyRange {
  /**
   * Copies `length` bytes of `fromFd` at `fromOffset` into `toFd` at `toOffset`. Resolves with the
   * bytes copied, fewer only when the source ended first; rejects when the kernel refused (the
   * caller copies through the process then).
   */
  copy(fromFd: number, fromOffset: number, toFd: number, toOffset: number, length: number): Promise<number>;
}

/** At most this much per call: one call runs on koffi's thread, and a smaller turn lets others in between. */
const TURN = 64 << 20;

type AsyncCall = (...args: unknown[]) => void;

/** copy_file_range(2) where it exists (Linux) and koffi loads; undefined otherwise (the caller copies through the process). */
export async function loadCopyRange(platform: string = process.platform): Promise<CopyRange | undefined> {
  if (platform !== 'linux') return undefined;
  try {
    const { default: koffi } = await import('koffi');
    const fn = koffi
      .load(null)
      .func('intptr_t copy_file_range(int fd_in, _Inout_ int64_t *off_in, int fd_out, _Inout_ int64_t *off_out, size_t len, unsigned int flags)');
    const call = (fn as unknown as { async: AsyncCall }).async;
    const once = (fromFd: number, from: number, toFd: number, to: number, count: number) =>
      new Promise<number>((resolve, reject) => {
        call(fromFd, [from], toFd, [to], count, 0, (err: Error | null, n: number) => {
          // errno is the thread's own and not readable here: any refusal falls back to copying.
          if (err) reject(err);
          else if (n < 0) reject(new Error('copy_file_range(2) refused the copy'));
          else resolve(n);
        });
      });
    return {
      async copy(fromFd, fromOffset, toFd, toOffset, length) {
        let done = 0;
        while (done < length) {
          const n = await once(fromFd, fromOffset + done, toFd, toOffset + done, Math.min(TURN, length - done));
          if (n === 0) break;
          done += n;
        }
        return done;
      },
    };
  } catch {
    return undefined;
  }
}
