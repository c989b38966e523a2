import { readiness } from '@pds/shared';
import type { FastifyPluginAsync } from 'fastify';

/** Liveness, readiness (MongoDB and Redis answer) and Prometheus metrics; public. */
export const serviceRoutes: FastifyPluginAsync = async (app) => {
  const { deps, metrics } = app.gateway;
  const config = { access: 'public' as const };
  app.get('/health', { config }, async () => ({ status: 'ok' }));
  app.get('/ready', { config }, async (_request, reply) => {
    const { ready, body } = await readiness({ mongo: deps.mongoPing, redis: () => deps.redis.ping() });
    return reply.code(ready ? 200 : 503).send(body);
  });
  app.get('/metrics', { config }, async (_request, reply) => reply.type('text/plain; version=0.0.4').send(metrics.render()));
};
