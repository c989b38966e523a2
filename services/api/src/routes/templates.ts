import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { assertTemplateAllowed, effectiveSchema, errors, type KindInfo, principalOf, type TenantPolicy } from '@pds/shared';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { tenantService } from '../services/tenants.js';
import { errorResponses, TemplateParamsSchema, TemplateSchema, TenantQuerySchema } from './schemas.js';

/** Whether a tenant's policy allows a template. */
function allows(policy: TenantPolicy, tenant: string, template: KindInfo): boolean {
  try {
    assertTemplateAllowed(policy, tenant, template.kind, template.version);
    return true;
  } catch {
    return false;
  }
}

/**
 * The catalogue: the built-in templates (one per kind in MODULES_DIR, source `system`, read-only),
 * each with whether the caller's tenant may use it, and the schema a form renders for it.
 */
export const templateRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tenants = tenantService(app.deps);

  /** The tenant a request reads the catalogue for: its own, or (platform admins) `?tenant=`, if any. */
  async function tenantOfRequest(request: FastifyRequest, asked: string | undefined) {
    const principal = principalOf(request);
    if (principal.role === 'platform' && asked === undefined) return undefined;
    const tenant = await tenants.actingTenant(principal, asked);
    return { tenant, policy: await tenants.policyOf(tenant) };
  }

  const view = (kind: KindInfo, scope: { tenant: string; policy: TenantPolicy } | undefined) => ({
    name: kind.kind,
    source: 'system' as const,
    version: kind.version,
    description: kind.description,
    readme: kind.readme,
    provider: kind.provider,
    project: kind.project,
    ...(scope ? { allowed: allows(scope.policy, scope.tenant, kind) } : {}),
  });

  const find = (name: string) => {
    const kind = app.deps.kinds.get(name);
    if (!kind) throw errors.notFound(`template ${name} not found`);
    return kind;
  };

  app.get(
    '/v1/templates',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['templates'],
        summary: "The catalogue: every template, with whether the caller's tenant may use it",
        querystring: TenantQuerySchema,
        response: { 200: Type.Object({ items: Type.Array(TemplateSchema) }), ...errorResponses },
      },
    },
    async (request) => {
      const scope = await tenantOfRequest(request, request.query.tenant);
      const items = [...app.deps.kinds.values()].sort((a, b) => a.kind.localeCompare(b.kind)).map((kind) => view(kind, scope));
      return { items };
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
    async (request) => view(find(request.params.name), await tenantOfRequest(request, request.query.tenant)),
  );

  app.get(
    '/v1/templates/:name/schema',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['templates'],
        summary:
          "The effective parameters schema for the caller's tenant: the template's, narrowed by the tenant's limits (JSON Schema draft-07 for spec)",
        params: TemplateParamsSchema,
        querystring: TenantQuerySchema,
        response: { 200: Type.Record(Type.String(), Type.Unknown()), ...errorResponses },
      },
    },
    async (request) => {
      const kind = find(request.params.name);
      const scope = await tenantOfRequest(request, request.query.tenant);
      if (!scope) return effectiveSchema(kind.parameters, {}, '', kind.kind);
      return effectiveSchema(kind.parameters, scope.policy, scope.tenant, kind.kind);
    },
  );
};
