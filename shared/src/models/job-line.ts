import { type Connection, Schema } from 'mongoose';

/**
 * A job's output is stored in fixed-size chunks: chunk k of a job holds seqs
 * k*LINES_PER_CHUNK+1 … (k+1)*LINES_PER_CHUNK and has the id `<jobId>:<k>`, so a reader finds the
 * chunk of any seq by id alone, and rewriting a chunk (a retry, or the next batch of an open chunk)
 * is idempotent. A million-line job is about four thousand documents, and a MongoDB wire server
 * that scans collections for anything but `_id` (FerretDB on SQLite) stays fast. The lines are kept
 * as one JSON text: a wire server converts one string far faster than hundreds of sub-documents,
 * and nothing queries inside a chunk.
 */
export const jobLineChunkSchema = new Schema(
  {
    _id: { type: String, required: true },
    jobId: { type: String, required: true },
    firstSeq: { type: Number, required: true },
    lastSeq: { type: Number, required: true },
    /** JSON text of the chunk's StoredLine[] (see line-store.ts). */
    lines: { type: String, required: true },
  },
  { versionKey: false },
);
jobLineChunkSchema.index({ jobId: 1, firstSeq: 1 }, { unique: true });

export interface JobLineChunkDoc {
  _id: string;
  jobId: string;
  firstSeq: number;
  lastSeq: number;
  lines: string;
}

/** One line or event as stored and as served by the API (`ts` as an ISO string). */
export interface StoredLine {
  seq: number;
  stream: 'stdout' | 'stderr' | 'event';
  text?: string;
  event?: Record<string, unknown>;
  ts: string;
}

export function jobLineChunkModel(connection: Connection) {
  return connection.model('JobLineChunk', jobLineChunkSchema, 'joblines');
}
