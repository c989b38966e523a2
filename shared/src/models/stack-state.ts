import { randomUUID } from 'node:crypto';
import { type Connection, Schema } from 'mongoose';
import { DEFAULT_TENANT } from '../tenancy.js';

/** How many state versions a stack keeps (older ones are removed as new ones are written). */
export const STATE_VERSIONS_KEPT = 100;

/**
 * One version of a stack's state, as a job left it: Pulumi's deployment (gzipped JSON, secrets still
 * encrypted as Pulumi keeps them), numbered per resource (`seq` 1, 2, …). Written by the runner after
 * each operation but preview that changed the state.
 */
export const stackStateSchema = new Schema(
  {
    _id: { type: String, default: () => randomUUID() },
    tenantId: { type: String, required: true, default: DEFAULT_TENANT },
    resourceId: { type: String, required: true },
    stackFqdn: { type: String, required: true },
    seq: { type: Number, required: true },
    jobId: { type: String, required: true },
    operation: { type: String, required: true },
    /** The token that asked for the job. */
    createdBy: { type: String },
    writtenAt: { type: Date, required: true },
    resourceCount: { type: Number, required: true },
    /** The job's change counts (create, update, delete, same, …). */
    changes: { type: Schema.Types.Mixed, default: {} },
    sha256: { type: String, required: true },
    /** The deployment as gzipped JSON. */
    data: { type: Buffer, required: true },
    bytes: { type: Number, required: true },
    /**
     * The stack outputs that hold Pulumi secrets, in plain text as `pulumi stack output
     * --show-secrets` gives them, sealed with CREDENTIALS_KEY (context: secretOutputsContext), for
     * GET …/outputs?showSecrets=true. Absent when there are none or no key was set.
     */
    secretOutputs: { type: { _id: false, keyId: String, iv: String, tag: String, data: String } },
  },
  { versionKey: false },
);
stackStateSchema.index({ resourceId: 1, seq: -1 }, { unique: true });

export interface StackStateDoc {
  _id: string;
  tenantId: string;
  resourceId: string;
  stackFqdn: string;
  seq: number;
  jobId: string;
  operation: string;
  createdBy?: string;
  writtenAt: Date;
  resourceCount: number;
  changes: Record<string, number>;
  sha256: string;
  data: Buffer;
  bytes: number;
  secretOutputs?: { keyId: string; iv: string; tag: string; data: string };
}

export function stackStateModel(connection: Connection) {
  return connection.model('StackState', stackStateSchema, 'stackstates');
}

/**
 * A state uploaded for import (`POST /v1/resources/:id/stack/import`), read by its restore job and
 * removed when that job ends (an upload whose job never ran stays until the resource is deleted).
 */
export const stateUploadSchema = new Schema(
  {
    _id: { type: String, default: () => randomUUID() },
    tenantId: { type: String, required: true },
    resourceId: { type: String, required: true },
    /** The deployment as gzipped JSON. */
    data: { type: Buffer, required: true },
    createdAt: { type: Date, default: () => new Date() },
  },
  { versionKey: false },
);

export interface StateUploadDoc {
  _id: string;
  tenantId: string;
  resourceId: string;
  data: Buffer;
  createdAt: Date;
}

export function stateUploadModel(connection: Connection) {
  return connection.model('StateUpload', stateUploadSchema, 'stateuploads');
}

/**
 * The update plan a gated up's preview saved (`pulumi preview --save-plan`), kept under the gated
 * job's id until that job runs it (`pulumi up --plan`) or is swept with the job history. Pulumi
 * keeps secret values in it encrypted, as in the state.
 */
export const updatePlanFileSchema = new Schema(
  {
    /** The gated job's id. */
    _id: { type: String, required: true },
    tenantId: { type: String, required: true },
    resourceId: { type: String, required: true },
    previewJobId: { type: String, required: true },
    /** The plan as gzipped JSON. */
    data: { type: Buffer, required: true },
    createdAt: { type: Date, default: () => new Date() },
  },
  { versionKey: false },
);

export interface UpdatePlanFileDoc {
  _id: string;
  tenantId: string;
  resourceId: string;
  previewJobId: string;
  data: Buffer;
  createdAt: Date;
}

export function updatePlanFileModel(connection: Connection) {
  return connection.model('UpdatePlanFile', updatePlanFileSchema, 'updateplans');
}
