import websocket from '@fastify/websocket';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import {
  accessPlugin,
  type Authenticator,
  bearerToken,
  type Config,
  errorHandler,
  type Logger,
  Metrics,
  type Models,
  redeemStreamTicket,
  tokenAuthenticator,
} from '@pds/shared';
import Fastify, { type FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { type ConnectionLimits, Connections, DEFAULT_LIMITS } from './connections.js';
import { CloseCodes } from './outbox.js';
import { jobStreamRoute } from './routes/job-stream.js';
import { multiplexRoute } from './routes/multiplex.js';
import { serviceRoutes } from './routes/service.js';
import type { SubscriptionHub } from './subscription-hub.js';

export { CloseCodes } from './outbox.js';

export interface GatewayDeps {
  models: Models;
  hub: SubscriptionHub;
  /** A command connection: stream tickets are redeemed with it, and readiness pings it. */
  redis: Pick<Redis, 'getdel' | 'ping'>;
  mongoPing(): Promise<unknown>;
}

export type GatewayOptions = Partial<ConnectionLimits> & {
  /** How long a token's answer is trusted, and so how soon a revoked token loses its sockets (default 5 s). */
  tokenCacheMs?: number;
};

declare module 'fastify' {
  interface FastifyInstance {
    gateway: {
      deps: GatewayDeps;
      connections: Connections;
      limits: ConnectionLimits;
      authenticator: Authenticator;
      metrics: Metrics;
    };
  }
}

/**
 * Who a gateway request is: a bearer header, else a stream ticket (`?ticket=`), which opens only
 * the job (or the multiplexed socket) it was issued for and is used up by this request.
 */
function identify(deps: GatewayDeps, authenticator: Authenticator) {
  return async (request: FastifyRequest) => {
    const header = bearerToken(request.headers.authorization);
    if (header !== undefined || request.headers.authorization !== undefined) return authenticator.authenticate(header ?? '');
    const { ticket } = request.query as { ticket?: unknown };
    if (typeof ticket !== 'string') {
      return {
        ok: false as const,
        message: 'missing bearer token (an Authorization header, or ?ticket= from POST /v1/stream-tickets for browsers)',
      };
    }
    const { id } = request.params as { id?: string };
    return redeemStreamTicket(deps.redis, ticket, { jobId: id }, authenticator.byHash);
  };
}

/** Builds the gateway (access, then routes, each a plugin); never listens. */
export async function buildGateway(config: Pick<Config, 'ADMIN_TOKEN'>, deps: GatewayDeps, logger: Logger, options: GatewayOptions = {}) {
  const limits: ConnectionLimits = { ...DEFAULT_LIMITS, ...options };
  // Unknown query keys are an error the caller should hear about, as on the API.
  const app = Fastify({
    loggerInstance: logger,
    ajv: { customOptions: { removeAdditional: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  const authenticator = tokenAuthenticator(deps.models, config.ADMIN_TOKEN, options.tokenCacheMs);
  const connections = new Connections(limits, authenticator.byHash, authenticator.cacheMs);
  const metrics = new Metrics();
  metrics.gauge('gateway_connections', 'Open client connections (WebSocket and SSE).', () => connections.size);
  metrics.gauge(
    'gateway_job_subscriptions',
    'Redis channel subscriptions held by this process (one per watched job).',
    () => deps.hub.subscriptions,
  );
  app.decorate('gateway', { deps, connections, limits, authenticator, metrics });

  // The WebSocket plugin first: its onRequest hook marks upgrade requests, so that a refused
  // upgrade's socket is destroyed after the refusal is sent (with access first, it never ran and
  // the socket stayed open, holding up close).
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });
  await app.register(accessPlugin, { identify: identify(deps, authenticator) });
  app.setErrorHandler(errorHandler);
  await app.register(serviceRoutes);
  await app.register(jobStreamRoute);
  await app.register(multiplexRoute);

  app.addHook('onClose', async () => connections.closeAll(CloseCodes.goingAway, 'gateway shutting down'));
  return app;
}
