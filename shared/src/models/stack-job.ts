import { randomUUID } from 'node:crypto';
import { type Connection, type InferSchemaType, Schema } from 'mongoose';
import { JOB_STATUSES, OPERATIONS } from '../types.js';

/** A deployment job. Its id is also the BullMQ job id, so a job is queued at most once. */
export const stackJobSchema = new Schema(
  {
    _id: { type: String, default: () => randomUUID() },
    resourceId: { type: String, required: true },
    resourceVersion: { type: Number, required: true },
    kind: { type: String, required: true },
    stackFqdn: { type: String, required: true },
    operation: { type: String, enum: OPERATIONS, required: true },
    status: { type: String, enum: JOB_STATUSES, required: true, default: 'queued' },
    options: { type: Schema.Types.Mixed, default: {} },
    startedAt: { type: Date },
    /** When the operation's Pulumi process was started (created → spawned is the queueing latency). */
    spawnedAt: { type: Date },
    finishedAt: { type: Date },
    exitCode: { type: Number },
    error: { type: String },
    /** Why a job ended as it did when the status alone does not say (timeout, runner_lost, …). */
    reason: { type: String },
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
    /** When a cancel of the running job was asked for. */
    cancelRequestedAt: { type: Date },
  },
  { timestamps: true, versionKey: false },
);
stackJobSchema.index({ resourceId: 1, createdAt: -1 });
stackJobSchema.index({ status: 1, createdAt: -1 });
stackJobSchema.index({ stackFqdn: 1, createdAt: -1 });
stackJobSchema.index({ status: 1, startedAt: 1 });

export type StackJobDoc = InferSchemaType<typeof stackJobSchema> & { _id: string; createdAt: Date; updatedAt: Date };

export function stackJobModel(connection: Connection) {
  return connection.model('StackJob', stackJobSchema, 'stackjobs');
}
