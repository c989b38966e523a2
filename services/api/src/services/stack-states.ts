import { gzipSync } from 'node:zlib';
import {
  type Deployment,
  errors,
  LruCache,
  type Principal,
  readDeployment,
  roleAllows,
  secretOutputNames,
  secretOutputsContext,
  type StackStateDoc,
  STATE_MAX_BYTES,
  tenantOf,
  type TenantViewer,
  liveJobs,
} from '@pds/shared';
import type { AppContext } from '../app.js';
import { jobService } from './jobs.js';
import { resourceService } from './resources.js';

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

/**
 * A stack's state as its jobs left it, read from the store (the runner keeps each version after a
 * job), never from a Pulumi process: versions the viewer may see, parsed once per version; secret
 * outputs for those who may see them; a state imported over the stack (a restore job). No HTTP.
 */
export function stackStateService(deps: AppContext) {
  const { models, keyring } = deps;
  const resources = resourceService(deps);
  const jobs = jobService(deps);
  /** Parsed versions by id (a version never changes); a few, since a state can take megabytes. */
  const parsed = new LruCache<string, Deployment>(32);

  function deploymentOf(doc: StackStateDoc): Deployment {
    const known = parsed.get(doc._id);
    if (known) return known;
    const deployment = readDeployment(doc);
    parsed.set(doc._id, deployment);
    return deployment;
  }

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
    if (!keyring) throw errors.conflict('showSecrets: CREDENTIALS_KEY is not set on the API, so sealed outputs cannot be opened');
    try {
      return JSON.parse(keyring.open(doc.secretOutputs, secretOutputsContext(doc))) as Record<string, unknown>;
    } catch (err) {
      throw errors.conflict(
        `the secret outputs of state version ${doc.seq} do not open with the API's keys (${(err as Error).message}); set CREDENTIALS_KEY_PREVIOUS to the key they were sealed with, or run credentials:reseal`,
      );
    }
  }

  /** A version of a resource the viewer may see (another tenant's resource: 404); the latest without `seq`. */
  async function version(id: string, seq: number | undefined, viewer: TenantViewer): Promise<StackStateDoc | undefined> {
    await resources.find(id, viewer);
    const query = models.StackState.findOne({ resourceId: id, ...(seq !== undefined ? { seq } : {}) }).sort({ seq: -1 });
    const doc = await query.lean<StackStateDoc>();
    if (!doc && seq !== undefined) throw errors.notFound(`resource ${id} has no stack state version ${seq}`);
    return doc ?? undefined;
  }

  /** The last 100 versions, newest first, without their data. */
  async function versions(id: string, viewer: TenantViewer): Promise<StackStateDoc[]> {
    await resources.find(id, viewer);
    return models.StackState.find({ resourceId: id }, { data: 0 }).sort({ seq: -1 }).limit(100).lean<StackStateDoc[]>();
  }

  /**
   * Imports a state over the stack: checked (every URN this stack's), kept gzipped (one upload per
   * stack at a time), then a restore job queued to put it back. Returns the job. `found` hears the
   * resource's tenant as soon as it is known (a refused import is audited under it too).
   */
  async function importState(resourceId: string, deployment: Deployment, caller: Principal, found?: (tenant: string) => void) {
    const resource = await resources.find(resourceId, caller);
    found?.(tenantOf(resource));
    assertImportable(deployment, resource.stackFqdn);
    const data = gzipSync(JSON.stringify(deployment));
    if (data.length > STATE_MAX_BYTES)
      throw errors.payloadTooLarge(`deployment: ${data.length} bytes gzipped, more than ${STATE_MAX_BYTES}`);
    // One import at a time per stack: an upload is kept until its job reads it; one whose job ended
    // (cancelled before it ran) goes now.
    const waiting = await models.StateUpload.findOne({ resourceId: resource._id }, { _id: 1 }).lean<{ _id: string }>();
    if (waiting) {
      const [active] = await liveJobs(models).find({ resourceId: resource._id, upload: waiting._id }, undefined, 1);
      if (active)
        throw errors.conflict(
          `an import into resource ${resource._id} is waiting for its job ${String(active._id)}; let it run or cancel it first`,
        );
      await models.StateUpload.deleteOne({ _id: waiting._id });
    }
    const upload = await models.StateUpload.create({ tenantId: tenantOf(resource), resourceId: resource._id, data });
    return jobs.create(resource._id, { operation: 'restore', upload: upload._id }, caller).catch(async (err: Error) => {
      // The upload is kept only for its job; a leftover is taken by the next import or the resource's deletion.
      await models.StateUpload.deleteOne({ _id: upload._id }).catch(() => undefined);
      throw err;
    });
  }

  return { deploymentOf, revealSecretOutputs, version, versions, importState };
}
