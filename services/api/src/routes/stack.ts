import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  diffDeployments,
  errors,
  principalOf,
  readDeployment,
  type StackStateDoc,
  stackContents,
  stackOutputs,
  type Deployment,
} from '@pds/shared';
import { Type } from '@sinclair/typebox';
import { stackStateService } from '../services/stack-states.js';
import { errorResponses, IdParamsSchema, JobSchema } from './schemas.js';

const Json = Type.Record(Type.String(), Type.Unknown());

const VersionMetaSchema = Type.Object({
  version: Type.Integer({ description: 'The state version (1, 2, … per resource)' }),
  jobId: Type.String({ description: 'The job that wrote it' }),
  operation: Type.String(),
  createdBy: Type.Optional(Type.String({ description: 'The token that asked for the job' })),
  writtenAt: Type.String({ format: 'date-time' }),
  resourceCount: Type.Integer(),
  changes: Type.Record(Type.String(), Type.Number(), { description: "The job's change counts" }),
});

const StateResourceSchema = Type.Object({
  urn: Type.String(),
  type: Type.String(),
  name: Type.String(),
  custom: Type.Boolean(),
  id: Type.Optional(Type.String()),
  provider: Type.Optional(Type.String()),
  parent: Type.Optional(Type.String()),
  dependencies: Type.Array(Type.String()),
  protect: Type.Boolean(),
  inputs: Json,
  outputs: Json,
});

const ContentsSchema = Type.Object({
  resources: Type.Array(StateResourceSchema),
  pendingOperations: Type.Array(
    Type.Object({
      type: Type.String({ description: 'creating, updating, deleting, reading' }),
      urn: Type.String(),
      resourceType: Type.String(),
    }),
  ),
});

const StackSchema = Type.Composite([
  Type.Object({ version: Type.Union([Type.Integer(), Type.Null()], { description: 'null: no job has written state yet' }) }),
  Type.Partial(Type.Omit(VersionMetaSchema, ['version'])),
  ContentsSchema,
]);

const SeqParamsSchema = Type.Object({ id: IdParamsSchema.properties.id, seq: Type.Integer({ minimum: 1 }) });

/** An imported state: up to 32 MiB of JSON (it is kept gzipped, at most STATE_MAX_BYTES). */
const IMPORT_BODY_LIMIT = 32 * 1024 * 1024;

const meta = (doc: StackStateDoc) => ({
  version: doc.seq,
  jobId: doc.jobId,
  operation: doc.operation,
  ...(doc.createdBy ? { createdBy: doc.createdBy } : {}),
  writtenAt: doc.writtenAt.toISOString(),
  resourceCount: doc.resourceCount,
  changes: doc.changes ?? {},
});

/**
 * A stack's state as its jobs left it: the resources in it (secrets masked), pending operations, its
 * outputs, and every version a job wrote, with what changed between two. Read from the store (the
 * runner keeps each version after a job), never from a Pulumi process; parsed once per version.
 */
export const stackRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const states = stackStateService(app.deps);
  const { deploymentOf } = states;
  const version = (id: string, seq: number | undefined, request: Parameters<typeof principalOf>[0]) =>
    states.version(id, seq, principalOf(request));

  app.get(
    '/v1/resources/:id/stack',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['stack'],
        summary: "The resources in the stack's current state (secrets masked), pending operations, and which job wrote it",
        params: IdParamsSchema,
        response: { 200: StackSchema, ...errorResponses },
      },
    },
    async (request) => {
      const doc = await version(request.params.id, undefined, request);
      if (!doc) return { version: null, resources: [], pendingOperations: [] };
      return { ...meta(doc), ...stackContents(deploymentOf(doc)) };
    },
  );

  app.get(
    '/v1/resources/:id/outputs',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['stack'],
        summary:
          "The stack's outputs in its current state: secrets masked, or with showSecrets=true shown to a tenant admin (audited as stack.outputs.reveal)",
        params: IdParamsSchema,
        querystring: Type.Object({
          showSecrets: Type.Optional(
            Type.Boolean({ description: "Show the outputs that hold secrets (the tenant's admins and platform admins only)" }),
          ),
        }),
        response: {
          200: Type.Object({ version: Type.Union([Type.Integer(), Type.Null()]), outputs: Json }),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      if (request.query.showSecrets) request.auditAction = 'stack.outputs.reveal';
      const doc = await version(request.params.id, undefined, request);
      if (doc) request.auditTenant = doc.tenantId;
      const outputs = doc ? stackOutputs(deploymentOf(doc)) : {};
      if (!request.query.showSecrets || !doc) return { version: doc?.seq ?? null, outputs };
      reply.header('cache-control', 'no-store');
      return { version: doc.seq, outputs: { ...outputs, ...states.revealSecretOutputs(doc, principalOf(request)) } };
    },
  );

  app.get(
    '/v1/resources/:id/stack/versions',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['stack'],
        summary: 'Every state version its jobs wrote (the last 100), newest first',
        params: IdParamsSchema,
        response: { 200: Type.Object({ items: Type.Array(VersionMetaSchema) }), ...errorResponses },
      },
    },
    async (request) => {
      const docs = await states.versions(request.params.id, principalOf(request));
      return { items: docs.map(meta) };
    },
  );

  app.get(
    '/v1/resources/:id/stack/versions/:seq',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['stack'],
        summary: 'One state version: who wrote it, and the resources in it',
        params: SeqParamsSchema,
        response: { 200: Type.Composite([VersionMetaSchema, ContentsSchema]), ...errorResponses },
      },
    },
    async (request) => {
      const doc = (await version(request.params.id, request.params.seq, request)) as StackStateDoc;
      return { ...meta(doc), ...stackContents(deploymentOf(doc)) };
    },
  );

  app.get(
    '/v1/resources/:id/stack/export',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['stack'],
        summary:
          "Download a state version as `pulumi stack export` gives it ({ version: 3, deployment }; secrets still encrypted as Pulumi keeps them): the latest, or `version`'s",
        params: IdParamsSchema,
        querystring: Type.Object({ version: Type.Optional(Type.Integer({ minimum: 1 })) }),
        response: { 200: Type.Object({ version: Type.Literal(3), deployment: Json }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const doc = await version(request.params.id, request.query.version, request);
      if (!doc) throw errors.notFound(`resource ${request.params.id} has no stack state yet`);
      void reply.header('content-disposition', `attachment; filename="${doc.stackFqdn.split('/').pop()}-v${doc.seq}.json"`);
      return { version: 3 as const, deployment: readDeployment(doc) as Record<string, unknown> };
    },
  );

  app.post(
    '/v1/resources/:id/stack/import',
    {
      bodyLimit: IMPORT_BODY_LIMIT,
      config: { access: 'admin', action: 'stack.import' },
      schema: {
        tags: ['stack'],
        summary:
          "Import a state (as `pulumi stack export` or GET …/stack/export gives it) over the stack's: checked (a deployment whose every URN is this stack's and project's), then a restore job runs `pulumi stack import` → 202",
        params: IdParamsSchema,
        body: Type.Object({ version: Type.Literal(3), deployment: Json }, { additionalProperties: false }),
        response: { 202: JobSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const job = await states.importState(request.params.id, request.body.deployment as Deployment, principalOf(request), (tenant) => {
        request.auditTenant = tenant;
      });
      return reply.code(202).send(job);
    },
  );

  app.get(
    '/v1/resources/:id/stack/diff',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['stack'],
        summary: 'What changed between two state versions, by URN (default: the latest against the one before)',
        params: IdParamsSchema,
        querystring: Type.Object({ from: Type.Optional(Type.Integer({ minimum: 0 })), to: Type.Optional(Type.Integer({ minimum: 1 })) }),
        response: {
          200: Type.Object({
            from: Type.Integer({ description: '0: the empty stack before the first version' }),
            to: Type.Integer(),
            added: Type.Array(Type.String()),
            removed: Type.Array(Type.String()),
            changed: Type.Array(Type.Object({ urn: Type.String(), fields: Type.Array(Type.String()) })),
          }),
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const to = await version(request.params.id, request.query.to, request);
      if (!to) throw errors.notFound(`resource ${request.params.id} has no stack state yet`);
      const fromSeq = request.query.from ?? to.seq - 1;
      const from = fromSeq === 0 ? undefined : await version(request.params.id, fromSeq, request);
      const empty: Deployment = { resources: [] };
      return { from: fromSeq, to: to.seq, ...diffDeployments(from ? deploymentOf(from) : empty, deploymentOf(to)) };
    },
  );
};
