import {
  canSee,
  errors,
  isFinalStatus,
  jobProgressKey,
  type JobStatus,
  jobStackKey,
  lineStore,
  type Progress,
  type StackJobDoc,
  tenantFilter,
  type TenantViewer,
  tenantOf,
  waitReasonOf,
} from '@pds/shared';
import type { JobListFilter, JobServiceDeps } from './jobs.js';
import { listIndexedJobs } from './job-list.js';
import { listPage } from './pagination.js';
import { SingleFlight } from './single-flight.js';
import { type JobView, jobView } from './views.js';

/** Reading jobs the viewer may see: one (with its place in line or its progress), a page of them, their lines. */
export function jobReads({ models, redis, queue, stacks, endedJobs, jobList, logger }: JobServiceDeps) {
  const live = new SingleFlight<JobView>();
  /** Reads a job the viewer may see; another tenant's answers as unknown (404). */
  async function find(id: string, viewer: TenantViewer): Promise<StackJobDoc> {
    const doc = await models.StackJob.findOne({ _id: id, ...tenantFilter(viewer) }).lean<StackJobDoc>();
    if (!doc) throw errors.notFound(`job ${id} not found`);
    return doc;
  }

  /** What the runner last reported of a running job's steps (Redis; none if unknown or Redis is away). */
  async function runningProgress(id: string): Promise<Progress | undefined> {
    const value = await redis.get(jobProgressKey(id)).catch(() => null);
    return value ? (JSON.parse(value) as Progress) : undefined;
  }

  /** A job as it is now, for anyone (the caller checks who may see it); ended ones are kept in `endedJobs`. */
  async function readLive(id: string): Promise<JobView> {
    const mark = endedJobs?.mark() ?? 0;
    const doc = await models.StackJob.findById(id).lean<StackJobDoc>();
    if (!doc) throw errors.notFound(`job ${id} not found`);
    if (isFinalStatus(doc.status as JobStatus)) {
      const view = jobView(doc);
      endedJobs?.set(id, view, mark);
      return view;
    }
    if (doc.status === 'running') return jobView({ ...doc, progress: await runningProgress(id) });
    if (doc.status !== 'queued') return jobView(doc);
    const where = await stacks.describe(jobStackKey(doc), id).catch(() => ({}) as { position?: number; holder?: string });
    // Why it waits: nothing said when Redis or the store cannot answer now.
    const reason = await waitReasonOf(
      { redis, queue, models },
      { _id: id, tenant: tenantOf(doc), blocked: where.holder !== undefined },
    ).catch(() => undefined);
    return jobView({ ...doc, position: where.position, blockedBy: where.holder, waitReason: reason });
  }

  /**
   * A job; while it waits for its stack, also its place in line and the job holding the stack.
   * Concurrent reads of one job share one (SingleFlight); another tenant's job answers as unknown.
   */
  async function get(id: string, viewer: TenantViewer): Promise<JobView> {
    const cached = endedJobs?.get(id);
    const view = cached ?? (await live.run(id, () => readLive(id)));
    if (!canSee(viewer, view.tenant)) throw errors.notFound(`job ${id} not found`);
    return view;
  }

  /**
   * Newest first; only the known filters reach the query (a querystring's other keys are ignored).
   * A list of every job, a tenant's or a resource's reads the job list's index when it is complete
   * (job-list.ts); any other filter, or an index not complete yet, reads the store.
   */
  async function list(filter: JobListFilter, viewer: TenantViewer) {
    const { tenant, resourceId, status, operation, stackFqdn, limit, cursor } = filter;
    const indexed = await listIndexedJobs({ models, jobList, logger }, filter, viewer);
    if (indexed) return indexed;
    const query = {
      ...Object.fromEntries(Object.entries({ resourceId, status, operation, stackFqdn }).filter(([, v]) => v !== undefined)),
      ...tenantFilter(viewer, tenant),
    };
    return listPage(models.StackJob, query, { field: 'createdAt', limit, cursor }, (doc: StackJobDoc) => jobView(doc));
  }

  /** Persisted lines and events with seq > from, in order. */
  async function lines(id: string, from: number, limit: number, viewer: TenantViewer) {
    const job = await models.StackJob.findOne({ _id: id, ...tenantFilter(viewer) }, { linesSweptAt: 1, lastSeq: 1 }).lean<{
      linesSweptAt?: Date;
      lastSeq?: number;
    }>();
    if (!job) throw errors.notFound(`job ${id} not found`);
    if (job.linesSweptAt && from < (job.lastSeq ?? 0)) {
      throw errors.gone(
        `the lines of job ${id} were removed as old history on ${job.linesSweptAt.toISOString()} (kept HISTORY_LINES_DAYS days after a job ends); its result and summary are still at GET /v1/jobs/${id}`,
      );
    }
    return lineStore(models).read(id, from, limit);
  }

  return { find, get, list, lines };
}
