import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { principalOf } from '@pds/shared';
import { Type } from '@sinclair/typebox';
import { tenantService } from '../services/tenants.js';
import {
  CreateTenantBodySchema,
  errorResponses,
  TenantParamsSchema,
  TenantPolicySchema,
  TenantSchema,
  UpdateTenantBodySchema,
} from './schemas.js';

/** Tenants: created and changed by platform admins; a tenant's callers read their own. */
export const tenantRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tenants = tenantService(app.deps);

  app.post(
    '/v1/tenants',
    {
      config: { access: 'platform', action: 'tenant.create' },
      schema: {
        tags: ['tenants'],
        summary: 'Create a tenant (platform admins)',
        body: CreateTenantBodySchema,
        response: { 201: TenantSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const created = await tenants.create(request.body, principalOf(request));
      request.auditTarget = created.name;
      request.auditTenant = created.name;
      return reply.code(201).send(created);
    },
  );

  app.get(
    '/v1/tenants',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['tenants'],
        summary: "List tenants: every tenant for platform admins, one's own for a tenant's token",
        response: { 200: Type.Object({ items: Type.Array(TenantSchema) }), ...errorResponses },
      },
    },
    async (request) => ({ items: await tenants.list(principalOf(request)) }),
  );

  app.get(
    '/v1/tenants/:id',
    {
      config: { access: 'viewer' },
      schema: { tags: ['tenants'], params: TenantParamsSchema, response: { 200: TenantSchema, ...errorResponses } },
    },
    async (request) => tenants.get(request.params.id, principalOf(request)),
  );

  app.patch(
    '/v1/tenants/:id',
    {
      config: { access: 'platform', action: 'tenant.update' },
      schema: {
        tags: ['tenants'],
        summary: "Change a tenant's display name or description (platform admins)",
        params: TenantParamsSchema,
        body: UpdateTenantBodySchema,
        response: { 200: TenantSchema, ...errorResponses },
      },
    },
    async (request) => {
      request.auditTenant = request.params.id;
      return tenants.update(request.params.id, request.body);
    },
  );

  app.get(
    '/v1/tenants/:id/policy',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['tenants'],
        summary: "A tenant's policy: templates allowed, parameter limits, instance and job limits, least role per operation",
        params: TenantParamsSchema,
        response: { 200: TenantPolicySchema, ...errorResponses },
      },
    },
    async (request) => tenants.getPolicy(request.params.id, principalOf(request)),
  );

  app.put(
    '/v1/tenants/:id/policy',
    {
      config: { access: 'platform', action: 'tenant.policy' },
      schema: {
        tags: ['tenants'],
        summary: "Replace a tenant's policy (platform admins); it holds from the next request on",
        params: TenantParamsSchema,
        body: TenantPolicySchema,
        response: { 200: TenantPolicySchema, ...errorResponses },
      },
    },
    async (request) => {
      request.auditTenant = request.params.id;
      return tenants.setPolicy(request.params.id, request.body);
    },
  );
};
