import type { JobLineChunkDoc, Models, StoredLine } from './models/index.js';

/** Lines per stored chunk (see models/job-line.ts). With lines cut at 16 KiB a chunk stays under 4 MiB. */
export const LINES_PER_CHUNK = 256;

const chunkIndex = (seq: number) => Math.floor((seq - 1) / LINES_PER_CHUNK);
const chunkId = (jobId: string, index: number) => `${jobId}:${index}`;

/**
 * Writes one job's lines. Keeps the open chunk in memory (at most LINES_PER_CHUNK lines) and
 * rewrites it whole on each append, so the stored chunks always hold a prefix of the sequence and
 * a repeated append cannot duplicate anything. Appends must be called one at a time, in seq order.
 */
export class ChunkWriter {
  private open: StoredLine[] = [];

  constructor(
    private readonly chunks: Models['JobLineChunk'],
    private readonly jobId: string,
  ) {}

  async append(lines: StoredLine[]): Promise<void> {
    let pending = [...this.open];
    let index = pending[0] ? chunkIndex(pending[0].seq) : undefined;
    for (const line of lines) {
      const lineIndex = chunkIndex(line.seq);
      if (index !== undefined && lineIndex !== index) {
        await this.write(index, pending); // the previous chunk is complete: write it before the next
        pending = [];
      }
      index = lineIndex;
      pending.push(line);
    }
    if (index === undefined) return;
    await this.write(index, pending);
    this.open = pending.length === LINES_PER_CHUNK ? [] : pending;
  }

  private async write(index: number, lines: StoredLine[]): Promise<void> {
    const first = lines[0] as StoredLine;
    const last = lines.at(-1) as StoredLine;
    await this.chunks.collection.updateOne(
      { _id: chunkId(this.jobId, index) as never },
      { $set: { jobId: this.jobId, firstSeq: first.seq, lastSeq: last.seq, lines: JSON.stringify(lines) } },
      { upsert: true },
    );
  }
}

/**
 * The one place that knows how job lines are stored. The runner writes through `writer()`; the API
 * and the gateway `read()`.
 */
export function lineStore(models: Pick<Models, 'JobLineChunk'>) {
  const chunks = models.JobLineChunk;
  return {
    writer(jobId: string): ChunkWriter {
      return new ChunkWriter(chunks, jobId);
    },

    /** Up to `limit` persisted lines with seq > `afterSeq`, in order (stops at the first not yet persisted). */
    async read(jobId: string, afterSeq: number, limit: number): Promise<StoredLine[]> {
      const out: StoredLine[] = [];
      for (let index = chunkIndex(afterSeq + 1); out.length < limit; index++) {
        const chunk = await chunks.findById(chunkId(jobId, index)).lean<JobLineChunkDoc>();
        if (!chunk) break;
        for (const line of JSON.parse(chunk.lines) as StoredLine[]) {
          if (line.seq > afterSeq && out.length < limit) out.push(line);
        }
        if (chunk.lastSeq < (index + 1) * LINES_PER_CHUNK) break; // an open chunk: nothing after it yet
      }
      return out;
    },
  };
}

export type LineStore = ReturnType<typeof lineStore>;
