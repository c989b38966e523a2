import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { type AuditEntryDoc, errors } from '@pds/shared';
import { Type } from '@sinclair/typebox';
import { readPage } from '../services/pagination.js';
import { tokenService } from '../services/tokens.js';
import {
  AuditEntrySchema,
  CreatedTokenSchema,
  CreateTokenBodySchema,
  errorResponses,
  IdParamsSchema,
  ListAuditQuerySchema,
  PageOf,
  TokenSchema,
} from './schemas.js';

/** API tokens and the audit log; admin only. */
export const accessRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tokens = tokenService(app.deps);
  const { models } = app.deps;

  app.post(
    '/v1/tokens',
    {
      config: { role: 'admin', action: 'token.create' },
      schema: {
        tags: ['access'],
        summary: 'Issue a token with a role (viewer, deployer, admin); the token is shown only in this response',
        body: CreateTokenBodySchema,
        response: { 201: CreatedTokenSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      if (!request.principal) throw errors.unauthorized('missing Authorization: Bearer <token> header');
      const created = await tokens.create(request.body, request.principal);
      request.auditTarget = created.id;
      return reply.code(201).send(created);
    },
  );

  app.get(
    '/v1/tokens',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['access'],
        summary: 'List tokens (never the tokens themselves)',
        response: { 200: Type.Object({ items: Type.Array(TokenSchema) }), ...errorResponses },
      },
    },
    async () => ({ items: await tokens.list() }),
  );

  app.delete(
    '/v1/tokens/:id',
    {
      config: { role: 'admin', action: 'token.revoke' },
      schema: { tags: ['access'], summary: 'Revoke a token', params: IdParamsSchema, response: { 200: TokenSchema, ...errorResponses } },
    },
    async (request) => tokens.revoke(request.params.id),
  );

  app.get(
    '/v1/audit',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['access'],
        summary: 'Changes made through the API, newest first',
        querystring: ListAuditQuerySchema,
        response: { 200: PageOf(AuditEntrySchema), ...errorResponses },
      },
    },
    async (request) => {
      const { action, actor, targetId, limit, cursor } = request.query;
      const filter = { ...(action ? { action } : {}), ...(actor ? { 'actor.id': actor } : {}), ...(targetId ? { targetId } : {}) };
      return readPage(
        (condition, n) =>
          models.AuditEntry.find({ ...filter, ...condition })
            .sort({ at: -1, _id: -1 })
            .limit(n)
            .lean<AuditEntryDoc[]>(),
        { field: 'at', limit, cursor },
        ({ _id, requestId: _requestId, ...entry }) => ({ id: _id, ...entry, at: entry.at.toISOString() }),
      );
    },
  );
};
