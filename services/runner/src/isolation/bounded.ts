/**
 * Maps `items` with at most `limit` calls of `fn` in flight: a scan of /proc or of a shared temp
 * folder reads many files at once (one after another, each read waits its turn on a busy event
 * loop) without opening one descriptor per entry (a job can make entries by the thousand).
 */
export async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`mapBounded: limit must be a positive integer, not ${limit}`);
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    // After a failure no new call starts, and the caller hears of it only once every call has ended:
    // nothing of a failed scan (a removal, say) still runs when the caller goes on.
    while (!failure && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index] as T);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
  return results;
}

/** How many files a scan reads at once. */
export const SCAN_CONCURRENCY = 32;
