import {
  assertVersionRanges,
  canSee,
  decodePolicy,
  forgetTenantLimit,
  DEFAULT_TENANT,
  encodePolicy,
  errors,
  type Models,
  type TenantPolicy,
  type Principal,
  type TenantDoc,
  tenantFilter,
  type TenantViewer,
} from '@pds/shared';

/** A tenant as the API shows it. */
export function tenantView(doc: TenantDoc) {
  return {
    name: doc._id,
    displayName: doc.displayName,
    description: doc.description ?? '',
    createdBy: doc.createdBy,
    createdAt: doc.createdAt.toISOString(),
    updatedAt: doc.updatedAt.toISOString(),
  };
}

/** Tenants (created and changed by platform admins; a tenant's callers see their own). */
export function tenantService({ models }: { models: Pick<Models, 'Tenant'> }) {
  const scoped = (viewer: TenantViewer) => {
    const { tenantId } = tenantFilter(viewer);
    return tenantId === undefined ? {} : { _id: tenantId };
  };

  return {
    async create(input: { name: string; displayName?: string; description?: string }, by: Principal) {
      try {
        const doc = await models.Tenant.create({
          _id: input.name,
          displayName: input.displayName ?? input.name,
          description: input.description ?? '',
          createdBy: by.name,
        });
        return tenantView(doc.toObject() as unknown as TenantDoc);
      } catch (err) {
        if ((err as { code?: number }).code === 11000) throw errors.conflict(`a tenant named "${input.name}" already exists`);
        throw err;
      }
    },

    async list(viewer: TenantViewer) {
      const docs = await models.Tenant.find(scoped(viewer)).sort({ _id: 1 }).lean<TenantDoc[]>();
      return docs.map(tenantView);
    },

    async get(name: string, viewer: TenantViewer) {
      // Another tenant's name answers as an unknown one: existence does not leak.
      const doc = canSee(viewer, name) ? await models.Tenant.findById(name).lean<TenantDoc>() : null;
      if (!doc) throw errors.notFound(`tenant ${name} not found`);
      return tenantView(doc);
    },

    async update(name: string, patch: { displayName?: string; description?: string }) {
      const doc = await models.Tenant.findOneAndUpdate({ _id: name }, { $set: patch }, { returnDocument: 'after' }).lean<TenantDoc>();
      if (!doc) throw errors.notFound(`tenant ${name} not found`);
      return tenantView(doc);
    },

    /** A tenant's policy (the viewer's own tenant, or any for platform admins). */
    async getPolicy(name: string, viewer: TenantViewer): Promise<TenantPolicy> {
      const doc = canSee(viewer, name) ? await models.Tenant.findById(name, { policy: 1 }).lean<Pick<TenantDoc, 'policy'>>() : null;
      if (!doc) throw errors.notFound(`tenant ${name} not found`);
      return decodePolicy(doc.policy);
    },

    /** Replaces a tenant's policy (platform admins); patterns must compile. */
    async setPolicy(name: string, policy: TenantPolicy): Promise<TenantPolicy> {
      assertVersionRanges(policy);
      for (const [template, rule] of Object.entries(policy.templates ?? {})) {
        for (const [path, limit] of Object.entries(rule.parameters ?? {})) {
          if (limit.pattern === undefined) continue;
          try {
            new RegExp(limit.pattern, 'u');
          } catch (err) {
            throw errors.invalidRequest(`templates.${template}.parameters.${path}.pattern: ${(err as Error).message}`);
          }
        }
      }
      const doc = await models.Tenant.findOneAndUpdate(
        { _id: name },
        { $set: { policy: encodePolicy(policy) } },
        { returnDocument: 'after' },
      ).lean<TenantDoc>();
      if (!doc) throw errors.notFound(`tenant ${name} not found`);
      forgetTenantLimit(name);
      return decodePolicy(doc.policy);
    },

    /** The policy a tenant's requests are held to (none if the tenant has none). */
    async policyOf(name: string): Promise<TenantPolicy> {
      const doc = await models.Tenant.findById(name, { policy: 1 }).lean<Pick<TenantDoc, 'policy'>>();
      return decodePolicy(doc?.policy);
    },

    /**
     * The tenant a caller creates something in: a tenant's token, its own (naming another is
     * refused); a platform admin, the one it names (`default` if none), which must exist.
     */
    async actingTenant(principal: Principal, asked: string | undefined): Promise<string> {
      if (principal.role !== 'platform') {
        if (principal.tenant === undefined) throw errors.forbidden(`token "${principal.name}" belongs to no tenant`);
        if (asked !== undefined && asked !== principal.tenant) {
          throw errors.forbidden(
            `tenant: token "${principal.name}" acts in tenant ${principal.tenant} only; only platform admins choose a tenant`,
          );
        }
        return principal.tenant;
      }
      const name = asked ?? DEFAULT_TENANT;
      if (!(await models.Tenant.exists({ _id: name }))) throw errors.notFound(`tenant ${name} not found; create it with POST /v1/tenants`);
      return name;
    },
  };
}

export type TenantService = ReturnType<typeof tenantService>;
