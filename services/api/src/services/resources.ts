import { randomUUID } from 'node:crypto';
import {
  type Keyring,
  sealSecretParameters,
  errors,
  type KindInfo,
  type KindRegistry,
  resolveTemplate,
  localDirsOf,
  type Models,
  parseManifest,
  type ResourceDoc,
  resolveStackFqdn,
  tenantOf,
  liveJobs,
  type StackJobDoc,
  STORED_MANIFEST,
  tenantFilter,
  type TenantViewer,
  CREDENTIAL_LABEL,
  type Manifest,
  assertParameterLimits,
  assertParameters,
  assertTemplateAllowed,
  type TenantPolicy,
} from '@pds/shared';
import { listPage } from './pagination.js';
import { resourceFolders } from './resource-folders.js';
import { withStoreLock } from './store-lock.js';
import { tenantService } from './tenants.js';
import { resourceView } from './views.js';

export interface ResourceServiceDeps {
  models: Models;
  kinds: KindRegistry;
  /** The largest manifest accepted (MANIFEST_MAX_BYTES). */
  manifestMaxBytes?: number;
  /** Where local-file kinds may write (LOCAL_FILES_ROOT). */
  localFilesRoot: string;
  /** Seals secret parameters (CREDENTIALS_KEY); without it, templates with secret parameters cannot be used. */
  keyring?: Keyring;
}

function isDuplicateKey(err: unknown): err is { keyPattern?: Record<string, unknown> } {
  return (err as { code?: number }).code === 11000;
}

/** The stored forms of a manifest's labels: pairs to read back, `key=value` strings to filter by. */
function labelFields(labels: Record<string, string>) {
  return {
    labels: Object.entries(labels).map(([key, value]) => ({ key, value })),
    labelPairs: Object.entries(labels).map(([key, value]) => `${key}=${value}`),
  };
}

/**
 * The credential label picks which of the tenant's credentials a stack runs with (production's,
 * say): setting or changing it takes the tenant's admin role.
 */
function assertCredentialChoice(manifest: Manifest, current: ResourceDoc | undefined, mayChoose: boolean): void {
  const wanted = manifest.metadata.labels[CREDENTIAL_LABEL];
  const had = current?.labels.find((l) => l.key === CREDENTIAL_LABEL)?.value;
  if (wanted !== had && !mayChoose) {
    throw errors.forbidden(`metadata.labels["${CREDENTIAL_LABEL}"]: choosing the credential a stack runs with needs the admin role`);
  }
}

/** Creating and reading resources; knows nothing of HTTP. */
export function resourceService({ models, kinds, manifestMaxBytes, localFilesRoot, keyring }: ResourceServiceDeps) {
  const { assertOwnFolders, checkTenantPaths } = resourceFolders({ models, kinds, localFilesRoot });
  const tenants = tenantService({ models });

  /** The tenant's rules for a manifest's template: allowed, and within the parameter limits. */
  async function assertPolicy(tenantId: string, manifest: Manifest, version: string): Promise<TenantPolicy> {
    const policy = await tenants.policyOf(tenantId);
    assertTemplateAllowed(policy, tenantId, manifest.kind, version);
    assertParameterLimits(policy, tenantId, manifest.kind, manifest);
    return policy;
  }

  /**
   * Stores a new resource; with a `maxInstances` rule, under a lock on the tenant and template, so
   * that parallel creates cannot pass the count together.
   */
  async function insert(fields: Record<string, unknown> & { tenantId: string; kind: string }, policy: TenantPolicy) {
    const max = policy.templates?.[fields.kind]?.maxInstances;
    if (max === undefined) return models.Resource.create(fields);
    return withStoreLock(models, `instances:${fields.tenantId}:${fields.kind}`, async () => {
      const count = await models.Resource.countDocuments({ tenantId: fields.tenantId, kind: fields.kind });
      if (count >= max) {
        throw errors.policy(
          `tenant ${fields.tenantId} may have at most ${max} ${fields.kind} resources and has ${count} (policy: templates.${fields.kind}.maxInstances)`,
        );
      }
      return models.Resource.create(fields);
    });
  }

  /** Reads a resource the viewer may see; another tenant's answers as unknown (404). */
  async function find(id: string, viewer: TenantViewer): Promise<ResourceDoc> {
    const doc = await models.Resource.findOne({ _id: id, ...tenantFilter(viewer) }).lean<ResourceDoc>();
    if (!doc) throw errors.notFound(`resource ${id} not found`);
    return doc;
  }

  /**
   * The change that left its stack holding resources, if it does: its last successful up or refresh
   * not followed by a successful destroy. A stack its resource shows `deployed` answers at once; any
   * other is read from its jobs (a scan of every job on FerretDB, paid only by a delete that may go on).
   */
  async function lastStackChange(doc: ResourceDoc): Promise<{ operation: string; jobId: string } | undefined> {
    if (doc.stack?.status === 'deployed' && doc.stack.jobId) return { operation: 'up', jobId: doc.stack.jobId };
    const last = await models.StackJob.findOne({
      resourceId: doc._id,
      status: 'succeeded',
      operation: { $in: ['up', 'refresh', 'destroy'] },
    })
      .sort({ finishedAt: -1 })
      .lean<StackJobDoc>();
    return last && last.operation !== 'destroy' ? { operation: last.operation, jobId: last._id } : undefined;
  }

  /** Stores a manifest over a resource's, checked against `kind` (the version it will be pinned to). */
  async function store(current: ResourceDoc, manifestText: string, manifest: Manifest, kind: KindInfo) {
    if (manifest.metadata.name !== current.name) throw errors.invalidManifest(`metadata.name cannot change (it is ${current.name})`);
    const secrets = sealSecretParameters(kind.secretParameters, manifestText, manifest, {
      keyring,
      resourceId: current._id,
      previous: current.secretParameters,
    });
    assertParameters(kind.parameters, secrets.clearSpec);
    const stackFqdn = resolveStackFqdn(manifest, kind.project);
    await assertPolicy(tenantOf(current), { ...manifest, spec: secrets.clearSpec }, kind.version);
    await checkTenantPaths(kind.localPaths, manifest.spec, tenantOf(current));
    await assertOwnFolders(localDirsOf(kind.localPaths, manifest.spec), { ...current, tenantId: tenantOf(current) });
    if (stackFqdn !== current.stackFqdn) throw errors.invalidManifest(`the stack cannot change (it is ${current.stackFqdn})`);
    const doc = await models.Resource.findOneAndUpdate(
      { _id: current._id, version: current.version },
      {
        $set: {
          manifest: secrets.text,
          secretParameters: secrets.sealed,
          templateVersion: kind.version,
          ...labelFields(manifest.metadata.labels),
        },
        $inc: { version: 1 },
      },
      { returnDocument: 'after' },
    ).lean<ResourceDoc>();
    if (!doc) throw errors.conflict(`resource ${current._id} was changed by someone else; read it again and retry`);
    return resourceView(doc);
  }

  return {
    find,

    /** `mayChooseCredential`: whether the caller may set the credential label (a tenant admin). */
    async create(manifestText: string, tenantId: string, { mayChooseCredential }: { mayChooseCredential: boolean }) {
      const manifest = parseManifest(manifestText, manifestMaxBytes);
      assertCredentialChoice(manifest, undefined, mayChooseCredential);
      // A new resource of an uploaded template pins its newest published version the tenant may use.
      const kind = (await resolveTemplate(models, kinds, tenantId, manifest.kind, { policy: await tenants.policyOf(tenantId) })).info;
      const id = randomUUID();
      const secrets = sealSecretParameters(kind.secretParameters, manifestText, manifest, { keyring, resourceId: id });
      assertParameters(kind.parameters, secrets.clearSpec);
      const stackFqdn = resolveStackFqdn(manifest, kind.project);
      const policy = await assertPolicy(tenantId, { ...manifest, spec: secrets.clearSpec }, kind.version);
      await checkTenantPaths(kind.localPaths, manifest.spec, tenantId);
      await assertOwnFolders(localDirsOf(kind.localPaths, manifest.spec), { tenantId, kind: manifest.kind, name: manifest.metadata.name });
      try {
        const doc = await insert(
          {
            _id: id,
            tenantId,
            kind: manifest.kind,
            name: manifest.metadata.name,
            stackFqdn,
            ...labelFields(manifest.metadata.labels),
            manifest: secrets.text,
            ...(secrets.sealed.length > 0 ? { secretParameters: secrets.sealed } : {}),
            templateVersion: kind.version,
          },
          policy,
        );
        return resourceView(doc.toObject() as unknown as ResourceDoc);
      } catch (err) {
        if (isDuplicateKey(err)) {
          if (err.keyPattern?.stackFqdn) throw errors.conflict(`a ${manifest.kind} resource with stack ${stackFqdn} already exists`);
          // The tenant's own resource of that kind and name: named, so a client can update it instead (pds deploy).
          const existing = await models.Resource.findOne({ tenantId, kind: manifest.kind, name: manifest.metadata.name }, { _id: 1 })
            .lean<{ _id: string }>()
            .catch(() => null);
          throw errors.exists(
            `a ${manifest.kind} resource with name ${manifest.metadata.name} already exists${existing ? ` (id ${existing._id})` : ''}`,
            existing?._id,
          );
        }
        throw err;
      }
    },

    /** Replaces the manifest (same kind, name and stack) and bumps the version; jobs record the version they ran. */
    async replace(id: string, manifestText: string, viewer: TenantViewer, { mayChooseCredential }: { mayChooseCredential: boolean }) {
      const manifest = parseManifest(manifestText, manifestMaxBytes);
      const current = await find(id, viewer);
      assertCredentialChoice(manifest, current, mayChooseCredential);
      if (manifest.kind !== current.kind) throw errors.invalidManifest(`kind cannot change (it is ${current.kind})`);
      // The version the resource is pinned to (uploaded templates; built-in ones have one version).
      const kind = (await resolveTemplate(models, kinds, tenantOf(current), current.kind, { version: current.templateVersion })).info;
      return store(current, manifestText, manifest, kind);
    },

    /**
     * Moves a resource of an uploaded template to another published version of it: its manifest is
     * checked against that version's schema and the tenant's rules, then stored with the new pin.
     */
    async upgrade(
      id: string,
      version: string,
      viewer: TenantViewer,
      { manifestText, mayChooseCredential }: { manifestText?: string; mayChooseCredential: boolean },
    ) {
      const current = await find(id, viewer);
      if (kinds.has(current.kind))
        throw errors.conflict(`${current.kind} is a built-in template: it has one version, ${kinds.get(current.kind)?.version}`);
      if (version === current.templateVersion) throw errors.conflict(`resource ${id} runs ${current.kind} ${version} already`);
      const target = await resolveTemplate(models, kinds, tenantOf(current), current.kind, { version });
      if (target.version?.state !== 'published') {
        throw errors.conflict(
          `template ${current.kind} ${version} is ${target.version?.state}: resources move only to a published version`,
        );
      }
      const before = (await resolveTemplate(models, kinds, tenantOf(current), current.kind, { version: current.templateVersion })).info;
      const dropped = before.secretParameters.filter((key) => !target.info.secretParameters.includes(key));
      if (dropped.length > 0 && current.secretParameters?.some((s) => dropped.includes(s.key))) {
        throw errors.conflict(
          `${dropped.map((k) => `spec.${k}`).join(', ')} is secret in ${current.templateVersion} but not in ${version}: replace the manifest without it first`,
        );
      }
      if (manifestText === undefined)
        return store(current, current.manifest, parseManifest(current.manifest, STORED_MANIFEST), target.info);
      // With a manifest: the one the new version takes (a new required parameter, say), stored in the same step.
      const manifest = parseManifest(manifestText, manifestMaxBytes);
      assertCredentialChoice(manifest, current, mayChooseCredential);
      if (manifest.kind !== current.kind) throw errors.invalidManifest(`kind cannot change (it is ${current.kind})`);
      return store(current, manifestText, manifest, target.info);
    },

    async get(id: string, viewer: TenantViewer) {
      return resourceView(await find(id, viewer));
    },

    /** Newest first, filtered by kind, one label (`key=value`) and a name prefix. */
    async list(
      {
        tenant,
        kind,
        label,
        namePrefix,
        limit,
        cursor,
      }: {
        tenant?: string;
        kind?: string;
        label?: string;
        namePrefix?: string;
        limit: number;
        cursor?: string;
      },
      viewer: TenantViewer,
    ) {
      const filter: Record<string, unknown> = { ...tenantFilter(viewer, tenant) };
      if (kind) filter.kind = kind;
      if (namePrefix) filter.name = { $regex: `^${namePrefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}` };
      if (label) {
        const at = label.indexOf('=');
        filter.labelPairs = `${label.slice(0, at)}=${label.slice(at + 1)}`;
      }
      return listPage(models.Resource, filter, { field: 'createdAt', limit, cursor }, (doc: ResourceDoc) => resourceView(doc));
    },

    /**
     * Deletes a resource. Refused (409) while its stack has deployed resources (its last successful
     * up or refresh was not followed by a successful destroy) or a job of it is queued or running,
     * unless `force`. Returns the resource and the jobs still active, for the caller to cancel.
     */
    async remove(id: string, force: boolean, viewer: TenantViewer) {
      const doc = await find(id, viewer);
      const active = await liveJobs(models).find({ resourceId: id });
      if (!force && active.length > 0) {
        throw errors.conflict(
          `resource ${id} has ${active.length} queued or running job(s) (${active.map((j) => j._id).join(', ')}); wait for them, cancel them, or delete with ?force=true`,
        );
      }
      const lastChange = force ? undefined : await lastStackChange(doc);
      if (lastChange) {
        throw errors.conflict(
          `the stack ${doc.stackFqdn} still has deployed resources (last change: ${lastChange.operation} job ${lastChange.jobId}); run a destroy job first, or delete with ?force=true to leave them and the stack state behind`,
        );
      }
      await models.Resource.deleteOne({ _id: id });
      // Its state versions go with it (the backend keeps the stack's own history).
      await models.StackState.deleteMany({ resourceId: id });
      await models.StateUpload.deleteMany({ resourceId: id });
      await models.UpdatePlanFile.deleteMany({ resourceId: id });
      return { resource: resourceView(doc), activeJobs: active.map((j) => j._id) };
    },
  };
}
