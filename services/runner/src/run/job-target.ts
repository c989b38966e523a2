import { stringify as stringifyYaml } from 'yaml';
import {
  type Config,
  findTemplate,
  type KindInfo,
  type KindRegistry,
  type Models,
  type ResourceDoc,
  type StackJobDoc,
  type TemplateDoc,
  type TemplateVersionDoc,
  tenantOf,
  versionKindInfo,
} from '@pds/shared';
import { templateProgramDir } from './template-program.js';

/** What a job runs: the resource (its manifest) and the program of its template version. */
export interface JobTarget {
  resource: ResourceDoc;
  kind: KindInfo;
  /** A publish check's smoke preview: its secret parameters get placeholder values. */
  check: boolean;
}

/** Why a job has nothing to run (the job fails with this reason). */
export interface TargetMissing {
  reason: 'resource_deleted' | 'unknown_kind' | 'nothing_to_reapply';
  error: string;
}

/** What a publish check's secret parameters hold for its smoke preview (a template takes no secret default). */
export const CHECK_SECRET_PLACEHOLDER = 'publish-check-placeholder-secret';

export interface TargetDeps {
  config: Pick<Config, 'WORK_DIR'>;
  models: Models;
  kinds: KindRegistry;
}

/** The program of an uploaded template's version, written out for runs (templateProgramDir). */
async function versionProgram(deps: TargetDeps, template: TemplateDoc, version: TemplateVersionDoc): Promise<KindInfo> {
  const readCompiled = async () =>
    (await deps.models.TemplateVersion.findById(version._id, { compiled: 1 }).lean<Pick<TemplateVersionDoc, 'compiled'>>())?.compiled ?? [];
  return versionKindInfo(template, version, await templateProgramDir(deps.config.WORK_DIR, version, readCompiled));
}

/** A version without its files (a run needs the compiled ones only when its folder is not written yet). */
const WITHOUT_FILES = { files: 0, compiled: 0 };

/**
 * The resource a job runs on and its template's program: a built-in kind from MODULES_DIR, or the
 * uploaded template version the resource is pinned to. A publish check runs its version with the
 * defaults as the manifest, on its throw-away stack.
 */
/**
 * The resource a job runs: as it is now, or for a compensation that reapplies the last good run,
 * that run's manifest, parameters and versions (undefined when there is none to reapply).
 */
export function resourceToRun(job: Pick<StackJobDoc, 'options'>, current: ResourceDoc): ResourceDoc | undefined {
  if (!job.options?.lastGood) return current;
  const lastGood = current.stack?.lastGood;
  if (!lastGood) return undefined;
  return {
    ...current,
    manifest: lastGood.manifest,
    version: lastGood.resourceVersion,
    templateVersion: lastGood.templateVersion,
    secretParameters: lastGood.secretParameters,
  };
}

export async function loadJobTarget(
  deps: TargetDeps,
  job: StackJobDoc,
  readResource: () => Promise<ResourceDoc | null>,
): Promise<JobTarget | TargetMissing> {
  if (job.templateCheck) return checkTarget(deps, job, job.templateCheck);
  const current = await readResource();
  if (!current) return { reason: 'resource_deleted', error: `resource ${job.resourceId} no longer exists` };
  const resource = resourceToRun(job, current);
  if (!resource) return { reason: 'nothing_to_reapply', error: `resource ${job.resourceId} has no successful up to reapply` };
  const builtIn = deps.kinds.get(resource.kind);
  if (builtIn) return { resource, kind: builtIn, check: false };
  const template = await findTemplate(deps.models, tenantOf(resource), resource.kind);
  const version =
    template &&
    (await deps.models.TemplateVersion.findOne(
      {
        templateId: template._id,
        version: resource.templateVersion,
        state: { $in: ['published', 'deprecated', 'archived'] },
      },
      WITHOUT_FILES,
    ).lean<TemplateVersionDoc>());
  if (!template || !version) {
    const what = template
      ? `template ${resource.kind} has no published version ${resource.templateVersion}`
      : `kind ${resource.kind} has no module in MODULES_DIR and no uploaded template`;
    return { reason: 'unknown_kind', error: what };
  }
  return { resource, kind: await versionProgram(deps, template, version), check: false };
}

async function checkTarget(deps: TargetDeps, job: StackJobDoc, versionId: string): Promise<JobTarget | TargetMissing> {
  const version = await deps.models.TemplateVersion.findById(versionId, WITHOUT_FILES).lean<TemplateVersionDoc>();
  const template = version && (await deps.models.Template.findById(version.templateId).lean<TemplateDoc>());
  if (!version || !template || version.state !== 'checking') {
    return { reason: 'unknown_kind', error: `the template version to check is gone or no longer being published` };
  }
  const manifest = stringifyYaml({
    apiVersion: 'deploy.pulumi.dev/v1',
    kind: template.name,
    metadata: { name: 'publish-check' },
    spec: JSON.parse(version.defaults) as Record<string, unknown>,
  });
  const resource: ResourceDoc = {
    _id: version._id,
    tenantId: job.tenantId,
    kind: template.name,
    name: 'publish-check',
    stackFqdn: job.stackFqdn,
    labels: [],
    manifest,
    version: 0,
    createdAt: job.createdAt,
    updatedAt: job.createdAt,
  };
  return { resource, kind: await versionProgram(deps, template, version), check: true };
}
