import { randomUUID } from 'node:crypto';
import { type Connection, Schema } from 'mongoose';

/** One change made through the API: who, what, on what, when, and how it ended. */
export const auditEntrySchema = new Schema(
  {
    _id: { type: String, default: () => randomUUID() },
    at: { type: Date, required: true, default: () => new Date() },
    /** The token's public id (`admin-token` for ADMIN_TOKEN), its name and role. */
    actor: { type: { _id: false, id: String, name: String, role: String, tenant: String }, required: true },
    /** `<target>.<verb>`, e.g. `resource.create`, `job.cancel`, `credential.rotate`. */
    action: { type: String, required: true },
    /** The tenant whose object it acted on (or whose caller it was); none for platform-wide changes (tenants). */
    tenantId: { type: String },
    targetId: { type: String },
    outcome: { type: String, enum: ['success', 'failure'], required: true },
    statusCode: { type: Number, required: true },
    /** On failure, the message the caller got. */
    message: { type: String },
    requestId: { type: String },
  },
  { versionKey: false },
);
auditEntrySchema.index({ at: -1, _id: -1 });

export interface AuditEntryDoc {
  _id: string;
  at: Date;
  actor: { id: string; name: string; role: string; tenant?: string };
  action: string;
  tenantId?: string;
  targetId?: string;
  outcome: 'success' | 'failure';
  statusCode: number;
  message?: string;
  requestId?: string;
}

export function auditEntryModel(connection: Connection) {
  return connection.model('AuditEntry', auditEntrySchema, 'audit');
}
