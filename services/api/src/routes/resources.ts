import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { ensureRole, errors, principalOf, roleAllows, STACK_REMOVE } from '@pds/shared';
import { jobService } from '../services/jobs.js';
import { resourceService } from '../services/resources.js';
import { tenantService } from '../services/tenants.js';
import {
  CreateResourceJsonSchema,
  DeleteResourceQuerySchema,
  errorResponses,
  IdParamsSchema,
  JobSchema,
  ListResourcesQuerySchema,
  PageOf,
  ResourceSchema,
  TenantQuerySchema,
  UpgradeSchema,
} from './schemas.js';

export const resourceRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const resources = resourceService(app.deps);
  const jobs = jobService(app.deps);
  const tenants = tenantService(app.deps);
  /** A tenant admin (or a platform admin) may choose the credential a stack runs with. */
  const credentialChoice = (request: FastifyRequest) => ({ mayChooseCredential: roleAllows(principalOf(request).role, 'admin') });

  app.post(
    '/v1/resources',
    {
      config: { access: 'deployer', action: 'resource.create' },
      schema: {
        tags: ['resources'],
        summary: "Create a resource from a manifest (YAML body, or JSON { manifest }) in the caller's tenant",
        querystring: TenantQuerySchema,
        body: Type.Union([Type.String({ minLength: 1 }), CreateResourceJsonSchema]),
        response: { 201: ResourceSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const text = typeof request.body === 'string' ? request.body : request.body.manifest;
      const tenant = await tenants.actingTenant(principalOf(request), request.query.tenant);
      request.auditTenant = tenant;
      const created = await resources.create(text, tenant, credentialChoice(request));
      request.auditTarget = created.id;
      return reply.code(201).send(created);
    },
  );

  app.get(
    '/v1/resources',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['resources'],
        summary: 'List resources, newest first',
        querystring: ListResourcesQuerySchema,
        response: { 200: PageOf(ResourceSchema), ...errorResponses },
      },
    },
    async (request) => resources.list(request.query, principalOf(request)),
  );

  app.put(
    '/v1/resources/:id',
    {
      config: { access: 'deployer', action: 'resource.replace' },
      schema: {
        tags: ['resources'],
        summary: 'Replace the manifest (kind, name and stack stay); the version goes up by one',
        params: IdParamsSchema,
        body: Type.Union([Type.String({ minLength: 1 }), CreateResourceJsonSchema]),
        response: { 200: ResourceSchema, ...errorResponses },
      },
    },
    async (request) => {
      const text = typeof request.body === 'string' ? request.body : request.body.manifest;
      const replaced = await resources.replace(request.params.id, text, principalOf(request), credentialChoice(request));
      request.auditTenant = replaced.tenant;
      return replaced;
    },
  );

  app.post(
    '/v1/resources/:id/upgrade',
    {
      config: { access: 'deployer', action: 'resource.upgrade' },
      schema: {
        tags: ['resources'],
        summary:
          "Move a resource of an uploaded template to another published version: its manifest (or the one given, as a PUT would take it) is checked against that version's schema and the tenant's rules; the version goes up by one",
        params: IdParamsSchema,
        body: UpgradeSchema,
        response: { 200: ResourceSchema, ...errorResponses },
      },
    },
    async (request) => {
      const upgraded = await resources.upgrade(request.params.id, request.body.version, principalOf(request), {
        manifestText: request.body.manifest,
        ...credentialChoice(request),
      });
      request.auditTenant = upgraded.tenant;
      return upgraded;
    },
  );

  app.get(
    '/v1/resources/:id',
    {
      config: { access: 'viewer' },
      schema: { tags: ['resources'], params: IdParamsSchema, response: { 200: ResourceSchema, ...errorResponses } },
    },
    async (request) => resources.get(request.params.id, principalOf(request)),
  );

  app.delete(
    '/v1/resources/:id',
    {
      config: { access: 'deployer', action: 'resource.delete' },
      schema: {
        tags: ['resources'],
        summary:
          'Delete a resource; refused (409) while its stack is deployed or it has active jobs, unless ?force=true (admin); ?keepResources=true (admin): 202, a stack-remove job removes the stack from the backend without destroying what it created, then the resource',
        params: IdParamsSchema,
        querystring: DeleteResourceQuerySchema,
        response: { 200: ResourceSchema, 202: JobSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      if (request.query.keepResources) {
        if (request.query.force) throw errors.invalidRequest('keepResources and force: choose one');
        ensureRole(request, 'admin', 'removing a stack while keeping its resources');
        // A job: the backend is the runners' to reach, on the stack's line like any run; the resource goes when it succeeds.
        const job = await jobs.create(request.params.id, { operation: STACK_REMOVE }, principalOf(request));
        request.auditTenant = job.tenant;
        return reply.code(202).send(job);
      }
      if (request.query.force) ensureRole(request, 'admin', 'a forced delete');
      const { resource, activeJobs } = await resources.remove(request.params.id, request.query.force, principalOf(request));
      request.auditTenant = resource.tenant;
      // Forced: its queued jobs end now, its running one is asked to stop.
      for (const jobId of activeJobs)
        await jobs
          .cancel(jobId, principalOf(request))
          .catch((err: Error) => request.log.warn({ err, jobId }, 'could not cancel a job of a deleted resource'));
      return resource;
    },
  );
};
