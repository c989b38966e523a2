/** The tenant that data written before tenants existed moves into, and that platform callers act in unless they name one. */
export const DEFAULT_TENANT = 'default';

/** A tenant's name: a DNS label (it is part of URLs, stack keys and Redis key names). */
export const TENANT_NAME_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';
const TENANT_NAME = new RegExp(TENANT_NAME_PATTERN);

export function isTenantName(value: string): boolean {
  return TENANT_NAME.test(value);
}

/** The tenant a stored object belongs to (documents of earlier versions have none: the default tenant). */
export function tenantOf(doc: { tenantId?: string | null }): string {
  return doc.tenantId ?? DEFAULT_TENANT;
}

/**
 * A stack's identity inside the service (its lock, its line of jobs, its state folder): the FQDN
 * in the default tenant, as before tenants existed, and `<tenant>/<fqdn>` in any other, so two
 * tenants' stacks of the same name never share a lock or a state. A tenant name holds no `/` and an
 * FQDN holds exactly two, so no two pairs give one key.
 */
export function stackKeyOf(tenantId: string | undefined | null, stackFqdn: string): string {
  const tenant = tenantId ?? DEFAULT_TENANT;
  if (tenant === DEFAULT_TENANT) return stackFqdn;
  if (!isTenantName(tenant)) throw new Error(`"${tenant}" is not a tenant name`);
  return `${tenant}/${stackFqdn}`;
}

/** The stack key of a stored job (jobs of earlier versions have no tenant: the default one). */
export function jobStackKey(job: { tenantId?: string | null; stackFqdn: string }): string {
  return stackKeyOf(job.tenantId, job.stackFqdn);
}

/** Who is asking, as far as tenancy goes: a tenant's token, or a platform admin (no tenant). */
export interface TenantViewer {
  role: string;
  tenant?: string;
}

function ownTenant(viewer: TenantViewer): string | undefined {
  if (viewer.role === 'platform') return undefined;
  // Deny by default: a non-platform caller without a tenant sees nothing rather than everything.
  return viewer.tenant ?? '\u0000no-tenant';
}

/** Whether `viewer` may see an object of `tenantId` (platform admins see every tenant's). */
export function canSee(viewer: TenantViewer, tenantId: string | undefined | null): boolean {
  const own = ownTenant(viewer);
  return own === undefined || own === (tenantId ?? DEFAULT_TENANT);
}

/**
 * A store filter for what `viewer` may see, narrowed to `asked` (a `?tenant=` filter) if given: a
 * tenant's caller asking for another tenant gets a filter that matches nothing.
 */
export function tenantFilter(viewer: TenantViewer, asked?: string): { tenantId?: string | { $in: string[] } } {
  const own = ownTenant(viewer);
  if (own === undefined) return asked === undefined ? {} : { tenantId: asked };
  if (asked !== undefined && asked !== own) return { tenantId: { $in: [] } };
  return { tenantId: own };
}
