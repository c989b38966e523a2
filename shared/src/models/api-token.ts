import { type Connection, Schema } from 'mongoose';
import { ROLES } from '../types.js';

/**
 * An API token. Only its SHA-256 is stored, as `_id`, so checking a token is one lookup by `_id`
 * (the one query FerretDB answers without a scan). `id` is the public handle used to revoke it.
 */
export const apiTokenSchema = new Schema(
  {
    _id: { type: String, required: true },
    id: { type: String, required: true, unique: true },
    name: { type: String, required: true },
    role: { type: String, enum: ROLES, required: true },
    /** The tenant the token acts in; none for `platform` tokens. */
    tenantId: { type: String },
    /** The first characters of the token, so a person can tell tokens apart. */
    prefix: { type: String, required: true },
    createdBy: { type: String, required: true },
    /**
     * The identity the token acts for (a token id): its own for a token a platform admin issued; the
     * issuer's for one a tenant's admin issued, so a second token never makes a second approver.
     */
    actsFor: { type: String },
    expiresAt: { type: Date },
    revokedAt: { type: Date },
  },
  { timestamps: true, versionKey: false },
);

export interface ApiTokenDoc {
  _id: string;
  id: string;
  name: string;
  role: string;
  tenantId?: string;
  prefix: string;
  createdBy: string;
  actsFor?: string;
  expiresAt?: Date;
  revokedAt?: Date;
  createdAt: Date;
  updatedAt: Date;
}

export function apiTokenModel(connection: Connection) {
  return connection.model('ApiToken', apiTokenSchema, 'apitokens');
}
