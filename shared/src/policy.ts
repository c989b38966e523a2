import { satisfies, validRange } from 'semver';
import { errors } from './errors.js';
import type { Operation, TenantRole } from './types.js';

/** Limits on one parameter (a manifest path such as `spec.size`), as in JSON Schema. */
export interface ParameterLimit {
  minimum?: number;
  maximum?: number;
  enum?: unknown[];
  pattern?: string;
  maxLength?: number;
  maxItems?: number;
}

/** What a tenant may do with one template (a kind). */
export interface TemplateRule {
  /** Whether the tenant may create and deploy it (default: the policy's `templatesByDefault`). */
  allowed?: boolean;
  /** The template versions the tenant may use, as a semver range (`^1.2`, `>=1 <3`). */
  versions?: string;
  /** At most this many resources of it in the tenant. */
  maxInstances?: number;
  /** Limits on its parameters, by manifest path (`spec.size`). */
  parameters?: Record<string, ParameterLimit>;
}

/** Which jobs wait for approval, and who may give it. */
export interface ApprovalRule {
  /** The gated operations; a `restore` (or an import) is gated whenever `destroy` is: it can drop resources from the state. */
  operations: GatedOperation[];
  /** Approvals needed (default 1). */
  requiredApprovals?: number;
  /** Whether the job's creator may approve it (default false). */
  allowSelfApproval?: boolean;
  /** The least tenant role of an approver (default admin). */
  approverRole?: TenantRole;
  /**
   * Only these identities may decide (token ids, as a token's `actsFor` shows them), on top of the
   * role; none: anyone with the role.
   */
  approvers?: string[];
  /** How long a job waits for its decision, in minutes (default 1,440: a day). */
  expiresInMinutes?: number;
  /**
   * Whether an approved up runs `pulumi up --plan` of the update plan its preview saved (Pulumi's
   * update plans, a public preview in this CLI: PULUMI_EXPERIMENTAL for those two commands); the
   * up then fails rather than do anything the plan does not hold. Default false.
   */
  updatePlans?: boolean;
}

/** Operations an approval gate can hold (after a preview of what they would change). */
export const GATED_OPERATIONS = ['up', 'destroy', 'restore'] as const;
export type GatedOperation = (typeof GATED_OPERATIONS)[number];

export function isGatable(operation: string): operation is GatedOperation {
  return (GATED_OPERATIONS as readonly string[]).includes(operation);
}

/** The approval a gated job asks for: the rule's, or the defaults when the request asked for a gate itself. */
export function approvalOf(policy: TenantPolicy, operation: Operation, requested: boolean) {
  if (!isGatable(operation)) return undefined;
  const rule = policy.approvals;
  const listed = (op: GatedOperation) => rule?.operations.includes(op) === true;
  const gated = requested || listed(operation) || (operation === 'restore' && listed('destroy'));
  if (!gated) return undefined;
  return {
    required: rule?.requiredApprovals ?? 1,
    allowSelfApproval: rule?.allowSelfApproval ?? false,
    approverRole: rule?.approverRole ?? ('admin' as TenantRole),
    ...(rule?.approvers?.length ? { approvers: rule.approvers } : {}),
    ...(operation === 'up' && rule?.updatePlans === true ? { updatePlan: true } : {}),
    expiresAt: new Date(Date.now() + (rule?.expiresInMinutes ?? 1_440) * 60_000),
  };
}

/** A tenant's limits per job (docs/security.md, Limits): a value above the runner's default changes nothing. */
export interface JobLimitsPolicy {
  memoryMb?: number;
  cpus?: number;
  pids?: number;
  diskMb?: number;
}

/** A tenant's rules, set by platform admins; every field optional (no rule, no limit). */
export interface TenantPolicy {
  /** Jobs of the tenant running at once; more wait for their turn (runners enforce it). */
  maxConcurrentJobs?: number;
  /** Its share of the runner pool against the other tenants' while they all wait (1–100, default 1): the dispatcher's weight. */
  weight?: number;
  /** Jobs of the tenant waiting at once (queued, awaiting approval, approved); past it a new job is refused with 429 and Retry-After. */
  maxQueuedJobs?: number;
  /** Drift schedules the tenant may have (default DRIFT_MAX_SCHEDULES_PER_TENANT, 500). */
  maxDriftSchedules?: number;
  /** What one job of the tenant may use in its sandbox; each at most the runner's own default (JOB_MEMORY_MAX_MB …). */
  jobLimits?: JobLimitsPolicy;
  /** The least tenant role for each operation (by default: deployer, and admin for destroy). */
  operations?: Partial<Record<Operation, TenantRole>>;
  /** Operations that wait for approval after a preview (docs/api.md, Approvals). */
  approvals?: ApprovalRule;
  /** Whether templates without a rule are allowed (default `allow`). */
  templatesByDefault?: 'allow' | 'deny';
  templates?: Record<string, TemplateRule>;
}

/** The least role for each operation when a policy says nothing. */
export const DEFAULT_OPERATION_ROLES: Record<Operation, TenantRole> = {
  preview: 'deployer',
  refresh: 'deployer',
  up: 'deployer',
  destroy: 'admin',
  // Mending state changes what the service knows of the cloud without the cloud: a tenant's admins only.
  repair: 'admin',
  'state-delete': 'admin',
  'state-unprotect': 'admin',
  'state-rename': 'admin',
  restore: 'admin',
  'stack-remove': 'admin',
  // Reads the cloud, writes nothing.
  'drift-check': 'deployer',
};

/** How long a caller refused by `maxQueuedJobs` is told to wait. */
export const QUEUE_FULL_RETRY_SECONDS = 30;

/** A policy as stored: JSON text (parameter paths hold dots, which the store refuses in field names). */
export function encodePolicy(policy: TenantPolicy): string {
  return JSON.stringify(policy);
}

export function decodePolicy(stored: string | undefined | null): TenantPolicy {
  if (!stored) return {};
  try {
    return JSON.parse(stored) as TenantPolicy;
  } catch {
    return {};
  }
}

/** The least role a tenant's policy asks for an operation. */
export function operationRole(policy: TenantPolicy, operation: Operation): TenantRole {
  return policy.operations?.[operation] ?? DEFAULT_OPERATION_ROLES[operation];
}

/**
 * Refuses (409) a template, or a version of it, that the tenant's policy does not allow, naming
 * the rule. `version` is the template version in question (none: only whether it is allowed at all).
 */
export function assertTemplateAllowed(policy: TenantPolicy, tenant: string, template: string, version?: string): void {
  const rule = policy.templates?.[template];
  const allowed = rule?.allowed ?? (policy.templatesByDefault ?? 'allow') === 'allow';
  if (!allowed) {
    const which =
      rule?.allowed === false
        ? `templates.${template}.allowed is false`
        : `templatesByDefault is deny and template ${template} has no rule allowing it`;
    throw errors.policy(`template ${template} is not allowed for tenant ${tenant} (policy: ${which})`);
  }
  if (rule?.versions !== undefined && version !== undefined && !satisfies(version, rule.versions, { includePrerelease: true })) {
    throw errors.policy(
      `template ${template} ${version} is outside the versions tenant ${tenant} may use, ${rule.versions} (policy: templates.${template}.versions)`,
    );
  }
}

/** Refuses (400) a policy whose version ranges do not parse, naming the rule. */
export function assertVersionRanges(policy: TenantPolicy): void {
  for (const [template, rule] of Object.entries(policy.templates ?? {})) {
    if (rule.versions !== undefined && validRange(rule.versions) === null) {
      throw errors.invalidRequest(`templates.${template}.versions: "${rule.versions}" is not a semver range`);
    }
  }
}

function valueAt(root: unknown, path: string): unknown {
  let value = root;
  for (const key of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** The first way `value` breaks `limit`, as "must …", or undefined. */
function breach(value: unknown, limit: ParameterLimit): string | undefined {
  if (limit.enum && !limit.enum.some((allowed) => JSON.stringify(allowed) === JSON.stringify(value))) {
    return `must be one of ${limit.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  if (typeof value === 'number') {
    if (limit.minimum !== undefined && value < limit.minimum) return `must be >= ${limit.minimum}`;
    if (limit.maximum !== undefined && value > limit.maximum) return `must be <= ${limit.maximum}`;
  }
  if (typeof value === 'string') {
    if (limit.maxLength !== undefined && value.length > limit.maxLength) return `must be at most ${limit.maxLength} characters`;
    if (limit.pattern !== undefined && !new RegExp(limit.pattern, 'u').test(value)) return `must match ${limit.pattern}`;
  }
  if (Array.isArray(value) && limit.maxItems !== undefined && value.length > limit.maxItems)
    return `must have at most ${limit.maxItems} items`;
  if ((limit.minimum !== undefined || limit.maximum !== undefined) && typeof value !== 'number') return 'must be a number';
  if ((limit.pattern !== undefined || limit.maxLength !== undefined) && typeof value !== 'string') return 'must be a string';
  if (limit.maxItems !== undefined && !Array.isArray(value)) return 'must be a list';
  return undefined;
}

/**
 * Checks a manifest against the tenant's parameter limits for its template; refuses (400) naming
 * every field that breaks one and the rule: `spec.size must be <= 4 (tenant acme's limit)`.
 * A parameter the manifest leaves out is not checked here (the template's schema says what is required).
 */
export function assertParameterLimits(
  policy: TenantPolicy,
  tenant: string,
  template: string,
  manifest: unknown,
  /** Paths whose value is a secret parameter's placeholder: checked when it was stored, in clear. */
  sealedPaths: string[] = [],
): void {
  const limits = policy.templates?.[template]?.parameters ?? {};
  const problems: string[] = [];
  for (const [path, limit] of Object.entries(limits)) {
    const value = valueAt(manifest, path);
    if (value === undefined || sealedPaths.includes(path)) continue;
    const why = breach(value, limit);
    if (why) problems.push(`${path} ${why} (tenant ${tenant}'s limit)`);
  }
  if (problems.length > 0) throw errors.invalidManifest(problems.join('; '));
}

type SchemaNode = Record<string, unknown> & { properties?: Record<string, SchemaNode>; items?: SchemaNode };

/** Narrows one schema node by a tenant's limit (the stricter of the two wins). */
function narrow(node: SchemaNode, limit: ParameterLimit, tenant: string): void {
  const tighter = (key: 'maximum' | 'maxLength' | 'maxItems', value: number | undefined) => {
    if (value !== undefined) node[key] = typeof node[key] === 'number' ? Math.min(node[key], value) : value;
  };
  if (limit.minimum !== undefined) node.minimum = typeof node.minimum === 'number' ? Math.max(node.minimum, limit.minimum) : limit.minimum;
  tighter('maximum', limit.maximum);
  tighter('maxLength', limit.maxLength);
  tighter('maxItems', limit.maxItems);
  if (limit.enum) {
    const own = Array.isArray(node.enum) ? (node.enum as unknown[]) : undefined;
    node.enum = own ? own.filter((v) => limit.enum!.some((w) => JSON.stringify(v) === JSON.stringify(w))) : [...limit.enum];
  }
  if (limit.pattern !== undefined) {
    if (node.pattern === undefined) node.pattern = limit.pattern;
    else if (node.pattern !== limit.pattern) node.allOf = [...((node.allOf as unknown[]) ?? []), { pattern: limit.pattern }];
  }
  node['x-tenant-limit'] = { tenant, ...limit };
}

/**
 * The schema a tenant's form should render for a template: its parameters schema (for `spec`) with
 * the tenant's parameter limits folded in where they are stricter, each narrowed field marked
 * `x-tenant-limit`; limits on paths the schema does not describe are listed in `x-tenant-limits`.
 */
export function effectiveSchema(schema: Record<string, unknown> | undefined, policy: TenantPolicy, tenant: string, template: string) {
  const result = structuredClone(schema ?? { type: 'object' }) as SchemaNode;
  const elsewhere: Record<string, ParameterLimit> = {};
  for (const [path, limit] of Object.entries(policy.templates?.[template]?.parameters ?? {})) {
    const [root, ...parts] = path.split('.');
    let node: SchemaNode | undefined = root === 'spec' ? result : undefined;
    for (const part of parts) node = node?.properties?.[part];
    if (node) narrow(node, limit, tenant);
    else elsewhere[path] = limit;
  }
  if (Object.keys(elsewhere).length > 0) result['x-tenant-limits'] = elsewhere;
  return { $schema: 'http://json-schema.org/draft-07/schema#', ...result };
}
