import { useState } from 'preact/hooks';
import { api, ApiError } from '../lib/api.js';
import { when } from '../lib/format.js';
import { useLoad } from '../lib/hooks.js';
import { can, type Me } from '../lib/session.js';
import { startJob } from '../lib/actions.js';
import { ConfirmButton, Empty, ErrorBanner } from './ui.js';

interface StateResource {
  urn: string;
  type: string;
  name: string;
  id?: string;
  protect: boolean;
  custom: boolean;
}

interface Stack {
  version: number | null;
  jobId?: string;
  writtenAt?: string;
  resources: StateResource[];
  pendingOperations: { type: string; urn: string; resourceType: string }[];
}

interface VersionMeta {
  version: number;
  jobId: string;
  operation: string;
  createdBy?: string;
  writtenAt: string;
  resourceCount: number;
  changes: Record<string, number>;
}

interface Diff {
  from: number;
  to: number;
  added: string[];
  removed: string[];
  changed: { urn: string; fields: string[] }[];
}

const base = (id: string) => `v1/resources/${encodeURIComponent(id)}/stack`;

/** The stack's current state, its kept versions, a diff between two, and the state operations. */
export function StatePanel({ resourceId, me }: { resourceId: string; me: Me }) {
  const stack = useLoad((signal) => api<Stack>('GET', base(resourceId), { signal }), [resourceId]);
  const versions = useLoad((signal) => api<{ items: VersionMeta[] }>('GET', `${base(resourceId)}/versions`, { signal }), [resourceId]);
  if (stack.error instanceof ApiError && stack.error.status !== 404) return <ErrorBanner error={stack.error} />;
  const state = stack.data;
  if (!state || state.version === null) return <Empty>No state yet: the first up writes one.</Empty>;
  const admin = can(me, 'admin');
  const custom = state.resources.filter((r) => r.type !== 'pulumi:pulumi:Stack');
  return (
    <>
      <p class="muted">
        Version {state.version}, written {when(state.writtenAt)}. {custom.length} resource{custom.length === 1 ? '' : 's'}.
      </p>
      {state.pendingOperations.length > 0 && (
        <div class="banner bad" role="alert">
          {state.pendingOperations.length} operation(s) were left pending by a run cut short.{' '}
          {admin && (
            <ConfirmButton
              label="Repair"
              title="Clear the pending operations?"
              body={
                <p>
                  Pulumi forgets the pending creates ({state.pendingOperations.map((p) => p.urn.split('::').pop()).join(', ')}); what the
                  cloud holds stays and the next refresh finds it.
                </p>
              }
              onConfirm={() =>
                startJob(resourceId, {
                  operation: 'repair',
                  pendingCreates: state.pendingOperations
                    .filter((p) => p.type === 'creating')
                    .map((p) => ({ urn: p.urn, action: 'clear' })),
                })
              }
            />
          )}
        </div>
      )}
      <div class="table-wrap">
        <table class="compact">
          <caption class="sr-only">Resources in the current state</caption>
          <thead>
            <tr>
              <th scope="col">Type</th>
              <th scope="col">Name</th>
              <th scope="col">ID</th>
              <th scope="col">Protected</th>
              {admin && <th scope="col">State operations</th>}
            </tr>
          </thead>
          <tbody>
            {custom.map((r) => (
              <tr key={r.urn}>
                <td class="mono">{r.type}</td>
                <td class="mono">{r.name}</td>
                <td class="mono">{r.id ?? '—'}</td>
                <td>{r.protect ? 'yes' : 'no'}</td>
                {admin && (
                  <td class="row-actions">
                    <StateOps resourceId={resourceId} resource={r} />
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h3>Versions</h3>
      <Versions resourceId={resourceId} versions={versions.data?.items ?? []} current={state.version} admin={admin} />
    </>
  );
}

function StateOps({ resourceId, resource }: { resourceId: string; resource: StateResource }) {
  const [name, setName] = useState(resource.name);
  return (
    <>
      <ConfirmButton
        label="Forget"
        title={`Forget ${resource.name}?`}
        danger
        body={
          <p>
            <code>pulumi state delete</code>: the service forgets <code>{resource.urn}</code>; the cloud keeps it, and the next up creates
            it again.
          </p>
        }
        onConfirm={() => startJob(resourceId, { operation: 'state-delete', urn: resource.urn })}
      />
      {resource.protect && (
        <ConfirmButton
          label="Unprotect"
          title={`Unprotect ${resource.name}?`}
          body={<p>A destroy or a replace may then delete it.</p>}
          onConfirm={() => startJob(resourceId, { operation: 'state-unprotect', urn: resource.urn })}
        />
      )}
      <ConfirmButton
        label="Rename"
        title={`Rename ${resource.name} in the state`}
        body={
          <label class="field">
            <span>New name</span>
            <input value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
          </label>
        }
        onConfirm={() => startJob(resourceId, { operation: 'state-rename', urn: resource.urn, name })}
      />
    </>
  );
}

function Versions({
  resourceId,
  versions,
  current,
  admin,
}: {
  resourceId: string;
  versions: VersionMeta[];
  current: number;
  admin: boolean;
}) {
  const [from, setFrom] = useState<number>();
  const [to, setTo] = useState<number>();
  const pickedFrom = from ?? versions[1]?.version ?? 0;
  const pickedTo = to ?? versions[0]?.version ?? current;
  const diff = useLoad(
    (signal) => api<Diff>('GET', `${base(resourceId)}/diff?from=${pickedFrom}&to=${pickedTo}`, { signal }),
    [resourceId, pickedFrom, pickedTo],
  );
  const select = (value: number, set: (n: number) => void, name: string, withEmpty: boolean) => (
    <label class="field inline">
      <span>{name}</span>
      <select value={value} onChange={(e) => set(Number((e.target as HTMLSelectElement).value))}>
        {withEmpty && <option value={0}>empty stack</option>}
        {versions.map((v) => (
          <option key={v.version} value={v.version}>
            {v.version} · {v.operation} · {when(v.writtenAt)}
          </option>
        ))}
      </select>
    </label>
  );
  return (
    <>
      <div class="table-wrap">
        <table class="compact">
          <caption class="sr-only">State versions</caption>
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Operation</th>
              <th scope="col">By</th>
              <th scope="col">Written</th>
              <th scope="col">Resources</th>
              {admin && <th scope="col">Restore</th>}
            </tr>
          </thead>
          <tbody>
            {versions.map((v) => (
              <tr key={v.version}>
                <td>{v.version}</td>
                <td>{v.operation}</td>
                <td>{v.createdBy ?? '—'}</td>
                <td>{when(v.writtenAt)}</td>
                <td>{v.resourceCount}</td>
                {admin && (
                  <td>
                    {v.version === current ? (
                      <span class="muted">current</span>
                    ) : (
                      <ConfirmButton
                        label={`Restore ${v.version}`}
                        title={`Restore state version ${v.version}?`}
                        danger
                        body={
                          <p>
                            The stack's state becomes version {v.version} ({v.resourceCount} resources, written by the {v.operation} of{' '}
                            {when(v.writtenAt)}) in place of version {current}. The cloud is not changed: run a refresh, then an up, to
                            bring it in line.
                          </p>
                        }
                        onConfirm={() => startJob(resourceId, { operation: 'restore', version: v.version })}
                      />
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h3>Compare versions</h3>
      <div class="filters">
        {select(pickedFrom, setFrom, 'From', true)}
        {select(pickedTo, setTo, 'To', false)}
      </div>
      <ErrorBanner error={diff.error} />
      {diff.data && <DiffView diff={diff.data} />}
    </>
  );
}

function DiffView({ diff }: { diff: Diff }) {
  const none = !diff.added.length && !diff.removed.length && !diff.changed.length;
  if (none)
    return (
      <Empty>
        No difference between version {diff.from} and version {diff.to}.
      </Empty>
    );
  return (
    <ul class="diff" aria-label={`Differences from version ${diff.from} to version ${diff.to}`}>
      {diff.added.map((urn) => (
        <li key={urn} class="add">
          <span class="mark">+</span> <span class="mono">{urn.split('::').pop()}</span> <span class="muted">added</span>
        </li>
      ))}
      {diff.removed.map((urn) => (
        <li key={urn} class="del">
          <span class="mark">−</span> <span class="mono">{urn.split('::').pop()}</span> <span class="muted">removed</span>
        </li>
      ))}
      {diff.changed.map((c) => (
        <li key={c.urn} class="chg">
          <span class="mark">~</span> <span class="mono">{c.urn.split('::').pop()}</span> <span class="muted">{c.fields.join(', ')}</span>
        </li>
      ))}
    </ul>
  );
}
