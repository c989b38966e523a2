import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The error message a failed request answered with (the API's audit entry records it). */
    auditFailure?: string;
  }
}

/** Errors that mean a dependency is away: answered 503, not 500. */
export function isDependencyOutage(err: Error): boolean {
  return /MongoServerSelection|MongoNetwork|MongoNotConnected|ECONNREFUSED|Connection is closed|Stream isn't writeable|enableOfflineQueue/i.test(
    `${err.name} ${err.message}`,
  );
}

/** Ajv's message, but naming an unknown field (Ajv says only that there is one). */
function validationMessage(err: FastifyError): string {
  const unknown = err.validation?.find((v) => v.keyword === 'additionalProperties');
  const field = (unknown?.params as { additionalProperty?: string } | undefined)?.additionalProperty;
  if (!unknown || field === undefined) return err.message;
  const where = `${err.validationContext ?? 'body'}${unknown.instancePath.replaceAll('/', '.')}`;
  return `${where}.${field}: unknown field (not one this route takes)`;
}

/**
 * The one error shape of every service, `{ statusCode, error, message }`: the catalog's errors as
 * they are, validation errors as 400 naming the field, an outage as 503, and 5xx internals hidden.
 */
export function errorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  request.auditFailure = err.message;
  if (err instanceof AppError) {
    if (err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));
    return reply.code(err.statusCode).send({
      statusCode: err.statusCode,
      error: err.code,
      message: err.message,
      ...(err.existingId ? { existingId: err.existingId } : {}),
    });
  }
  if (err.validation) {
    return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: validationMessage(err) });
  }
  if (isDependencyOutage(err)) {
    request.log.warn({ err }, 'dependency unavailable');
    return reply
      .code(503)
      .send({ statusCode: 503, error: 'Service Unavailable', message: 'a dependency (MongoDB or Redis) is unavailable; retry later' });
  }
  if (err.statusCode && err.statusCode < 500) {
    return reply.code(err.statusCode).send({ statusCode: err.statusCode, error: err.code ?? 'Bad Request', message: err.message });
  }
  request.log.error({ err }, 'request failed');
  return reply.code(500).send({ statusCode: 500, error: 'Internal Server Error', message: 'internal error' });
}
