import type { JobLineChunkDoc, Models, StoredLine } from './models/index.js';

/** Lines per stored chunk (see models/job-line.ts). With lines cut at 16 KiB a chunk stays under 4 MiB. */
export const LINES_PER_CHUNK = 256;

const chunkIndex = (seq: number) => Math.floor((seq - 1) / LINES_PER_CHUNK);
const chunkId = (jobId: string, index: number) => `${jobId}:${index}`;

/** MongoDB's duplicate key error: an insert of a document that is already stored. */
export function isDuplicateKey(err: unknown): boolean {
  return (err as { code?: unknown })?.code === 11000;
}

/**
 * Writes one job's lines. Keeps the open chunk in memory (at most LINES_PER_CHUNK lines) and
 * rewrites it whole on each append, so the stored chunks always hold a prefix of the sequence and
 * a repeated append cannot duplicate anything. Appends must be called one at a time, in seq order.
 *
 * A chunk not stored yet is inserted, one already stored is updated: FerretDB 1.x (SQLite) finds a
 * document to update by scanning the collection (its `_id` lookup does not use its `_id` index), so
 * an update costs more the more lines are stored, while an insert stays cheap.
 */
export class ChunkWriter {
  private open: StoredLine[] = [];
  /** The highest chunk index this writer has stored (-1: none). */
  private stored = -1;

  constructor(
    private readonly chunks: Models['JobLineChunk'],
    private readonly jobId: string,
  ) {}

  async append(lines: StoredLine[]): Promise<void> {
    // Group into chunks: the open one first (rewritten whole), then any further ones.
    const groups: { index: number; lines: StoredLine[] }[] = [];
    for (const line of [...this.open, ...lines]) {
      const index = chunkIndex(line.seq);
      const group = groups.at(-1);
      if (group && group.index === index) group.lines.push(line);
      else groups.push({ index, lines: [line] });
    }
    const last = groups.at(-1);
    if (!last) return;
    const document = (chunk: StoredLine[]) => ({
      jobId: this.jobId,
      firstSeq: (chunk[0] as StoredLine).seq,
      lastSeq: (chunk.at(-1) as StoredLine).seq,
      lines: JSON.stringify(chunk),
    });
    const upsert = ({ index, lines: chunk }: { index: number; lines: StoredLine[] }) => ({
      updateOne: { filter: { _id: chunkId(this.jobId, index) as never }, update: { $set: document(chunk) }, upsert: true },
    });
    // One ordered round trip for every chunk touched: a backlog is written as fast as one chunk.
    try {
      await this.chunks.collection.bulkWrite(
        groups.map((group) =>
          group.index <= this.stored
            ? upsert(group)
            : { insertOne: { document: { _id: chunkId(this.jobId, group.index) as never, ...document(group.lines) } } },
        ),
        { ordered: true },
      );
    } catch (err) {
      // A repeat of an append whose answer was lost: its chunks are stored already. Rewrite them.
      if (!isDuplicateKey(err)) throw err;
      await this.chunks.collection.bulkWrite(groups.map(upsert), { ordered: true });
    }
    this.stored = Math.max(this.stored, last.index);
    this.open = last.lines.length === LINES_PER_CHUNK ? [] : last.lines;
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
