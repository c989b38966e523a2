import {
  AppError,
  assertParameterLimits,
  assertTemplateAllowed,
  errors,
  type Operation,
  operationRole,
  parseManifest,
  type Principal,
  QUEUE_FULL_RETRY_SECONDS,
  readDeployment,
  type ResourceDoc,
  resolveTemplate,
  roleAllows,
  stackContents,
  type StackStateDoc,
  STORED_MANIFEST,
  tenantOf,
  type TenantPolicy,
  WAITING_STATUSES,
  liveJobs,
} from '@pds/shared';
import type { CreateJobInput, JobServiceDeps } from './jobs.js';
import { withStoreLock } from './store-lock.js';
import { tenantService } from './tenants.js';

/** What a tenant's policy and its stack's state allow of a new job (403, 400, 409 and 429 naming the rule). */
export function jobPolicy({ models, kinds }: Pick<JobServiceDeps, 'models' | 'kinds'>) {
  const tenants = tenantService({ models });

  /**
   * The tenant's policy for a new job: the operation's least role, and for a deploy (up, preview)
   * the template allowed and the manifest within today's parameter limits (they may have narrowed
   * since it was stored). Destroy and refresh stay possible on a template no longer allowed, so a
   * team can clean up. Returns the policy.
   */
  async function admit(resource: ResourceDoc, operation: Operation, caller: Principal): Promise<TenantPolicy> {
    const tenant = tenantOf(resource);
    const policy = await tenants.policyOf(tenant);
    const role = operationRole(policy, operation);
    if (caller.role !== 'platform' && !roleAllows(caller.role, role)) {
      const rule = policy.operations?.[operation] ? `operations.${operation}` : `the default for ${operation}`;
      throw errors.forbidden(
        `a ${operation} job needs the ${role} role in tenant ${tenant} (policy: ${rule}); token "${caller.name}" has the ${caller.role} role`,
      );
    }
    if (operation === 'up' || operation === 'preview') {
      // The version that would run: a built-in template's as the runners have it now, an uploaded one's pinned version.
      // (A template that cannot be found fails the job on the runner, with its reason.)
      const template = await resolveTemplate(models, kinds ?? new Map(), tenant, resource.kind, {
        version: resource.templateVersion,
      }).catch((err: Error) => {
        // Not found: the runner fails the job, naming why; anything else (the store away) is the caller's answer.
        if (err instanceof AppError && err.statusCode === 400) return undefined;
        throw err;
      });
      assertTemplateAllowed(policy, tenant, resource.kind, template?.info.version);
      try {
        const sealed = (template?.info.secretParameters ?? []).map((key) => `spec.${key}`);
        assertParameterLimits(policy, tenant, resource.kind, parseManifest(resource.manifest, STORED_MANIFEST), sealed);
      } catch (err) {
        throw errors.policy(`the resource's manifest is outside its tenant's limits now: ${(err as Error).message}; change it first`);
      }
    }
    return policy;
  }

  /**
   * A state operation's options, checked against the stack's latest known state (400 naming the
   * field): the URN it names is in it (and not the stack itself); a repair chooses for every pending
   * create the state shows, an import with the resource's ID. Without a known state the CLI decides.
   */
  async function assertStateOperation(resource: ResourceDoc, operation: Operation, options: Omit<CreateJobInput, 'operation'>) {
    const latest = await models.StackState.findOne({ resourceId: resource._id }).sort({ seq: -1 }).lean<StackStateDoc>();
    const contents = latest ? stackContents(readDeployment(latest)) : undefined;
    // URNs are this stack's (so none reaches the CLI as an option, nor names another stack's resource).
    const [, project, stack] = resource.stackFqdn.split('/') as [string, string, string];
    const ours = (urn: string) => urn.startsWith(`urn:pulumi:${stack}::${project}::`);
    if (operation === 'repair') {
      const chosen = options.pendingCreates ?? [];
      for (const [i, c] of chosen.entries()) {
        if (!ours(c.urn)) throw errors.invalidRequest(`pendingCreates[${i}].urn: ${c.urn} is not a resource of this stack`);
      }
      const actions = new Set(chosen.map((c) => c.action));
      for (const [i, c] of chosen.entries()) {
        if (c.action === 'import' && !c.id)
          throw errors.invalidRequest(`pendingCreates[${i}].id: importing ${c.urn} needs its ID in the cloud`);
      }
      if (actions.size > 1)
        throw errors.invalidRequest('pendingCreates: one repair either imports or clears its pending creates (run two)');
      const pending = (contents?.pendingOperations ?? []).filter((op) => op.type === 'creating').map((op) => op.urn);
      const missing = pending.filter((urn) => !chosen.some((c) => c.urn === urn));
      if (missing.length > 0) {
        throw errors.invalidRequest(`pendingCreates: choose import (with its id) or clear for each pending create: ${missing.join(', ')}`);
      }
      return;
    }
    if (operation === 'restore') {
      if (options.upload !== undefined) return;
      if (options.version === undefined) throw errors.invalidRequest('version: restore needs the state version to put back');
      if (!(await models.StackState.exists({ resourceId: resource._id, seq: options.version }))) {
        throw errors.invalidRequest(
          `version: the stack has no state version ${options.version} (GET /v1/resources/${resource._id}/stack/versions)`,
        );
      }
      if (latest?.seq === options.version) throw errors.conflict(`state version ${options.version} is the current one`);
      return;
    }
    if (!options.urn) throw errors.invalidRequest(`urn: ${operation} needs the URN of a resource in the stack`);
    if (!ours(options.urn))
      throw errors.invalidRequest(`urn: ${options.urn} is not a resource of this stack (urn:pulumi:${stack}::${project}::…)`);
    if (operation === 'state-rename' && !options.name) throw errors.invalidRequest('name: state-rename needs the new name');
    if (!contents) return;
    const target = contents.resources.find((r) => r.urn === options.urn);
    if (!target) throw errors.invalidRequest(`urn: ${options.urn} is not in the stack's state (version ${latest?.seq})`);
    if (target.type === 'pulumi:pulumi:Stack') throw errors.invalidRequest(`urn: ${options.urn} is the stack itself`);
    if (operation === 'state-unprotect' && !target.protect) throw errors.conflict(`${options.urn} is not protected`);
  }

  /**
   * With `maxQueuedJobs`, queues under a lock on the tenant so that parallel creates cannot pass the
   * count together. Every waiting job counts (queued, awaiting approval, approved: each holds a
   * place in a stack's line); a gated job's preview is part of it and does not count apart.
   */
  async function withinQueueLimit<T>(tenant: string, policy: TenantPolicy, queueIt: () => Promise<T>): Promise<T> {
    const max = policy.maxQueuedJobs;
    if (max === undefined) return queueIt();
    return withStoreLock(models, `queued:${tenant}`, async () => {
      // Live entries are a superset: only a tenant that may be at its limit has them confirmed one by one.
      const live = liveJobs(models);
      const entries = await live.entries({ tenantId: tenant, planFor: { $exists: false } });
      const queued = entries.length < max ? entries.length : (await live.confirm(entries, WAITING_STATUSES, max)).length;
      if (queued >= max) {
        throw errors.quota(
          `tenant ${tenant} has ${queued} waiting jobs (queued, awaiting approval or approved), its limit (policy: maxQueuedJobs ${max}); retry when some have started or ended`,
          QUEUE_FULL_RETRY_SECONDS,
        );
      }
      return queueIt();
    });
  }

  return { admit, assertStateOperation, withinQueueLimit };
}
