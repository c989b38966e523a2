import { randomUUID } from 'node:crypto';
import { type Connection, Schema } from 'mongoose';
import type { SealedSecret } from '../secret-box.js';

/**
 * A provider credential. Secret fields live only in `sealed` (AES-256-GCM, see secret-box.ts);
 * `settings` holds the non-secret ones (project, region, ids) that responses and programs may see.
 */
export const credentialSchema = new Schema(
  {
    _id: { type: String, default: () => randomUUID() },
    /** The tenant that owns it; none for a platform credential (`platform: true`). */
    tenantId: { type: String },
    /** A platform credential: owned by the platform team, usable by the tenants in `sharedWith`. */
    platform: { type: Boolean, default: false },
    sharedWith: { type: [String], default: [] },
    name: { type: String, required: true },
    provider: { type: String, required: true },
    isDefault: { type: Boolean, default: false },
    labels: { type: [{ _id: false, key: String, value: String }], default: [] },
    settings: { type: Schema.Types.Mixed, default: {} },
    fingerprint: { type: String, required: true },
    sealed: { type: { _id: false, keyId: String, iv: String, tag: String, data: String }, required: true },
    rotatedAt: { type: Date },
  },
  { timestamps: true, versionKey: false, minimize: false },
);
credentialSchema.index({ provider: 1, isDefault: 1 });
// Names are unique per owner (a tenant, or the platform: tenantId absent).
credentialSchema.index({ tenantId: 1, name: 1 }, { unique: true });

export interface CredentialDoc {
  _id: string;
  tenantId?: string;
  platform?: boolean;
  sharedWith?: string[];
  name: string;
  provider: string;
  isDefault: boolean;
  labels: { key: string; value: string }[];
  settings: Record<string, string>;
  fingerprint: string;
  sealed: SealedSecret;
  rotatedAt?: Date;
  createdAt: Date;
  updatedAt: Date;
}

export function credentialModel(connection: Connection) {
  return connection.model('Credential', credentialSchema, 'credentials');
}
