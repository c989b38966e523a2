import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError } from '../lib/api.js';
import { duration, FINAL, urnName, when } from '../lib/format.js';
import { useLoad, useNow } from '../lib/hooks.js';
import { ResourceModel } from '../lib/resources.js';
import { href } from '../lib/router.js';
import { can, type Me } from '../lib/session.js';
import { type Connection, JobStream } from '../lib/stream.js';
import type { Job } from '../lib/types.js';
import { type LogLine, logLine, LogView } from '../components/log-view.js';
import { ResourceTable } from '../components/resource-table.js';
import { Outputs } from '../components/outputs.js';
import { ConfirmButton, CopyButton, ErrorBanner, Notice, StatusBadge } from '../components/ui.js';
import { Changes } from './jobs.js';

const POLL_MS = 2_000;

/** What the job's stream has brought so far (kept outside state: appended in place, redrawn once a frame). */
function useJobStream(id: string, onStatus: () => void) {
  const lines = useRef<LogLine[]>([]);
  const model = useRef(new ResourceModel());
  const [version, setVersion] = useState(0);
  const [connection, setConnection] = useState<{ state: Connection; detail?: string }>({ state: 'connecting' });
  useEffect(() => {
    lines.current = [];
    model.current = new ResourceModel();
    let frame = 0;
    const redraw = () => (frame ||= requestAnimationFrame(() => ((frame = 0), setVersion((v) => v + 1))));
    const stream = new JobStream(id, {
      message(message) {
        if (message.type === 'line') lines.current.push(logLine(message.seq, message.stream, message.text));
        else if (message.type === 'event') model.current.take(message.event, Date.parse(message.ts));
        else if (message.type === 'status' || message.type === 'end') onStatus();
        redraw();
      },
      connection: (state, detail) => setConnection({ state, ...(detail ? { detail } : {}) }),
    });
    stream.start();
    return () => {
      stream.stop();
      cancelAnimationFrame(frame);
    };
  }, [id]);
  return { lines: lines.current, model: model.current, version, connection };
}

function Timer({ job }: { job: Job }) {
  const running = !FINAL.includes(job.status);
  const now = useNow(running);
  const from = Date.parse(job.startedAt ?? job.createdAt);
  const to = job.finishedAt ? Date.parse(job.finishedAt) : now;
  return (
    <span class="timer" title={job.startedAt ? 'since it started' : 'since it was queued'}>
      {duration(to - from)}
    </span>
  );
}

function ConnectionState({ state, detail }: { state: Connection; detail?: string }) {
  const text = { connecting: 'connecting…', live: 'live', reconnecting: 'reconnecting…', ended: 'complete', failed: 'not streaming' }[
    state
  ];
  return (
    <span class={`conn conn-${state}`} role="status" title={detail}>
      {text}
      {detail && (state === 'reconnecting' || state === 'failed') ? `: ${detail}` : ''}
    </span>
  );
}

export function JobPage({ id, me, query }: { id: string; me: Me; query: URLSearchParams }) {
  const loaded = useLoad((signal) => api<Job>('GET', `v1/jobs/${encodeURIComponent(id)}`, { signal }), [id]);
  const job = loaded.data;
  const live = job && !FINAL.includes(job.status);
  // A running job's view (position, progress) is read again while it is not over.
  useEffect(() => {
    if (!live) return;
    const timer = setInterval(loaded.reload, POLL_MS);
    return () => clearInterval(timer);
  }, [live, id]);
  const stream = useJobStream(id, loaded.reload);
  const anchor = Number(query.get('line')) || undefined;

  if (loaded.error instanceof ApiError && loaded.error.status === 404) {
    return (
      <section>
        <h1>Job not found</h1>
        <p>
          There is no job <code>{id}</code> that you can see. <a href={href(['jobs'])}>Back to the jobs</a>.
        </p>
      </section>
    );
  }
  if (!job) return loaded.error ? <ErrorBanner error={loaded.error} title="Could not load the job:" /> : <p class="loading">Loading…</p>;

  const model = stream.model;
  const firstError = model.firstError ?? job.result?.error;
  const progress = model.progress.total !== undefined ? model.progress : (job.progress ?? model.progress);
  const percent = progress.percent ?? (FINAL.includes(job.status) && job.status === 'succeeded' ? 100 : undefined);
  return (
    <section aria-labelledby="job-title" class="job">
      <div class="page-head">
        <h1 id="job-title">
          {job.operation} <span class="mono">{job.stackFqdn.split('/').pop()}</span>
        </h1>
        <StatusBadge status={job.status} />
        <Timer job={job} />
        <ConnectionState {...stream.connection} />
      </div>
      <dl class="facts">
        <div>
          <dt>Job</dt>
          <dd>
            <code>{job.id}</code> <CopyButton text={job.id} label="job id" />
          </dd>
        </div>
        <div>
          <dt>Follow in a terminal</dt>
          <dd>
            <code>pds watch {job.id}</code> <CopyButton text={`pds watch ${job.id}`} label="CLI command" />
          </dd>
        </div>
        <div>
          <dt>Resource</dt>
          <dd>
            <a href={href(['resources', job.resourceId])}>{job.kind}</a>
          </dd>
        </div>
        <div>
          <dt>By</dt>
          <dd>{job.createdBy?.name ?? '—'}</dd>
        </div>
        <div>
          <dt>Queued</dt>
          <dd>{when(job.createdAt)}</dd>
        </div>
        <div>
          <dt>Changes</dt>
          <dd>
            <Changes job={job} live={model.counts()} />
          </dd>
        </div>
      </dl>
      {job.status === 'queued' && job.blockedBy && (
        <Notice tone="wait">
          Waiting behind <a href={href(['jobs', job.blockedBy])}>job {job.blockedBy.slice(0, 8)}</a>
          {job.position !== undefined ? ` (place ${job.position + 1} in line for this stack)` : ''}.
        </Notice>
      )}
      {firstError && <ErrorBanner error={firstError} title="Error:" />}
      {job.reason && FINAL.includes(job.status) && job.status !== 'succeeded' && (
        <Notice tone="bad">Why it ended: {job.reason.replace(/_/g, ' ')}</Notice>
      )}
      <Actions job={job} me={me} reload={loaded.reload} />
      {job.approval && <Approval job={job} me={me} reload={loaded.reload} />}
      <h2>Resources</h2>
      <div class="progress" role="progressbar" aria-label="Progress" aria-valuemin={0} aria-valuemax={100} aria-valuenow={percent}>
        <div class="progress-fill" style={{ width: `${percent ?? 0}%` }} />
        <span class="progress-text">
          {percent !== undefined ? `${percent}%` : live ? 'working…' : ''}
          {progress.done !== undefined ? ` · ${progress.done}${progress.total !== undefined ? ` of ${progress.total}` : ''} done` : ''}
          {progress.failed ? ` · ${progress.failed} failed` : ''}
        </span>
      </div>
      <ResourceTable rows={model.sorted()} unchanged={model.unchanged} running={Boolean(live)} />
      <h2>Log</h2>
      {job.linesSweptAt ? (
        <Notice>Its lines were removed as old history on {when(job.linesSweptAt)}; the result stays.</Notice>
      ) : (
        <LogView key={job.id} lines={stream.lines} version={stream.version} jobId={job.id} anchor={anchor} />
      )}
      {job.result?.outputs !== undefined && (
        <>
          <h2>Outputs</h2>
          <Outputs outputs={job.result.outputs} />
        </>
      )}
    </section>
  );
}

function Actions({ job, me, reload }: { job: Job; me: Me; reload(): void }) {
  if (FINAL.includes(job.status) || !can(me, 'deployer')) return null;
  return (
    <div class="actions left">
      <ConfirmButton
        label="Cancel job"
        title={`Cancel this ${job.operation}?`}
        danger
        confirmLabel="Cancel the job"
        body={
          job.status === 'running' ? (
            <p>Pulumi is stopped gracefully (its current steps finish, nothing new starts); what it changed so far stays.</p>
          ) : (
            <p>It has not started: it leaves the queue and changes nothing.</p>
          )
        }
        onConfirm={async () => {
          await api('POST', `v1/jobs/${encodeURIComponent(job.id)}/cancel`, { body: {} });
          reload();
        }}
      />
    </div>
  );
}

function Approval({ job, me, reload }: { job: Job; me: Me; reload(): void }) {
  const approval = job.approval;
  if (!approval) return null;
  const changes = approval.plan?.changes.filter((c) => c.op !== 'same') ?? [];
  const own = job.createdBy && (job.createdBy.id === me.id || job.createdBy.actsFor === me.id);
  const deciding = job.status === 'awaiting_approval';
  const roleOk = can(me, approval.approverRole as Me['role']);
  const why = !deciding
    ? undefined
    : own && !approval.allowSelfApproval
      ? 'You asked for this change; someone else must approve it.'
      : undefined;
  const decide = (decision: 'approve' | 'reject') => async (comment: string) => {
    await api('POST', `v1/jobs/${encodeURIComponent(job.id)}/approvals`, { body: { decision, comment } });
    reload();
  };
  return (
    <div class="panel" aria-labelledby="approval-title">
      <h2 id="approval-title">Approval</h2>
      <p>
        Needs {approval.required} approval{approval.required === 1 ? '' : 's'} by a {approval.approverRole}
        {deciding ? `, until ${when(approval.expiresAt)}` : ''}. The preview:{' '}
        <a href={href(['jobs', approval.previewJobId])}>job {approval.previewJobId.slice(0, 8)}</a>.
      </p>
      {approval.plan ? (
        changes.length ? (
          <table class="compact">
            <caption>What it will change</caption>
            <thead>
              <tr>
                <th scope="col">Change</th>
                <th scope="col">Type</th>
                <th scope="col">Name</th>
              </tr>
            </thead>
            <tbody>
              {changes.map((c) => (
                <tr key={c.urn}>
                  <td class={`op op-${c.op}`}>{c.op}</td>
                  <td class="mono">{c.type}</td>
                  <td class="mono">{urnName(c.urn)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p>The preview found nothing to change.</p>
        )
      ) : (
        <p class="muted">Its preview is running; the changes show here when it ends.</p>
      )}
      {approval.decisions.length > 0 && (
        <ul class="decisions">
          {approval.decisions.map((d, i) => (
            <li key={i}>
              <strong>{d.by.name}</strong> {d.decision === 'approve' ? 'approved' : 'rejected'} at {when(d.at)}
              {d.comment ? `: “${d.comment}”` : ''}
            </li>
          ))}
        </ul>
      )}
      {deciding && roleOk && (
        <div class="actions left">
          <ConfirmButton
            label="Approve"
            title="Approve these changes?"
            body={<p>The up runs with exactly the changes above; anything else makes it stop.</p>}
            comment="Comment (optional)"
            disabledReason={why ?? (approval.plan ? undefined : 'Wait for the preview to end.')}
            onConfirm={decide('approve')}
          />
          <ConfirmButton
            label="Reject"
            title="Reject these changes?"
            danger
            body={<p>The job ends as rejected and changes nothing.</p>}
            comment="Why (optional)"
            disabledReason={why}
            onConfirm={decide('reject')}
          />
        </div>
      )}
    </div>
  );
}
