import { randomUUID } from 'node:crypto';
import { type Connection, type InferSchemaType, Schema } from 'mongoose';
import type { Approval, Compensation } from '../approvals.js';
import type { DriftReport, JobOptions, JobUsage } from '../job-fields.js';
import { DEFAULT_TENANT } from '../tenancy.js';
import { type ChangeSummary, JOB_STATUSES, OPERATIONS } from '../types.js';

/** A deployment job. Its id is also the BullMQ job id, so a job is queued at most once. */
export const stackJobSchema = new Schema(
  {
    _id: { type: String, default: () => randomUUID() },
    /** The tenant of its resource (queueStackJob always sets it; the default serves tools and tests that write jobs directly). */
    tenantId: { type: String, required: true, default: DEFAULT_TENANT },
    /** Its resource; for a template's publish check, the template version's id. */
    resourceId: { type: String, required: true },
    /** A publish check's smoke preview: the template version it runs on a throw-away stack (no resource). */
    templateCheck: { type: String },
    resourceVersion: { type: Number, required: true },
    kind: { type: String, required: true },
    stackFqdn: { type: String, required: true },
    operation: { type: String, enum: OPERATIONS, required: true },
    status: { type: String, enum: JOB_STATUSES, required: true, default: 'queued' },
    options: { type: Schema.Types.Mixed, default: {} },
    /** The token that asked for it (its public id and name). */
    createdBy: { type: { _id: false, id: String, name: String, actsFor: String, identityUnknown: Boolean } },
    startedAt: { type: Date },
    /** When the operation's Pulumi process was started (created → spawned is the queueing latency). */
    spawnedAt: { type: Date },
    finishedAt: { type: Date },
    /** A sandboxed job: its peak memory and CPU time, and the limits it ran under (bytes, cores, processes). */
    usage: { type: Schema.Types.Mixed },
    exitCode: { type: Number },
    error: { type: String },
    /** Why a job ended as it did when the status alone does not say (timeout, runner_lost, …). */
    reason: { type: String },
    /** The stack outputs as JSON text (encodeOutputs): a program's keys may hold dots or `$`. */
    outputs: { type: Schema.Types.Mixed },
    summary: { type: Schema.Types.Mixed },
    stdoutTail: { type: String },
    stderrTail: { type: String },
    /** Seq of the last persisted line, written when the job ends. */
    lastSeq: { type: Number, default: 0 },
    runnerId: { type: String },
    /** The fencing token of the stack lock it ran under. */
    fence: { type: Number },
    /** The credential the job ran with (so it cannot be deleted under a running job). */
    credentialId: { type: String },
    /** Retries: the job this one repeats, which attempt it is, and (on the repeated job) its retry. */
    retryOf: { type: String },
    attempt: { type: Number, default: 1 },
    retriedBy: { type: String },
    /** What was decided when the job's run was lost (retried, or why not, and how the stack is repaired). */
    recovery: { type: String },
    /** When the history sweep removed the job's lines (HISTORY_LINES_DAYS); its result stays. */
    linesSweptAt: { type: Date },
    /** The stack state version the job wrote (resource's `stack/versions/:seq`), when it changed the state. */
    stateVersion: { type: Number },
    /** A drift check's report: result (drifted, no_drift, unknown), the resources that differ, what was ignored. */
    drift: { type: Schema.Types.Mixed },
    /** A drift check: the up it queued to put the stack back; that up: the check it answers. */
    remediatedBy: { type: String },
    remediates: { type: String },
    /**
     * An approval-gated job: what it needs (required, allowSelfApproval, approverRole, expiresAt), its
     * preview job, the plan that preview found (changes, counts, and the state, resource and template
     * versions it saw), and every approver's latest decision.
     */
    approval: { type: Schema.Types.Mixed },
    /** The preview of a gated job: that job. */
    planFor: { type: String },
    /** A failed up's compensation (mode, strategy, state: compensating → compensated | compensation_failed, its job). */
    compensation: { type: Schema.Types.Mixed },
    /** A compensating job: the failed up it answers. */
    compensates: { type: String },
    /** When a cancel of the running job was asked for. */
    cancelRequestedAt: { type: Date },
    /** Its after-end work could not be queued (Redis refused): the path that ended it, until a reconciler queues it. */
    afterEndPending: { type: String },
  },
  { timestamps: true, versionKey: false },
);
// The job list's pages (MongoDB; FerretDB on SQLite answers only _id from an index).
stackJobSchema.index({ tenantId: 1, createdAt: -1 });
// The reconcilers' full scan: jobs created since (the job list index's catch-up).
stackJobSchema.index({ createdAt: -1 });
stackJobSchema.index({ resourceId: 1, createdAt: -1 });
stackJobSchema.index({ status: 1, createdAt: -1 });
stackJobSchema.index({ stackFqdn: 1, createdAt: -1 });
stackJobSchema.index({ status: 1, startedAt: 1 });

/** The fields stored as Mixed, each with its shape (job-fields.ts, approvals.ts). */
interface TypedJobFields {
  options?: JobOptions | null;
  usage?: JobUsage | null;
  summary?: ChangeSummary | null;
  drift?: DriftReport | null;
  approval?: Approval | null;
  compensation?: Compensation | null;
}

export type StackJobDoc = Omit<InferSchemaType<typeof stackJobSchema>, keyof TypedJobFields> &
  TypedJobFields & { _id: string; createdAt: Date; updatedAt: Date };

export function stackJobModel(connection: Connection) {
  return connection.model('StackJob', stackJobSchema, 'stackjobs');
}

/** The most stack-output JSON a job keeps (a document holds 16 MiB at most, lines aside). */
export const OUTPUTS_MAX_BYTES = 1024 * 1024;

/**
 * Stack outputs are named by the program: keys may hold dots or start with `$`, which the store
 * refuses as field names (a job failed on `{"app.kubernetes.io/name": …}`). They are kept as JSON
 * text; outputs past OUTPUTS_MAX_BYTES are replaced by a note saying so.
 */
export function encodeOutputs(outputs: Record<string, unknown>): string {
  const text = JSON.stringify(outputs);
  const bytes = Buffer.byteLength(text);
  if (bytes <= OUTPUTS_MAX_BYTES) return text;
  return JSON.stringify({
    truncated: `the stack outputs (${bytes} bytes of JSON) exceed ${OUTPUTS_MAX_BYTES} bytes and are not kept; read them with \`pulumi stack output\``,
  });
}

/** The stack outputs of a stored job: JSON text, or an object in documents of earlier versions. */
export function decodeOutputs(stored: unknown): Record<string, unknown> {
  if (typeof stored !== 'string') return (stored as Record<string, unknown> | undefined) ?? {};
  try {
    return JSON.parse(stored) as Record<string, unknown>;
  } catch {
    return {};
  }
}
