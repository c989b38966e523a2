import { lineStore, type Models, type StoredLine } from '@pds/shared';

/**
 * Makes an ended job's stored log `count` lines longer (coloured, as Pulumi prints; every 97th holds
 * `needle-<seq>`), as if its run had printed them: the gateway replays what the store holds. For the
 * console's tests and bench, which need a log longer than a real run makes on demand.
 */
export async function lengthenJobLog(models: Pick<Models, 'JobLineChunk' | 'StackJob'>, jobId: string, count: number) {
  const job = await models.StackJob.findById(jobId).lean<{ lastSeq?: number }>();
  if (!job) throw new Error(`job ${jobId} not found`);
  const first = (job.lastSeq ?? 0) + 1;
  const store = lineStore(models);
  const stored = await store.read(jobId, 0, first);
  const ts = new Date().toISOString();
  const extra: StoredLine[] = [];
  for (let seq = first; seq < first + count; seq++) {
    extra.push({ seq, stream: 'stdout', text: `\x1b[32m+\x1b[0m step ${seq}: resource line ${seq % 97 === 0 ? 'needle-' : ''}${seq}`, ts });
  }
  // Written afresh, every chunk an insert: a writer would rewrite the run's chunks in place, one
  // update each, which FerretDB makes slow (it scans for each).
  await models.JobLineChunk.deleteMany({ jobId });
  await store.writer(jobId).append([...stored, ...extra]);
  await models.StackJob.updateOne({ _id: jobId }, { $set: { lastSeq: first + count - 1 } });
  return { first, last: first + count - 1, textLines: stored.filter((line) => line.stream !== 'event').length + count };
}
