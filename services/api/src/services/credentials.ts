import { randomUUID } from 'node:crypto';
import {
  checkCredentialFields,
  type CredentialDoc,
  errors,
  type Keyring,
  type Models,
  type Principal,
  sealSecrets,
  tenantFilter,
  type TenantViewer,
  liveJobs,
} from '@pds/shared';
import type { TenantService } from './tenants.js';
import { listPage } from './pagination.js';

export interface CredentialServiceDeps {
  models: Pick<Models, 'Credential' | 'StackJob' | 'LiveJob' | 'Tenant'>;
  tenants: Pick<TenantService, 'actingTenant'>;
  /** Undefined when CREDENTIALS_KEY is not set: credentials cannot be stored. */
  keyring?: Keyring;
}

export interface CredentialInput {
  name: string;
  provider: string;
  isDefault?: boolean;
  labels?: Record<string, string>;
  /** Platform admins: the tenant that will own it (default `default`). */
  tenant?: string;
  /** Platform admins: makes it a platform credential, usable by these tenants. */
  sharedWith?: string[];
  [field: string]: unknown;
}

const toPairs = (labels: Record<string, string>) => Object.entries(labels).map(([key, value]) => ({ key, value }));

function sharedWithAsSeenBy(sharedWith: string[], viewer: TenantViewer | undefined): string[] {
  if (!viewer || viewer.role === 'platform') return sharedWith;
  return sharedWith.filter((tenant) => tenant === viewer.tenant);
}

/** A credential as responses show it: never a secret value, only non-secret settings and a fingerprint. */
export function credentialView(doc: CredentialDoc, viewer?: TenantViewer) {
  return {
    id: doc._id,
    // A tenant's own credential names its tenant; a platform credential says whom it is shared with.
    tenant: doc.platform ? undefined : (doc.tenantId ?? 'default'),
    // Whom else it is shared with is the platform's business: a tenant sees only itself there.
    ...(doc.platform ? { platform: true, sharedWith: sharedWithAsSeenBy(doc.sharedWith ?? [], viewer) } : {}),
    name: doc.name,
    provider: doc.provider,
    isDefault: doc.isDefault,
    labels: Object.fromEntries(doc.labels.map((l) => [l.key, l.value])),
    settings: doc.settings ?? {},
    fingerprint: doc.fingerprint,
    keyId: doc.sealed.keyId,
    createdAt: doc.createdAt.toISOString(),
    updatedAt: doc.updatedAt.toISOString(),
    ...(doc.rotatedAt ? { rotatedAt: doc.rotatedAt.toISOString() } : {}),
  };
}

/** Who owns a credential: a tenant, or the platform (shared with named tenants). */
type Owner = { tenantId: string } | { platform: true; sharedWith: string[] };

const ownerFilter = (owner: Owner) =>
  'tenantId' in owner ? { tenantId: owner.tenantId } : { platform: true, tenantId: { $exists: false } };
const ownerOf = (doc: CredentialDoc): Owner =>
  doc.platform ? { platform: true, sharedWith: doc.sharedWith ?? [] } : { tenantId: doc.tenantId ?? 'default' };

/**
 * What a viewer may read: a tenant admin, its tenant's credentials and the platform credentials
 * shared with it (read-only); a platform admin, all (or those a `?tenant=` owns or may use).
 */
function visibleFilter(viewer: TenantViewer, tenant?: string): Record<string, unknown> {
  // The tenant filter every other object has, widened to what is shared with that tenant.
  const { tenantId } = tenantFilter(viewer, tenant);
  if (tenantId === undefined) return {};
  if (typeof tenantId !== 'string') return { tenantId }; // another tenant asked for: nothing
  return { $or: [{ tenantId }, { platform: true, sharedWith: tenantId }] };
}

/**
 * Storing, rotating and deleting provider credentials; secrets are sealed before they reach
 * MongoDB. A tenant's admins manage its own; platform admins manage all, and own the platform
 * credentials they share with named tenants.
 */
export function credentialService({ models, keyring, tenants }: CredentialServiceDeps) {
  function requireKeyring(): Keyring {
    if (!keyring)
      throw errors.unavailable('credentials are disabled: set CREDENTIALS_KEY (32 random bytes, base64: openssl rand -base64 32)');
    return keyring;
  }

  async function find(id: string, viewer: TenantViewer) {
    const doc = await models.Credential.findOne({ _id: id, ...visibleFilter(viewer) }).lean<CredentialDoc>();
    if (!doc) throw errors.notFound(`credential ${id} not found`);
    return doc;
  }

  /** A credential the viewer may change: its tenant's own, or (platform admins) any. */
  async function findChangeable(id: string, viewer: TenantViewer) {
    const doc = await find(id, viewer);
    if (doc.platform && viewer.role !== 'platform') {
      throw errors.forbidden(`credential ${doc.name} is a platform credential shared with this tenant; only platform admins change it`);
    }
    return doc;
  }

  async function ownerFor(input: Pick<CredentialInput, 'tenant' | 'sharedWith'>, by: Principal): Promise<Owner> {
    if (input.sharedWith === undefined) return { tenantId: await tenants.actingTenant(by, input.tenant) };
    if (by.role !== 'platform') throw errors.forbidden('sharedWith: platform credentials are made by platform admins only');
    if (input.tenant !== undefined)
      throw errors.invalidRequest('tenant and sharedWith: a credential is owned by a tenant or shared by the platform, not both');
    return { platform: true, sharedWith: await existingTenants(input.sharedWith) };
  }

  async function existingTenants(names: string[]): Promise<string[]> {
    const unique = [...new Set(names)];
    const found = await models.Tenant.find({ _id: { $in: unique } }, { _id: 1 }).lean<{ _id: string }[]>();
    const missing = unique.filter((name) => !found.some((t) => t._id === name));
    if (missing.length > 0) throw errors.invalidRequest(`sharedWith: no tenant named ${missing.join(', ')}`);
    return unique;
  }

  /** One default per provider and owner: making `id` the default takes it from the owner's others. */
  async function takeDefault(owner: Owner, provider: string, id: string) {
    await models.Credential.updateMany(
      { ...ownerFilter(owner), provider, isDefault: true, _id: { $ne: id } },
      { $set: { isDefault: false } },
    );
  }

  return {
    /** The first credential of a provider (per owner) becomes its default unless `isDefault: false` is given. */
    async create({ name, provider, isDefault, labels = {}, tenant, sharedWith, ...fields }: CredentialInput, by: Principal) {
      const ring = requireKeyring();
      const { settings, secrets } = checkCredentialFields(provider, fields);
      const owner = await ownerFor({ tenant, sharedWith }, by);
      const taken = `a credential named "${name}" already exists${'tenantId' in owner ? ` in tenant ${owner.tenantId}` : ' among platform credentials'}`;
      if (await models.Credential.exists({ ...ownerFilter(owner), name })) throw errors.conflict(taken);
      const makeDefault = isDefault ?? !(await models.Credential.exists({ ...ownerFilter(owner), provider, isDefault: true }));
      const id = randomUUID();
      try {
        const doc = await models.Credential.create({
          _id: id,
          ...owner,
          name,
          provider,
          isDefault: makeDefault,
          labels: toPairs(labels),
          settings,
          ...sealSecrets(ring, id, secrets),
        });
        if (makeDefault) await takeDefault(owner, provider, id);
        return credentialView(doc.toObject() as unknown as CredentialDoc);
      } catch (err) {
        if ((err as { code?: number }).code === 11000) throw errors.conflict(taken);
        throw err;
      }
    },

    /**
     * Replaces the provider fields (a rotation: new fingerprint, `rotatedAt`); name, provider and
     * owner stay. Platform admins may change whom a platform credential is shared with.
     */
    async replace(
      id: string,
      { isDefault, labels, sharedWith, ...fields }: Omit<CredentialInput, 'name' | 'provider' | 'tenant'>,
      viewer: TenantViewer,
    ) {
      const ring = requireKeyring();
      const current = await findChangeable(id, viewer);
      if (sharedWith !== undefined && !current.platform) {
        throw errors.invalidRequest(
          `sharedWith: credential ${current.name} belongs to tenant ${current.tenantId ?? 'default'}; only platform credentials are shared`,
        );
      }
      const { settings, secrets } = checkCredentialFields(current.provider, fields);
      const doc = await models.Credential.findOneAndUpdate(
        { _id: id },
        {
          $set: {
            settings,
            ...sealSecrets(ring, id, secrets),
            rotatedAt: new Date(),
            ...(isDefault !== undefined ? { isDefault } : {}),
            ...(labels ? { labels: toPairs(labels as Record<string, string>) } : {}),
            ...(sharedWith ? { sharedWith: await existingTenants(sharedWith as string[]) } : {}),
          },
        },
        { returnDocument: 'after' },
      ).lean<CredentialDoc>();
      if (!doc) throw errors.notFound(`credential ${id} not found`);
      if (isDefault) await takeDefault(ownerOf(doc), doc.provider, id);
      return credentialView(doc, viewer);
    },

    async get(id: string, viewer: TenantViewer) {
      return credentialView(await find(id, viewer), viewer);
    },

    async list(
      { tenant, provider, limit, cursor }: { tenant?: string; provider?: string; limit: number; cursor?: string },
      viewer: TenantViewer,
    ) {
      const filter = { ...visibleFilter(viewer, tenant), ...(provider ? { provider } : {}) };
      return listPage(models.Credential, filter, { field: 'createdAt', limit, cursor }, (doc: CredentialDoc) =>
        credentialView(doc, viewer),
      );
    },

    /** Refused while a running job uses the credential: its secrets are in that job's environment. */
    async remove(id: string, viewer: TenantViewer) {
      const doc = await findChangeable(id, viewer);
      const [running] = await liveJobs(models).find({ credentialId: id }, ['running'], 1);
      if (running) throw errors.conflict(`credential ${doc.name} is in use by running job ${running._id}; delete it after the job ends`);
      await models.Credential.deleteOne({ _id: id });
      return credentialView(doc, viewer);
    },
  };
}
