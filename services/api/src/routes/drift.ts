import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { principalOf } from '@pds/shared';
import { Type } from '@sinclair/typebox';
import { driftService } from '../services/drift.js';
import { tenantService } from '../services/tenants.js';
import { errorResponses, IdParamsSchema } from './schemas.js';

const IgnoreRule = Type.Object(
  {
    urn: Type.String({ minLength: 1, maxLength: 1024 }),
    paths: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 50, description: 'None: the whole resource' }),
    ),
  },
  { additionalProperties: false },
);
const ScheduleBody = Type.Object(
  {
    cron: Type.String({
      minLength: 9,
      maxLength: 100,
      description: 'Cron (5 fields, or 6 with seconds first), UTC; runs at least DRIFT_MIN_INTERVAL_SECONDS apart',
    }),
    autoRemediate: Type.Optional(Type.Boolean({ description: 'Queue an up when a check finds drift' })),
    ignore: Type.Optional(Type.Array(IgnoreRule, { maxItems: 100 })),
    paused: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const ScheduleSchema = Type.Object({
  resourceId: Type.String(),
  cron: Type.String(),
  autoRemediate: Type.Boolean(),
  ignore: Type.Array(Type.Object({ urn: Type.String(), paths: Type.Optional(Type.Array(Type.String())) })),
  paused: Type.Boolean(),
  updatedBy: Type.String(),
  updatedAt: Type.String({ format: 'date-time' }),
  nextRunAt: Type.Optional(Type.String({ format: 'date-time' })),
  lastCheck: Type.Optional(
    Type.Object({
      jobId: Type.String(),
      result: Type.Union([Type.Literal('drifted'), Type.Literal('no_drift'), Type.Literal('unknown')]),
      finishedAt: Type.String({ format: 'date-time' }),
    }),
  ),
});

/** A resource's drift schedule: a cron of `drift-check` jobs (`pulumi refresh --preview-only`), and what the last one found. */
export const driftRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const drift = driftService({
    ...app.deps,
    tenants: tenantService(app.deps),
    minIntervalSeconds: app.deps.driftMinIntervalSeconds,
    maxSchedulesPerTenant: app.deps.driftMaxSchedulesPerTenant,
  });
  const tags = ['drift'];
  const url = '/v1/resources/:id/drift-schedule';

  app.get(
    url,
    {
      config: { access: 'viewer' },
      schema: {
        tags,
        summary: "A resource's drift schedule, its next run and its last check",
        params: IdParamsSchema,
        response: { 200: ScheduleSchema, ...errorResponses },
      },
    },
    async (request) => drift.get(request.params.id, principalOf(request)),
  );

  app.put(
    url,
    {
      config: { access: 'deployer', action: 'resource.drift-schedule.set' },
      schema: {
        tags,
        summary: 'Set, change, pause or resume a drift schedule (autoRemediate needs the role of an up)',
        params: IdParamsSchema,
        body: ScheduleBody,
        response: { 200: ScheduleSchema, ...errorResponses },
      },
    },
    async (request) => drift.put(request.params.id, request.body, principalOf(request)),
  );

  app.delete(
    url,
    {
      config: { access: 'deployer', action: 'resource.drift-schedule.delete' },
      schema: {
        tags,
        summary: 'Stop and remove a drift schedule',
        params: IdParamsSchema,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (request, reply) => {
      const resource = await drift.remove(request.params.id, principalOf(request));
      request.auditTenant = resource.tenantId;
      return reply.code(204).send(null);
    },
  );
};
