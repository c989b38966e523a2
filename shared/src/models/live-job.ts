import { type Connection, Schema } from 'mongoose';

/**
 * A job that has not ended, in a collection of its own (live-jobs.ts): the active-job checks
 * (a resource's delete, a drift tick, a credential's delete, an import, a tenant's queue limit, a
 * supersede) read these few entries instead of every job ever run. The fields are those the checks
 * filter on, fixed when the job is queued (the credential when its run resolves it).
 */
export const liveJobSchema = new Schema(
  {
    _id: { type: String, required: true },
    tenantId: { type: String, required: true },
    resourceId: { type: String, required: true },
    stackFqdn: { type: String, required: true },
    operation: { type: String, required: true },
    /** Its run's credential, once the runner resolved it. */
    credentialId: { type: String },
    /** A restore's uploaded state (options.upload). */
    upload: { type: String },
    /** The preview of a gated job: that job. */
    planFor: { type: String },
    /** A compensating job: the failed up it answers. */
    compensates: { type: String },
  },
  { versionKey: false, timestamps: { createdAt: true, updatedAt: false } },
);
liveJobSchema.index({ resourceId: 1 });
liveJobSchema.index({ tenantId: 1, stackFqdn: 1 });

export interface LiveJobDoc {
  _id: string;
  tenantId: string;
  resourceId: string;
  stackFqdn: string;
  operation: string;
  credentialId?: string;
  upload?: string;
  planFor?: string;
  compensates?: string;
  createdAt: Date;
}

export function liveJobModel(connection: Connection) {
  return connection.model('LiveJob', liveJobSchema, 'livejobs');
}
