import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { ensureRole, errors, principalOf } from '@pds/shared';
import { idempotency } from '../services/idempotency.js';
import { jobService } from '../services/jobs.js';
import {
  CreateJobBodySchema,
  ErrorSchema,
  errorResponses,
  IdempotencyHeadersSchema,
  IdParamsSchema,
  JobSchema,
  LineSchema,
  LinesQuerySchema,
  ListJobsQuerySchema,
  PageOf,
} from './schemas.js';

export const jobRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const jobs = jobService(app.deps);
  const idempotent = idempotency(app.deps.redis);

  app.post(
    '/v1/resources/:id/jobs',
    {
      config: { access: 'deployer', action: 'job.create' },
      schema: {
        tags: ['jobs'],
        summary: "Queue an operation on the resource's stack; answers 202 at once",
        params: IdParamsSchema,
        headers: IdempotencyHeadersSchema,
        body: CreateJobBodySchema,
        response: { 202: JobSchema, 429: ErrorSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      // The least role per operation (destroy: admin by default) is the tenant's policy, checked in jobs.create.
      // A long timeout holds a runner slot that long: past the deployer's cap it takes an admin.
      const { timeoutSeconds } = request.body;
      if (timeoutSeconds !== undefined && timeoutSeconds > app.deps.deployerTimeoutMax) {
        ensureRole(request, 'admin', `timeoutSeconds over ${app.deps.deployerTimeoutMax} (JOB_TIMEOUT_MAX_DEPLOYER_SECONDS)`);
      }
      const create = async () => {
        if (request.body.operation === 'stack-remove') {
          throw errors.invalidRequest(
            'operation: stack-remove is DELETE /v1/resources/:id?keepResources=true (it removes the resource too)',
          );
        }
        const job = await jobs.create(request.params.id, request.body, principalOf(request));
        request.auditTenant = job.tenant;
        app.metrics.inc('api_jobs_created_total', 'Jobs created, by operation', { operation: job.operation });
        return job;
      };
      const key = request.headers['idempotency-key'];
      if (key === undefined) {
        const job = await create();
        request.auditTarget = job.id;
        return reply.code(202).send(job);
      }
      let created: Awaited<ReturnType<typeof create>> | undefined;
      const { id, replayed } = await idempotent.once(
        principalOf(request).id,
        key,
        { resourceId: request.params.id, ...request.body },
        async () => {
          created = await create();
          return created.id;
        },
      );
      request.auditTarget = id;
      if (replayed) reply.header('idempotent-replayed', 'true');
      return reply.code(202).send(created ?? (await jobs.get(id, principalOf(request))));
    },
  );

  app.get(
    '/v1/jobs',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['jobs'],
        summary: 'List jobs, newest first',
        querystring: ListJobsQuerySchema,
        response: { 200: PageOf(JobSchema), ...errorResponses },
      },
    },
    async (request) => jobs.list(request.query, principalOf(request)),
  );

  app.get(
    '/v1/jobs/:id',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['jobs'],
        params: IdParamsSchema,
        response: { 200: JobSchema, ...errorResponses },
      },
    },
    async (request) => jobs.get(request.params.id, principalOf(request)),
  );

  app.post(
    '/v1/jobs/:id/cancel',
    {
      config: { access: 'deployer', action: 'job.cancel' },
      schema: {
        tags: ['jobs'],
        summary: 'Cancel a job: a queued one at once (200), a running one by asking its runner (202)',
        params: IdParamsSchema,
        response: { 200: JobSchema, 202: JobSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { accepted, job } = await jobs.cancel(request.params.id, principalOf(request));
      request.auditTenant = job.tenant;
      return reply.code(accepted ? 202 : 200).send(job);
    },
  );

  app.post(
    '/v1/jobs/:id/approvals',
    {
      // Who may decide is the tenant's rule (approvals.approverRole, default admin), checked on the job.
      config: { access: 'viewer', action: 'job.approval' },
      schema: {
        tags: ['jobs'],
        summary: 'Approve or reject a job awaiting approval (each approver’s latest decision counts)',
        params: IdParamsSchema,
        body: Type.Object(
          {
            decision: Type.Union([Type.Literal('approve'), Type.Literal('reject')]),
            comment: Type.Optional(Type.String({ maxLength: 2000 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: JobSchema, ...errorResponses },
      },
    },
    async (request) => {
      const job = await jobs.decide(request.params.id, request.body, principalOf(request));
      request.auditTenant = job.tenant;
      return job;
    },
  );

  app.get(
    '/v1/jobs/:id/lines',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['jobs'],
        summary: 'Persisted lines and events after seq `from` (for clients without WebSocket)',
        params: IdParamsSchema,
        querystring: LinesQuerySchema,
        response: { 200: Type.Object({ items: Type.Array(LineSchema) }), 410: ErrorSchema, ...errorResponses },
      },
    },
    async (request) => ({ items: await jobs.lines(request.params.id, request.query.from, request.query.limit, principalOf(request)) }),
  );
};
