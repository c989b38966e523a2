import { useState } from 'preact/hooks';
import { api, ApiError, type Page, query } from '../lib/api.js';
import { when } from '../lib/format.js';
import { useLoad } from '../lib/hooks.js';
import { startJob } from '../lib/actions.js';
import { href } from '../lib/router.js';
import { can, type Me } from '../lib/session.js';
import type { Job } from '../lib/types.js';
import { Outputs } from '../components/outputs.js';
import { StatePanel } from '../components/state-panel.js';
import { ConfirmButton, Empty, ErrorBanner, StatusBadge } from '../components/ui.js';
import { JobTable } from './jobs.js';
import type { ResourceView } from './resources.js';

interface DriftSchedule {
  cron: string;
  paused: boolean;
  autoRemediate: boolean;
  lastCheck?: { jobId: string; result: string; finishedAt: string };
  nextRunAt?: string;
}

export function ResourcePage({ id, me }: { id: string; me: Me; query: URLSearchParams }) {
  const loaded = useLoad((signal) => api<ResourceView>('GET', `v1/resources/${encodeURIComponent(id)}`, { signal }), [id], 5_000);
  const jobs = useLoad((signal) => api<Page<Job>>('GET', `v1/jobs${query({ resourceId: id, limit: 10 })}`, { signal }), [id], 5_000);
  const drift = useLoad(
    (signal) =>
      api<DriftSchedule>('GET', `v1/resources/${encodeURIComponent(id)}/drift-schedule`, { signal }).catch((err: ApiError) => {
        if (err.status === 404) return undefined;
        throw err;
      }),
    [id],
  );
  const r = loaded.data;
  if (loaded.error instanceof ApiError && loaded.error.status === 404) {
    return (
      <section>
        <h1>Resource not found</h1>
        <p>
          There is no resource <code>{id}</code> that you can see. <a href={href(['resources'])}>Back to the resources</a>.
        </p>
      </section>
    );
  }
  if (!r) return loaded.error ? <ErrorBanner error={loaded.error} /> : <p class="loading">Loading…</p>;
  return (
    <section aria-labelledby="resource-title">
      <div class="page-head">
        <h1 id="resource-title">{r.name}</h1>
        <StatusBadge status={r.stack.status} />
      </div>
      <dl class="facts">
        <div>
          <dt>Kind</dt>
          <dd>
            <a href={href(['templates', r.kind])}>{r.kind}</a>
          </dd>
        </div>
        <div>
          <dt>Template version</dt>
          <dd>{r.templateVersion ?? 'built-in'}</dd>
        </div>
        <div>
          <dt>Stack</dt>
          <dd class="mono">{r.stackFqdn}</dd>
        </div>
        <div>
          <dt>Last deployed</dt>
          <dd>
            {when(r.stack.lastDeployedAt)}
            {r.stack.lastDeployedBy ? ` by ${r.stack.lastDeployedBy}` : ''}
          </dd>
        </div>
        <div>
          <dt>Manifest version</dt>
          <dd>{r.version}</dd>
        </div>
      </dl>
      <ResourceActions resource={r} me={me} />
      <Upgrade resource={r} me={me} reload={loaded.reload} />
      <h2>Last jobs</h2>
      {jobs.data?.items.length ? <JobTable jobs={jobs.data.items} caption="Last jobs of this resource" /> : <Empty>No job yet.</Empty>}
      <p>
        <a href={href(['jobs'], { resourceId: r.id })}>Every job of this resource</a>
      </p>
      <h2>Outputs</h2>
      <Outputs outputs={r.stack.outputs ?? {}} />
      <h2>State</h2>
      <StatePanel resourceId={r.id} me={me} />
      <h2>Drift</h2>
      {drift.data ? (
        <p>
          Checked on <code>{drift.data.cron}</code>
          {drift.data.paused ? ' (paused)' : ''}
          {drift.data.autoRemediate ? ', put back automatically' : ''}.{' '}
          {drift.data.lastCheck ? (
            <>
              Last check {when(drift.data.lastCheck.finishedAt)}: <StatusBadge status={drift.data.lastCheck.result} />{' '}
              <a href={href(['jobs', drift.data.lastCheck.jobId])}>its job</a>
            </>
          ) : (
            'Not checked yet.'
          )}
        </p>
      ) : (
        <Empty>No drift schedule.</Empty>
      )}
      <h2>Manifest</h2>
      <pre class="code">{r.manifest}</pre>
    </section>
  );
}

function ResourceActions({ resource, me }: { resource: ResourceView; me: Me }) {
  const [error, setError] = useState<string>();
  if (!can(me, 'deployer')) return null;
  const run = (operation: string) => () => startJob(resource.id, { operation }).catch((err: Error) => setError(err.message));
  return (
    <>
      <div class="actions left">
        <button type="button" class="primary" onClick={run('up')}>
          Deploy (up)
        </button>
        <button type="button" onClick={run('preview')}>
          Preview
        </button>
        <button type="button" onClick={run('refresh')}>
          Refresh
        </button>
        {can(me, 'admin') && (
          <ConfirmButton
            label="Destroy"
            title={`Destroy ${resource.name}?`}
            danger
            body={<p>Every cloud resource of this stack is deleted. The resource and its state versions stay.</p>}
            onConfirm={() => startJob(resource.id, { operation: 'destroy' })}
          />
        )}
      </div>
      <ErrorBanner error={error} />
    </>
  );
}

function Upgrade({ resource, me, reload }: { resource: ResourceView; me: Me; reload(): void }) {
  const versions = useLoad(
    (signal) =>
      resource.templateVersion
        ? api<Page<{ version: string; state: string }>>('GET', `v1/templates/${encodeURIComponent(resource.kind)}/versions`, { signal })
        : Promise.resolve({ items: [] }),
    [resource.kind, resource.templateVersion],
  );
  const newest = versions.data?.items.find((v) => v.state === 'published');
  if (!resource.templateVersion || !newest || newest.version === resource.templateVersion || !can(me, 'deployer')) return null;
  return (
    <div class="banner info">
      Version {newest.version} of {resource.kind} is out (this resource is pinned to {resource.templateVersion}).{' '}
      <ConfirmButton
        label={`Upgrade to ${newest.version}`}
        title={`Pin ${resource.name} to ${resource.kind} ${newest.version}?`}
        body={<p>The manifest is checked against the new version; the next up deploys it.</p>}
        onConfirm={async () => {
          await api('POST', `v1/resources/${encodeURIComponent(resource.id)}/upgrade`, { body: { version: newest.version } });
          reload();
        }}
      />
    </div>
  );
}
