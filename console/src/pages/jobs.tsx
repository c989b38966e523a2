import { api, type Page, query } from '../lib/api.js';
import { duration, when } from '../lib/format.js';
import { useLoad, useNow } from '../lib/hooks.js';
import { href, navigate, replaceQuery } from '../lib/router.js';
import type { Me } from '../lib/session.js';
import type { Job } from '../lib/types.js';
import { JOB_STATUSES as STATUSES, OPERATIONS } from '../lib/vocabulary.js';
import { Empty, ErrorBanner, Pager, StatusBadge } from '../components/ui.js';

const LIVE_MS = 3_000;

/** +create ~update −delete: what a job changed (its summary), or is changing. */
export function Changes({ job, live }: { job: Job; live?: Record<string, number> }) {
  const s = job.result?.summary ?? live ?? job.approval?.plan?.counts ?? {};
  const n = (k: string) => s[k] ?? 0;
  const replaced = n('replace') + n('create-replacement') + n('delete-replaced');
  return (
    <span class="changes" aria-label={`${n('create')} to create, ${n('update') + replaced} to update, ${n('delete')} to delete`}>
      <span class={n('create') ? 'add' : 'zero'}>+{n('create')}</span>{' '}
      <span class={n('update') + replaced ? 'chg' : 'zero'}>~{n('update') + replaced}</span>{' '}
      <span class={n('delete') ? 'del' : 'zero'}>−{n('delete')}</span>
    </span>
  );
}

function Duration({ job }: { job: Job }) {
  const running = job.status === 'running';
  const now = useNow(running);
  if (!job.startedAt) return <span class="muted">—</span>;
  const end = job.finishedAt ? Date.parse(job.finishedAt) : now;
  return <span>{duration(end - Date.parse(job.startedAt))}</span>;
}

export function JobRow({ job }: { job: Job }) {
  return (
    <tr>
      <td>
        <StatusBadge status={job.status} />
      </td>
      <td>
        <a href={href(['jobs', job.id])} class="mono">
          {job.stackFqdn.split('/').pop()}
        </a>
        <div class="sub mono">{job.id.slice(0, 8)}</div>
      </td>
      <td>{job.kind}</td>
      <td>{job.operation}</td>
      <td>
        <Changes job={job} />
      </td>
      <td>{job.createdBy?.name ?? '—'}</td>
      <td>{when(job.startedAt ?? job.createdAt)}</td>
      <td>
        <Duration job={job} />
      </td>
    </tr>
  );
}

export function JobTable({ jobs, caption }: { jobs: Job[]; caption: string }) {
  return (
    <div class="table-wrap">
      <table>
        <caption class="sr-only">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Status</th>
            <th scope="col">Stack</th>
            <th scope="col">Kind</th>
            <th scope="col">Operation</th>
            <th scope="col">Changes</th>
            <th scope="col">Who</th>
            <th scope="col">Started</th>
            <th scope="col">Duration</th>
          </tr>
        </thead>
        <tbody>
          {jobs.map((job) => (
            <JobRow key={job.id} job={job} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Home: every job, newest first, live; awaiting approval pinned at the top; filters in the URL. */
export function JobsPage({ query: params }: { me: Me; query: URLSearchParams }) {
  const filters = {
    status: params.get('status') ?? undefined,
    operation: params.get('operation') ?? undefined,
    resourceId: params.get('resourceId') ?? undefined,
  };
  const cursor = params.get('cursor') ?? undefined;
  const page = useLoad(
    (signal) => api<Page<Job>>('GET', `v1/jobs${query({ ...filters, cursor, limit: 25 })}`, { signal }),
    [filters.status, filters.operation, filters.resourceId, cursor],
    LIVE_MS,
  );
  const pinned = useLoad(
    (signal) =>
      filters.status || cursor
        ? Promise.resolve({ items: [] } as Page<Job>)
        : api<Page<Job>>(
            'GET',
            `v1/jobs${query({ status: 'awaiting_approval', operation: filters.operation, resourceId: filters.resourceId, limit: 20 })}`,
            { signal },
          ),
    [filters.status, filters.operation, filters.resourceId, cursor],
    LIVE_MS,
  );
  const set = (change: Record<string, string | undefined>) => replaceQuery({ ...filters, ...change, cursor: undefined });
  const waiting = pinned.data?.items ?? [];
  const items = (page.data?.items ?? []).filter((job) => !waiting.some((w) => w.id === job.id));
  return (
    <section aria-labelledby="jobs-title">
      <div class="page-head">
        <h1 id="jobs-title">Jobs</h1>
        <span class="live" aria-live="off">
          {page.error ? 'not updating' : 'live'}
        </span>
      </div>
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filters">
        <label class="field inline">
          <span>Status</span>
          <select value={filters.status ?? ''} onChange={(e) => set({ status: (e.target as HTMLSelectElement).value || undefined })}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s.replace(/_/g, ' ')}
              </option>
            ))}
          </select>
        </label>
        <label class="field inline">
          <span>Operation</span>
          <select value={filters.operation ?? ''} onChange={(e) => set({ operation: (e.target as HTMLSelectElement).value || undefined })}>
            <option value="">any</option>
            {OPERATIONS.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        {filters.resourceId && (
          <button type="button" class="ghost small" onClick={() => set({ resourceId: undefined })}>
            Resource {filters.resourceId.slice(0, 8)} ✕
          </button>
        )}
      </form>
      <ErrorBanner error={page.error} title="Could not load the jobs:" />
      {waiting.length > 0 && (
        <div class="pinned">
          <h2>Awaiting approval</h2>
          <JobTable jobs={waiting} caption="Jobs awaiting approval" />
        </div>
      )}
      {page.data && items.length === 0 && waiting.length === 0 ? (
        <Empty>No jobs{filters.status || filters.operation ? ' match these filters' : ' yet: deploy a template to start one'}.</Empty>
      ) : (
        <JobTable jobs={items} caption="Jobs, newest first" />
      )}
      <Pager
        hasNewer={Boolean(cursor)}
        hasOlder={Boolean(page.data?.nextCursor)}
        newer={() => history.back()}
        older={() => navigate(href(['jobs'], { ...filters, cursor: page.data?.nextCursor }))}
      />
    </section>
  );
}
