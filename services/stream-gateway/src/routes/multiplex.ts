import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { callerOf, roleAllows } from '@pds/shared';
import { rateLimiter, trackSocket } from '../connections.js';
import { CloseCodes, type Outbox, webSocketOutbox } from '../outbox.js';
import { type ClientMessage, parseClientMessage, SocketQuerySchema } from '../schemas.js';
import { streamInto } from '../stream-to-outbox.js';

/**
 * Many jobs on one socket: the client sends `subscribe` / `unsubscribe` messages. The upgrade is
 * decided by the access plugin like any route; then every `subscribe` is authorised again (the
 * socket's token must still be good and allow watching), rate-limited and capped in number.
 */
export const multiplexRoute: FastifyPluginAsyncTypebox = async (app) => {
  const { deps, connections, limits, authenticator } = app.gateway;

  app.get(
    '/v1/stream',
    {
      websocket: true,
      config: { access: 'viewer' },
      schema: { querystring: SocketQuerySchema },
      preHandler: async (request) => connections.assertRoom(callerOf(request).tokenHash),
    },
    (socket, request) => {
      const { tokenHash } = callerOf(request);
      const connection = trackSocket(connections, socket, tokenHash);
      const outbox = webSocketOutbox(socket, limits.maxBufferedBytes);
      const jobs = new Map<string, AbortController>();
      const mayTry = rateLimiter(limits.subscribesPerSecond);
      const refuse = (jobId: string, code: number, message: string) => outbox.send({ type: 'error', jobId, code, message });

      /** Authorised per message: the token is asked again (cached for the authenticator's lifetime). */
      async function subscribe(message: Extract<ClientMessage, { type: 'subscribe' }>, out: Outbox) {
        const { jobId } = message;
        if (jobs.has(jobId)) return;
        if (!mayTry()) return refuse(jobId, CloseCodes.tooMany, `more than ${limits.subscribesPerSecond} subscribes per second; slow down`);
        if (jobs.size >= limits.maxSubscriptionsPerSocket) {
          return refuse(
            jobId,
            CloseCodes.tooMany,
            `at most ${limits.maxSubscriptionsPerSocket} jobs per socket; unsubscribe from one first`,
          );
        }
        const holder = await authenticator.byHash(tokenHash);
        if (!holder.ok || !roleAllows(holder.principal.role, 'viewer')) {
          return socket.close(CloseCodes.unauthorized, holder.ok ? 'this token may not watch jobs' : holder.message);
        }
        const job = new AbortController();
        jobs.set(jobId, job);
        const signal = AbortSignal.any([connection, job.signal]);
        void streamInto(deps, jobId, message.from ?? 0, out, signal, request.log, holder.principal).finally(() => {
          if (jobs.get(jobId) === job) jobs.delete(jobId);
        });
      }

      // Messages are handled one after the other, so an unsubscribe never overtakes its subscribe.
      let handled: Promise<unknown> = Promise.resolve();
      socket.on('message', (data) => {
        handled = handled
          .then(async () => {
            const message = parseClientMessage(String(data));
            if (typeof message === 'string') return refuse('', CloseCodes.badRequest, message);
            if (message.type === 'unsubscribe') {
              jobs.get(message.jobId)?.abort();
              jobs.delete(message.jobId);
              return;
            }
            await subscribe(message, outbox);
          })
          // One failed message (a store blip) must not stop the socket's later ones.
          .catch((err) => request.log.error({ err }, 'subscribe failed'));
      });
    },
  );
};
