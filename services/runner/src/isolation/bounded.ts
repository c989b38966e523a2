/**
 * Maps `items` with at most `limit` calls of `fn` in flight: a scan of /proc or of a shared temp
 * folder reads many files at once (one after another, each read waits its turn on a busy event
 * loop) without opening one descriptor per entry (a job can make entries by the thousand).
 */
export async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** How many files a scan reads at once. */
export const SCAN_CONCURRENCY = 32;
