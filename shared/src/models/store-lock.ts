import { type Connection, Schema } from 'mongoose';

/** A short lock held in the store (withStoreLock), for checks that must not race: a count, then a write. */
export const storeLockSchema = new Schema(
  {
    _id: { type: String, required: true },
    token: { type: String, required: true },
    until: { type: Date, required: true },
  },
  { versionKey: false },
);

export interface StoreLockDoc {
  _id: string;
  token: string;
  until: Date;
}

export function storeLockModel(connection: Connection) {
  return connection.model('StoreLock', storeLockSchema, 'locks');
}
