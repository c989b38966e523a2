import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import {
  assertParameters,
  compileParameters,
  DEFAULT_TENANT,
  errors,
  isFinalStatus,
  type JobStatus,
  type Models,
  type ParametersSchema,
  type Principal,
  PLATFORM_SCOPE,
  queueStackJob,
  type QueueingDeps,
  secretParametersOf,
  type TemplateDoc,
  type TemplateFile,
  type TemplateVersionDoc,
} from '@pds/shared';
import { compare } from 'semver';
import { allowsBreaking, breakingChanges } from './compatibility.js';
import { compileTemplate } from './compile.js';

export interface PublishDeps extends QueueingDeps {
  models: Models;
  /** How long to wait for the smoke preview (ms). */
  checkTimeoutMs: number;
}

/** The longest `pattern` an uploaded schema may hold. */
export const PATTERN_MAX_LENGTH = 256;

/** A group that holds a quantifier and is itself quantified: `(a+)+`, `(\\w*x)*`, `(a{2,})+`. */
const NESTED_QUANTIFIER = /\((?:[^()\\]|\\.)*(?:[*+]|\{\d+,\d*\})(?:[^()\\]|\\.)*\)\s*(?:[*+]|\{\d+,\d*\})/;

/**
 * Patterns of a tenant's schema run on the API's thread for every manifest stored: refused are those
 * of the forms whose matching time explodes (a quantified group holding a quantifier, a
 * backreference) and long ones. A heuristic: it keeps out the classic catastrophic patterns.
 */
export function riskyPatterns(schema: unknown, path = 'parameters'): string[] {
  if (schema === null || typeof schema !== 'object') return [];
  const found: string[] = [];
  const check = (where: string, pattern: string) => {
    if (pattern.length > PATTERN_MAX_LENGTH) found.push(`${where}: longer than ${PATTERN_MAX_LENGTH} characters`);
    else if (NESTED_QUANTIFIER.test(pattern)) found.push(`${where}: a quantified group holds a quantifier (catastrophic backtracking)`);
    else if (/\\[1-9]|\\k</.test(pattern)) found.push(`${where}: backreferences are not allowed`);
  };
  for (const [key, value] of Object.entries(schema)) {
    const where = Array.isArray(schema) ? `${path}[${key}]` : `${path}.${key}`;
    if (key === 'pattern' && typeof value === 'string') check(where, value);
    if (key === 'patternProperties' && value && typeof value === 'object') for (const p of Object.keys(value)) check(`${where}["${p}"]`, p);
    found.push(...riskyPatterns(value, where));
  }
  return found;
}

/** The checks that need no runner: the schema, the defaults, the version step, the program's compile. Throws 400 naming what is wrong. */
export async function staticChecks(models: Pick<Models, 'TemplateVersion'>, version: TemplateVersionDoc): Promise<TemplateFile[]> {
  const schema = JSON.parse(version.parameters) as ParametersSchema;
  try {
    compileParameters(schema);
  } catch (err) {
    throw errors.invalidRequest(`parameters: not a valid JSON Schema (draft-07, strict): ${(err as Error).message}`);
  }
  const risky = riskyPatterns(schema);
  if (risky.length > 0) throw errors.invalidRequest(`parameters: ${risky.join('; ')}`);
  let secrets: string[];
  try {
    secrets = secretParametersOf(schema);
  } catch (err) {
    throw errors.invalidRequest(`parameters: ${(err as Error).message}`);
  }
  const defaults = JSON.parse(version.defaults) as Record<string, unknown>;
  const secretDefaults = secrets.filter((key) => key in defaults);
  if (secretDefaults.length > 0) {
    throw errors.invalidRequest(
      `defaults: ${secretDefaults.map((k) => `spec.${k}`).join(', ')} is a secret parameter and takes no default`,
    );
  }
  try {
    assertParameters(schema, defaults);
  } catch (err) {
    throw errors.invalidRequest(`defaults do not validate against parameters: ${(err as Error).message}`);
  }
  await assertVersionStep(models, version, schema);
  const compiled = await compileTemplate(version.files, version.main);
  if (!compiled.ok) throw errors.invalidRequest(`the program does not compile:\n${compiled.problems.join('\n')}`);
  return compiled.compiled;
}

/** A change that breaks manifests of the version below this one needs a new major version. */
async function assertVersionStep(models: Pick<Models, 'TemplateVersion'>, version: TemplateVersionDoc, schema: ParametersSchema) {
  const earlier = await models.TemplateVersion.find(
    { templateId: version.templateId, state: { $in: ['published', 'deprecated', 'archived'] } },
    { version: 1, parameters: 1 },
  ).lean<Pick<TemplateVersionDoc, 'version' | 'parameters'>[]>();
  const below = earlier.filter((v) => compare(v.version, version.version) < 0).sort((a, b) => compare(b.version, a.version))[0];
  if (!below || allowsBreaking(below.version, version.version)) return;
  const changes = breakingChanges(JSON.parse(below.parameters) as ParametersSchema, schema);
  if (changes.length > 0) {
    throw errors.invalidRequest(
      `parameters: ${changes.join('; ')} since ${below.version}: manifests of ${below.version} would no longer validate, which needs a new major version`,
    );
  }
}

/** The tenant a version's smoke preview runs in: its template's, or for a platform template the default one. */
const checkTenant = (template: TemplateDoc) => (template.scope === PLATFORM_SCOPE ? DEFAULT_TENANT : template.scope);

/**
 * Runs the smoke preview: `pulumi preview` of the version with its defaults, on a throw-away stack,
 * by a runner (the program is untrusted: it runs where jobs run, isolated). Answers the job's end.
 */
export async function smokePreview(
  deps: PublishDeps,
  template: TemplateDoc,
  version: TemplateVersionDoc,
  principal: Principal,
): Promise<{ jobId: string; status: JobStatus | 'timeout'; error?: string }> {
  // `_` is in no resource's name: a check's stack never meets a resource's.
  const suffix = randomBytes(12).toString('hex');
  const job = await queueStackJob(deps, {
    tenantId: checkTenant(template),
    resourceId: version._id,
    resourceVersion: 0,
    kind: template.name,
    stackFqdn: `organization/${template.name}/publish_check_${suffix}`,
    operation: 'preview',
    options: {},
    createdBy: { id: principal.id, name: principal.name },
    templateCheck: version._id,
  });
  await deps.models.TemplateVersion.updateOne({ _id: version._id }, { $set: { 'check.jobId': job._id } });
  return { jobId: job._id, ...(await waitForEnd(deps.models, job._id, deps.checkTimeoutMs)) };
}

/** Waits for a job (or the retry that replaced it) to end; polls the store, which holds the final word. */
async function waitForEnd(models: Pick<Models, 'StackJob'>, jobId: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  let id = jobId;
  while (Date.now() < deadline) {
    const job = await models.StackJob.findById(id, { status: 1, error: 1, retriedBy: 1 }).lean<{
      status: JobStatus;
      error?: string;
      retriedBy?: string;
    }>();
    if (job?.retriedBy) id = job.retriedBy;
    else if (job && isFinalStatus(job.status)) return { status: job.status, error: job.error };
    else if (!job) return { status: 'failed' as JobStatus, error: 'the smoke-preview job is gone' };
    await delay(250);
  }
  return { status: 'timeout' as const };
}
