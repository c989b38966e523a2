import {
  type ApiTokenDoc,
  type Authenticator,
  errors,
  storeApiToken,
  type Models,
  type Principal,
  type Role,
  tenantFilter,
  type TenantViewer,
} from '@pds/shared';
import type { TenantService } from './tenants.js';

export interface TokenServiceDeps {
  models: Pick<Models, 'ApiToken'>;
  authenticator: Pick<Authenticator, 'forget'>;
  tenants: Pick<TenantService, 'actingTenant'>;
}

/** A token as lists show it: never the token itself, only its prefix. */
export function tokenView(doc: ApiTokenDoc) {
  return {
    id: doc.id,
    name: doc.name,
    role: doc.role as Role,
    ...(doc.role === 'platform' ? {} : { tenant: doc.tenantId ?? 'default' }),
    prefix: doc.prefix,
    createdBy: doc.createdBy,
    actsFor: doc.actsFor ?? doc.id,
    createdAt: doc.createdAt.toISOString(),
    ...(doc.expiresAt ? { expiresAt: doc.expiresAt.toISOString() } : {}),
    ...(doc.revokedAt ? { revokedAt: doc.revokedAt.toISOString() } : {}),
  };
}

/** Issuing, listing and revoking API tokens; only hashes are stored. A tenant's admins manage their own tenant's. */
export function tokenService({ models, authenticator, tenants }: TokenServiceDeps) {
  return {
    /**
     * Issues a token; the response is the only time the token is ever shown. A `platform` token
     * only by a platform admin, and in no tenant; any other in the caller's tenant (a platform
     * admin names one, default `default`).
     */
    async create(input: { name: string; role: Role; tenant?: string; expiresInDays?: number }, by: Principal) {
      // Its tokens would act for it: an identity no one can name would become one that looks known.
      if (by.identityUnknown)
        throw errors.forbidden(
          `token "${by.name}" was issued before tokens recorded whom they act for; it may not issue tokens (ask an admin with a newer token)`,
        );
      let tenantId: string | undefined;
      if (input.role === 'platform') {
        if (by.role !== 'platform') throw errors.forbidden(`role: a platform token is issued by platform admins only`);
        if (input.tenant !== undefined) throw errors.invalidRequest('tenant: a platform token belongs to no tenant');
      } else {
        tenantId = await tenants.actingTenant(by, input.tenant);
      }
      const expiresAt = input.expiresInDays ? new Date(Date.now() + input.expiresInDays * 86_400_000) : undefined;
      const { token, doc } = await storeApiToken(
        models,
        { name: input.name, role: input.role, tenantId, createdBy: by.name, expiresAt },
        by,
      );
      return { ...tokenView(doc), token };
    },

    async list(viewer: TenantViewer, tenant?: string) {
      const docs = await models.ApiToken.find(tenantFilter(viewer, tenant)).sort({ createdAt: -1 }).lean<ApiTokenDoc[]>();
      return docs.map(tokenView);
    },

    /** Revokes at once in this process; other processes stop accepting it within their cache time (5 s). */
    async revoke(id: string, viewer: TenantViewer) {
      const doc = await models.ApiToken.findOneAndUpdate(
        { id, ...tenantFilter(viewer) },
        { $set: { revokedAt: new Date() } },
        { returnDocument: 'after' },
      ).lean<ApiTokenDoc>();
      if (!doc) throw errors.notFound(`token ${id} not found`);
      authenticator.forget(doc._id);
      return tokenView(doc);
    },
  };
}
