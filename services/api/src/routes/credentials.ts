import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { principalOf } from '@pds/shared';
import { credentialService } from '../services/credentials.js';
import { tenantService } from '../services/tenants.js';
import {
  CreateCredentialBodySchema,
  CredentialSchema,
  errorResponses,
  IdParamsSchema,
  ListCredentialsQuerySchema,
  PageOf,
  ReplaceCredentialBodySchema,
} from './schemas.js';

/** Provider credentials; admins only (a tenant's, its own and those shared with it). Secret fields go in, never come out. */
export const credentialRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const credentials = credentialService({ ...app.deps, tenants: tenantService(app.deps) });

  app.post(
    '/v1/credentials',
    {
      config: { access: 'admin', action: 'credential.create' },
      schema: {
        tags: ['credentials'],
        summary: 'Store a credential for a provider (secret fields are sealed, never returned)',
        body: CreateCredentialBodySchema,
        response: { 201: CredentialSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const created = await credentials.create(request.body, principalOf(request));
      request.auditTarget = created.id;
      request.auditTenant = created.tenant;
      return reply.code(201).send(created);
    },
  );

  app.get(
    '/v1/credentials',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['credentials'],
        summary: 'List credentials, newest first',
        querystring: ListCredentialsQuerySchema,
        response: { 200: PageOf(CredentialSchema), ...errorResponses },
      },
    },
    async (request) => credentials.list(request.query, principalOf(request)),
  );

  app.get(
    '/v1/credentials/:id',
    {
      config: { access: 'admin' },
      schema: { tags: ['credentials'], params: IdParamsSchema, response: { 200: CredentialSchema, ...errorResponses } },
    },
    async (request) => credentials.get(request.params.id, principalOf(request)),
  );

  app.put(
    '/v1/credentials/:id',
    {
      config: { access: 'admin', action: 'credential.rotate' },
      schema: {
        tags: ['credentials'],
        summary: "Replace a credential's fields (rotation); name and provider stay",
        params: IdParamsSchema,
        body: ReplaceCredentialBodySchema,
        response: { 200: CredentialSchema, ...errorResponses },
      },
    },
    async (request) => {
      const rotated = await credentials.replace(request.params.id, request.body, principalOf(request));
      request.auditTenant = rotated.tenant;
      return rotated;
    },
  );

  app.delete(
    '/v1/credentials/:id',
    {
      config: { access: 'admin', action: 'credential.delete' },
      schema: {
        tags: ['credentials'],
        summary: 'Delete a credential (refused with 409 while a running job uses it)',
        params: IdParamsSchema,
        response: { 200: CredentialSchema, ...errorResponses },
      },
    },
    async (request) => {
      const removed = await credentials.remove(request.params.id, principalOf(request));
      request.auditTenant = removed.tenant;
      return removed;
    },
  );
};
