import { type Connection, type InferSchemaType, Schema } from 'mongoose';

/** One line or engine event of a job's output, in order of `seq` (1, 2, 3 … without holes). */
export const jobLineSchema = new Schema(
  {
    jobId: { type: String, required: true },
    seq: { type: Number, required: true },
    stream: { type: String, enum: ['stdout', 'stderr', 'event'], required: true },
    text: { type: String },
    event: { type: Schema.Types.Mixed },
    ts: { type: Date, required: true },
  },
  { versionKey: false },
);
jobLineSchema.index({ jobId: 1, seq: 1 }, { unique: true });

export type JobLineDoc = InferSchemaType<typeof jobLineSchema>;

export function jobLineModel(connection: Connection) {
  return connection.model('JobLine', jobLineSchema, 'joblines');
}
