import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  diffDeployments,
  errors,
  LruCache,
  principalOf,
  readDeployment,
  type Principal,
  roleAllows,
  secretOutputNames,
  secretOutputsContext,
  type StackStateDoc,
  stackContents,
  stackOutputs,
  type Deployment,
  STATE_MAX_BYTES,
  tenantOf,
  WAITING_STATUSES,
} from '@pds/shared';
import { gzipSync } from 'node:zlib';
import { Type } from '@sinclair/typebox';
import { jobService } from '../services/jobs.js';
import { resourceService } from '../services/resources.js';
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

/**
 * Refuses (400, naming the resource) a deployment that is not this stack's: each resource a URN of
 * its stack and project (`urn:pulumi:<stack>::<project>::…`), pending operations likewise.
 */
function assertImportable(deployment: Deployment, stackFqdn: string): void {
  const [, project, stack] = stackFqdn.split('/') as [string, string, string];
  const prefix = `urn:pulumi:${stack}::${project}::`;
  if (!Array.isArray(deployment.resources)) throw errors.invalidRequest('deployment.resources: a list of resources is needed');
  const check = (where: string, urn: unknown) => {
    if (typeof urn !== 'string' || !urn.startsWith(prefix)) {
      throw errors.invalidRequest(
        `${where}.urn: ${String(urn).slice(0, 200)} is not a resource of stack ${stack} of project ${project} (${prefix}…)`,
      );
    }
  };
  deployment.resources.forEach((r, i) => check(`deployment.resources[${i}]`, (r as { urn?: unknown } | null)?.urn));
  (deployment.pending_operations ?? []).forEach((op, i) => check(`deployment.pending_operations[${i}].resource`, op?.resource?.urn));
}

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
  const resources = resourceService(app.deps);
  const jobs = jobService(app.deps);
  const { models } = app.deps;
  /** Parsed versions by id (a version never changes); a few, since a state can take megabytes. */
  const parsed = new LruCache<string, Deployment>(32);

  const deploymentOf = (doc: StackStateDoc): Deployment => {
    const known = parsed.get(doc._id);
    if (known) return known;
    const deployment = readDeployment(doc);
    parsed.set(doc._id, deployment);
    return deployment;
  };

  /** The plain values of a version's outputs that hold secrets, for a caller who may see them (403, else). */
  function revealSecretOutputs(doc: StackStateDoc, caller: Principal): Record<string, unknown> {
    if (caller.role !== 'platform' && !roleAllows(caller.role, 'admin'))
      throw errors.forbidden(
        `showSecrets: secret outputs are shown to the tenant's admins only; token "${caller.name}" has the ${caller.role} role`,
      );
    const names = secretOutputNames(deploymentOf(doc));
    if (names.length === 0) return {};
    if (!doc.secretOutputs)
      throw errors.conflict(
        `the secret outputs of state version ${doc.seq} were not kept (written without CREDENTIALS_KEY, or before this service kept them); an up or refresh keeps them`,
      );
    if (!app.deps.keyring) throw errors.conflict('showSecrets: CREDENTIALS_KEY is not set on the API, so sealed outputs cannot be opened');
    try {
      return JSON.parse(app.deps.keyring.open(doc.secretOutputs, secretOutputsContext(doc))) as Record<string, unknown>;
    } catch (err) {
      throw errors.conflict(
        `the secret outputs of state version ${doc.seq} do not open with the API's keys (${(err as Error).message}); set CREDENTIALS_KEY_PREVIOUS to the key they were sealed with, or run credentials:reseal`,
      );
    }
  }

  /** A version of a resource the caller may see (another tenant's resource: 404); the latest without `seq`. */
  async function version(
    id: string,
    seq: number | undefined,
    request: Parameters<typeof principalOf>[0],
  ): Promise<StackStateDoc | undefined> {
    await resources.find(id, principalOf(request));
    const query = models.StackState.findOne({ resourceId: id, ...(seq !== undefined ? { seq } : {}) }).sort({ seq: -1 });
    const doc = await query.lean<StackStateDoc>();
    if (!doc && seq !== undefined) throw errors.notFound(`resource ${id} has no stack state version ${seq}`);
    return doc ?? undefined;
  }

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
      return { version: doc.seq, outputs: { ...outputs, ...revealSecretOutputs(doc, principalOf(request)) } };
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
      await resources.find(request.params.id, principalOf(request));
      const docs = await models.StackState.find({ resourceId: request.params.id }, { data: 0 })
        .sort({ seq: -1 })
        .limit(100)
        .lean<StackStateDoc[]>();
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
      const resource = await resources.find(request.params.id, principalOf(request));
      request.auditTenant = tenantOf(resource);
      const deployment = request.body.deployment as Deployment;
      assertImportable(deployment, resource.stackFqdn);
      const text = JSON.stringify(deployment);
      const data = gzipSync(text);
      if (data.length > STATE_MAX_BYTES)
        throw errors.payloadTooLarge(`deployment: ${data.length} bytes gzipped, more than ${STATE_MAX_BYTES}`);
      // One import at a time per stack: an upload is kept until its job reads it; one whose job ended
      // (cancelled before it ran) goes now.
      const waiting = await models.StateUpload.findOne({ resourceId: resource._id }, { _id: 1 }).lean<{ _id: string }>();
      if (waiting) {
        const active = await models.StackJob.exists({
          resourceId: resource._id,
          status: { $in: [...WAITING_STATUSES, 'running'] },
          'options.upload': waiting._id,
        });
        if (active)
          throw errors.conflict(
            `an import into resource ${resource._id} is waiting for its job ${String(active._id)}; let it run or cancel it first`,
          );
        await models.StateUpload.deleteOne({ _id: waiting._id });
      }
      const upload = await models.StateUpload.create({ tenantId: tenantOf(resource), resourceId: resource._id, data });
      const job = await jobs
        .create(resource._id, { operation: 'restore', upload: upload._id }, principalOf(request))
        .catch(async (err: Error) => {
          await models.StateUpload.deleteOne({ _id: upload._id }).catch(() => undefined);
          throw err;
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
