import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { callerOf, errors, principalOf } from '@pds/shared';
import { trackSocket } from '../connections.js';
import { CloseCodes, sseOutbox, webSocketOutbox } from '../outbox.js';
import { JobStreamParamsSchema, JobStreamQuerySchema } from '../schemas.js';
import { closeReason, streamInto } from '../stream-to-outbox.js';

/**
 * One job's stream: a WebSocket, or Server-Sent Events with `Accept: text/event-stream` (where
 * Last-Event-ID wins over `from`). Any role may watch; the access plugin has decided before either
 * handler runs, and a refused upgrade is answered over HTTP, before any socket exists.
 */
export const jobStreamRoute: FastifyPluginAsyncTypebox = async (app) => {
  const { deps, connections, limits } = app.gateway;

  app.route({
    method: 'GET',
    url: '/v1/jobs/:id/stream',
    config: { access: 'viewer' },
    schema: { params: JobStreamParamsSchema, querystring: JobStreamQuerySchema },
    preHandler: async (request) => connections.assertRoom(callerOf(request).tokenHash),
    handler: async (request, reply) => {
      if (!String(request.headers.accept ?? '').includes('text/event-stream')) {
        throw errors.upgradeRequired('use a WebSocket, or Accept: text/event-stream');
      }
      const { tokenHash } = callerOf(request);
      const lastEventId = request.headers['last-event-id'];
      const from = typeof lastEventId === 'string' && lastEventId !== '' ? Number(lastEventId) : (request.query.from ?? 0);
      if (!Number.isInteger(from) || from < 0) throw errors.invalidRequest('Last-Event-ID must be a non-negative integer');
      reply.hijack();
      const response = reply.raw;
      response.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      const controller = new AbortController();
      const outbox = sseOutbox(response, limits.maxBufferedBytes);
      const release = connections.add({
        tokenHash,
        beat: () => response.write(': heartbeat\n\n'),
        close: (code, message) => {
          outbox.send({ type: 'error', jobId: request.params.id, code, message });
          outbox.close(code, message);
        },
      });
      let left = false;
      const leave = () => {
        if (left) return;
        left = true;
        release();
        controller.abort();
      };
      response.on('close', leave);
      // A client that left while its token was being checked closed the connection before anyone listened.
      if (response.socket?.destroyed !== false) leave();
      await streamInto(deps, request.params.id, from, outbox, controller.signal, request.log, principalOf(request));
      outbox.close(CloseCodes.normal, 'job ended');
    },
    wsHandler: (socket, request) => {
      const signal = trackSocket(connections, socket, callerOf(request).tokenHash);
      const outbox = webSocketOutbox(socket, limits.maxBufferedBytes);
      void streamInto(deps, request.params.id, request.query.from ?? 0, outbox, signal, request.log, principalOf(request)).then((result) =>
        outbox.close(...closeReason(result)),
      );
    },
  });
};
