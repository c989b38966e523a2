import websocket from '@fastify/websocket';
import { bearerToken, type Config, type Logger, type Models, tokenMatches } from '@pds/shared';
import Fastify from 'fastify';
import type { WebSocket } from 'ws';
import { JobNotFoundError, type StreamMessage, streamJob } from './job-stream.js';
import type { SubscriptionHub } from './subscription-hub.js';

export interface GatewayDeps {
  models: Models;
  hub: SubscriptionHub;
  mongoPing(): Promise<unknown>;
  redisPing(): Promise<unknown>;
}

/** WebSocket close codes (4000–4999 are the application's). */
export const CloseCodes = {
  normal: 1000,
  goingAway: 1001,
  tooSlow: 1008,
  internal: 1011,
  badRequest: 4400,
  unauthorized: 4401,
  notFound: 4404,
} as const;

/** A client that does not read is closed once this much is waiting to be sent to it. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
const HEARTBEAT_MS = 15_000;

interface StreamQuery {
  from?: string;
  token?: string;
}

/** Builds the gateway; never listens. */
export async function buildGateway(config: Config, deps: GatewayDeps, logger: Logger) {
  const app = Fastify({ loggerInstance: logger });
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });
  const sockets = new Set<WebSocket>();

  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/ready', async (_request, reply) => {
    const checks = await Promise.allSettled([deps.mongoPing(), deps.redisPing()]);
    const [mongo, redis] = checks.map((c) => (c.status === 'fulfilled' ? 'ok' : 'unavailable'));
    const ready = mongo === 'ok' && redis === 'ok';
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ok' : 'unavailable', mongo, redis });
  });

  app.get<{ Params: { id: string }; Querystring: StreamQuery }>('/v1/jobs/:id/stream', { websocket: true }, (socket, request) => {
    const token = bearerToken(request.headers.authorization) ?? request.query.token;
    if (!tokenMatches(token, config.ADMIN_TOKEN)) {
      socket.close(CloseCodes.unauthorized, token === undefined ? 'missing bearer token' : 'invalid token');
      return;
    }
    const from = Number(request.query.from ?? 0);
    if (!Number.isInteger(from) || from < 0) {
      socket.close(CloseCodes.badRequest, 'from must be a non-negative integer');
      return;
    }
    sockets.add(socket);
    const controller = new AbortController();
    let alive = true;
    socket.on('pong', () => {
      alive = true;
    });
    const heartbeat = setInterval(() => {
      if (!alive) return socket.terminate();
      alive = false;
      socket.ping();
    }, HEARTBEAT_MS);
    socket.on('close', () => {
      clearInterval(heartbeat);
      sockets.delete(socket);
      controller.abort();
    });
    const send = (message: StreamMessage) => {
      if (socket.readyState !== socket.OPEN) return;
      if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
        socket.close(CloseCodes.tooSlow, 'client is not reading fast enough; reconnect with ?from=<last seq>');
        controller.abort();
        return;
      }
      socket.send(JSON.stringify(message));
    };
    streamJob(deps, request.params.id, from, send, controller.signal)
      .then(() => socket.close(CloseCodes.normal, 'job ended'))
      .catch((err: Error) => {
        if (err instanceof JobNotFoundError) return socket.close(CloseCodes.notFound, err.message);
        request.log.error({ err }, 'stream failed');
        socket.close(CloseCodes.internal, 'stream failed; reconnect with ?from=<last seq>');
      });
  });

  app.addHook('onClose', async () => {
    for (const socket of sockets) socket.close(CloseCodes.goingAway, 'gateway shutting down');
  });

  return app;
}
