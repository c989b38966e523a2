/**
 * The one error catalog. Every error a client can see has a code, an HTTP status and a message
 * that names the offending field or dependency.
 */
export class AppError extends Error {
  override name = 'AppError';
  constructor(
    readonly code: string,
    message: string,
    readonly statusCode: number,
    /** Sent as `Retry-After` (a limit that frees up with time). */
    readonly retryAfterSeconds?: number,
    /** A 409 for a name already taken: the id of the object that has it, sent as `existingId` (update it instead). */
    readonly existingId?: string,
  ) {
    super(message);
  }
}

type ErrorFactory = (message: string) => AppError;

/** Defines a kind of error once, as fastify's `createError` does. */
export function createError(code: string, statusCode: number): ErrorFactory {
  return (message) => new AppError(code, message, statusCode);
}

export const errors = {
  invalidManifest: createError('INVALID_MANIFEST', 400),
  invalidRequest: createError('INVALID_REQUEST', 400),
  unauthorized: createError('UNAUTHORIZED', 401),
  forbidden: createError('FORBIDDEN', 403),
  notFound: createError('NOT_FOUND', 404),
  conflict: createError('CONFLICT', 409),
  /** A resource name already taken; `existingId` tells the client which resource has it (`pds deploy` and the console update it). */
  exists: (message: string, existingId?: string) => new AppError('CONFLICT', message, 409, undefined, existingId),
  gone: createError('GONE', 410),
  payloadTooLarge: createError('PAYLOAD_TOO_LARGE', 413),
  upgradeRequired: createError('UPGRADE_REQUIRED', 426),
  tooManyRequests: createError('TOO_MANY_REQUESTS', 429),
  /** A tenant's policy refuses it (the message names the rule). */
  policy: createError('POLICY_VIOLATION', 409),
  /** A tenant's limit is reached for now; retry after `seconds` (the message names the rule). */
  quota: (message: string, seconds: number) => new AppError('QUOTA_EXCEEDED', message, 429, seconds),
  unavailable: createError('DEPENDENCY_UNAVAILABLE', 503),
};
