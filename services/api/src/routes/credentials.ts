import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { credentialService } from '../services/credentials.js';
import {
  CreateCredentialBodySchema,
  CredentialSchema,
  errorResponses,
  IdParamsSchema,
  ListCredentialsQuerySchema,
  PageOf,
  ReplaceCredentialBodySchema,
} from './schemas.js';

/** Provider credentials; admin only. Secret fields go in, never come out. */
export const credentialRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const credentials = credentialService(app.deps);

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
      const created = await credentials.create(request.body);
      request.auditTarget = created.id;
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
    async (request) => credentials.list(request.query),
  );

  app.get(
    '/v1/credentials/:id',
    {
      config: { access: 'admin' },
      schema: { tags: ['credentials'], params: IdParamsSchema, response: { 200: CredentialSchema, ...errorResponses } },
    },
    async (request) => credentials.get(request.params.id),
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
    async (request) => credentials.replace(request.params.id, request.body),
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
    async (request) => credentials.remove(request.params.id),
  );
};
