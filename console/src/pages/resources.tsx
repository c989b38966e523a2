import { api, type Page, query } from '../lib/api.js';
import { when } from '../lib/format.js';
import { useLoad } from '../lib/hooks.js';
import { href, navigate, replaceQuery } from '../lib/router.js';
import type { Resource } from '../lib/types.js';
import { Empty, ErrorBanner, Pager, StatusBadge } from '../components/ui.js';

export interface ResourceView extends Resource {
  apiVersion: string;
  manifest: string;
  stack: {
    status: string;
    jobId?: string;
    changedAt?: string;
    outputs?: Record<string, unknown>;
    lastDeployedAt?: string;
    lastDeployedBy?: string;
    templateVersion?: string;
  };
}

/** Every resource (stack) the caller can see, newest first, with its stack's status. */
export function ResourcesPage({ query: params }: { query: URLSearchParams }) {
  const namePrefix = params.get('namePrefix') ?? undefined;
  const cursor = params.get('cursor') ?? undefined;
  const page = useLoad(
    (signal) => api<Page<ResourceView>>('GET', `v1/resources${query({ namePrefix, cursor, limit: 50 })}`, { signal }),
    [namePrefix, cursor],
    10_000,
  );
  return (
    <section aria-labelledby="resources-title">
      <div class="page-head">
        <h1 id="resources-title">Resources</h1>
        <a class="button primary" href={href(['templates'])}>
          Deploy a template
        </a>
      </div>
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filters">
        <label class="field inline">
          <span>Name starts with</span>
          <input
            type="search"
            value={namePrefix ?? ''}
            onChange={(e) => replaceQuery({ namePrefix: (e.target as HTMLInputElement).value || undefined })}
          />
        </label>
      </form>
      <ErrorBanner error={page.error} title="Could not load the resources:" />
      {page.data && page.data.items.length === 0 ? (
        <Empty>No resources yet.</Empty>
      ) : (
        <div class="table-wrap">
          <table>
            <caption class="sr-only">Resources</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Kind</th>
                <th scope="col">Stack</th>
                <th scope="col">Template version</th>
                <th scope="col">Last deployed</th>
                <th scope="col">Tenant</th>
              </tr>
            </thead>
            <tbody>
              {(page.data?.items ?? []).map((r) => (
                <tr key={r.id}>
                  <td>
                    <a href={href(['resources', r.id])}>{r.name}</a>
                  </td>
                  <td>{r.kind}</td>
                  <td>
                    <StatusBadge status={r.stack.status} />
                  </td>
                  <td>{r.templateVersion ?? '—'}</td>
                  <td>{when(r.stack.lastDeployedAt)}</td>
                  <td>{r.tenant ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Pager
        hasNewer={Boolean(cursor)}
        hasOlder={Boolean(page.data?.nextCursor)}
        newer={() => history.back()}
        older={() => navigate(href(['resources'], { namePrefix, cursor: page.data?.nextCursor }))}
      />
    </section>
  );
}
