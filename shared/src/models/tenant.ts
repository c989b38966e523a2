import { type Connection, Schema } from 'mongoose';

/**
 * A tenant: a team that deploys through the service. Every resource, job, credential, token and
 * audit entry belongs to one. Its name is its `_id` (a DNS label), so every lookup is by `_id`.
 */
export const tenantSchema = new Schema(
  {
    _id: { type: String, required: true },
    displayName: { type: String, required: true },
    description: { type: String, default: '' },
    createdBy: { type: String, required: true },
    /** The tenant's policy (policy.ts) as JSON text: parameter paths hold dots. */
    policy: { type: String, default: '{}' },
    /** When data of versions without tenants was moved into this tenant (the default one only). */
    migratedAt: { type: Date },
    /** When the store's waiting and running jobs got their live entries (live-jobs.ts; the default tenant only). */
    liveJobsAt: { type: Date },
  },
  { timestamps: true, versionKey: false },
);

export interface TenantDoc {
  _id: string;
  displayName: string;
  description: string;
  createdBy: string;
  policy?: string;
  migratedAt?: Date;
  liveJobsAt?: Date;
  createdAt: Date;
  updatedAt: Date;
}

export function tenantModel(connection: Connection) {
  return connection.model('Tenant', tenantSchema, 'tenants');
}
