import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  assertTemplateAllowed,
  effectiveSchema,
  errors,
  type KindInfo,
  type ParametersSchema,
  type Principal,
  principalOf,
  PROVIDER_NAMES,
  runtimePackages,
  type TemplateDoc,
  type TenantPolicy,
} from '@pds/shared';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { tenantService } from '../services/tenants.js';
import { runtimeDeclarations } from '../templates/runtime-types.js';
import { templateService } from '../templates/service.js';
import { uploadedTemplateView } from '../templates/views.js';
import {
  CreateTemplateSchema,
  errorResponses,
  NewVersionSchema,
  RuntimeSchema,
  TemplateParamsSchema,
  TemplateSchema,
  TemplateVersionParamsSchema,
  TemplateVersionSchema,
  TenantQuerySchema,
  VersionContentSchema,
  VersionStateSchema,
} from './schemas.js';

/** Whether a tenant's policy allows a template (at a version). */
function allows(policy: TenantPolicy, tenant: string, name: string, version: string | undefined): boolean {
  try {
    assertTemplateAllowed(policy, tenant, name, version || undefined);
    return true;
  } catch {
    return false;
  }
}

/** A version's files, schema and defaults: room for TEMPLATE_LIMITS (1 MiB of files) as escaped JSON. */
const VERSION_BODY_LIMIT = 4 * 1024 * 1024;

const SchemaQuerySchema = Type.Composite([TenantQuerySchema, Type.Object({ version: Type.Optional(Type.String({ maxLength: 64 })) })]);

/**
 * The catalogue: built-in templates (one per kind in MODULES_DIR, source `system`, read-only) and
 * uploaded ones (a tenant's own and the platform's, in versions: draft → published → deprecated →
 * archived), each with whether the caller's tenant may use it and the schema a form renders for it.
 */
export const templateRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tenants = tenantService(app.deps);
  const templates = templateService({ ...app.deps, publishCheckTimeoutMs: app.deps.publishCheckTimeoutMs });

  /** The tenant a request reads the catalogue for: its own, or (platform admins) `?tenant=`, if any. */
  async function tenantOfRequest(request: FastifyRequest, asked: string | undefined) {
    const principal = principalOf(request);
    if (principal.role === 'platform' && asked === undefined) return undefined;
    const tenant = await tenants.actingTenant(principal, asked);
    return { tenant, policy: await tenants.policyOf(tenant) };
  }

  /** The uploaded template a request names (a tenant's token may not name another tenant). */
  async function uploaded(request: FastifyRequest, name: string, asked: string | undefined, toChange = false): Promise<TemplateDoc> {
    const principal = principalOf(request);
    if (principal.role !== 'platform') await tenants.actingTenant(principal, asked);
    const template = toChange ? await templates.findToChange(principal, name, asked) : await templates.find(principal, name, asked);
    request.auditTarget = template._id;
    request.auditTenant = template.scope === '*' ? undefined : template.scope;
    return template;
  }

  const systemView = (kind: KindInfo, scope: { tenant: string; policy: TenantPolicy } | undefined) => ({
    name: kind.kind,
    source: 'system' as const,
    version: kind.version,
    description: kind.description,
    readme: kind.readme,
    provider: kind.provider,
    project: kind.project,
    ...(scope ? { allowed: allows(scope.policy, scope.tenant, kind.kind, kind.version) } : {}),
  });

  const withAllowed = <T extends { name: string; version: string }>(
    view: T,
    scope: { tenant: string; policy: TenantPolicy } | undefined,
  ) => (scope ? { ...view, allowed: view.version !== '' && allows(scope.policy, scope.tenant, view.name, view.version) } : view);

  app.post(
    '/v1/templates',
    {
      config: { access: 'admin', action: 'template.create' },
      schema: {
        tags: ['templates'],
        summary:
          "Create an uploaded template (the caller's tenant's; a platform admin's: the platform's, shared with every tenant, or `tenant`'s)",
        body: CreateTemplateSchema,
        response: { 201: TemplateSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { provider } = request.body;
      if (provider !== undefined && provider !== 'none' && !PROVIDER_NAMES.includes(provider)) {
        throw errors.invalidRequest(`provider: "${provider}" is not one of none, ${PROVIDER_NAMES.join(', ')}`);
      }
      const created = await templates.create(request.body, principalOf(request));
      request.auditTenant = created.tenant;
      request.auditTarget = request.body.name;
      return reply.code(201).send(created.template);
    },
  );

  app.get(
    '/v1/templates',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['templates'],
        summary: "The catalogue: every template the caller sees, with whether the caller's tenant may use it",
        querystring: TenantQuerySchema,
        response: { 200: Type.Object({ items: Type.Array(TemplateSchema) }), ...errorResponses },
      },
    },
    async (request) => {
      const scope = await tenantOfRequest(request, request.query.tenant);
      const system = [...app.deps.kinds.values()].map((kind) => systemView(kind, scope));
      const own = (await templates.list(principalOf(request), request.query.tenant)).map(({ template, latest }) =>
        withAllowed(uploadedTemplateView(template, latest), scope),
      );
      return { items: [...system, ...own].sort((a, b) => a.name.localeCompare(b.name)) };
    },
  );

  app.get(
    '/v1/templates/:name',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['templates'],
        params: TemplateParamsSchema,
        querystring: TenantQuerySchema,
        response: { 200: TemplateSchema, ...errorResponses },
      },
    },
    async (request) => {
      const scope = await tenantOfRequest(request, request.query.tenant);
      const kind = app.deps.kinds.get(request.params.name);
      if (kind) return systemView(kind, scope);
      const template = await uploaded(request, request.params.name, request.query.tenant);
      return withAllowed(uploadedTemplateView(template, await templates.latest(template)), scope);
    },
  );

  app.get(
    '/v1/templates/:name/schema',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['templates'],
        summary:
          "The effective parameters schema for the caller's tenant: the template's (uploaded: `version`'s, default the newest published), narrowed by the tenant's limits (JSON Schema draft-07 for spec)",
        params: TemplateParamsSchema,
        querystring: SchemaQuerySchema,
        response: { 200: Type.Record(Type.String(), Type.Unknown()), ...errorResponses },
      },
    },
    async (request) => {
      const { name } = request.params;
      const scope = await tenantOfRequest(request, request.query.tenant);
      let parameters: ParametersSchema | undefined = app.deps.kinds.get(name)?.parameters;
      if (!app.deps.kinds.has(name)) {
        const template = await uploaded(request, name, request.query.tenant);
        const asked = request.query.version;
        const version = asked ? await templates.findVersion(template, asked) : await templates.latest(template);
        if (!version) throw errors.notFound(`template ${name} has no published version yet`);
        parameters = JSON.parse(version.parameters) as ParametersSchema;
      }
      if (!scope) return effectiveSchema(parameters, {}, '', name);
      return effectiveSchema(parameters, scope.policy, scope.tenant, name);
    },
  );

  app.get(
    '/v1/templates/:name/versions',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['templates'],
        summary: "An uploaded template's versions, newest first (without their files)",
        params: TemplateParamsSchema,
        querystring: TenantQuerySchema,
        response: { 200: Type.Object({ items: Type.Array(TemplateVersionSchema) }), ...errorResponses },
      },
    },
    async (request) => ({
      items: await templates.versions(await uploaded(request, request.params.name, request.query.tenant), principalOf(request)),
    }),
  );

  app.post(
    '/v1/templates/:name/versions',
    {
      bodyLimit: VERSION_BODY_LIMIT,
      config: { access: 'admin', action: 'template.version.create' },
      schema: {
        tags: ['templates'],
        summary: 'Add a draft version: its program files (TypeScript or JavaScript), parameters schema, defaults and readme',
        params: TemplateParamsSchema,
        querystring: TenantQuerySchema,
        body: NewVersionSchema,
        response: { 201: TemplateVersionSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const template = await uploaded(request, request.params.name, request.query.tenant, true);
      const { version, ...content } = request.body;
      return reply.code(201).send(await templates.addVersion(template, version, content, principalOf(request)));
    },
  );

  app.get(
    '/v1/templates/:name/versions/:version',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['templates'],
        summary: 'One version, with its files',
        params: TemplateVersionParamsSchema,
        querystring: TenantQuerySchema,
        response: { 200: TemplateVersionSchema, ...errorResponses },
      },
    },
    async (request) =>
      templates.version(await uploaded(request, request.params.name, request.query.tenant), request.params.version, principalOf(request)),
  );

  app.put(
    '/v1/templates/:name/versions/:version',
    {
      bodyLimit: VERSION_BODY_LIMIT,
      config: { access: 'admin', action: 'template.version.update' },
      schema: {
        tags: ['templates'],
        summary: "Replace a draft's content (a published version never changes)",
        params: TemplateVersionParamsSchema,
        querystring: TenantQuerySchema,
        body: VersionContentSchema,
        response: { 200: TemplateVersionSchema, ...errorResponses },
      },
    },
    async (request) => {
      const template = await uploaded(request, request.params.name, request.query.tenant, true);
      return templates.updateDraft(template, request.params.version, request.body);
    },
  );

  app.post(
    '/v1/templates/:name/versions/:version/publish',
    {
      config: { access: 'admin', action: 'template.version.publish' },
      schema: {
        tags: ['templates'],
        summary:
          'Publish a draft after its checks: the schema compiles, the defaults validate, the version step fits the changes, the program compiles and imports only runtime packages, and a smoke preview with the defaults succeeds',
        params: TemplateVersionParamsSchema,
        querystring: TenantQuerySchema,
        response: { 200: TemplateVersionSchema, ...errorResponses },
      },
    },
    async (request) => {
      const template = await uploaded(request, request.params.name, request.query.tenant, true);
      return templates.publish(template, request.params.version, principalOf(request) as Principal, {
        ...app.deps,
        checkTimeoutMs: app.deps.publishCheckTimeoutMs,
      });
    },
  );

  app.patch(
    '/v1/templates/:name/versions/:version',
    {
      config: { access: 'admin', action: 'template.version.state' },
      schema: {
        tags: ['templates'],
        summary: 'Deprecate (no new resources), archive, or bring back a published version',
        params: TemplateVersionParamsSchema,
        querystring: TenantQuerySchema,
        body: VersionStateSchema,
        response: { 200: TemplateVersionSchema, ...errorResponses },
      },
    },
    async (request) => {
      const template = await uploaded(request, request.params.name, request.query.tenant, true);
      return templates.setState(template, request.params.version, request.body.state);
    },
  );

  app.get(
    '/v1/runtime',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['templates'],
        summary: "What a template's program runs with: Node.js and the packages it may import",
        response: { 200: RuntimeSchema, ...errorResponses },
      },
    },
    async () => ({ node: process.version, packages: runtimePackages().map(({ name, version }) => ({ name, version })) }),
  );

  app.get(
    '/v1/runtime/types',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['templates'],
        summary: "The runtime packages' type declarations (what the template editor completes from); the same for everyone",
        response: {
          200: Type.Object({ files: Type.Array(Type.Object({ path: Type.String(), content: Type.String() })) }),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const body = await runtimeDeclarations();
      // They change only with the service's version: a browser asks again with the tag (304).
      reply.header('cache-control', 'private, no-cache').header('etag', body.etag).header('vary', 'accept-encoding');
      // Sent as made (a string or buffer skips the route's serializer).
      const tags = (request.headers['if-none-match'] ?? '').split(',').map((tag) => tag.trim().replace(/^W\//, ''));
      if (tags.includes(body.etag) || tags.includes('*')) return reply.code(304).send(undefined as never);
      reply.type('application/json; charset=utf-8');
      // gzip, unless refused (`gzip;q=0`).
      if (/\bgzip\b(?!\s*;\s*q=0(\.0+)?\b)/.test(request.headers['accept-encoding'] ?? ''))
        return reply.header('content-encoding', 'gzip').send(body.gzip as never);
      return reply.send(body.json as never);
    },
  );
};
