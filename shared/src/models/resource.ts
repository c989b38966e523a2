import { randomUUID } from 'node:crypto';
import { type Connection, Schema } from 'mongoose';
import type { SealedSecret } from '../secret-box.js';
import { STACK_STATUSES, type StackStatus } from '../stack-life.js';
import { DEFAULT_TENANT } from '../tenancy.js';

/**
 * A cloud resource: its manifest (the YAML text is the source of truth) plus the fields we query
 * by. Labels are stored as key/value pairs because label keys contain dots, which MongoDB field
 * names (and FerretDB) do not take.
 */
export const resourceSchema = new Schema(
  {
    _id: { type: String, default: () => randomUUID() },
    /** Its tenant (the API always sets it; the default serves tools and tests that write resources directly). */
    tenantId: { type: String, required: true, default: DEFAULT_TENANT },
    kind: { type: String, required: true },
    name: { type: String, required: true },
    stackFqdn: { type: String, required: true },
    labels: { type: [{ _id: false, key: String, value: String }], default: [] },
    /** Its drift schedule (DriftSchedule as JSON text: ignored paths may hold dots), if any. */
    driftSchedule: { type: String },
    /** The labels again as `key=value` strings: what label filters match (FerretDB 1.x has no $elemMatch). */
    labelPairs: { type: [String], default: [] },
    manifest: { type: String, required: true },
    version: { type: Number, required: true, default: 1 },
    /** Values of the template's `x-secret` parameters, sealed (the manifest holds `[secret]` in their place). */
    secretParameters: {
      type: [{ _id: false, key: String, sealed: { type: { _id: false, keyId: String, iv: String, tag: String, data: String } } }],
      default: undefined,
    },
    /** The template version the manifest was checked against when it was last stored. */
    templateVersion: { type: String },
    /** The stack's life (stack-life.ts): status, the job that last moved it, and what its last good up left. */
    stack: {
      type: {
        _id: false,
        status: { type: String, enum: STACK_STATUSES },
        jobId: String,
        changedAt: Date,
        outputs: String,
        lastDeployedAt: Date,
        lastDeployedBy: String,
        resourceVersion: Number,
        templateVersion: String,
        /** What the last successful up ran (manifest, sealed secret parameters, versions): a compensation reapplies it. */
        lastGood: { type: Schema.Types.Mixed },
      },
      default: () => ({ status: 'pending', changedAt: new Date() }),
    },
  },
  { timestamps: true, versionKey: false },
);
// Names and stacks are unique within a tenant: two tenants may both have a `web` with stack organization/x/web.
resourceSchema.index({ tenantId: 1, kind: 1, name: 1 }, { unique: true });
resourceSchema.index({ tenantId: 1, stackFqdn: 1 }, { unique: true });
resourceSchema.index({ labelPairs: 1 });

/** What a successful up ran, kept so that a compensation can run it again. */
export interface LastGoodRun {
  manifest: string;
  resourceVersion: number;
  templateVersion?: string;
  secretParameters?: { key: string; sealed: SealedSecret }[];
}

export interface ResourceDoc {
  _id: string;
  tenantId: string;
  kind: string;
  name: string;
  stackFqdn: string;
  labels: { key: string; value: string }[];
  labelPairs?: string[];
  driftSchedule?: string;
  manifest: string;
  version: number;
  templateVersion?: string;
  secretParameters?: { key: string; sealed: SealedSecret }[];
  stack?: {
    status?: StackStatus;
    jobId?: string;
    changedAt?: Date;
    outputs?: string;
    lastDeployedAt?: Date;
    lastDeployedBy?: string;
    resourceVersion?: number;
    templateVersion?: string;
    lastGood?: LastGoodRun;
  };
  createdAt: Date;
  updatedAt: Date;
}

export function resourceModel(connection: Connection) {
  return connection.model('Resource', resourceSchema, 'resources');
}
