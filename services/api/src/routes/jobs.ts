import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { jobService } from '../services/jobs.js';
import {
  CreateJobBodySchema,
  errorResponses,
  IdParamsSchema,
  JobSchema,
  LineSchema,
  LinesQuerySchema,
  ListJobsQuerySchema,
} from './schemas.js';

export const jobRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const jobs = jobService(app.deps);

  app.post(
    '/v1/resources/:id/jobs',
    {
      schema: {
        summary: "Queue an operation on the resource's stack; answers 202 at once",
        params: IdParamsSchema,
        body: CreateJobBodySchema,
        response: { 202: JobSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const job = await jobs.create(request.params.id, request.body);
      app.metrics.inc('api_jobs_created_total', 'Jobs created, by operation', { operation: job.operation });
      return reply.code(202).send(job);
    },
  );

  app.get(
    '/v1/jobs',
    {
      schema: { querystring: ListJobsQuerySchema, response: { 200: Type.Object({ items: Type.Array(JobSchema) }), ...errorResponses } },
    },
    async (request) => ({ items: await jobs.list(request.query) }),
  );

  app.get(
    '/v1/jobs/:id',
    {
      schema: { params: IdParamsSchema, response: { 200: JobSchema, ...errorResponses } },
    },
    async (request) => jobs.get(request.params.id),
  );

  app.post(
    '/v1/jobs/:id/cancel',
    {
      schema: {
        summary: 'Cancel a job: a queued one at once (200), a running one by asking its runner (202)',
        params: IdParamsSchema,
        response: { 200: JobSchema, 202: JobSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { accepted, job } = await jobs.cancel(request.params.id);
      return reply.code(accepted ? 202 : 200).send(job);
    },
  );

  app.get(
    '/v1/jobs/:id/lines',
    {
      schema: {
        params: IdParamsSchema,
        querystring: LinesQuerySchema,
        response: { 200: Type.Object({ items: Type.Array(LineSchema) }), ...errorResponses },
      },
    },
    async (request) => ({ items: await jobs.lines(request.params.id, request.query.from, request.query.limit) }),
  );
};
