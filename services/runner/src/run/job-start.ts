import { isTransientError, type Logger, type ResourceDoc, type StackJobDoc } from '@pds/shared';
import { endJob } from '@pds/shared/lifecycle';
import type { ExecuteDeps, ExecuteOptions, StoreCall } from './job-run.js';

/** The job could not be moved to `running` (the store stayed unreachable): it is still queued. */
export class JobNotStartedError extends Error {
  override name = 'JobNotStartedError';
  constructor(cause: Error) {
    super(`the job could not be started: ${cause.message}`, { cause });
  }
}

export interface StartedJob {
  job: StackJobDoc;
  startedAt: Date;
  /** The resource the queue message named, read while the job was claimed (undefined when it named none). */
  early?: Promise<ResourceDoc | null>;
}

/**
 * Moves a job to `running` for this runner: its Redis claim first (someone may have cancelled it),
 * then its document. Undefined when the job is no longer to be run here. Throws JobNotStartedError
 * when the store stays unreachable (the claim is given back: the job is still queued).
 */
export async function startJob(
  deps: Pick<ExecuteDeps, 'models' | 'publisher' | 'lifecycle' | 'runnerId' | 'claim' | 'unclaim'>,
  jobId: string,
  options: ExecuteOptions,
  store: StoreCall,
  logger: Logger,
): Promise<StartedJob | undefined> {
  const { models } = deps;
  if (!(await deps.claim(jobId))) {
    logger.info('job was cancelled before it could start; skipping');
    return undefined;
  }
  const startedAt = new Date();
  // The Redis claim made this runner the only one to move the job out of `queued`, so a repeat of
  // this update (its first answer lost) finds the job already running under our id and start time.
  const claiming = store('start the job', () =>
    models.StackJob.findOneAndUpdate(
      {
        _id: jobId,
        // A gated job starts only from `approved`, never from `queued`.
        $or: [
          { status: 'queued', approval: { $exists: false } },
          { status: 'approved' },
          { status: 'running', runnerId: deps.runnerId, startedAt },
        ],
      },
      { $set: { status: 'running', startedAt, runnerId: deps.runnerId, fence: options.fence } },
      { returnDocument: 'after' },
    ).lean<StackJobDoc>(),
  );
  // The resource is read meanwhile when the queue message names it (the claim and the read overlap).
  const resourceId = options.resourceId;
  const early = resourceId ? store('read the resource', () => models.Resource.findById(resourceId).lean<ResourceDoc>()) : undefined;
  early?.catch(() => undefined); // awaited later; an error before then must not go unhandled
  const job = await claiming.catch(async (err: Error) => {
    if (isTransientError(err)) {
      await deps.unclaim(jobId).catch(() => undefined); // a claim left behind expires with its TTL: the job is tried again then
      throw new JobNotStartedError(err);
    }
    // Not the store being away: trying again would not help, so the job ends rather than wait forever.
    const error = `the job could not be started: ${err.message}`;
    await endJob({ ...deps, logger }, jobId, { status: 'failed', reason: 'internal_error', error }, 'start').catch((endErr: Error) =>
      logger.error({ err: endErr.message }, 'a job that cannot be started could not be ended either; it stays queued'),
    );
    throw err;
  });
  if (!job) {
    logger.info('job is no longer queued; skipping');
    return undefined;
  }
  return { job, startedAt, ...(early ? { early } : {}) };
}
