/**
 * Transient failures: a store (MongoDB, Redis) that is briefly unreachable. The runner rides them
 * out by retrying for a bounded time (OUTAGE_TOLERANCE_SECONDS) instead of failing the job at once;
 * anything else (a bug, a validation error, a Pulumi program error) is not retried.
 */

/** Error names the MongoDB driver and ioredis give to "could not reach the server" failures. */
const TRANSIENT_NAMES = new Set([
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoServerSelectionError',
  'MongooseServerSelectionError',
  'MongoNotConnectedError',
  'MongoTopologyClosedError',
  'PoolClearedError',
  'PoolClearedOnNetworkError',
  'MaxRetriesPerRequestError',
]);
const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTCONN']);
/**
 * What ioredis says when a command meets a connection that is down and not queueing, and what the
 * MongoDB driver says when a pooled connection dies under an operation (seen under another error
 * name when FerretDB was stopped during a line write).
 */
const TRANSIENT_MESSAGES = [/Connection is closed/i, /Stream isn't writeable/i, /connect ECONNREFUSED/, /^connection \d+ to \S+ closed$/];

export function isTransientError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const { code } = err as { code?: unknown };
  if (TRANSIENT_NAMES.has(err.name) || (typeof code === 'string' && TRANSIENT_CODES.has(code))) return true;
  if (TRANSIENT_MESSAGES.some((pattern) => pattern.test(err.message))) return true;
  return err.cause !== undefined && err.cause !== err && isTransientError(err.cause);
}

export interface RetryOptions {
  /** Give up (rethrow the last error) once this much time has passed since the first failure. */
  toleranceMs: number;
  /** Told of each failure that will be retried (for a log line). */
  onRetry?(err: Error, attempt: number, waitMs: number): void;
  /** First wait; doubles up to maxWaitMs. */
  firstWaitMs?: number;
  maxWaitMs?: number;
}

/**
 * Calls `fn` until it succeeds, retrying transient failures with exponential backoff for at most
 * `toleranceMs`. Other errors are rethrown at once. `fn` must be safe to repeat (a write whose
 * answer was lost may have happened).
 */
export async function retryTransient<T>(fn: () => Promise<T>, options: RetryOptions): Promise<T> {
  const firstWait = options.firstWaitMs ?? 100;
  const maxWait = options.maxWaitMs ?? 2_000;
  let failingSince: number | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransientError(err)) throw err;
      failingSince ??= Date.now();
      const left = failingSince + options.toleranceMs - Date.now();
      if (left <= 0) throw err;
      const wait = Math.min(firstWait * 2 ** (attempt - 1), maxWait, left);
      options.onRetry?.(err as Error, attempt, wait);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}
