import {
  CREDENTIAL_FIELDS,
  JOB_STATUSES,
  GATED_OPERATIONS,
  OPERATIONS,
  PROVIDER_NAMES,
  ROLES,
  STACK_STATUSES,
  TENANT_NAME_PATTERN,
  TENANT_ROLES,
} from '@pds/shared';
import { type TSchema, Type } from '@sinclair/typebox';

/** A string that is one of `values` (an enum in the OpenAPI document). */
const literals = <const T extends readonly string[]>(values: T) => Type.Unsafe<T[number]>({ type: 'string', enum: [...values] });
const Json = Type.Record(Type.String(), Type.Unknown());
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** A page of a list; pass `nextCursor` as `cursor` to get the next one. */
export const PageOf = <T extends TSchema>(item: T) => Type.Object({ items: Type.Array(item), nextCursor: Type.Optional(Type.String()) });

export const PageQuery = {
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
  cursor: Type.Optional(Type.String({ maxLength: 512, description: 'nextCursor of the previous page' })),
};

export const ErrorSchema = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  message: Type.String(),
  existingId: Type.Optional(Type.String({ description: 'A 409 for a name already taken: the id of the object that has it' })),
});

export const IdParamsSchema = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

const tenantName = (description = 'A tenant name: lower-case letters, digits and -, at most 63') =>
  Type.String({ pattern: TENANT_NAME_PATTERN, description });
const tenantField = (description = 'The tenant it belongs to') => Type.String({ description });

/** `?tenant=`: which tenant a platform admin acts in or lists (a tenant's tokens act in their own only). */
export const TenantQuerySchema = Type.Object({
  tenant: Type.Optional(
    tenantName(
      "Platform admins: the tenant to act in or list (default: every tenant for lists, `default` for creates). A tenant's token: its own only",
    ),
  ),
});
const TenantQuery = TenantQuerySchema.properties;

export const ResourceSchema = Type.Object({
  id: Type.String(),
  tenant: tenantField(),
  apiVersion: Type.String(),
  kind: Type.String(),
  name: Type.String(),
  stackFqdn: Type.String(),
  labels: Type.Record(Type.String(), Type.String()),
  spec: Json,
  manifest: Type.String({ description: 'The manifest as submitted (YAML)' }),
  version: Type.Integer(),
  templateVersion: Type.Optional(Type.String({ description: 'The template version the manifest was checked against when last stored' })),
  stack: Type.Object(
    {
      status: literals(STACK_STATUSES),
      jobId: Type.Optional(Type.String({ description: 'The job that last moved it' })),
      changedAt: Type.Optional(Type.String({ format: 'date-time' })),
      outputs: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'The stack outputs of its last good up' })),
      lastDeployedAt: Type.Optional(Type.String({ format: 'date-time' })),
      lastDeployedBy: Type.Optional(Type.String({ description: 'The name of the token that asked for its last good up' })),
      resourceVersion: Type.Optional(Type.Integer({ description: 'The manifest version its last good up ran' })),
      templateVersion: Type.Optional(Type.String({ description: 'The template version its last good up ran' })),
    },
    { description: 'pending → deploying → deployed | failed → destroying → destroyed' },
  ),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});

export const CreateResourceJsonSchema = Type.Object({
  manifest: Type.String({ minLength: 1, description: 'The manifest as YAML text' }),
});

export const ListResourcesQuerySchema = Type.Object({
  ...TenantQuery,
  kind: Type.Optional(Type.String({ maxLength: 200 })),
  label: Type.Optional(Type.String({ pattern: '^[^=]+=.*$', maxLength: 600, description: 'key=value: resources with this label' })),
  namePrefix: Type.Optional(Type.String({ maxLength: 200, description: 'resources whose metadata.name starts with this' })),
  ...PageQuery,
});

export const CreateJobBodySchema = Type.Object(
  {
    operation: literals(OPERATIONS),
    message: Type.Optional(Type.String({ maxLength: 1000 })),
    timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })),
    expectNoChanges: Type.Optional(Type.Boolean()),
    targets: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { maxItems: 100 })),
    queuePolicy: Type.Optional(literals(['fifo', 'latest'] as const)),
    compensation: Type.Optional(literals(['none', 'destroy', 'reapply_last_good'] as const)),
    requireApproval: Type.Optional(
      Type.Boolean({
        description:
          'up, destroy, restore: run a preview first and wait for approval (the tenant policy can require it; a request cannot waive it)',
      }),
    ),
    urn: Type.Optional(
      Type.String({ minLength: 1, maxLength: 2048, description: 'state-delete, state-unprotect, state-rename: the resource' }),
    ),
    version: Type.Optional(Type.Integer({ minimum: 1, description: 'restore: the state version to put back' })),
    name: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_][A-Za-z0-9_.:/-]*$', description: 'state-rename: the new name' }),
    ),
    pendingCreates: Type.Optional(
      Type.Array(
        Type.Object(
          {
            urn: Type.String({ minLength: 1, maxLength: 2048 }),
            action: literals(['clear', 'import'] as const),
            id: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: "import: the resource's ID in the cloud" })),
          },
          { additionalProperties: false },
        ),
        { maxItems: 1000, description: 'repair: what to do with each pending create (import it by its ID, or clear it)' },
      ),
    ),
  },
  { additionalProperties: false },
);

export const JobResultSchema = Type.Object({
  status: literals(JOB_STATUSES),
  timestamp: Type.String({ format: 'date-time' }),
  stackFqdn: Type.String(),
  stdout: Type.String(),
  stderr: Type.String(),
  exitCode: Nullable(Type.Integer()),
  error: Type.Optional(Type.String()),
  outputs: Json,
  summary: Type.Record(Type.String(), Type.Number()),
});

export const JobSchema = Type.Object({
  id: Type.String(),
  tenant: tenantField(),
  resourceId: Type.String(),
  resourceVersion: Type.Integer(),
  kind: Type.String(),
  stackFqdn: Type.String(),
  operation: literals(OPERATIONS),
  status: literals(JOB_STATUSES),
  options: Json,
  createdBy: Type.Optional(
    Type.Object(
      {
        id: Type.String(),
        name: Type.String(),
        actsFor: Type.Optional(Type.String({ description: 'The identity the token acts for' })),
        identityUnknown: Type.Optional(
          Type.Boolean({
            description: 'Its token was issued before tokens recorded whom they act for: no approver can be told apart from it',
          }),
        ),
      },
      { description: 'The token that asked for it (and the identity it acts for, when not itself)' },
    ),
  ),
  stateVersion: Type.Optional(
    Type.Integer({ description: 'The stack state version it wrote (GET /v1/resources/:id/stack/versions/:seq)' }),
  ),
  usage: Type.Optional(
    Type.Object(
      {
        peakMemoryBytes: Type.Optional(
          Type.Number({ description: "The most memory its processes held at once (its program host's included)" }),
        ),
        cpuSeconds: Type.Optional(Type.Number({ description: 'CPU time its processes used' })),
        limits: Type.Object({
          memoryBytes: Type.Number(),
          cpus: Type.Number(),
          pids: Type.Number(),
          diskBytes: Type.Number(),
        }),
      },
      { description: 'A sandboxed job: what it used, and the limits it ran under (docs/security.md, Limits)' },
    ),
  ),
  templateCheck: Type.Optional(Type.Boolean({ description: "A template version's smoke preview (resourceId is the version's id)" })),
  drift: Type.Optional(
    Type.Object(
      {
        result: Type.Union([Type.Literal('drifted'), Type.Literal('no_drift'), Type.Literal('unknown')]),
        resources: Type.Array(
          Type.Object({
            urn: Type.String(),
            type: Type.String(),
            change: Type.Union([Type.Literal('update'), Type.Literal('delete')]),
            properties: Type.Array(
              Type.Object({ path: Type.String(), old: Type.Optional(Type.Unknown()), new: Type.Optional(Type.Unknown()) }),
            ),
          }),
        ),
        ignored: Type.Integer(),
        error: Type.Optional(Type.String()),
      },
      { description: 'A drift check: whether the cloud differs from the state, and where (an error is unknown, never drifted)' },
    ),
  ),
  remediatedBy: Type.Optional(Type.String({ description: 'A drift check: the up it queued to put the stack back' })),
  remediates: Type.Optional(Type.String({ description: 'An up queued by a drift check: that check' })),
  planFor: Type.Optional(Type.String({ description: 'The preview of an approval-gated job: that job' })),
  compensation: Type.Optional(
    Type.Object(
      {
        mode: Type.String(),
        strategy: Type.Optional(Type.Union([Type.Literal('destroy'), Type.Literal('reapply_last_good')])),
        state: Type.Union([Type.Literal('compensating'), Type.Literal('compensated'), Type.Literal('compensation_failed')]),
        jobId: Type.Optional(Type.String()),
        error: Type.Optional(Type.String()),
        endedAt: Type.Optional(Type.String({ format: 'date-time' })),
      },
      { description: 'A failed up that asked for compensation: what puts the stack back, and how it went' },
    ),
  ),
  compensates: Type.Optional(Type.String({ description: 'A compensating job: the failed up it answers' })),
  approval: Type.Optional(
    Type.Object(
      {
        required: Type.Integer(),
        allowSelfApproval: Type.Boolean(),
        approverRole: Type.String(),
        approvers: Type.Optional(Type.Array(Type.String())),
        expiresAt: Type.String({ format: 'date-time' }),
        previewJobId: Type.String(),
        updatePlan: Type.Optional(Type.Boolean({ description: "An up that applies its preview's saved update plan (`up --plan`)" })),
        plan: Type.Optional(
          Type.Object({
            previewJobId: Type.String(),
            changes: Type.Array(Type.Object({ urn: Type.String(), type: Type.String(), op: Type.String() })),
            counts: Type.Record(Type.String(), Type.Integer()),
            stateVersion: Type.Union([Type.Integer(), Type.Null()]),
            resourceVersion: Type.Union([Type.Integer(), Type.Null()]),
            templateVersion: Type.Union([Type.String(), Type.Null()]),
            programHash: Type.Optional(
              Type.Union([Type.String(), Type.Null()], {
                description: "A built-in template's program (SHA-256 of its folder) the preview ran",
              }),
            ),
            credential: Type.Optional(
              Type.Object(
                { name: Type.String() },
                {
                  description:
                    'The credential the preview ran with (its revision — id, fingerprint, settings — is kept, not shown: viewers see jobs); the run must find the same',
                },
              ),
            ),
          }),
        ),
        applied: Type.Optional(
          Type.Object(
            {
              counts: Type.Record(Type.String(), Type.Integer()),
              matchesPlan: Type.Boolean(),
              differences: Type.Array(Type.String(), {
                description:
                  'Each count that differs (`update: 2 (approved 1)`), then each resource that differs (`create <urn>: not in the approved plan`, `delete <urn>: approved, not applied`; at most 20)',
              }),
            },
            { description: 'An approved up or destroy that ran: what it applied, against the approved plan' },
          ),
        ),
        decisions: Type.Array(
          Type.Object({
            by: Type.Object({ id: Type.String(), name: Type.String(), role: Type.String(), actsFor: Type.Optional(Type.String()) }),
            decision: Type.Union([Type.Literal('approve'), Type.Literal('reject')]),
            comment: Type.String(),
            at: Type.String({ format: 'date-time' }),
          }),
        ),
      },
      { description: 'An approval-gated job: what it needs, the plan its preview found, every decision' },
    ),
  ),
  reason: Type.Optional(Type.String()),
  position: Type.Optional(Type.Integer({ description: 'While queued behind another job on its stack: its place in line (0 = next)' })),
  blockedBy: Type.Optional(Type.String({ description: 'While queued: the job holding or ahead in line for the stack' })),
  waitReason: Type.Optional(
    Type.Union([Type.Literal('stack_busy'), Type.Literal('tenant_limit'), Type.Literal('tenant_turn'), Type.Literal('pool_full')], {
      description:
        "While queued: why it has not started: its stack is busy (blockedBy), its tenant is at maxConcurrentJobs, other tenants' turn, or every runner slot is taken; absent once handed to a runner",
    }),
  ),
  attempt: Type.Integer({ description: 'Which run of the operation this is (retries of a lost preview/refresh count up)' }),
  retryOf: Type.Optional(Type.String({ description: 'The job this one retries' })),
  retriedBy: Type.Optional(Type.String({ description: 'The job that retries this one' })),
  recovery: Type.Optional(
    Type.String({ description: 'What was decided when its run was cut short (runner lost, lock lost, output not stored)' }),
  ),
  progress: Type.Optional(
    Type.Object(
      {
        started: Type.Integer({ minimum: 0 }),
        done: Type.Integer({ minimum: 0 }),
        failed: Type.Integer({ minimum: 0 }),
        total: Type.Optional(Type.Integer({ minimum: 0 })),
        percent: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
      },
      { description: "While running: resource steps begun, done and failed; of the stack's size after its last run, when known" },
    ),
  ),
  lastSeq: Type.Integer(),
  linesSweptAt: Type.Optional(
    Type.String({ format: 'date-time', description: 'When its lines were removed as old history (HISTORY_LINES_DAYS); the result stays' }),
  ),
  createdAt: Type.String({ format: 'date-time' }),
  startedAt: Type.Optional(Type.String({ format: 'date-time' })),
  finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
  result: Type.Optional(JobResultSchema),
});

export const ListJobsQuerySchema = Type.Object({
  ...TenantQuery,
  resourceId: Type.Optional(Type.String()),
  stackFqdn: Type.Optional(Type.String()),
  status: Type.Optional(literals(JOB_STATUSES)),
  operation: Type.Optional(literals(OPERATIONS)),
  ...PageQuery,
});

export const LinesQuerySchema = Type.Object({
  from: Type.Integer({ minimum: 0, default: 0 }),
  limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 }),
});

export const LineSchema = Type.Object({
  seq: Type.Integer(),
  stream: literals(['stdout', 'stderr', 'event'] as const),
  text: Type.Optional(Type.String()),
  event: Type.Optional(Json),
  ts: Type.String({ format: 'date-time' }),
});

export const errorResponses = {
  400: ErrorSchema,
  401: ErrorSchema,
  403: ErrorSchema,
  404: ErrorSchema,
  409: ErrorSchema,
  503: ErrorSchema,
};

const Labels = Type.Record(Type.String({ minLength: 1, maxLength: 253 }), Type.String({ maxLength: 253 }));
const Name = Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$', description: 'Lower-case letters, digits and -, at most 63' });

const SharedWith = Type.Array(tenantName(), {
  maxItems: 1000,
  description: 'Platform admins: makes it a platform credential that these tenants may use (by label or as their default)',
});

const credentialFields = Object.fromEntries(
  Object.entries(CREDENTIAL_FIELDS).map(([name, f]) => [
    name,
    Type.Optional(Type.String({ minLength: 1, maxLength: 65_536, description: `${f.description} (${f.providers.join(', ')})` })),
  ]),
);

export const CreateCredentialBodySchema = Type.Object(
  {
    name: Name,
    provider: literals(PROVIDER_NAMES),
    isDefault: Type.Optional(
      Type.Boolean({ description: "The provider's default for its owner; the owner's first credential of a provider is, unless false" }),
    ),
    labels: Type.Optional(Labels),
    tenant: Type.Optional(tenantName('Platform admins: the tenant that owns it (default `default`)')),
    sharedWith: Type.Optional(SharedWith),
    ...credentialFields,
  },
  { additionalProperties: false },
);

export const ReplaceCredentialBodySchema = Type.Object(
  { isDefault: Type.Optional(Type.Boolean()), labels: Type.Optional(Labels), sharedWith: Type.Optional(SharedWith), ...credentialFields },
  { additionalProperties: false },
);

export const CredentialSchema = Type.Object({
  id: Type.String(),
  tenant: Type.Optional(tenantField('The tenant that owns it (absent on platform credentials)')),
  platform: Type.Optional(
    Type.Boolean({ description: 'A platform credential: owned by the platform team, used by the tenants in sharedWith' }),
  ),
  sharedWith: Type.Optional(Type.Array(Type.String())),
  name: Type.String(),
  provider: Type.String(),
  isDefault: Type.Boolean(),
  labels: Type.Record(Type.String(), Type.String()),
  settings: Type.Record(Type.String(), Type.String(), { description: 'Non-secret fields (project, region, ids)' }),
  fingerprint: Type.String({ description: 'sha256 of the secret values, shortened; changes on rotation' }),
  keyId: Type.String({ description: 'Id of the CREDENTIALS_KEY that sealed the secrets' }),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
  rotatedAt: Type.Optional(Type.String({ format: 'date-time' })),
});

export const ListCredentialsQuerySchema = Type.Object({ ...TenantQuery, provider: Type.Optional(literals(PROVIDER_NAMES)), ...PageQuery });

export const CreateTokenBodySchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    role: literals(ROLES),
    tenant: Type.Optional(tenantName('Platform admins: the tenant of the new token (default `default`); not for platform tokens')),
    expiresInDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
  },
  { additionalProperties: false },
);

export const TokenSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: literals(ROLES),
  tenant: Type.Optional(tenantField('The tenant it acts in (none for platform tokens)')),
  prefix: Type.String({ description: 'The first characters of the token' }),
  createdBy: Type.String(),
  actsFor: Type.String({
    description:
      "The identity (a token id) it acts for: its own when a platform admin issued it, else its issuer's (approvals count identities, not tokens)",
  }),
  createdAt: Type.String({ format: 'date-time' }),
  expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
  revokedAt: Type.Optional(Type.String({ format: 'date-time' })),
});

export const CreatedTokenSchema = Type.Intersect([
  TokenSchema,
  Type.Object({ token: Type.String({ description: 'Shown only in this response' }) }),
]);

export const CreateStreamTicketBodySchema = Type.Object(
  {
    jobId: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: 'The job whose stream the ticket opens; without it, the multiplexed socket /v1/stream',
      }),
    ),
  },
  { additionalProperties: false },
);

export const WhoAmISchema = Type.Object({
  id: Type.String({ description: "The token's id (`admin-token` for ADMIN_TOKEN)" }),
  name: Type.String(),
  role: literals(ROLES),
  tenant: Type.Optional(Type.String({ description: 'Absent for the platform role, which acts across tenants' })),
});

export const StreamTicketSchema = Type.Object({
  ticket: Type.String({ description: 'Use once, within 60 s, as ?ticket= on the stream gateway' }),
  expiresAt: Type.String({ format: 'date-time' }),
  jobId: Type.Optional(Type.String()),
});

export const AuditEntrySchema = Type.Object({
  id: Type.String(),
  at: Type.String({ format: 'date-time' }),
  tenant: Type.Optional(tenantField('The tenant whose object it changed (none for platform-wide changes)')),
  actor: Type.Object({ id: Type.String(), name: Type.String(), role: Type.String(), tenant: Type.Optional(Type.String()) }),
  action: Type.String(),
  targetId: Type.Optional(Type.String()),
  outcome: literals(['success', 'failure'] as const),
  statusCode: Type.Integer(),
  message: Type.Optional(Type.String()),
});

export const ListAuditQuerySchema = Type.Object({
  ...TenantQuery,
  action: Type.Optional(Type.String({ maxLength: 100 })),
  actor: Type.Optional(Type.String({ maxLength: 100, description: 'Token id' })),
  targetId: Type.Optional(Type.String({ maxLength: 100 })),
  ...PageQuery,
});

export const HealthSchema = Type.Object({ status: Type.Literal('ok') });
export const ReadySchema = Type.Object({
  status: literals(['ok', 'unavailable'] as const),
  mongo: literals(['ok', 'unavailable'] as const),
  redis: literals(['ok', 'unavailable'] as const),
});

export const DeleteResourceQuerySchema = Type.Object({
  force: Type.Boolean({
    default: false,
    description: 'Delete even while deployed or with active jobs (admin): leaves the stack and its state behind',
  }),
  keepResources: Type.Boolean({
    default: false,
    description:
      'Remove the stack from the backend without destroying what it created, then the resource (admin): 202 with the stack-remove job',
  }),
});

export const IdempotencyHeadersSchema = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: '^[\\x21-\\x7e]+$',
      description: 'Retry-safe creation: the same key and body return the first job (24 h); the same key with another body is a 409',
    }),
  ),
});

export const TenantSchema = Type.Object({
  name: tenantName(),
  displayName: Type.String(),
  description: Type.String(),
  createdBy: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});

export const CreateTenantBodySchema = Type.Object(
  {
    name: tenantName(),
    displayName: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false },
);

export const UpdateTenantBodySchema = Type.Object(
  {
    displayName: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const TenantParamsSchema = Type.Object({ id: tenantName() });

const Count = (description: string) => Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, description }));

const ParameterLimitSchema = Type.Object(
  {
    minimum: Type.Optional(Type.Number()),
    maximum: Type.Optional(Type.Number()),
    enum: Type.Optional(Type.Array(Type.Unknown(), { minItems: 1, maxItems: 1000 })),
    pattern: Type.Optional(Type.String({ maxLength: 1000, description: 'A regular expression (Unicode) the value must match' })),
    maxLength: Count('The longest string allowed'),
    maxItems: Count('The longest list allowed'),
  },
  { additionalProperties: false },
);

/** A tenant's policy: every field optional; no rule, no limit. */
export const TenantPolicySchema = Type.Object(
  {
    maxConcurrentJobs: Count('Jobs of the tenant running at once; more wait for their turn'),
    weight: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 100,
        description:
          "The tenant's share of the runner pool while other tenants wait too (default 1): a tenant of weight 2 gets twice the slots of one of weight 1",
      }),
    ),
    maxQueuedJobs: Count(
      'Jobs of the tenant waiting at once (queued, awaiting approval, approved; a gated job with its preview counts once); past it a new job is refused with 429 and Retry-After',
    ),
    maxDriftSchedules: Count('Drift schedules the tenant may have (default DRIFT_MAX_SCHEDULES_PER_TENANT, 500)'),
    jobLimits: Type.Optional(
      Type.Object(
        {
          memoryMb: Type.Optional(
            Type.Integer({ minimum: 64, maximum: 1_048_576, description: "A job's memory, MiB (default JOB_MEMORY_MAX_MB)" }),
          ),
          cpus: Type.Optional(
            Type.Number({ minimum: 0.05, maximum: 1_024, description: "A job's CPU time per second, in cores (default JOB_CPUS)" }),
          ),
          pids: Type.Optional(
            Type.Integer({ minimum: 32, maximum: 4_194_304, description: "A job's processes and threads at once (default JOB_PIDS_MAX)" }),
          ),
          diskMb: Type.Optional(
            Type.Integer({
              minimum: 16,
              maximum: 16_777_216,
              description: 'What a job may write in its folders, MiB (default JOB_DISK_MAX_MB)',
            }),
          ),
        },
        {
          additionalProperties: false,
          description: "What one sandboxed job of the tenant may use; each only lowers the runner's default",
        },
      ),
    ),
    operations: Type.Optional(
      Type.Object(Object.fromEntries(OPERATIONS.map((op) => [op, Type.Optional(literals(TENANT_ROLES))])), {
        additionalProperties: false,
        description: 'The least tenant role for each operation (default: deployer; destroy: admin)',
      }),
    ),
    approvals: Type.Optional(
      Type.Object(
        {
          operations: Type.Array(literals(GATED_OPERATIONS), {
            minItems: 1,
            maxItems: GATED_OPERATIONS.length,
            uniqueItems: true,
            description: 'The gated operations; restore (and import) is gated whenever destroy is',
          }),
          requiredApprovals: Type.Optional(Type.Integer({ minimum: 1, maximum: 10, description: 'Approvals needed (default 1)' })),
          allowSelfApproval: Type.Optional(
            Type.Boolean({ description: "Whether a job's creator (any token acting for its identity) may approve it (default false)" }),
          ),
          approverRole: Type.Optional(literals(TENANT_ROLES)),
          approvers: Type.Optional(
            Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
              maxItems: 50,
              uniqueItems: true,
              description: "Only these identities may decide (a token's actsFor), on top of approverRole",
            }),
          ),
          expiresInMinutes: Type.Optional(
            Type.Integer({ minimum: 1, maximum: 30 * 1440, description: 'How long a job waits for its decision (default 1,440)' }),
          ),
          updatePlans: Type.Optional(
            Type.Boolean({
              description:
                "An approved up applies its preview's update plan (`pulumi up --plan`, a Pulumi public preview) and fails rather than do anything else (default false)",
            }),
          ),
        },
        { additionalProperties: false, description: 'Jobs that run a preview and wait for approval before they apply it' },
      ),
    ),
    templatesByDefault: Type.Optional(literals(['allow', 'deny'] as const)),
    templates: Type.Optional(
      Type.Record(
        Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$' }),
        Type.Object(
          {
            allowed: Type.Optional(Type.Boolean()),
            versions: Type.Optional(
              Type.String({ maxLength: 200, description: 'The template versions allowed, as a semver range (^1.2)' }),
            ),
            maxInstances: Count('At most this many resources of the template in the tenant'),
            parameters: Type.Optional(
              Type.Record(
                Type.String({ pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$', description: 'A manifest path: spec.size' }),
                ParameterLimitSchema,
                { maxProperties: 200 },
              ),
            ),
          },
          { additionalProperties: false },
        ),
        { maxProperties: 500 },
      ),
    ),
  },
  { additionalProperties: false },
);

export const TemplateParamsSchema = Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }) });

export const TemplateSchema = Type.Object({
  name: Type.String({ description: 'What manifests name as their kind' }),
  source: literals(['system', 'uploaded'] as const),
  owner: Type.Optional(Type.String({ description: 'An uploaded template: the tenant that owns it, or `platform` (every tenant sees it)' })),
  version: Type.String({ description: 'Semantic version (uploaded: the newest published one; empty while none is)' }),
  description: Type.String(),
  readme: Type.String(),
  provider: Type.String({ description: 'The cloud provider whose credential it runs with (none: offline)' }),
  project: Type.String({ description: 'The Pulumi project of its program' }),
  allowed: Type.Optional(Type.Boolean({ description: "Whether the caller's tenant may create and deploy it" })),
});

export const CreateTemplateSchema = Type.Object(
  {
    name: Type.String({
      pattern: '^[A-Za-z][A-Za-z0-9-]{0,62}$',
      description: 'What manifests name as their kind; also the Pulumi project',
    }),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
    provider: Type.Optional(
      Type.String({ minLength: 1, maxLength: 40, description: 'gcp, aws, azure, kubernetes, cloudflare, or none (default)' }),
    ),
    tenant: Type.Optional(tenantName('Platform admins: the tenant that owns it (default: the platform, shared with every tenant)')),
  },
  { additionalProperties: false },
);

const TemplateFileSchema = Type.Object(
  {
    path: Type.String({ minLength: 1, maxLength: 200, description: 'Relative path ending in .ts, .js or .json' }),
    content: Type.String({ maxLength: 1024 * 1024 }),
  },
  { additionalProperties: false },
);

export const VersionContentSchema = Type.Object(
  {
    main: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'The entry file (default index.ts, else index.js)' })),
    files: Type.Array(TemplateFileSchema, { minItems: 1, maxItems: 100 }),
    parameters: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), { description: 'JSON Schema draft-07 for spec; x-secret marks secrets' }),
    ),
    defaults: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'A spec the smoke preview runs with' })),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
    readme: Type.Optional(Type.String({ maxLength: 65536 })),
  },
  { additionalProperties: false },
);

const SemverString = Type.String({
  minLength: 5,
  maxLength: 64,
  pattern: '^\\d+\\.\\d+\\.\\d+(-[0-9A-Za-z.-]+)?$',
  description: 'Semantic version',
});

export const NewVersionSchema = Type.Composite([Type.Object({ version: SemverString }), VersionContentSchema], {
  additionalProperties: false,
});

export const TemplateVersionParamsSchema = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 100 }),
  version: SemverString,
});

export const VersionStateSchema = Type.Object(
  { state: literals(['published', 'deprecated', 'archived'] as const) },
  { additionalProperties: false },
);

export const TemplateVersionSchema = Type.Object({
  template: Type.String(),
  version: Type.String(),
  state: literals(['draft', 'checking', 'published', 'deprecated', 'archived'] as const),
  description: Type.String(),
  readme: Type.String(),
  main: Type.String(),
  parameters: Json,
  defaults: Json,
  files: Type.Optional(Type.Array(TemplateFileSchema)),
  sha256: Type.Optional(Type.String({ description: 'SHA-256 of its files, main, parameters and defaults (set when checked)' })),
  checkJobId: Type.Optional(Type.String({ description: 'The smoke-preview job of its last publish check' })),
  checkError: Type.Optional(Type.String({ description: 'Why its last publish check failed' })),
  publishedAt: Type.Optional(Type.String({ format: 'date-time' })),
  publishedBy: Type.Optional(Type.String()),
  createdBy: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
});

export const RuntimeSchema = Type.Object({
  node: Type.String({ description: "The runners' Node.js version" }),
  packages: Type.Array(Type.Object({ name: Type.String(), version: Type.String() }), {
    description: "What a template's program may import besides Node's own modules",
  }),
});

export const UpgradeSchema = Type.Object(
  {
    version: SemverString,
    manifest: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'A new manifest (YAML) checked against the new version, for changes it needs; default: the current one',
      }),
    ),
  },
  { additionalProperties: false },
);
