/** @module util/malloc-trim — glibc's malloc_trim(3) (through koffi's FFI): gives the C allocator's free pages back to the system. */

/**
 * SQLite's page cache, the statements a large read prepared and buffers Node freed leave free
 * pages inside glibc's heaps, which glibc keeps for the next allocation: resident memory stays
 * at its peak. malloc_trim(0) hands those pages back. Undefined where there is no glibc (musl
 * has no malloc_trim) or koffi does not load: there is nothing to do then.
 */
export async function loadMallocTrim(platform: string = process.platform): Promise<(() => void) | undefined> {
  if (platform !== 'linux') return undefined;
  try {
    const { default: koffi } = await import('koffi');
    const trim = koffi.load(null).func('int malloc_trim(size_t pad)') as (pad: number) => number;
    return () => void trim(0);
  } catch {
    return undefined;
  }
}
