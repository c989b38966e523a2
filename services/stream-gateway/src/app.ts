import websocket from '@fastify/websocket';
import { bearerToken, type Config, type Logger, type Models, readiness, tokenAuthenticator } from '@pds/shared';
import Fastify, { type FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { JobNotFoundError, streamJob } from './job-stream.js';
import { CloseCodes, type Outbox, sseOutbox, webSocketOutbox } from './outbox.js';
import type { SubscriptionHub } from './subscription-hub.js';

export { CloseCodes } from './outbox.js';

export interface GatewayDeps {
  models: Models;
  hub: SubscriptionHub;
  mongoPing(): Promise<unknown>;
  redisPing(): Promise<unknown>;
}

export interface GatewayOptions {
  /** A client with more than this waiting to be sent is closed (default 8 MiB). */
  maxBufferedBytes?: number;
  heartbeatMs?: number;
}

interface StreamRequest {
  Params: { id: string };
  Querystring: { from?: string; token?: string };
}

type ClientMessage = { type: 'subscribe'; jobId: string; from?: number } | { type: 'unsubscribe'; jobId: string };

/** Builds the gateway; never listens. */
export async function buildGateway(config: Pick<Config, 'ADMIN_TOKEN'>, deps: GatewayDeps, logger: Logger, options: GatewayOptions = {}) {
  const maxBufferedBytes = options.maxBufferedBytes ?? 8 * 1024 * 1024;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const app = Fastify({ loggerInstance: logger });
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });
  const sockets = new Set<WebSocket>();
  const streams = new Set<AbortController>();

  // Any role may watch jobs (viewer and up). The token is checked before the WebSocket upgrade,
  // so handlers stay synchronous and never miss a client's first message.
  const authenticator = tokenAuthenticator(deps.models, config.ADMIN_TOKEN);
  const refusals = new WeakMap<FastifyRequest, string>();
  app.addHook('preValidation', async (request: FastifyRequest<{ Querystring: { token?: string } }>) => {
    if (!request.url.startsWith('/v1/')) return;
    const token = bearerToken(request.headers.authorization) ?? request.query.token;
    if (token === undefined) return void refusals.set(request, 'missing bearer token (Authorization header, or ?token= for browsers)');
    const outcome = await authenticator.authenticate(token);
    if (!outcome.ok) refusals.set(request, outcome.message);
  });

  /** Why a request may not stream, or undefined when it may. */
  const refusal = (request: FastifyRequest): string | undefined => refusals.get(request);

  function parseFrom(value: string | undefined): number | undefined {
    const from = Number(value ?? 0);
    return Number.isInteger(from) && from >= 0 ? from : undefined;
  }

  /** Streams one job into an outbox; resolves when the job's stream is over. */
  async function pipe(jobId: string, from: number, outbox: Outbox, signal: AbortSignal, log: Logger): Promise<'ended' | number> {
    try {
      await streamJob(deps, jobId, from, (message, raw) => outbox.send(message, raw), signal);
      return 'ended';
    } catch (err) {
      if (err instanceof JobNotFoundError) {
        outbox.send({ type: 'error', jobId, code: CloseCodes.notFound, message: err.message });
        return CloseCodes.notFound;
      }
      log.error({ err, jobId }, 'stream failed');
      outbox.send({ type: 'error', jobId, code: CloseCodes.internal, message: 'stream failed; reconnect with from=<last seq>' });
      return CloseCodes.internal;
    }
  }

  function track(socket: WebSocket): AbortController {
    sockets.add(socket);
    const controller = new AbortController();
    streams.add(controller);
    let alive = true;
    socket.on('pong', () => {
      alive = true;
    });
    // Dead peers (no pong within a heartbeat) are reaped.
    const heartbeat = setInterval(() => {
      if (!alive) return socket.terminate();
      alive = false;
      socket.ping();
    }, heartbeatMs);
    socket.on('close', () => {
      clearInterval(heartbeat);
      sockets.delete(socket);
      streams.delete(controller);
      controller.abort();
    });
    return controller;
  }

  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/ready', async (_request, reply) => {
    const { ready, body } = await readiness({ mongo: deps.mongoPing, redis: deps.redisPing });
    return reply.code(ready ? 200 : 503).send(body);
  });
  app.get('/metrics', async (_request, reply) => {
    reply.type('text/plain; version=0.0.4');
    return [
      '# HELP gateway_connections Open client connections (WebSocket and SSE).',
      '# TYPE gateway_connections gauge',
      `gateway_connections ${streams.size}`,
      '# HELP gateway_job_subscriptions Redis channel subscriptions held by this process (one per watched job).',
      '# TYPE gateway_job_subscriptions gauge',
      `gateway_job_subscriptions ${deps.hub.subscriptions}`,
      '',
    ].join('\n');
  });

  // One job: WebSocket, or Server-Sent Events with Accept: text/event-stream.
  app.route<StreamRequest>({
    method: 'GET',
    url: '/v1/jobs/:id/stream',
    handler: async (request, reply) => {
      if (!String(request.headers.accept ?? '').includes('text/event-stream')) {
        return reply
          .code(426)
          .send({ statusCode: 426, error: 'Upgrade Required', message: 'use a WebSocket, or Accept: text/event-stream' });
      }
      const denied = refusal(request);
      if (denied) return reply.code(401).send({ statusCode: 401, error: 'Unauthorized', message: denied });
      const lastEventId = request.headers['last-event-id'];
      const from = parseFrom(typeof lastEventId === 'string' ? lastEventId : request.query.from);
      if (from === undefined)
        return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: 'from must be a non-negative integer' });
      reply.hijack();
      const response = reply.raw;
      response.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      const controller = new AbortController();
      streams.add(controller);
      const heartbeat = setInterval(() => response.write(': heartbeat\n\n'), heartbeatMs);
      response.on('close', () => {
        clearInterval(heartbeat);
        streams.delete(controller);
        controller.abort();
      });
      const outbox = sseOutbox(response, maxBufferedBytes);
      await pipe(request.params.id, from, outbox, controller.signal, request.log);
      outbox.close(CloseCodes.normal, 'job ended');
    },
    wsHandler: (socket, request) => {
      const denied = refusal(request);
      if (denied) return socket.close(CloseCodes.unauthorized, denied);
      const from = parseFrom(request.query.from);
      if (from === undefined) return socket.close(CloseCodes.badRequest, 'from must be a non-negative integer');
      const controller = track(socket);
      const outbox = webSocketOutbox(socket, maxBufferedBytes);
      void pipe(request.params.id, from, outbox, controller.signal, request.log).then((result) =>
        outbox.close(
          result === 'ended' ? CloseCodes.normal : result,
          result === 'ended' ? 'job ended' : result === CloseCodes.notFound ? 'job not found' : 'stream failed',
        ),
      );
    },
  });

  // Many jobs on one socket: the client sends {type:"subscribe", jobId, from} / {type:"unsubscribe", jobId}.
  app.get<{ Querystring: { token?: string } }>('/v1/stream', { websocket: true }, (socket, request) => {
    const denied = refusal(request);
    if (denied) return socket.close(CloseCodes.unauthorized, denied);
    const connection = track(socket);
    const outbox = webSocketOutbox(socket, maxBufferedBytes);
    const jobs = new Map<string, AbortController>();
    socket.on('message', (data) => {
      let message: ClientMessage;
      try {
        message = JSON.parse(String(data)) as ClientMessage;
      } catch {
        return outbox.send({ type: 'error', jobId: '', code: CloseCodes.badRequest, message: 'messages must be JSON' });
      }
      if (typeof message?.jobId !== 'string' || message.jobId === '') {
        return outbox.send({ type: 'error', jobId: '', code: CloseCodes.badRequest, message: 'jobId is required' });
      }
      if (message.type === 'unsubscribe') {
        jobs.get(message.jobId)?.abort();
        jobs.delete(message.jobId);
        return;
      }
      if (message.type !== 'subscribe') {
        return outbox.send({
          type: 'error',
          jobId: (message as { jobId: string }).jobId,
          code: CloseCodes.badRequest,
          message: 'type must be subscribe or unsubscribe',
        });
      }
      const from = parseFrom(String(message.from ?? 0));
      if (from === undefined)
        return outbox.send({
          type: 'error',
          jobId: message.jobId,
          code: CloseCodes.badRequest,
          message: 'from must be a non-negative integer',
        });
      if (jobs.has(message.jobId)) return;
      const job = new AbortController();
      jobs.set(message.jobId, job);
      const signal = AbortSignal.any([connection.signal, job.signal]);
      void pipe(message.jobId, from, outbox, signal, request.log).finally(() => jobs.delete(message.jobId));
    });
  });

  app.addHook('onClose', async () => {
    for (const controller of streams) controller.abort();
    for (const socket of sockets) socket.close(CloseCodes.goingAway, 'gateway shutting down');
  });

  return app;
}
