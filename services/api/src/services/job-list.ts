import {
  canSee,
  type JobListIndex,
  type JobListScope,
  type ListPosition,
  type Logger,
  type Models,
  type StackJobDoc,
  tenantFilter,
  type TenantViewer,
  tenantOf,
} from '@pds/shared';
import type { JobListFilter } from './jobs.js';
import { decodeCursor, encodeCursor, type Page } from './pagination.js';
import { type JobView, jobView } from './views.js';

interface JobListDeps {
  models: Pick<Models, 'StackJob'>;
  jobList: JobListIndex;
  logger: Pick<Logger, 'info' | 'warn'>;
}

/**
 * Rounds of ids one page reads before it gives up on the index and reads the store: ids the viewer
 * may not see, or whose jobs are gone, are skipped, and their number must not make one request
 * read a whole set.
 */
const MAX_ROUNDS = 4;

/** One build of the index at a time per process (another process may hold the fleet-wide lock). */
const building = new WeakMap<JobListIndex, Promise<unknown>>();

function buildSoon({ models, jobList, logger }: JobListDeps): void {
  if (building.has(jobList)) return;
  const build = jobList
    .build(models, logger)
    .catch((err: Error) => logger.warn({ err: err.message }, 'the job list index could not be built yet; lists read the store'))
    .finally(() => building.delete(jobList));
  building.set(jobList, build);
}

/**
 * The index scope a list reads, or undefined when the index cannot answer it (a status, operation or
 * stack filter: read from the store). `tenant` is the viewer's own or the one a platform viewer asked for.
 */
function scopeOf(filter: JobListFilter, tenant: string | undefined): JobListScope | undefined {
  if (filter.status !== undefined || filter.operation !== undefined || filter.stackFqdn !== undefined) return undefined;
  if (filter.resourceId !== undefined) return { resource: filter.resourceId };
  return tenant === undefined ? 'all' : { tenant };
}

/**
 * A page of the job list from the index (job-list-index.ts): ids newest first, then each job by
 * `_id` (the one lookup FerretDB answers from an index), kept only if the viewer may see it and it
 * is of the tenant asked for. The same page, items and cursor, as the store's `listPage` gives.
 * Undefined when the index cannot answer (see `scopeOf`), is not complete (a build is started), or
 * fails (Redis away): the caller reads the store.
 */
export async function listIndexedJobs(deps: JobListDeps, filter: JobListFilter, viewer: TenantViewer): Promise<Page<JobView> | undefined> {
  const cursor = filter.cursor ? decodeCursor(filter.cursor) : undefined;
  const visible = tenantFilter(viewer, filter.tenant).tenantId;
  if (visible !== undefined && typeof visible !== 'string') return { items: [] }; // another tenant's, asked by a tenant's viewer
  const scope = scopeOf(filter, visible);
  if (!scope) return undefined;
  if (!(await deps.jobList.complete().catch(() => false))) {
    buildSoon(deps);
    return undefined;
  }
  const shows = (doc: StackJobDoc) => canSee(viewer, tenantOf(doc)) && (visible === undefined || tenantOf(doc) === visible);
  let position: ListPosition | undefined = cursor ? { at: Date.parse(cursor.at), id: cursor.id } : undefined;
  const kept: StackJobDoc[] = [];
  try {
    // One more than the page, to learn whether a next page exists.
    for (let round = 0; kept.length <= filter.limit; round++) {
      if (round === MAX_ROUNDS) return undefined;
      const asked = filter.limit + 1 - kept.length;
      const found = await deps.jobList.page(scope, asked, position);
      const docs = await Promise.all(found.map(({ id }) => deps.models.StackJob.findById(id).lean<StackJobDoc>()));
      for (const [i, doc] of docs.entries()) {
        if (!doc) void deps.jobList.forget(scope, found[i]!.id).catch(() => undefined);
        // A resource's jobs are all of its tenant: one the viewer may not see says the rest are not either.
        else if (!shows(doc) && typeof scope === 'object' && 'resource' in scope) return { items: [] };
        else if (shows(doc)) kept.push(doc);
      }
      if (found.length < asked) break;
      position = found.at(-1);
    }
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message }, 'the job list index could not be read; the list reads the store');
    return undefined;
  }
  const shown = kept.slice(0, filter.limit);
  const last = shown.at(-1);
  return {
    items: shown.map(jobView),
    ...(kept.length > filter.limit && last ? { nextCursor: encodeCursor(last.createdAt, last._id) } : {}),
  };
}
