import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { type AuditEntryDoc, callerOf, errors, issueStreamTicket, principalOf, tenantFilter } from '@pds/shared';
import { Type } from '@sinclair/typebox';
import { listPage } from '../services/pagination.js';
import { tenantService } from '../services/tenants.js';
import { tokenService } from '../services/tokens.js';
import {
  AuditEntrySchema,
  CreatedTokenSchema,
  CreateStreamTicketBodySchema,
  CreateTokenBodySchema,
  errorResponses,
  IdParamsSchema,
  ListAuditQuerySchema,
  PageOf,
  StreamTicketSchema,
  TenantQuerySchema,
  TokenSchema,
  WhoAmISchema,
} from './schemas.js';

/** API tokens and the audit log (admin only), and stream tickets (any role). */
export const accessRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tokens = tokenService({ ...app.deps, tenants: tenantService(app.deps) });
  const { models } = app.deps;

  app.post(
    '/v1/tokens',
    {
      config: { access: 'admin', action: 'token.create' },
      schema: {
        tags: ['access'],
        summary:
          "Issue a token with a role in a tenant (viewer, deployer, admin), or a platform admin's (platform); the token is shown only in this response",
        body: CreateTokenBodySchema,
        response: { 201: CreatedTokenSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const created = await tokens.create(request.body, principalOf(request));
      request.auditTarget = created.id;
      request.auditTenant = created.tenant;
      return reply.code(201).send(created);
    },
  );

  app.get(
    '/v1/tokens',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['access'],
        summary: "List tokens (never the tokens themselves): a tenant admin, its tenant's",
        querystring: TenantQuerySchema,
        response: { 200: Type.Object({ items: Type.Array(TokenSchema) }), ...errorResponses },
      },
    },
    async (request) => ({ items: await tokens.list(principalOf(request), request.query.tenant) }),
  );

  app.delete(
    '/v1/tokens/:id',
    {
      config: { access: 'admin', action: 'token.revoke' },
      schema: { tags: ['access'], summary: 'Revoke a token', params: IdParamsSchema, response: { 200: TokenSchema, ...errorResponses } },
    },
    async (request) => {
      const revoked = await tokens.revoke(request.params.id, principalOf(request));
      request.auditTenant = revoked.tenant;
      return revoked;
    },
  );

  app.get(
    '/v1/whoami',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['access'],
        summary: 'Who the token is: its name, role and tenant (what the console shows and which actions it offers)',
        response: { 200: WhoAmISchema, ...errorResponses },
      },
    },
    async (request) => {
      const { id, name, role, tenant } = principalOf(request);
      return { id, name, role, ...(tenant ? { tenant } : {}) };
    },
  );

  app.post(
    '/v1/stream-tickets',
    {
      // No audit entry: a ticket changes nothing, and any viewer asking often must not fill the log.
      config: { access: 'viewer' },
      schema: {
        tags: ['access'],
        summary:
          'A single-use ticket (60 s) that opens one job stream, or the multiplexed socket, on the stream gateway: for browsers, instead of a token in the URL',
        body: CreateStreamTicketBodySchema,
        response: { 201: StreamTicketSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { jobId } = request.body;
      // A ticket for a job that does not exist would only open an error: say so now.
      if (jobId !== undefined && !(await models.StackJob.exists({ _id: jobId, ...tenantFilter(principalOf(request)) }))) {
        throw errors.notFound(`job ${jobId} not found`);
      }
      const ticket = await issueStreamTicket(app.deps.redis, callerOf(request), { jobId });
      return reply.code(201).send({ ...ticket, ...(jobId ? { jobId } : {}) });
    },
  );

  app.get(
    '/v1/audit',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['access'],
        summary: "Changes made through the API, newest first: a tenant admin, its tenant's",
        querystring: ListAuditQuerySchema,
        response: { 200: PageOf(AuditEntrySchema), ...errorResponses },
      },
    },
    async (request) => {
      const { tenant, action, actor, targetId, limit, cursor } = request.query;
      const filter = {
        ...(action ? { action } : {}),
        ...(actor ? { 'actor.id': actor } : {}),
        ...(targetId ? { targetId } : {}),
        ...tenantFilter(principalOf(request), tenant),
      };
      return listPage(
        models.AuditEntry,
        filter,
        { field: 'at', limit, cursor },
        ({ _id, requestId: _requestId, tenantId, ...entry }: AuditEntryDoc) => ({
          id: _id,
          ...(tenantId ? { tenant: tenantId } : {}),
          ...entry,
          at: entry.at.toISOString(),
        }),
      );
    },
  );
};
